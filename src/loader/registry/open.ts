import { openImage, type OpenImageLimits } from '../open-image.ts';
import type { ContentStore, Image } from '../source.ts';
import type { Platform } from '../types.ts';
import { RegistryClient, type RegistryClientOptions } from './client.ts';
import { parseRegistryRef, type RegistryRef } from './reference.ts';
import { registrySource } from './source.ts';

export interface OpenRegistryImageOptions extends RegistryClientOptions {
  client?: RegistryClient;
  /** Where manifest and config land (default a fresh MemoryStore); layers stream from the registry when opened. */
  store?: ContentStore;
  platform?: Platform | string;
  limits?: OpenImageLimits;
}

/**
 * An image straight from a registry, without an image store (browsers, or a one-off run): openImage over the
 * registry source, so platform choice and verification are those of every other source.
 */
export async function openRegistryImage(reference: string | RegistryRef, o: OpenRegistryImageOptions = {}): Promise<Image> {
  const ref = typeof reference === 'string' ? parseRegistryRef(reference) : reference;
  const client = o.client ?? new RegistryClient(ref.registry, o);
  const core = registrySource(client, ref.repository, o.limits?.maxManifestBytes !== undefined ? { maxManifestBytes: o.limits.maxManifestBytes } : {});
  return openImage(core, ref, { ...(o.store ? { store: o.store } : {}), ...(o.platform ? { platform: o.platform } : {}), ...(o.limits ? { limits: o.limits } : {}) });
}
