import { SandboxError } from '../../errors.ts';
import { digestHex, isDigest, parseDigest, type Digest } from '../digest.ts';
import { MediaType, INDEX_TYPES } from '../media-types.ts';
import type { ContentStore } from '../source.ts';
import type { Descriptor, ImageIndex, Platform } from '../types.ts';
import {
  defaultDataDir,
  envVar,
  joinPath,
  listDir,
  mkdirp,
  openReadStream,
  processAlive,
  readFileBytes,
  readFileIfExists,
  removePath,
  resolvePath,
  statPath,
  syncDir,
  writeFileAtomic,
} from '#host/files';
import { writeVerifiedBlob } from './blob-writer.ts';
import { withLock } from './lock.ts';
import { asIdPrefix, formatImageName, parseImageName, REF_NAME, type ImageName } from './names.ts';
import { reachableBlobs } from './reachable.ts';
import { rootfsChainIds } from './rootfs-ids.ts';
import { LoadTransaction } from './transaction.ts';

/** Annotations the store adds to each index.json entry (so `images` reads one file). */
export const Annotation = {
  imageId: 'io.wasmbox.image.id',
  created: 'io.wasmbox.created',
  loaded: 'io.wasmbox.loaded',
  size: 'io.wasmbox.size',
} as const;

/** One name in the store: an index.json entry. */
export interface StoredImage {
  /** undefined for an entry without `org.opencontainers.image.ref.name` (written by another tool), or named by digest alone. */
  name?: ImageName;
  /** For an entry named `REPO@DIGEST` (pulled by digest): its repository; docker lists it as `REPO <none>`. */
  repository?: string;
  /** The manifest (or index) descriptor, as index.json holds it. */
  descriptor: Descriptor;
  /** Docker's IMAGE ID: the config digest (the manifest digest for an index entry). */
  id: Digest;
  platform?: Platform;
  /** The image config's `created`. */
  created?: string;
  /** Bytes of the image's blobs in the store (manifest, config, layers as stored). */
  size: number;
}

export interface OpenOptions {
  /**
   * false: a new store's `oci-layout` and empty `index.json` are written (and fsynced) while the caller goes
   * on; anything that takes the store's lock (so anything that publishes) waits for them. A new store's
   * first fsync waits for a journal commit (up to ~80 ms on ext4 here); the CLI does not hold a pull's
   * downloads for it. Default true.
   */
  waitForLayout?: boolean;
}

export interface RemoveResult {
  untagged: string[];
  deleted: Digest[];
}

const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';
const textDecoder = new TextDecoder();

/**
 * The local image store: an OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`) whose
 * index.json is also the name table (`org.opencontainers.image.ref.name` = `NAME:TAG`), so
 * `skopeo inspect oci:DIR:NAME:TAG` reads it. wasmbox's private state lives in `DIR/.wasmbox/`.
 *
 * Blobs are written to a temp file, verified, fsynced and renamed into place. A load stages its blobs in a
 * private directory and publishes them, with its index entry last, under the store lock (see LoadTransaction).
 */
export class LayoutStore implements ContentStore {
  readonly dir: string;
  readonly blobDir: string;
  readonly privateDir: string;
  readonly tmpDir: string;
  readonly stagingDir: string;
  readonly lockPath: string;
  readonly indexPath: string;
  /** A new store's `oci-layout` and empty `index.json`, written durably in the background (see init). */
  #laidOut: Promise<void> = Promise.resolve();

  private constructor(dir: string) {
    this.dir = dir;
    this.blobDir = joinPath(dir, 'blobs', 'sha256');
    this.privateDir = joinPath(dir, '.wasmbox');
    this.tmpDir = joinPath(this.privateDir, 'tmp');
    this.stagingDir = joinPath(this.privateDir, 'staging');
    this.lockPath = joinPath(this.privateDir, 'lock');
    this.indexPath = joinPath(dir, 'index.json');
  }

  /** `$WASMBOX_HOME`, else `$XDG_DATA_HOME/wasmbox`, else `~/.local/share/wasmbox`. */
  static defaultDir(): string {
    const home = envVar('WASMBOX_HOME');
    return home ? resolvePath(home) : defaultDataDir();
  }

  /** Opens (creating when absent) the store at `dir`. */
  static async open(dir: string = LayoutStore.defaultDir(), o: OpenOptions = {}): Promise<LayoutStore> {
    const store = new LayoutStore(resolvePath(dir));
    await store.init();
    if (o.waitForLayout !== false) await store.#laidOut;
    return store;
  }

