import { SandboxError } from '../errors.ts';
import { sha256, type Digest } from './digest.ts';
import { bytesSource, readAll } from './byte-source.ts';
import type { ContentStore } from './source.ts';
import type { Descriptor } from './types.ts';
import { verifyBytes, verifyStream } from './verify.ts';

/** A ContentStore in memory: the default for openImage, and what browsers use. */
export class MemoryStore implements ContentStore {
  readonly #blobs = new Map<Digest, Uint8Array>();

  async has(d: Digest): Promise<boolean> {
    return this.#blobs.has(d);
  }

  #get(d: Pick<Descriptor, 'digest' | 'size'>): Uint8Array {
    const blob = this.#blobs.get(d.digest);
    if (!blob) throw new SandboxError('NOT_FOUND', `blob ${d.digest} is not in the store`);
    if (blob.byteLength !== d.size) throw new SandboxError('SIZE_MISMATCH', `blob ${d.digest} has ${blob.byteLength} bytes, descriptor says ${d.size}`);
    return blob;
  }

  async read(d: Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    return bytesSource(this.#get(d), d.digest).stream();
  }

  async readBytes(d: Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    return this.#get(d);
  }

  async put(data: Uint8Array | ReadableStream<Uint8Array>, expected?: Pick<Descriptor, 'digest' | 'size'>): Promise<{ digest: Digest; size: number }> {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) {
      if (expected) verifyBytes(data, expected, `blob ${expected.digest}`);
      bytes = data;
    } else {
      const what = expected ? `blob ${expected.digest}` : 'blob';
      bytes = await readAll(expected ? verifyStream(data, { ...expected, what }) : data, Number.MAX_SAFE_INTEGER, what);
    }
    const digest = expected?.digest ?? sha256(bytes);
    if (!this.#blobs.has(digest)) this.#blobs.set(digest, bytes.slice());
    return { digest, size: bytes.byteLength };
  }

  /** Every digest held, for tests and diagnostics. */
  digests(): Digest[] {
    return [...this.#blobs.keys()];
  }
}
