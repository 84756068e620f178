import { SandboxError } from '../../errors.ts';
import type { ImageRef, SourceCore } from '../source.ts';
import type { Descriptor } from '../types.ts';
import type { LayoutStore } from './layout-store.ts';

/** The text a store reference names: `NAME:TAG`, `NAME@DIGEST`, an image ID or a digest. */
export function storeRefText(ref: ImageRef): string {
  if (ref.transport !== 'store') throw new SandboxError('INVALID_REFERENCE', `not a store reference: ${ref.transport}`);
  if (ref.digest && ref.name) return `${ref.name}@${ref.digest}`;
  if (ref.digest) return ref.digest;
  return ref.tag ? `${ref.name}:${ref.tag}` : ref.name;
}

/**
 * The `store` transport: images already in a LayoutStore, opened through `openImage` like any other
 * source. Blobs come straight from `blobs/sha256/` (verified again by openImage as they stream).
 */
export function storeSource(store: LayoutStore): SourceCore {
  return {
    async resolve(ref: ImageRef): Promise<Descriptor> {
      const [hit] = await store.get(storeRefText(ref));
      return hit!.descriptor;
    },
    async fetch(d: Descriptor): Promise<ReadableStream<Uint8Array>> {
      return store.read(d);
    },
    async list() {
      const all = await store.list();
      return all.map((i) => ({ names: i.name ? [`${i.name.repository}:${i.name.tag}`] : [], descriptor: i.descriptor }));
    },
  };
}
