import type { HostBackendContext } from '../../runtime/image-trees.ts';
import type { Backend } from '../../runtime/types.ts';
import { createWasiBackend } from '../../sandbox/backend.ts';

/** Browsers: WASI in Web Workers only. */
export async function defaultBackends(ctx: HostBackendContext): Promise<Backend[]> {
  return [createWasiBackend(ctx)];
}
