import * as zlib from 'node:zlib';
import { lazyBuiltin } from './builtin.ts';
import type { Compression } from '../../loader/media-types.ts';
import { decompressError, zstdStream } from '../../loader/decompress.ts';

const CHUNK = 128 * 1024;
const streamModule = lazyBuiltin<typeof import('node:stream')>('node:stream');

type ZlibWithZstd = typeof zlib & { createZstdDecompress?: (o?: object) => NodeJS.ReadWriteStream };

/** node:zlib streaming gunzip (and zstd where this Node has it, >= 22.15; else fzstd). */
export function decompressStream(input: ReadableStream<Uint8Array>, compression: Exclude<Compression, 'none'>, what: string): ReadableStream<Uint8Array> {
  const z = zlib as ZlibWithZstd;
  let transform: NodeJS.ReadWriteStream & { destroy(e?: Error): void };
  if (compression === 'gzip') transform = zlib.createGunzip({ chunkSize: CHUNK });
  else if (z.createZstdDecompress) transform = z.createZstdDecompress({ chunkSize: CHUNK }) as typeof transform;
  else return zstdStream(input, what);

  const src = streamModule().Readable.fromWeb(input as import('node:stream/web').ReadableStream<Uint8Array>, { highWaterMark: 2 });
  src.on('error', (e) => transform.destroy(e));
  src.pipe(transform);
  const it = (transform as unknown as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        const { done, value } = await it.next();
        if (done) ctrl.close();
        else ctrl.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
      } catch (e) {
        src.destroy();
        throw decompressError(e, compression, what);
      }
    },
    async cancel() {
      src.destroy();
      transform.destroy();
      await it.return?.();
    },
  }, { highWaterMark: 1 });
}
