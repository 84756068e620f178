import type { Command } from 'commander';
import { storeFor } from '../program.ts';
import { sampleImagePath } from '#host/sample-images';

export function register(program: Command): void {
  program
    .command('export')
    .description("Write an image's flattened filesystem (all layers merged, whiteouts applied) as a tar")
    .argument('<image>', 'NAME[:TAG], image ID, digest, or an archive / layout / .wasm path')
    .requiredOption('-o, --output <file>', 'tar file to write')
    .option('--platform <os/arch>', 'platform to pick from a multi-platform image')
    .action(async (name: string, o: { output: string; platform?: string }, cmd: Command) => {
      const store = await storeFor(cmd);
      const [{ resolveImage }, { buildRootfs }, { LayerCache }, { exportFlattened }, files] = await Promise.all([
        import('../../loader/store/resolve-image.ts'),
        import('../../fs/rootfs.ts'),
        import('../../fs/layer-cache.ts'),
        import('../../fs/export.ts'),
        import('#host/files'),
      ]);
      const image = await resolveImage(name, { store, fallback: sampleImagePath, ...(o.platform ? { platform: o.platform } : {}) });
      const tree = await buildRootfs(image, new LayerCache());
      const target = files.resolvePath(o.output);
      const out = await files.createTempFile(files.dirnameOf(target), `.${files.basenameOf(target)}.tmp-`);
      try {
        const reader = exportFlattened(tree).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await out.write(value);
        }
        await out.commit(target);
      } catch (e) {
        await out.abort();
        throw e;
      }
    });
}
