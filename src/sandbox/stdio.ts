/**
 * Stdio between the main thread and a sandbox Worker, over shared memory where it exists.
 *
 * - Stdin: a single-producer single-consumer byte ring in a SharedArrayBuffer. The main thread
 *   writes (waiting asynchronously when the ring is full); the guest's blocking `fd_read` waits with
 *   `Atomics.wait` in the Worker until bytes arrive or stdin is closed.
 * - Output flow control: the Worker counts the stdout/stderr bytes it has posted and the main thread
 *   has not yet handed to a reader; past a window the guest blocks (as a full pipe blocks a process),
 *   so a guest that floods output cannot fill the host's memory faster than it is read.
 */

const HEAD = 0; // bytes consumed (wrapping int32)
const TAIL = 1; // bytes produced (wrapping int32)
const CLOSED = 2;
const HEADER_BYTES = 16;

export const DEFAULT_STDIN_CAPACITY = 64 * 1024;

export function sharedMemoryAvailable(): boolean {
  // In browsers SharedArrayBuffer exists only in cross-origin isolated pages.
  return typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object' &&
    ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? true) !== false;
}

export function createStdinRing(capacity = DEFAULT_STDIN_CAPACITY): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

/** Main-thread side of the stdin ring. */
export class StdinRingWriter {
  readonly #header: Int32Array;
  readonly #data: Uint8Array;

  constructor(sab: SharedArrayBuffer) {
    this.#header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(sab, HEADER_BYTES);
  }

  /** Copies all of `chunk` into the ring, waiting while the reader catches up. */
  async write(chunk: Uint8Array): Promise<void> {
    const h = this.#header;
    const cap = this.#data.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (Atomics.load(h, CLOSED)) return;
      const head = Atomics.load(h, HEAD);
      const tail = Atomics.load(h, TAIL);
      const space = cap - ((tail - head) | 0);
      if (space === 0) {
        await waitForChange(h, HEAD, head);
        continue;
      }
      const n = Math.min(space, chunk.length - offset);
      const at = ((tail % cap) + cap) % cap;
      const first = Math.min(n, cap - at);
      this.#data.set(chunk.subarray(offset, offset + first), at);
      if (n > first) this.#data.set(chunk.subarray(offset + first, offset + n), 0);
      offset += n;
      Atomics.store(h, TAIL, (tail + n) | 0);
      Atomics.notify(h, TAIL);
    }
  }

  close(): void {
    Atomics.store(this.#header, CLOSED, 1);
    Atomics.notify(this.#header, TAIL);
    Atomics.notify(this.#header, HEAD);
  }
}

/** Worker side of the stdin ring: the guest's stdin. `read` blocks the Worker until data or EOF. */
export class StdinRingReader {
  readonly #header: Int32Array;
  readonly #data: Uint8Array;

  constructor(sab: SharedArrayBuffer) {
    this.#header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(sab, HEADER_BYTES);
  }

  /** Up to `max` bytes, blocking until at least one is available; null at end of input. */
  read(max: number): Uint8Array | null {
    const h = this.#header;
    const cap = this.#data.length;
    for (;;) {
      const head = Atomics.load(h, HEAD);
      const tail = Atomics.load(h, TAIL);
      const available = (tail - head) | 0;
      if (available > 0) {
        const n = Math.min(available, max);
        const out = new Uint8Array(n);
        const at = ((head % cap) + cap) % cap;
        const first = Math.min(n, cap - at);
        out.set(this.#data.subarray(at, at + first), 0);
        if (n > first) out.set(this.#data.subarray(0, n - first), first);
        Atomics.store(h, HEAD, (head + n) | 0);
        Atomics.notify(h, HEAD);
        return out;
      }
      if (Atomics.load(h, CLOSED)) return null;
      if (max === 0) return new Uint8Array(0);
      Atomics.wait(h, TAIL, tail);
    }
  }

  /** True when a read would not block (data buffered, or end of input). */
  ready(): boolean {
    const h = this.#header;
    return Atomics.load(h, TAIL) !== Atomics.load(h, HEAD) || Atomics.load(h, CLOSED) === 1;
  }
}

/** Stdin given whole before the guest starts (browsers without SharedArrayBuffer, or `run` with bytes). */
export class StdinBytes {
  #data: Uint8Array;
  constructor(data: Uint8Array) { this.#data = data; }
  read(max: number): Uint8Array | null {
    if (this.#data.length === 0) return null;
    const out = this.#data.slice(0, max);
    this.#data = this.#data.subarray(out.length);
    return out;
  }
  ready(): boolean { return true; }
}

const IN_FLIGHT = 0;
const STOPPED = 1;
export const OUTPUT_WINDOW_BYTES = 1 << 20;

export function createOutputFlow(): SharedArrayBuffer {
  return new SharedArrayBuffer(8);
}

/** Worker side: call after posting `n` output bytes; blocks while too much is unread. */
export function outputPosted(flow: Int32Array, n: number, window = OUTPUT_WINDOW_BYTES): void {
  let inFlight = Atomics.add(flow, IN_FLIGHT, n) + n;
  while (inFlight > window && Atomics.load(flow, STOPPED) === 0) {
    Atomics.wait(flow, IN_FLIGHT, inFlight, 1000);
    inFlight = Atomics.load(flow, IN_FLIGHT);
  }
}

/** Worker side: block forever (the main thread is about to terminate this Worker). */
export function parkForever(flow: Int32Array): never {
  for (;;) Atomics.wait(flow, STOPPED, Atomics.load(flow, STOPPED));
}

/** Main-thread side: `n` output bytes went to a reader. */
export function outputConsumed(flow: Int32Array, n: number): void {
  Atomics.sub(flow, IN_FLIGHT, n);
  Atomics.notify(flow, IN_FLIGHT);
}

/** Main-thread side: the container is over; never block the guest again. */
export function outputStop(flow: Int32Array): void {
  Atomics.store(flow, STOPPED, 1);
  Atomics.notify(flow, IN_FLIGHT);
}

async function waitForChange(h: Int32Array, index: number, value: number): Promise<void> {
  const waitAsync = (Atomics as unknown as {
    waitAsync?: (a: Int32Array, i: number, v: number, t?: number) => { async: boolean; value: Promise<string> | string };
  }).waitAsync;
  if (waitAsync) {
    const r = waitAsync(h, index, value, 1000);
    if (r.async) await r.value;
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, 2));
}
