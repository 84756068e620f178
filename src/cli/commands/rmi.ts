import type { Command } from 'commander';
import { print, storeFor } from '../program.ts';
import { ExitCode, reportError } from '../exit-codes.ts';

export function register(program: Command): void {
  program
    .command('rmi')
    .description('Remove one or more images (and the blobs nothing else uses)')
    .argument('<image...>', 'NAME[:TAG], image ID or digest')
    .option('-f, --force', 'remove every tag of an image given by ID')
    .action(async (images: string[], o: { force?: boolean }, cmd: Command) => {
      const store = await storeFor(cmd);
      let failed = 0;
      for (const image of images) {
        try {
          const r = await store.remove(image, { force: o.force === true });
          for (const name of r.untagged) print(`Untagged: ${name}`);
          for (const d of r.deleted) print(`Deleted: ${d}`);
        } catch (e) {
          failed = reportError(e);
        }
      }
      // Root filesystems materialised from images no longer stored go too (unless a container uses one).
      const live = await store.rootfsChainIds().catch(() => undefined);
      if (live) {
        const { createRuntime } = await import('../../runtime/runtime.ts');
        await createRuntime({ home: store.dir, keepWarm: false }).pruneRootfs(live).catch((e: unknown) => { failed = reportError(e); });
      }
      if (failed) process.exitCode = ExitCode.failed;
    });
}
