import type { HostWorker, WorkerChannel } from '../../sandbox/worker-protocol.ts';
export type { HostWorker, WorkerChannel } from '../../sandbox/worker-protocol.ts';

/**
 * Image trees are packed into SharedArrayBuffers and shared with Workers where the page can have them
 * (cross-origin isolated); elsewhere packTree falls back to plain ArrayBuffers, cloned per Worker.
 */
export const SHARE_PACKED_TREES = true;

const WORKER_NAME = 'wasmbox-sandbox';

/** The worker bundle (dist/browser-worker.js) next to the bundle that imports this module. */
export function spawnWorker(script?: string | URL): HostWorker {
  const url = script ?? new URL('./browser-worker.js', import.meta.url);
  const w = new Worker(url, { type: 'module', name: WORKER_NAME });
  return {
    post: (m, t) => w.postMessage(m, t ?? []),
    onMessage: (cb) => {
      const listener = (e: MessageEvent) => cb(e.data);
      w.addEventListener('message', listener);
      return () => w.removeEventListener('message', listener);
    },
    onError: (cb) => {
      const listener = (e: ErrorEvent) => { e.preventDefault(); cb(e.error ?? new Error(e.message)); };
      w.addEventListener('error', listener);
      return () => w.removeEventListener('error', listener);
    },
    onExit: () => () => {},
    terminate: async () => { w.terminate(); },
    keepAlive: () => {},
  };
}

/** Inside a Worker: the channel to the page (undefined on the page's main thread). */
export function parentChannel(): WorkerChannel | undefined {
  const g = globalThis as { WorkerGlobalScope?: new () => unknown };
  if (typeof g.WorkerGlobalScope !== 'function' || !(globalThis instanceof g.WorkerGlobalScope)) return undefined;
  // Only in a Worker this module spawned: the library may itself be loaded in someone else's Worker.
  if ((globalThis as { name?: string }).name !== WORKER_NAME) return undefined;
  const scope = globalThis as unknown as {
    postMessage(m: unknown, t?: Transferable[]): void;
    addEventListener(type: 'message', cb: (e: MessageEvent) => void): void;
  };
  return {
    post: (m, t) => scope.postMessage(m, t ?? []),
    onMessage: (cb) => scope.addEventListener('message', (e) => cb(e.data)),
  };
}
