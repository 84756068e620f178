import type { Command } from 'commander';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { print, storeFor } from '../program.ts';

export function register(program: Command): void {
  program
    .command('load')
    .description('Load an image from an OCI archive, a docker-save archive, an OCI layout directory or a .wasm file')
    .option('-i, --input <path>', 'archive file (gzip-compressed too), image layout directory or .wasm module (default: an archive on stdin)')
    .option('--platform <os/arch>', 'image of a multi-platform index to load (default: wasi/wasm, then the host)')
    .option('-t, --tag <name>', 'store under this NAME[:TAG] instead of the names in the archive')
    .option('-q, --quiet', 'print only the image digests')
    .option('--max-layer-size <size>', 'refuse a layer larger than this uncompressed (e.g. 512m; default 8g): the gzip-bomb bound')
    .action(async (o: { input?: string; platform?: string; tag?: string; quiet?: boolean; maxLayerSize?: string }, cmd: Command) => {
      let maxLayerBytes: number | undefined;
      if (o.maxLayerSize !== undefined) {
        const { parseSize } = await import('../../runtime/spec.ts');
        maxLayerBytes = parseSize(o.maxLayerSize);
      }
      const store = await storeFor(cmd);
      const [{ loadImage }, { buildRootfs }, { LayerCache }] = await Promise.all([
        import('../../loader/store/load.ts'),
        import('../../fs/rootfs.ts'),
        import('../../fs/layer-cache.ts'),
      ]);
      // Interrupted: drop what this process staged now rather than at the store's next open.
      const onSignal = (signal: NodeJS.Signals): void => {
        removeOwnStaging(store.stagingDir);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const [{ materialiseInput }, { DEFAULT_LIMITS }] = await Promise.all([import('../archive-input.ts'), import('../../loader/open-image.ts')]);
      // An archive unpacked to disk first (stdin, gzip) may be twice the layer bound: a bomb stops there.
      const input = await materialiseInput(o.input, store.tmpDir, 2 * (maxLayerBytes ?? DEFAULT_LIMITS.maxLayerBytes));
      const loaded = await loadImage(store, input.path, {
        ...(o.platform ? { platform: o.platform } : {}),
        ...(o.tag ? { names: [o.tag] } : {}),
        ...(maxLayerBytes !== undefined ? { limits: { maxLayerBytes } } : {}),
        // Building the filesystem once checks every entry (no '../', absolute names, writes through
        // symlinks, links pointing outside) as well as the diff_ids, before anything is stored.
        validate: async (image) => {
          await buildRootfs(image, new LayerCache(), maxLayerBytes !== undefined ? { limits: { maxBytes: maxLayerBytes } } : {});
        },
      }).finally(() => input.cleanup());
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const seen = new Set<string>();
      for (const image of loaded) {
        if (!o.quiet) print(`Loaded image: ${image.name!.repository}:${image.name!.tag}`);
        if (seen.has(image.descriptor.digest)) continue;
        seen.add(image.descriptor.digest);
        print(o.quiet ? image.descriptor.digest : `Digest: ${image.descriptor.digest}`);
      }
    });
}

function removeOwnStaging(stagingDir: string): void {
  try {
    for (const name of readdirSync(stagingDir)) {
      if (name.startsWith(`${process.pid}-`)) rmSync(join(stagingDir, name), { recursive: true, force: true });
    }
  } catch {
    // best effort: the next open removes a dead process's staging anyway
  }
}
