import type { Backend } from '../../runtime/types.ts';
import { createWasiBackend, type WasiBackendOptions } from '../../sandbox/backend.ts';

/** Node: WASI in worker_threads, and native Linux images where the Linux backend is available. */
export async function defaultBackends(ctx: WasiBackendOptions): Promise<Backend[]> {
  return [createWasiBackend(ctx)];
}
