import { newDir } from '../../fs/inode.ts';
import type { HostBackendContext } from '../../runtime/image-trees.ts';
import type { Backend } from '../../runtime/types.ts';
import { createWasiBackend } from '../../sandbox/backend.ts';

/**
 * Node: WASI in worker_threads, then native Linux images through namespaces on a Linux host (its probe
 * says why it cannot run an image: no bwrap, another architecture...). Both share the runtime's layer cache.
 */
export async function defaultBackends(ctx: HostBackendContext): Promise<Backend[]> {
  const backends: Backend[] = [createWasiBackend(ctx)];
  if (process.platform === 'linux') backends.push(lazyLinuxBackend(ctx));
  return backends;
}

/** The Linux backend, loaded when a Linux image first asks for it (a WASI run never loads it). */
function lazyLinuxBackend(ctx: HostBackendContext): Backend {
  let backend: Promise<Backend> | undefined;
  const load = () => (backend ??= (async () => {
    const [{ createLinuxBackend }, { LayoutStore }] = await Promise.all([
      import('../../linux-backend/index.ts'),
      import('../../loader/store/layout-store.ts'),
    ]);
    return createLinuxBackend({
      home: ctx.home ?? LayoutStore.defaultDir(),
      ...(ctx.keepWarm === false ? { spareRoots: false } : {}),
      ...(ctx.inheritStdio ? { inheritStdio: true } : {}),
      rootfsTree: async (image) =>
        (await ctx.provider.rootfsTree(image)) ?? newDir(1, { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n }),
    });
  })());
  return {
    name: 'linux',
    async probe(image) {
      if (image.kind !== 'linux') return { ok: false, reason: `not a Linux image (${image.kind})` };
      return (await load()).probe(image);
    },
    async create(image, spec) {
      return (await load()).create(image, spec);
    },
    async pruneRootfs(live) {
      // (a store that never ran a Linux image has nothing to prune: the backend is not loaded for it)
      const { existsSync } = await import('node:fs');
      const { LayoutStore } = await import('../../loader/store/layout-store.ts');
      if (!existsSync(`${ctx.home ?? LayoutStore.defaultDir()}/linux`)) return [];
      return (await load()).pruneRootfs!(live);
    },
  };
}
