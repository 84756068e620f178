import type { HostWorker, WorkerChannel } from '../../sandbox/worker-protocol.ts';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// Loaded on first use: a CLI run that needs no Worker (inline) does not pay for loading worker_threads.
let workerThreads: typeof import('node:worker_threads') | undefined;
const threads = () => (workerThreads ??= createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads'));

export type { HostWorker, WorkerChannel } from '../../sandbox/worker-protocol.ts';

/** Image trees are packed into SharedArrayBuffers and shared with Workers, not copied. */
export const SHARE_PACKED_TREES = true;

const WORKER_FLAG = '--wasmbox-sandbox-worker';

let resolvedScript: string | undefined;

/**
 * The sandbox worker bundle (dist/sandbox-worker.js, built by build.mjs). Found next to the bundle
 * that imports this module, or from the sources' place in the repo; WASMBOX_SANDBOX_WORKER overrides.
 */
function workerScript(): string {
  if (resolvedScript) return resolvedScript;
  const candidates = [
    process.env.WASMBOX_SANDBOX_WORKER,
    fileURLToPath(new URL('./sandbox-worker.js', import.meta.url)),
    fileURLToPath(new URL('../../../dist/sandbox-worker.js', import.meta.url)),
  ];
  for (const c of candidates) {
    if (c && existsSync(c)) return (resolvedScript = c);
  }
  throw new Error('the sandbox worker bundle (dist/sandbox-worker.js) is missing: run `node build.mjs`');
}

export function spawnWorker(script?: string | URL): HostWorker {
  const w = new (threads().Worker)(script ?? workerScript(), { env: {}, stdin: false, execArgv: [], argv: [WORKER_FLAG], workerData: { wasmboxSandbox: true } });
  return {
    post: (m, t) => w.postMessage(m, t as never),
    onMessage: (cb) => { w.on('message', cb); return () => { w.off('message', cb); }; },
    onError: (cb) => { w.on('error', cb); return () => { w.off('error', cb); }; },
    onExit: (cb) => { w.on('exit', cb); return () => { w.off('exit', cb); }; },
    terminate: async () => { await w.terminate(); },
    keepAlive: (on) => { if (on) w.ref(); else w.unref(); },
  };
}

/** Inside a Worker: the channel to the main thread (undefined on the main thread). */
export function parentChannel(): WorkerChannel | undefined {
  // Cheap test first, so the main thread never loads worker_threads just to learn it is not a Worker.
  if (!process.argv.includes(WORKER_FLAG)) return undefined;
  const { parentPort: port, workerData, isMainThread } = threads();
  // Only in a Worker this module spawned: the library may itself be loaded in someone else's Worker.
  if (isMainThread || !port || (workerData as { wasmboxSandbox?: boolean } | null)?.wasmboxSandbox !== true) return undefined;
  return {
    post: (m, t) => port.postMessage(m, t as never),
    onMessage: (cb) => { port.on('message', cb); },
  };
}
