import { SandboxError } from '../../errors.ts';
import { digestHex, parseDigest, type Digest } from '../digest.ts';
import type { ContentStore } from '../source.ts';
import type { Descriptor } from '../types.ts';
import {
  copyPath,
  joinPath,
  linkPath,
  mkdirp,
  openReadStream,
  readFileBytes,
  readFileIfExists,
  removePath,
  renamePath,
  statPath,
  syncDir,
  uniqueSuffix,
} from '#host/files';
import { writeVerifiedBlob } from './blob-writer.ts';
import type { LayoutStore, StoredImage } from './layout-store.ts';
import { Annotation, imageMetadata } from './layout-store.ts';
import { formatImageName, REF_NAME, type DigestName, type ImageName } from './names.ts';
import { reachableBlobs } from './reachable.ts';

const textDecoder = new TextDecoder();

/**
 * One load into a LayoutStore. Its blobs go to a private staging directory: new blobs are written there,
 * and blobs the store already has are pinned there by a hard link, so a concurrent `rmi` cannot take them
 * away. `commit` publishes (renames) the reachable staged blobs into `blobs/` and writes the index entry
 * last, under the store lock; `abort` (or a crash, cleaned up on the next open) removes the staging
 * directory, so a failed load leaves the store as it was.
 */
export class LoadTransaction implements ContentStore {
  readonly #store: LayoutStore;
  readonly #dir: string;
  readonly #staged = new Set<Digest>();
  #state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(store: LayoutStore, dir: string) {
    this.#store = store;
    this.#dir = dir;
  }

  static async begin(store: LayoutStore): Promise<LoadTransaction> {
    const dir = joinPath(store.stagingDir, uniqueSuffix());
    await mkdirp(dir);
    return new LoadTransaction(store, dir);
  }

  get stagingDir(): string {
    return this.#dir;
  }

  #stagedPath(d: Digest): string {
    return joinPath(this.#dir, digestHex(d));
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new SandboxError('INVALID_STATE', `this load was already ${this.#state}`);
  }

  /** Pins a blob the store has into staging; false when the store does not have it. */
  async #pin(d: Digest): Promise<boolean> {
    // A stat (made at once) answers the usual case, a blob the store lacks, without waiting in the thread
    // pool's queue behind a load's writes and fsyncs.
    if (!(await statPath(this.#store.blobPath(d)))?.isFile) return false;
    const r = await linkPath(this.#store.blobPath(d), this.#stagedPath(d));
    if (r === 'missing') return false;
    if (r === 'unsupported') {
      try {
        await copyPath(this.#store.blobPath(d), this.#stagedPath(d));
      } catch {
        return false;
      }
    }
    this.#staged.add(d);
    return true;
  }

  async has(d: Digest): Promise<boolean> {
    this.#checkOpen();
    parseDigest(d);
    if (this.#staged.has(d)) return true;
    return this.#pin(d);
  }

  async read(d: Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    if (!(await this.has(d.digest))) throw notStaged(d.digest);
    return openReadStream(this.#stagedPath(d.digest));
  }

  async readBytes(d: Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    if (!(await this.has(d.digest))) throw notStaged(d.digest);
    return readFileBytes(this.#stagedPath(d.digest));
  }

  async put(
    data: Uint8Array | ReadableStream<Uint8Array>,
    expected?: Pick<Descriptor, 'digest' | 'size'>,
  ): Promise<{ digest: Digest; size: number }> {
    this.#checkOpen();
    if (expected && (await this.has(expected.digest))) {
      if (!(data instanceof Uint8Array)) await data.cancel().catch(() => {});
      return { digest: expected.digest, size: expected.size };
    }
    const blob = await writeVerifiedBlob(this.#dir, data, expected);
    if (!expected && (await this.has(blob.digest))) {
      await blob.file.abort();
    } else {
      await blob.file.commit(this.#stagedPath(blob.digest));
      this.#staged.add(blob.digest);
    }
    return { digest: blob.digest, size: blob.size };
  }

  async readJson(d: Pick<Descriptor, 'digest' | 'size'>): Promise<unknown> {
    if (!(await this.has(d.digest))) return undefined;
    const bytes = await readFileIfExists(this.#stagedPath(d.digest));
    if (!bytes) return undefined;
    try {
      return JSON.parse(textDecoder.decode(bytes));
    } catch {
      return undefined;
    }
  }

  /**
   * Publishes the image rooted at `root` (a manifest or index already put into this transaction) under
   * `names`: its blobs are renamed into the store, then index.json gets the entries (replacing any entry
   * with the same name), all under the store lock. Returns the new entries.
   */
  async commit(names: Array<ImageName | DigestName>, root: Descriptor): Promise<StoredImage[]> {
    return this.commitMany([{ names, root }]);
  }

  /** `commit` for several images at once (a docker-save archive of several images): one index update. */
  async commitMany(images: Array<{ names: Array<ImageName | DigestName>; root: Descriptor }>): Promise<StoredImage[]> {
    this.#checkOpen();
    try {
      const reachable = await reachableBlobs(
        images.map((i) => i.root),
        async (d) => {
          const doc = await this.readJson(d);
          if (doc === undefined) throw incomplete(d.digest);
          return doc;
        },
      );
      for (const d of reachable) if (!this.#staged.has(d) && !(await this.has(d))) throw incomplete(d);
      const loaded = new Date().toISOString();
      const prepared: Array<{ descriptor: Descriptor; image: StoredImage }> = [];
      for (const { names, root } of images) {
        const meta = await imageMetadata(this, root);
        for (const name of names) {
          const ref = 'byDigest' in name ? `${name.repository}@${root.digest}` : formatImageName(name);
          const annotations: Record<string, string> = {
            [REF_NAME]: ref,
            [Annotation.imageId]: meta.id,
            [Annotation.loaded]: loaded,
            [Annotation.size]: String(meta.size),
          };
          if (meta.created) annotations[Annotation.created] = meta.created;
          const descriptor: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size, annotations };
          const platform = meta.platform ?? root.platform;
          if (platform) descriptor.platform = platform;
          const image: StoredImage = { descriptor, id: meta.id, size: meta.size };
          if ('byDigest' in name) image.repository = name.repository;
          else image.name = { repository: name.repository, tag: name.tag };
          if (platform) image.platform = platform;
          if (meta.created) image.created = meta.created;
          // A later image of the same archive with the same name wins, as in docker load.
          const earlier = prepared.findIndex((p) => p.descriptor.annotations![REF_NAME] === ref);
          if (earlier >= 0) prepared.splice(earlier, 1);
          prepared.push({ descriptor, image });
        }
      }
      await this.#store.locked(async () => {
        // All at once (each a trip through the thread pool); the directory's fsync covers them all. Each is
        // waited for, so none is still under way when a failure's clean-up removes the staging directory.
        const renamed = await Promise.allSettled([...reachable].map(async (d) => {
          const target = this.#store.blobPath(d);
          if ((await statPath(target))?.isFile) return;
          await renamePath(this.#stagedPath(d), target);
        }));
        const refused = renamed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (refused) throw refused.reason;
        await syncDir(this.#store.blobDir);
        const index = await this.#store.readIndex();
        const refs = new Set(prepared.map((p) => p.descriptor.annotations![REF_NAME]!));
        const roots = new Set(prepared.map((p) => p.descriptor.digest));
        const replaced = index.manifests.filter((d) => refs.has(d.annotations?.[REF_NAME] ?? ''));
        index.manifests = index.manifests.filter((d) => !refs.has(d.annotations?.[REF_NAME] ?? ''));
        index.manifests.push(...prepared.map((p) => p.descriptor));
        await this.#store.writeIndex(index);
        if (replaced.some((d) => !roots.has(d.digest))) await this.#store.collectGarbage();
      });
      this.#state = 'committed';
      return prepared.map((p) => p.image);
    } finally {
      await this.#cleanup();
    }
  }

  /** Drops everything this load staged. Safe to call more than once, and after commit. */
  async abort(): Promise<void> {
    if (this.#state === 'open') this.#state = 'aborted';
    await this.#cleanup();
  }

  async #cleanup(): Promise<void> {
    if (this.#state === 'open') this.#state = 'aborted';
    await removePath(this.#dir).catch(() => {});
  }
}

function notStaged(d: Digest): SandboxError {
  return new SandboxError('NOT_FOUND', `blob ${d} is neither in this load nor in the image store`, { data: { digest: d } });
}

function incomplete(d: Digest): SandboxError {
  return new SandboxError('INVALID_STATE', `cannot commit the image: blob ${d} was not loaded`, { data: { digest: d } });
}
