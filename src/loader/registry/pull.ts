import { openImage, type OpenImageLimits } from '../open-image.ts';
import type { Image } from '../source.ts';
import type { LayoutStore, StoredImage } from '../store/layout-store.ts';
import { storeSource } from '../store/store-source.ts';
import type { Descriptor, Platform } from '../types.ts';
import type { SourceCore } from '../source.ts';

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
  /** Checks the image before it is published, as LoadOptions.validate (default: none; diff_ids are checked when a layer is unpacked). */
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
  // Each blob is downloaded once, whole, into the transaction; openImage then reads it from there
  // (it peeks into layers to tell a module from a component, which would otherwise fetch them twice).
  const downloads = new Map<string, Promise<void>>();
  /** Downloads a blob once into the transaction (size and digest checked as it streams). */
  const download = (d: Descriptor): Promise<void> => {
    let p = downloads.get(d.digest);
    if (p) return p;
    p = (async () => {
      if (await tx.has(d.digest)) {
        o.onProgress?.({ type: 'skip', digest: d.digest, size: d.size, reason: 'exists' });
        return;
      }
      o.onProgress?.({ type: 'start', digest: d.digest, size: d.size, what: 'layer' });
      await tx.put(counting(await core.fetch(d), d.digest, d.size, o.onProgress), d);
      o.onProgress?.({ type: 'done', digest: d.digest, size: d.size });
    })();
    downloads.set(d.digest, p);
    return p;
  };
  const viaStore: SourceCore = {
    resolve: (r) => core.resolve(r),
    async fetch(d) {
      // Manifests, indexes and configs (JSON) go straight to openImage, which stores them once checked.
      if (/[+/]json$/.test(d.mediaType)) return core.fetch(d);
      await download(d);
      return tx.read(d);
    },
  };
  try {
    const image = await openImage(viaStore, ref, { store: tx, ...(o.platform ? { platform: o.platform } : {}), ...(o.limits ? { limits: o.limits } : {}) });
    // As containerd does: each blob's size and digest are checked as it streams into the store; the
    // diff_id (the uncompressed digest) is checked where the layer is unpacked, by Layer.open(), which
    // every consumer reads through (layer trees, the Linux materialiser, save). See docs/decisions.md.
    await inParallel(image.layers, o.concurrency ?? 3, (layer) => download(layer.descriptor));
    if (o.validate) await o.validate(image);
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
