import type { Command } from 'commander';
import { print, storeFor } from '../program.ts';

export function register(program: Command): void {
  program
    .command('load')
    .description('Load an image from an OCI archive, a docker-save archive, an OCI layout directory or a .wasm file')
    .requiredOption('-i, --input <path>', 'archive file, image layout directory or .wasm module')
    .option('--platform <os/arch>', 'image of a multi-platform index to load (default: wasi/wasm, then the host)')
    .option('-t, --tag <name>', 'store under this NAME[:TAG] instead of the names in the archive')
    .option('-q, --quiet', 'print only the image digests')
    .action(async (o: { input: string; platform?: string; tag?: string; quiet?: boolean }, cmd: Command) => {
      const store = await storeFor(cmd);
      const { loadImage } = await import('../../loader/store/load.ts');
      const loaded = await loadImage(store, o.input, {
        ...(o.platform ? { platform: o.platform } : {}),
        ...(o.tag ? { names: [o.tag] } : {}),
      });
      const seen = new Set<string>();
      for (const image of loaded) {
        if (!o.quiet) print(`Loaded image: ${image.name!.repository}:${image.name!.tag}`);
        if (seen.has(image.descriptor.digest)) continue;
        seen.add(image.descriptor.digest);
        print(o.quiet ? image.descriptor.digest : `Digest: ${image.descriptor.digest}`);
      }
    });
}
