import { SandboxError } from '../../errors.ts';
import { readAll } from '../byte-source.ts';
import { isDigest } from '../digest.ts';
import { MANIFEST_TYPES } from '../media-types.ts';
import { openImage, type OpenImageLimits } from '../open-image.ts';
import type { Image } from '../source.ts';
import type { LayoutStore, StoredImage } from '../store/layout-store.ts';
import type { LoadTransaction } from '../store/transaction.ts';
import { storeSource } from '../store/store-source.ts';
import type { Descriptor, Platform } from '../types.ts';
import type { SourceCore } from '../source.ts';

import { RegistryClient, type RegistryClientOptions } from './client.ts';
import { counting, type TransferListener } from './progress.ts';
import { parseRegistryRef, storeNameFor, storeRepositoryFor, type RegistryRef } from './reference.ts';
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
  /** The store entries made (`REPO:TAG`, or `REPO@DIGEST` for a pull by digest alone). */
  stored: StoredImage[];
}

/**
 * `docker pull`: the manifest (the platform's, from an index) and its config, then the layers missing from
 * the store (in parallel), all through openImage's verifying streams into one load transaction, published
 * under `REGISTRY/REPO:TAG` only when everything checked out. A failure leaves the store as it was.
 */
export async function pullImage(storeOrOpening: LayoutStore | Promise<LayoutStore>, reference: string | RegistryRef, o: PullOptions = {}): Promise<PullResult> {
  const ref = typeof reference === 'string' ? parseRegistryRef(reference) : reference;
  const client = o.client ?? new RegistryClient(ref.registry, o);
  const core = registrySource(client, ref.repository, o.limits?.maxManifestBytes !== undefined ? { maxManifestBytes: o.limits.maxManifestBytes } : {});
  // The manifest is asked for while the store (given as a promise: while it opens) prepares the transaction.
  const resolving = core.resolve(ref);
  resolving.catch(() => {});
  const opening = (async () => {
    const store = await storeOrOpening;
    return { store, tx: await store.beginLoad() };
  })();
  let ready = false;
  opening.then(() => { ready = true; }, () => {});
  const slots = semaphore(o.concurrency ?? 3);
  // Each blob is downloaded once, whole, into the transaction; openImage then reads it from there
  // (it peeks into layers to tell a module from a component, which would otherwise fetch them twice).
  const downloads = new Map<string, Promise<void>>();
  const inFlight = new Set<(reason: unknown) => void>();
  let failed = false;
  /** Downloads a blob once into the transaction (size and digest checked as it streams). */
  const download = (d: Pick<Descriptor, 'digest' | 'size'>): Promise<void> => {
    let p = downloads.get(d.digest);
    if (p) return p;
    p = (async () => {
      // A slot bounds the downloads on the wire: it is given back once the body has arrived, while the
      // store still flushes the blob to disk, so the next layer's download starts meanwhile.
      const release = await slots();
      // While a fresh store is still being laid out, the request goes out at once and the body waits in
      // the transport's read-ahead until the transaction can take it (or is dropped if the store has it).
      let early: ReadableStream<Uint8Array> | undefined;
      try {
        if (failed) throw abandoned();
        if (!ready) early = await core.fetch(d as Descriptor);
        const { tx } = await opening;
        if (failed) throw abandoned();
        if (await tx.has(d.digest)) {
          o.onProgress?.({ type: 'skip', digest: d.digest, size: d.size, reason: 'exists' });
          return;
        }
        o.onProgress?.({ type: 'start', digest: d.digest, size: d.size, what: 'layer' });
        const source = early ?? (await core.fetch(d as Descriptor));
        early = undefined;
        const body = stoppable(source, release);
        inFlight.add(body.stop);
        try {
          await tx.put(counting(body.stream, d.digest, d.size, o.onProgress), d);
        } finally {
          inFlight.delete(body.stop);
        }
        o.onProgress?.({ type: 'done', digest: d.digest, size: d.size });
      } finally {
        await early?.cancel().catch(() => {});
        release();
      }
    })();
    p.catch(() => {});
    downloads.set(d.digest, p);
    return p;
  };
  // An image manifest's layers start downloading as soon as it arrives (an index's, once openImage has
  // chosen the platform's manifest: see viaStore.fetch).
  void resolving.then(async (root) => {
    if (!MANIFEST_TYPES.includes(root.mediaType)) return;
    for (const layer of layersOf(await readAll(await core.fetch(root), root.size, 'manifest'))) void download(layer);
  }).catch(() => {});
  let store: LayoutStore;
  let tx: LoadTransaction;
  try {
    ({ store, tx } = await opening);
  } catch (e) {
    failed = true;
    await Promise.allSettled(downloads.values());
    throw e;
  }
  const viaStore: SourceCore = {
    resolve: () => resolving,
    async fetch(d) {
      // Manifests, indexes and configs (JSON) go straight to openImage, which stores them once checked.
      if (/[+/]json$/.test(d.mediaType)) {
        const stream = await core.fetch(d);
        // A manifest's layers start downloading now, while openImage checks it and fetches the config.
        if (MANIFEST_TYPES.includes(d.mediaType)) {
          const [mine, theirs] = stream.tee();
          void readAll(mine, d.size, 'manifest').then((bytes) => {
            for (const layer of layersOf(bytes)) void download(layer);
          }, () => {});
          return theirs;
        }
        return stream;
      }
      await download(d);
      return tx.read(d);
    },
  };
  try {
    const image = await openImage(viaStore, ref, { store: tx, ...(o.platform ? { platform: o.platform } : {}), ...(o.limits ? { limits: o.limits } : {}) });
    // As containerd does: each blob's size and digest are checked as it streams into the store; the
    // diff_id (the uncompressed digest) is checked where the layer is unpacked, by Layer.open(), which
    // every consumer reads through (layer trees, the Linux materialiser, save). See docs/decisions.md.
    await Promise.all(image.layers.map((layer) => download(layer.descriptor)));
    if (o.validate) await o.validate(image);
    // By tag: REPO:TAG. By digest alone: REPO@DIGEST, which docker lists as `REPO <none>`.
    const name = storeNameFor(ref);
    const stored = await tx.commit([name ?? { repository: storeRepositoryFor(ref), byDigest: true }], image.manifestDescriptor);
    // The image as the store now holds it (the transaction's staging is gone).
    const published = await openImage(storeSource(store), image.manifestDescriptor, { store, ...(o.limits ? { limits: o.limits } : {}) });
    return { ref, image: published, stored };
  } catch (e) {
    // Downloads still running are stopped and waited for, so nothing is written after the abort.
    failed = true;
    for (const stop of inFlight) stop(e);
    await Promise.allSettled(downloads.values());
    await tx.abort();
    throw e;
  } finally {
    // Idle kept-alive connections of a client made here go now rather than when the registry drops them.
    if (!o.client) client.close();
  }
}

