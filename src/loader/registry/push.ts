import { SandboxError } from '../../errors.ts';
import { readAll } from '../byte-source.ts';
import { sha256, type Digest } from '../digest.ts';
import { INDEX_TYPES, MediaType } from '../media-types.ts';
import { openImage } from '../open-image.ts';
import type { LayoutStore } from '../store/layout-store.ts';
import { storeSource } from '../store/store-source.ts';
import { peekTarMember } from '../tar-index.ts';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../types.ts';
import { RegistryClient, type RegistryClientOptions } from './client.ts';
import { counting, inParallel, type TransferListener } from './progress.ts';
import { hasRegistryDomain, parseRegistryRef, type RegistryRef } from './reference.ts';

export type PushFormat = 'image' | 'wasm-artifact';

export interface PushOptions extends RegistryClientOptions {
  client?: RegistryClient;
  /** Blobs uploaded at once. Default 3. */
  concurrency?: number;
  onProgress?: TransferListener;
  /** 'image' (as stored) or 'wasm-artifact' (CNCF: wasm config + one application/wasm layer). */
  format?: PushFormat;
  /** For wasm-artifact from an index: which image. */
  platform?: Platform | string;
  /** Blobs bigger than this go up in PATCH chunks of this size. Default: every blob in one PUT, streamed
   * from the store on Node (with fetch, PATCH chunks of 16 MiB above that size). */
  chunkBytes?: number;
  /** Repositories of the same registry to try a cross-repository mount from (besides names in the store). */
  mountFrom?: string[];
}

export interface PushResult {
  ref: RegistryRef;
  /** Digest of the manifest (or index) pushed under the tag. */
  digest: Digest;
  mediaType: string;
  size: number;
}

const encoder = new TextEncoder();
const MAX_MODULE_BYTES = 1024 ** 3;
/** Blobs up to this size are read whole from the store before they are sent; bigger ones are streamed
 * (the upload starts at once, reading the file as the socket drains). */
const IN_MEMORY_BYTES = 1024 ** 2;

/** Blob content for an upload: from the store, or bytes built here (artifact config and module). */
type BlobSource = () => Promise<Uint8Array | ReadableStream<Uint8Array>>;

/**
 * `docker push`: an image of the store (`source`: a name, name@digest or ID) to `target`
 * (`REGISTRY/REPO[:TAG]`, default: the source's own name). Each blob is checked with HEAD, mounted from
 * another repository of the registry when the store knows one that has it, else uploaded; then the
 * manifest (and, for a multi-platform image, each manifest of the index present in the store, then the index).
 */
export async function pushImage(store: LayoutStore, source: string, target: string | RegistryRef = source, o: PushOptions = {}): Promise<PushResult> {
  const ref = typeof target === 'string' ? parseRegistryRef(target) : target;
  if (o.client) return pushWith(o.client, store, source, ref, o);
  const client = new RegistryClient(ref.registry, o);
  try {
    return await pushWith(client, store, source, ref, o);
  } finally {
    client.close(); // idle kept-alive connections go now rather than when the registry drops them
  }
}

async function pushWith(client: RegistryClient, store: LayoutStore, source: string, ref: RegistryRef, o: PushOptions): Promise<PushResult> {
  const [entry] = await store.get(source);
  const root = entry!.descriptor;
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const mountFrom = await mountCandidates(store, ref, root.digest, o.mountFrom ?? []);
  const pushBlob = blobPusher(client, ref.repository, mountFrom, o);

  if ((o.format ?? 'image') === 'wasm-artifact') {
    const { manifest, blobs } = await wasmArtifact(store, root, o.platform);
    const present = checkAll(client, ref.repository, blobs.map((b) => b.descriptor));
    await inParallel(blobs, o.concurrency ?? 3, (b) => pushBlob(b.descriptor, async () => b.bytes, present.get(b.descriptor.digest)!));
    const bytes = encoder.encode(JSON.stringify(manifest));
    const digest = await client.putManifest(ref.repository, reference, bytes, MediaType.ociManifest);
    return { ref, digest, mediaType: MediaType.ociManifest, size: bytes.byteLength };
  }

  const pushManifest = async (d: Descriptor, reference: string): Promise<void> => {
    const bytes = await store.readBytes(d);
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
    const blobs = [manifest.config, ...manifest.layers];
    // Every blob is asked about at once; uploads then go a few at a time.
    const present = checkAll(client, ref.repository, blobs);
    await inParallel(blobs, o.concurrency ?? 3, (b) => pushBlob(b, () => (b.size <= IN_MEMORY_BYTES ? store.readBytes(b) : store.read(b)), present.get(b.digest)!));
    await client.putManifest(ref.repository, reference, bytes, manifest.mediaType ?? d.mediaType);
  };

  if (INDEX_TYPES.includes(root.mediaType)) {
    const bytes = await store.readBytes(root);
    const index = JSON.parse(new TextDecoder().decode(bytes)) as ImageIndex;
    for (const m of index.manifests) {
      if (!(await store.has(m.digest))) {
        throw new SandboxError('NOT_FOUND', `cannot push ${source}: the store holds only some images of its index (${m.digest} is missing); push one platform's image instead`);
      }
      await pushManifest(m, m.digest);
    }
    const digest = await client.putManifest(ref.repository, reference, bytes, index.mediaType ?? root.mediaType);
    return { ref, digest, mediaType: root.mediaType, size: bytes.byteLength };
  }
  await pushManifest(root, reference);
  return { ref, digest: root.digest, mediaType: root.mediaType, size: root.size };
}

