import { decompress } from '../decompress.ts';
import { layerCompression } from '../media-types.ts';
import { effectiveLimits, openImage, type OpenImageLimits } from '../open-image.ts';
import { verifyStream } from '../verify.ts';
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
  /** Checks the image before it is published, as LoadOptions.validate (default: each layer's diff_id, checked as it arrives). */
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
  const downloads = new Map<string, Promise<boolean>>();
  /** Downloads a blob once; `check` gets a copy of the bytes as they arrive. True when this call checked them. */
  const download = (d: Descriptor, check?: (copy: ReadableStream<Uint8Array>) => Promise<void>): Promise<boolean> => {
    let p = downloads.get(d.digest);
    if (p) return p.then(() => false);
    p = (async () => {
      if (await tx.has(d.digest)) {
        o.onProgress?.({ type: 'skip', digest: d.digest, size: d.size, reason: 'exists' });
        return false;
      }
      o.onProgress?.({ type: 'start', digest: d.digest, size: d.size, what: 'layer' });
      const body = counting(await core.fetch(d), d.digest, d.size, o.onProgress);
      if (check) {
        const { stream, copy } = withCopy(body);
        await Promise.all([tx.put(stream, d), check(copy)]);
      } else {
        await tx.put(body, d);
      }
      o.onProgress?.({ type: 'done', digest: d.digest, size: d.size });
      return check !== undefined;
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
    const maxLayerBytes = effectiveLimits(o.limits).maxLayerBytes;
    await inParallel(image.layers, o.concurrency ?? 3, async (layer) => {
      // Without a validate hook each layer's diff_id is checked while it downloads (decompressed on the side).
      const checkDiffId = !o.validate && layer.kind === 'tar';
      const what = `layer ${layer.descriptor.digest}`;
      const checked = await download(layer.descriptor, checkDiffId
        ? (copy) => drain(verifyStream(decompress(copy, layerCompression(layer.descriptor.mediaType) ?? 'none', what), { digest: layer.diffId, maxBytes: maxLayerBytes, what: `${what} uncompressed (diff_id ${layer.diffId})` }))
        : undefined);
      if (checkDiffId && !checked) await drain(await layer.open());
    });
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

async function drain(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  for (;;) if ((await reader.read()).done) return;
}

/**
 * The stream, plus a copy of every chunk for a second reader, with back-pressure from both: a chunk
 * moves on only once the copy's reader has taken the previous one, so neither side buffers a whole layer.
 */
function withCopy(input: ReadableStream<Uint8Array>): { stream: ReadableStream<Uint8Array>; copy: ReadableStream<Uint8Array> } {
  const side = new TransformStream<Uint8Array, Uint8Array>(undefined, { highWaterMark: 4 }, { highWaterMark: 4 });
  const writer = side.writable.getWriter();
  const reader = input.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          await writer.close();
          c.close();
          return;
        }
        await writer.ready;
        void writer.write(value).catch(() => {});
        c.enqueue(value);
      } catch (e) {
        await writer.abort(e).catch(() => {});
        throw e;
      }
    },
    async cancel(reason) {
      await writer.abort(reason).catch(() => {});
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return { stream, copy: side.readable };
}
