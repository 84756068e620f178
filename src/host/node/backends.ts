import { newDir } from '../../fs/inode.ts';
import { buildRootfs } from '../../fs/rootfs.ts';
import type { HostBackendContext } from '../../runtime/image-trees.ts';
import type { Backend } from '../../runtime/types.ts';
import { createWasiBackend } from '../../sandbox/backend.ts';

/**
 * Node: WASI in worker_threads, then native Linux images through namespaces on a Linux host (its probe
 * says why it cannot run an image: no bwrap, another architecture...). Both share the runtime's layer cache.
 */
export async function defaultBackends(ctx: HostBackendContext): Promise<Backend[]> {
  const backends: Backend[] = [createWasiBackend(ctx)];
  if (process.platform === 'linux') {
    const [{ createLinuxBackend }, { LayoutStore }] = await Promise.all([
      import('../../linux-backend/index.ts'),
      import('../../loader/store/layout-store.ts'),
    ]);
    backends.push(createLinuxBackend({
      home: ctx.home ?? LayoutStore.defaultDir(),
      rootfsTree: async (image) =>
        (await buildRootfs(image, ctx.provider.layerCache)) ?? newDir(1, { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n }),
    }));
  }
  return backends;
}
