import { SandboxError } from '../../errors.ts';
import { sha256, type Digest } from '../digest.ts';
import { bytesSource } from '../byte-source.ts';
import type { SourceCore } from '../source.ts';
import type { Descriptor } from '../types.ts';

/** Blobs held in memory, keyed by digest: the base of synthesized images (bare .wasm) and tests. */
export class BlobMap {
  readonly #blobs = new Map<Digest, Uint8Array>();

  add(mediaType: string, data: Uint8Array): Descriptor {
    const digest = sha256(data);
    this.#blobs.set(digest, data);
    return { mediaType, digest, size: data.byteLength };
  }

  addJson(mediaType: string, value: unknown): Descriptor {
    return this.add(mediaType, new TextEncoder().encode(JSON.stringify(value)));
  }

  get(d: Digest): Uint8Array | undefined {
    return this.#blobs.get(d);
  }

  stream(d: Descriptor, where: string): ReadableStream<Uint8Array> {
    const blob = this.#blobs.get(d.digest);
    if (!blob) throw new SandboxError('NOT_FOUND', `blob ${d.digest} not found in ${where}`);
    return bytesSource(blob).stream();
  }
}

/** A SourceCore over a BlobMap with one root (manifest or index) and its names. */
export function memorySource(blobs: BlobMap, root: Descriptor, names: string[], where: string): SourceCore {
  return {
    async resolve() { return root; },
    async fetch(d) { return blobs.stream(d, where); },
    async list() { return [{ names, descriptor: root }]; },
  };
}