  private async init(): Promise<void> {
    const info = await statPath(this.dir);
    if (info && !info.isDirectory) throw new SandboxError('INVALID_ARGUMENT', `image store ${this.dir} is not a directory`);
    await mkdirp(this.blobDir);
    await mkdirp(this.tmpDir);
    await mkdirp(this.stagingDir);
    const layout = await readFileIfExists(joinPath(this.dir, 'oci-layout'));
    if (!layout) {
      this.#laidOut = this.layOut();
      this.#laidOut.catch(() => {});
      await this.removeAbandoned();
      return;
    }
    let version: unknown;
    try {
      version = (JSON.parse(textDecoder.decode(layout)) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string' || !version.startsWith('1.')) {
      throw new SandboxError('MALFORMED', `${this.dir} is not an OCI image layout (bad oci-layout file)`);
    }
    await this.writeEmptyIndex();
    await this.removeAbandoned();
  }

  private async layOut(): Promise<void> {
    await writeFileAtomic(joinPath(this.dir, 'oci-layout'), new TextEncoder().encode(OCI_LAYOUT));
    await this.writeEmptyIndex();
  }

  private async writeEmptyIndex(): Promise<void> {
    if (await statPath(this.indexPath)) return;
    await withLock(this.lockPath, async () => {
      if (!(await statPath(this.indexPath))) await this.writeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });
    });
  }

  // ---- ContentStore ----------------------------------------------------------------------------------

  blobPath(d: Digest): string {
    return joinPath(this.blobDir, digestHex(d));
  }

  async has(d: Digest): Promise<boolean> {
    return (await statPath(this.blobPath(parseDigest(d))))?.isFile === true;
  }

  async read(d: Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    return openReadStream(this.blobPath(parseDigest(d.digest))).catch((e) => {
      throw missingBlob(d.digest, e);
    });
  }

  async readBytes(d: Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    return readFileBytes(this.blobPath(parseDigest(d.digest))).catch((e) => {
      throw missingBlob(d.digest, e);
    });
  }

  /**
   * Writes a verified blob straight into `blobs/`. Nothing references it until an index entry does, so a
   * later `rmi`/`gc` may remove it: loads use `beginLoad()` instead.
   */
  async put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    expected?: Pick<Descriptor, 'digest' | 'size'>,
  ): Promise<{ digest: Digest; size: number }> {
    if (expected && (await this.has(expected.digest))) {
      if (!(data instanceof Uint8Array)) await data.cancel().catch(() => {});
      return { digest: expected.digest, size: expected.size };
    }
    const blob = await writeVerifiedBlob(this.tmpDir, data, expected);
    await blob.file.commit(this.blobPath(blob.digest));
    return { digest: blob.digest, size: blob.size };
  }

  // ---- names -----------------------------------------------------------------------------------------

  async readIndex(): Promise<ImageIndex> {
    const bytes = await readFileIfExists(this.indexPath);
    if (!bytes) return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    let index: ImageIndex;
    try {
      index = JSON.parse(textDecoder.decode(bytes)) as ImageIndex;
    } catch (e) {
      throw new SandboxError('MALFORMED', `the image store's index.json is not valid JSON (${this.indexPath})`, { cause: e });
    }
    if (!index || typeof index !== 'object' || !Array.isArray(index.manifests)) {
      throw new SandboxError('MALFORMED', `the image store's index.json has no manifests array (${this.indexPath})`);
    }
    return index;
  }

  /** Writes index.json atomically (temp + fsync + rename). Callers hold the lock. */
  async writeIndex(index: ImageIndex): Promise<void> {
    await writeFileAtomic(this.indexPath, new TextEncoder().encode(JSON.stringify(index)));
  }

  /** Resolves once a new store's `oci-layout` and `index.json` are on disk (see OpenOptions.waitForLayout). */
  settled(): Promise<void> {
    return this.#laidOut;
  }

  /** Runs `fn` holding the store's lock (index.json updates, publishing blobs, garbage collection). */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    await this.#laidOut;
    return withLock(this.lockPath, fn);
  }

  async list(): Promise<StoredImage[]> {
    const index = await this.readIndex();
    return Promise.all(index.manifests.map((d) => this.describe(d)));
  }

  /** Builds the listing row of an index entry, from its annotations or (for entries others wrote) its blobs. */
  private async describe(d: Descriptor): Promise<StoredImage> {
    const a = d.annotations ?? {};
    let name: ReturnType<typeof parseImageName> | undefined;
    const ref = a[REF_NAME];
    if (ref) {
      try {
        name = parseImageName(ref);
      } catch {
        name = undefined;
      }
    }
    const image: StoredImage = { descriptor: d, id: d.digest, size: Number(a[Annotation.size] ?? 0) };
    if (name?.digest) image.repository = name.repository;
    else if (name) image.name = { repository: name.repository, tag: name.tag };
    if (d.platform) image.platform = d.platform;
    if (a[Annotation.created]) image.created = a[Annotation.created];
    if (isDigest(a[Annotation.imageId])) {
      image.id = a[Annotation.imageId] as Digest;
      return image;
    }
    const meta = await imageMetadata(this, d).catch(() => undefined);
    if (meta) Object.assign(image, meta);
    return image;
  }

  /**
   * Finds an image by `NAME[:TAG]` (`NAME` = `NAME:latest`), `NAME@DIGEST`, a manifest digest, or an image ID
   * (full or a prefix of at least 4 hex digits). Returns every entry of that image when found by ID/digest.
   */
  async lookup(nameOrId: string): Promise<StoredImage[]> {
    const images = await this.list();
    let parsed: ReturnType<typeof parseImageName> | undefined;
    try {
      parsed = parseImageName(nameOrId);
    } catch {
      parsed = undefined;
    }
    if (parsed) {
      const p = parsed;
      const byName = images.filter((i) => i.name && i.name.repository === p.repository);
      if (p.digest) {
        const hit = images.filter((i) => (i.name?.repository ?? i.repository) === p.repository && i.descriptor.digest === p.digest);
        if (hit.length > 0) return hit;
      } else {
        const hit = byName.filter((i) => i.name!.tag === p.tag);
        if (hit.length > 0) return hit;
      }
    }
    if (isDigest(nameOrId)) {
      const hit = images.filter((i) => i.descriptor.digest === nameOrId || i.id === nameOrId);
      if (hit.length > 0) return hit;
    }
    const prefix = asIdPrefix(nameOrId);
    if (prefix) {
      const ids = new Set(images.filter((i) => digestHex(i.id).startsWith(prefix)).map((i) => i.id));
      if (ids.size > 1) {
        throw new SandboxError('INVALID_ARGUMENT', `image ID prefix ${nameOrId} is ambiguous (${ids.size} images match)`);
      }
      if (ids.size === 1) return images.filter((i) => ids.has(i.id));
    }
    return [];
  }

  /** Like lookup, but NOT_FOUND when nothing matches. */
  async get(nameOrId: string): Promise<StoredImage[]> {
    const hit = await this.lookup(nameOrId);
    if (hit.length === 0) {
      throw new SandboxError('NOT_FOUND', `No such image: ${nameOrId}`, { data: { image: nameOrId } });
    }
    return hit;
  }

  /** Starts a load: blobs are staged privately until `commit` publishes them with their index entries. */
  async beginLoad(): Promise<LoadTransaction> {
    return LoadTransaction.begin(this);
  }

  /** `docker tag SRC DST`: adds a name for an existing image (moving DST if it named another image). */
  async tag(source: string, target: string): Promise<ImageName> {
    const name = parseImageName(target);
    if (name.digest) throw new SandboxError('INVALID_REFERENCE', `refusing to create a tag with a digest: ${target}`);
    await this.locked(async () => {
      const [src] = await this.get(source);
      const index = await this.readIndex();
      const ref = formatImageName(name);
      const replaced = index.manifests.filter((d) => d.annotations?.[REF_NAME] === ref);
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== ref);
      index.manifests.push({ ...src!.descriptor, annotations: { ...src!.descriptor.annotations, [REF_NAME]: ref } });
      await this.writeIndex(index);
      if (replaced.some((d) => d.digest !== src!.descriptor.digest)) await this.collectGarbage();
    });
    return { repository: name.repository, tag: name.tag };
  }

  /**
   * `docker rmi`: by name, removes that name; by ID/digest, removes every name of the image (only with `force`
   * when it has several, as docker). Then deletes the blobs no remaining entry references.
   */
  async remove(nameOrId: string, o: { force?: boolean } = {}): Promise<RemoveResult> {
    return this.locked(async () => {
      const hits = await this.get(nameOrId);
      let byName = false;
      try {
        const p = parseImageName(nameOrId);
        byName = hits.some((h) => (h.name?.repository ?? h.repository) === p.repository);
      } catch {
        byName = false;
      }
      const targets = byName ? hits.slice(0, 1) : hits;
      if (!byName && targets.length > 1 && !o.force) {
        throw new SandboxError(
          'INVALID_STATE',
          `conflict: unable to delete ${nameOrId} (must be forced) - image is referenced in multiple repositories`,
        );
      }
      const index = await this.readIndex();
      const untagged: string[] = [];
      index.manifests = index.manifests.filter((d) => {
        const hit = targets.some(
          (t) => t.descriptor.digest === d.digest && t.descriptor.annotations?.[REF_NAME] === d.annotations?.[REF_NAME],
        );
        if (hit) untagged.push(d.annotations?.[REF_NAME] ?? d.digest);
        return !hit;
      });
      await this.writeIndex(index);
      const deleted = await this.collectGarbage();
      return { untagged, deleted };
    });
  }

  /**
   * The top chainID of every image the store holds (see rootfsChainIds): root filesystems materialised
   * under other names belong to no stored image. undefined when an image's manifest or config cannot be read.
   */
  async rootfsChainIds(): Promise<Set<Digest> | undefined> {
    return rootfsChainIds((await this.readIndex()).manifests, this);
  }

  /** Deletes blobs that no index.json entry reaches. Callers hold the lock. */
  async collectGarbage(): Promise<Digest[]> {
    const index = await this.readIndex();
    const live = await reachableBlobs(index.manifests, (d) => this.readJson(d));
    const deleted: Digest[] = [];
    for (const hex of await listDir(this.blobDir)) {
      const d = `sha256:${hex}` as Digest;
      if (!isDigest(d)) continue;
      if (live.has(d)) continue;
      await removePath(joinPath(this.blobDir, hex));
      deleted.push(d);
    }
    if (deleted.length > 0) {
      await syncDir(this.blobDir);
      // Caches derived from the images (packed root filesystems) are rebuilt on demand.
      await removePath(joinPath(this.privateDir, 'cache'));
    }
    return deleted;
  }

  async readJson(d: Pick<Descriptor, 'digest' | 'size'>): Promise<unknown> {
    const bytes = await readFileIfExists(this.blobPath(d.digest));
    if (!bytes) return undefined;
    try {
      return JSON.parse(textDecoder.decode(bytes));
    } catch {
      return undefined;
    }
  }

  /** Removes what crashed loads left: staging directories and temp files of processes that no longer exist. */
  private async removeAbandoned(): Promise<void> {
    for (const dir of [this.stagingDir, this.tmpDir]) {
      for (const name of await listDir(dir)) {
        const pid = Number(/(?:^|-)(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
        if (Number.isInteger(pid) && !processAlive(pid)) await removePath(joinPath(dir, name)).catch(() => {});
      }
    }
    for (const name of await listDir(this.dir)) {
      const m = /^\.(?:index\.json|oci-layout)\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
      if (m && !processAlive(Number(m[1]))) await removePath(joinPath(this.dir, name)).catch(() => {});
    }
  }
}

function missingBlob(d: Digest, cause: unknown): SandboxError {
  return new SandboxError('NOT_FOUND', `blob ${d} is not in the image store`, { cause, data: { digest: d } });
}

/** Id, platform, created and size of a stored manifest (or index), read from its blobs. */
export async function imageMetadata(
  blobs: { readJson(d: Pick<Descriptor, 'digest' | 'size'>): Promise<unknown> },
  d: Descriptor,
): Promise<Pick<StoredImage, 'id' | 'platform' | 'created' | 'size'>> {
  if (INDEX_TYPES.includes(d.mediaType)) {
    const index = (await blobs.readJson(d)) as ImageIndex | undefined;
    const size = d.size + (index?.manifests ?? []).reduce((n, m) => n + (m.size ?? 0), 0);
    return { id: d.digest, size };
  }
  const manifest = (await blobs.readJson(d)) as { config?: Descriptor; layers?: Descriptor[] } | undefined;
  if (!manifest?.config || !isDigest(manifest.config.digest)) return { id: d.digest, size: d.size };
  const config = (await blobs.readJson(manifest.config)) as
    | { os?: string; architecture?: string; variant?: string; created?: string }
    | undefined;
  const size = d.size + manifest.config.size + (manifest.layers ?? []).reduce((n, l) => n + (l.size ?? 0), 0);
  const out: Pick<StoredImage, 'id' | 'platform' | 'created' | 'size'> = { id: manifest.config.digest, size };
  if (config?.os && config.architecture) {
    out.platform = { os: config.os, architecture: config.architecture };
    if (config.variant) out.platform.variant = config.variant;
  }
  if (typeof config?.created === 'string') out.created = config.created;
  return out;
}
