/** The host's Worker, as the sandbox runtime sees it (browsers: a module Web Worker). */
export interface HostWorker {
  post(message: unknown, transfer?: Transferable[]): void;
  onMessage(cb: (message: unknown) => void): void;
  onError(cb: (error: unknown) => void): void;
  terminate(): Promise<void>;
}

export interface WorkerChannel {
  post(message: unknown, transfer?: Transferable[]): void;
  onMessage(cb: (message: unknown) => void): void;
}

/** The worker bundle (dist/browser-worker.js) next to the bundle that imports this module. */
export function spawnWorker(script?: string | URL): HostWorker {
  const url = script ?? new URL('./browser-worker.js', import.meta.url);
  const w = new Worker(url, { type: 'module' });
  return {
    post: (m, t) => w.postMessage(m, t ?? []),
    onMessage: (cb) => w.addEventListener('message', (e) => cb((e as MessageEvent).data)),
    onError: (cb) => w.addEventListener('error', (e) => { e.preventDefault(); cb((e as ErrorEvent).error ?? new Error((e as ErrorEvent).message)); }),
    terminate: async () => { w.terminate(); },
  };
}

export function parentChannel(): WorkerChannel {
  const scope = globalThis as unknown as {
    postMessage(m: unknown, t?: Transferable[]): void;
    addEventListener(type: 'message', cb: (e: MessageEvent) => void): void;
  };
  return {
    post: (m, t) => scope.postMessage(m, t ?? []),
    onMessage: (cb) => scope.addEventListener('message', (e) => cb(e.data)),
  };
}
