import { openImage, type OpenImageLimits } from '../open-image.ts';
import type { Image } from '../source.ts';
import type { LayoutStore, StoredImage } from '../store/layout-store.ts';
import { checkDiffIds } from '../store/load.ts';
import { storeSource } from '../store/store-source.ts';
import type { Platform } from '../types.ts';
import { RegistryClient, type RegistryClientOptions } from './client.ts';
import { counting, inParallel, type TransferListener } from './progress.ts';
import { parseRegistryRef, storeNameFor, type RegistryRef } from './reference.ts';
import { registrySource } from './source.ts';

export interface PullOptions extends RegistryClientOptions {
  platform?: Platform | string;
  limits?: OpenImageLimits;
  /** A client to reuse (its token cache); default: a new one for the reference's registry. */
  client?: RegistryClient;
  /** Layers downloaded at once. Default 3. */
  concurrency?: number;
  onProgress?: TransferListener;
  /** Checks the image before it is published (default: every layer's diff_id), as LoadOptions.validate. */
  validate?: (image: Image) => Promise<void>;
}

export interface PullResult {
  ref: RegistryRef;
  image: Image;
  /** The store entries made (none for a pull by digest alone). */
  stored: StoredImage[];
}

/**
 * `docker pull`: the manifest (the platform's, from an index) and its config, then the layers missing from
 * the store (in parallel), all through openImage's verifying streams into one load transaction, published
 * under `REGISTRY/REPO:TAG` only when everything checked out. A failure leaves the store as it was.
 */
export async function pullImage(store: LayoutStore, reference: string | RegistryRef, o: PullOptions = {}): Promise<PullResult> {
  const ref = typeof reference === 'string' ? parseRegistryRef(reference) : reference;
  const client = o.client ?? new RegistryClient(ref.registry, o);
  const core = registrySource(client, ref.repository, o.limits?.maxManifestBytes !== undefined ? { maxManifestBytes: o.limits.maxManifestBytes } : {});
  const tx = await store.beginLoad();
  try {
    const image = await openImage(core, ref, { store: tx, ...(o.platform ? { platform: o.platform } : {}), ...(o.limits ? { limits: o.limits } : {}) });
    await inParallel(image.layers, o.concurrency ?? 3, async (layer) => {
      const { digest, size } = layer.descriptor;
      if (await tx.has(digest)) {
        o.onProgress?.({ type: 'skip', digest, size, reason: 'exists' });
        return;
      }
      o.onProgress?.({ type: 'start', digest, size, what: 'layer' });
      await tx.put(counting(await layer.blob(), digest, size, o.onProgress), layer.descriptor);
      o.onProgress?.({ type: 'done', digest, size });
    });
    await (o.validate ?? checkDiffIds)(image);
    const name = storeNameFor(ref);
    const stored = await tx.commit(name ? [name] : [], image.manifestDescriptor);
    // The image as the store now holds it (the transaction's staging is gone).
    const published = await openImage(storeSource(store), image.manifestDescriptor, { store, ...(o.limits ? { limits: o.limits } : {}) });
    return { ref, image: published, stored };
  } catch (e) {
    await tx.abort();
    throw e;
  }
}
