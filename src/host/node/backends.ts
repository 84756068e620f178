import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
  const home = async () => ctx.home ?? (await import('../../loader/store/layout-store.ts')).LayoutStore.defaultDir();
  const load = () => (backend ??= (async () => {
    const [{ createLinuxBackend }, dir] = await Promise.all([import('../../linux-backend/index.ts'), home()]);
    return createLinuxBackend({
      home: dir,
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
      if (!existsSync(join(await home(), 'linux'))) return [];
      return (await load()).pruneRootfs!(live);
    },
  };
}