function abandoned(): SandboxError {
  return new SandboxError('INVALID_STATE', 'pull abandoned');
}

/**
 * A stream that can be made to fail from outside while its reader waits (the download is cancelled);
 * `ended` is called once the input is done or has failed.
 */
function stoppable(input: ReadableStream<Uint8Array>, ended: () => void): { stream: ReadableStream<Uint8Array>; stop(reason: unknown): void } {
  const reader = input.getReader();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull(c) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        ended();
        throw e;
      }
      if (r.done) {
        ended();
        c.close();
      } else c.enqueue(r.value);
    },
    cancel: (reason) => {
      ended();
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    stop(reason) {
      try {
        controller.error(reason);
      } catch {
        // already closed or errored
      }
      reader.cancel(reason).catch(() => {});
    },
  };
}

/** Layer descriptors of a manifest, loosely read (openImage validates it): only well-formed ones. */
function layersOf(bytes: Uint8Array): Array<Pick<Descriptor, 'digest' | 'size'>> {
  try {
    const layers = (JSON.parse(new TextDecoder().decode(bytes)) as { layers?: unknown }).layers;
    if (!Array.isArray(layers)) return [];
    return layers.filter((l): l is Pick<Descriptor, 'digest' | 'size'> => isDigest((l as Descriptor)?.digest) && Number.isSafeInteger((l as Descriptor)?.size) && (l as Descriptor).size >= 0);
  } catch {
    return [];
  }
}

/** At most `limit` holders at a time, served in the order they asked; `release` may be called more than once. */
function semaphore(limit: number): () => Promise<() => void> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async () => {
    if (running >= limit) await new Promise<void>((r) => waiting.push(r));
    else running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = waiting.shift();
      if (next) next();
      else running--;
    };
  };
}
