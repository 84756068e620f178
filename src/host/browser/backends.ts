import type { Backend } from '../../runtime/types.ts';
import { createWasiBackend, type WasiBackendOptions } from '../../sandbox/backend.ts';

/** Browsers: WASI in Web Workers only. */
export async function defaultBackends(ctx: WasiBackendOptions): Promise<Backend[]> {
  return [createWasiBackend(ctx)];
}
