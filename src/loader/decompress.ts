import { Decompress } from 'fzstd';
import { SandboxError } from '../errors.ts';
import type { Compression } from './media-types.ts';
import { decompressStream } from '#host/decompress';

/** The compression a blob's first bytes announce (gzip 1f 8b, zstd 28 b5 2f fd), else 'none'. */
export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * Decompressed bytes of `input`. Corrupt or truncated input fails with MALFORMED naming `what`;
 * typed errors from the input (size or digest checks) pass through.
 */
export function decompress(input: ReadableStream<Uint8Array>, compression: Compression, what: string): ReadableStream<Uint8Array> {
  if (compression === 'none') return input;
  return decompressStream(input, compression, what);
}

export function decompressError(e: unknown, compression: Compression, what: string): SandboxError {
  if (e instanceof SandboxError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new SandboxError('MALFORMED', `${what}: corrupt or truncated ${compression} data (${msg})`, { cause: e });
}

/** Streaming zstd through fzstd (pure JS; used where the host has no native decoder). */
export function zstdStream(input: ReadableStream<Uint8Array>, what: string): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  let out: Uint8Array[] = [];
  const z = new Decompress((chunk) => { out.push(chunk); });
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        while (out.length === 0) {
          const { done, value } = await reader.read();
          z.push(done ? new Uint8Array(0) : value, done);
          if (done) {
            for (const c of out) ctrl.enqueue(c);
            ctrl.close();
            return;
          }
        }
        const ready = out;
        out = [];
        for (const c of ready) ctrl.enqueue(c);
      } catch (e) {
        await reader.cancel(e).catch(() => {});
        throw decompressError(e, 'zstd', what);
      }
    },
    async cancel(reason) { await reader.cancel(reason).catch(() => {}); },
  }, { highWaterMark: 0 });
}
