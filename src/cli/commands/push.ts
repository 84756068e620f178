import type { Command } from 'commander';
import { SandboxError } from '../../errors.ts';
import { print, storeFor } from '../program.ts';
import { clientOptions, progressReporter, type RegistryFlags } from './pull.ts';

export function register(program: Command): void {
  program
    .command('push')
    .description('Upload an image of the store to a registry')
    .argument('<ref>', 'REGISTRY[:PORT]/REPO[:TAG]: an image name in the store (see wasmbox tag)')
    .argument('[target]', 'push to this reference instead of the image\'s own name')
    .option('--format <format>', "'image' (as stored) or 'wasm-artifact' (CNCF wasm OCI artifact, for runwasi / SpinKube)", 'image')
    .option('--platform <os/arch>', 'with --format wasm-artifact: the image of a multi-platform index')
    .option('-q, --quiet', 'print only the pushed digest')
    .option('--insecure', 'allow plain HTTP to a registry that is not on loopback')
    .option('--timeout <duration>', 'time allowed for each registry response or read (default 30s)')
    .action(async (source: string, target: string | undefined, o: RegistryFlags & { format: string; platform?: string; quiet?: boolean }, cmd: Command) => {
      if (o.format !== 'image' && o.format !== 'wasm-artifact') {
        throw new SandboxError('INVALID_ARGUMENT', `unknown --format ${JSON.stringify(o.format)}: use 'image' or 'wasm-artifact'`);
      }
      const [{ pushImage }, { parseRegistryRef }] = await Promise.all([
        import('../../loader/registry/push.ts'),
        import('../../loader/registry/reference.ts'),
      ]);
      const ref = parseRegistryRef(target ?? source);
      const store = await storeFor(cmd);
      await store.get(source);
      const client = await clientOptions(o, store);
      if (!o.quiet) print(`The push refers to repository [${ref.registry}/${ref.repository}]`);
      const progress = await progressReporter('push', o.quiet ?? false);
      try {
        const r = await pushImage(store, source, ref, {
          ...client,
          format: o.format,
          ...(o.platform ? { platform: o.platform } : {}),
          ...(progress.listener ? { onProgress: progress.listener } : {}),
        });
        progress.stop();
        print(o.quiet ? r.digest : `${ref.tag ?? ref.digest}: digest: ${r.digest} size: ${r.size}`);
      } finally {
        progress.stop();
      }
    });
}
