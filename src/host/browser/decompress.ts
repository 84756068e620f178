import type { Compression } from '../../loader/media-types.ts';
import { decompressError, zstdStream } from '../../loader/decompress.ts';

/** DecompressionStream('gzip') for gzip, fzstd for zstd. */
export function decompressStream(input: ReadableStream<Uint8Array>, compression: Exclude<Compression, 'none'>, what: string): ReadableStream<Uint8Array> {
  if (compression === 'zstd') return zstdStream(input, what);
  const reader = input.pipeThrough(new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>).getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const { done, value } = await reader.read();
        if (done) ctrl.close();
        else ctrl.enqueue(value);
      } catch (e) {
        throw decompressError(e, compression, what);
      }
    },
    async cancel(reason) { await reader.cancel(reason).catch(() => {}); },
  }, { highWaterMark: 1 });
}
