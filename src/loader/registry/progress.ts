import type { Digest } from '../digest.ts';

/** What a pull or push reports about each blob as it goes. */
export type TransferEvent =
  | { type: 'start'; digest: Digest; size: number; what: 'layer' | 'config' | 'manifest' }
  | { type: 'bytes'; digest: Digest; done: number; size: number }
  | { type: 'skip'; digest: Digest; size: number; reason: 'exists' | 'mounted' }
  | { type: 'done'; digest: Digest; size: number };

export type TransferListener = (e: TransferEvent) => void;

/** Passes a stream through, reporting the bytes that went by. */
export function counting(stream: ReadableStream<Uint8Array>, digest: Digest, size: number, on?: TransferListener): ReadableStream<Uint8Array> {
  if (!on) return stream;
  let done = 0;
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await reader.read();
      if (r.done) {
        c.close();
        return;
      }
      done += r.value.byteLength;
      on({ type: 'bytes', digest, done, size });
      c.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure rejects (the others are awaited). */
export async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  let hasFailed = false;
  const worker = async () => {
    while (!hasFailed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        if (!hasFailed) {
          hasFailed = true;
          failed = e;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (hasFailed) throw failed;
}