/** Repositories of the target registry (other than the target) whose images in the store share this image. */
async function mountCandidates(store: LayoutStore, ref: RegistryRef, digest: Digest, extra: string[]): Promise<string[]> {
  const out = new Set(extra);
  for (const img of await store.list()) {
    const repo = img.name?.repository;
    if (!repo || !hasRegistryDomain(repo) || img.descriptor.digest !== digest) continue;
    const r = parseRegistryRef(repo);
    if (r.registry === ref.registry && r.repository !== ref.repository) out.add(r.repository);
  }
  return [...out];
}

/** HEAD for each blob, all sent at once: digest -> whether the repository has it. */
function checkAll(client: RegistryClient, repository: string, blobs: Array<Pick<Descriptor, 'digest'>>): Map<string, Promise<boolean>> {
  const out = new Map<string, Promise<boolean>>();
  for (const b of blobs) {
    if (out.has(b.digest)) continue;
    const p = client.hasBlob(repository, b.digest);
    p.catch(() => {}); // awaited by the blob's upload; one failing must not go unhandled while others wait
    out.set(b.digest, p);
  }
  return out;
}

function blobPusher(client: RegistryClient, repository: string, mountFrom: string[], o: PushOptions) {
  return async (d: Pick<Descriptor, 'digest' | 'size'>, read: BlobSource, present: Promise<boolean>): Promise<void> => {
    const { digest, size } = d;
    if (await present) {
      o.onProgress?.({ type: 'skip', digest, size, reason: 'exists' });
      return;
    }
    for (const from of mountFrom) {
      if (await client.mountBlob(repository, digest, from)) {
        o.onProgress?.({ type: 'skip', digest, size, reason: 'mounted' });
        return;
      }
    }
    o.onProgress?.({ type: 'start', digest, size, what: 'layer' });
    let sent = 0;
    await client.uploadBlob(repository, d, async () => {
      const data = await read();
      return data instanceof Uint8Array ? data : counting(data, digest, size, o.onProgress);
    }, {
      ...(o.chunkBytes !== undefined ? { chunkBytes: o.chunkBytes } : {}),
      onBytes: (n) => {
        sent += n;
        o.onProgress?.({ type: 'bytes', digest, done: sent, size });
      },
    });
    o.onProgress?.({ type: 'done', digest, size });
  };
}

/**
 * The CNCF wasm artifact of a WASI image: config `application/vnd.wasm.config.v0+json` and one
 * `application/wasm` layer holding the module (a raw wasm layer as is, or the entrypoint file of its tar layers).
 */
export async function wasmArtifact(store: LayoutStore, root: Descriptor, platform?: Platform | string): Promise<{ manifest: ImageManifest; blobs: Array<{ descriptor: Descriptor; bytes: Uint8Array }> }> {
  const image = await openImage(storeSource(store), root, { store, ...(platform ? { platform } : {}) });
  if (image.kind === 'linux') throw new SandboxError('UNSUPPORTED_MEDIA_TYPE', 'only WASI images can be pushed as a wasm artifact');
  let module: Uint8Array | undefined;
  const raw = image.layers.find((l) => l.kind === 'wasm');
  if (raw) module = await readAll(await raw.blob(), MAX_MODULE_BYTES, 'wasm layer');
  else {
    const c = image.config.config;
    const exe = c?.Entrypoint?.[0] ?? c?.Cmd?.[0];
    if (!exe) throw new SandboxError('INVALID_ARGUMENT', 'the image has no Entrypoint or Cmd naming its module');
    const path = exe.startsWith('/') ? exe : `${c?.WorkingDir || '/'}/${exe}`;
    for (const layer of [...image.layers].reverse()) {
      module = await peekTarMember(await layer.open(), path, MAX_MODULE_BYTES, `layer ${layer.descriptor.digest}`);
      if (module) break;
    }
    if (!module) throw new SandboxError('NOT_FOUND', `the image's module ${path} is in none of its layers`);
  }
  const moduleDesc: Descriptor = { mediaType: MediaType.wasm, digest: sha256(module), size: module.byteLength };
  const entry = image.config.config?.Entrypoint?.[0] ?? image.config.config?.Cmd?.[0];
  const title = entry?.split('/').pop();
  if (title && /^[\w.-]+$/.test(title)) moduleDesc.annotations = { 'org.opencontainers.image.title': title };
  const config: Record<string, unknown> = {
    architecture: 'wasm',
    os: image.kind === 'wasm-component' ? 'wasip2' : 'wasip1',
    layerDigests: [moduleDesc.digest],
  };
  if (image.config.created) config.created = image.config.created;
  const configBytes = encoder.encode(JSON.stringify(config));
  const configDesc: Descriptor = { mediaType: MediaType.wasmConfig, digest: sha256(configBytes), size: configBytes.byteLength };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: MediaType.wasmConfig,
    config: configDesc,
    layers: [moduleDesc],
  };
  return { manifest, blobs: [{ descriptor: configDesc, bytes: configBytes }, { descriptor: moduleDesc, bytes: module }] };
}
