import { SandboxError } from '../../errors.ts';
import { INDEX_TYPES, MANIFEST_TYPES } from '../media-types.ts';
import type { ImageRef, SourceCore } from '../source.ts';
import type { Descriptor } from '../types.ts';
import type { RegistryClient } from './client.ts';

function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(c) { c.enqueue(bytes); c.close(); } });
}

/**
 * The `registry` transport as a SourceCore of one repository: openImage does platform choice and
 * verification exactly as for archives. The manifest fetched while resolving a tag is kept, so the
 * tag costs one request.
 */
export function registrySource(client: RegistryClient, repository: string, o: { maxManifestBytes?: number } = {}): SourceCore {
  const manifests = new Map<string, Uint8Array>();
  return {
    async resolve(ref: ImageRef): Promise<Descriptor> {
      if (ref.transport !== 'registry') throw new SandboxError('INVALID_REFERENCE', `not a registry reference: ${ref.transport}`);
      const reference = ref.digest ?? ref.tag ?? 'latest';
      const { bytes, descriptor } = await client.getManifest(repository, reference, o.maxManifestBytes);
      manifests.set(descriptor.digest, bytes);
      return descriptor;
    },
    async fetch(d: Descriptor): Promise<ReadableStream<Uint8Array>> {
      if (INDEX_TYPES.includes(d.mediaType) || MANIFEST_TYPES.includes(d.mediaType)) {
        const cached = manifests.get(d.digest);
        if (cached) return bytesStream(cached);
        return bytesStream((await client.getManifest(repository, d.digest, o.maxManifestBytes)).bytes);
      }
      return client.getBlob(repository, d);
    },
  };
}
