import { SandboxError } from '../../errors.ts';
import { openImage, type OpenImageLimits } from '../open-image.ts';
import { parseRef } from '../ref.ts';
import type { ContentStore, Image, ImageRef, SourceCore } from '../source.ts';
import { detectLocalRef, openLocalSource } from '../sources/local.ts';
import type { Descriptor, Platform } from '../types.ts';
import type { LayoutStore, StoredImage } from './layout-store.ts';
import { isValidTag, parseImageName, type ImageName } from './names.ts';

export interface LoadOptions {
  /** Which image of a multi-platform index to keep ("os/arch[/variant]"); default as openImage. */
  platform?: Platform | string;
  /** Store the image under these names instead of the names the archive carries. */
  names?: string[];
  limits?: OpenImageLimits;
  /**
   * Checks the image's layers once their blobs are in the load (before anything is published), e.g. by
   * building its filesystem, which rejects unsafe entries. It must read every tar layer to its end (which
   * verifies diff_ids). Default: each layer is decompressed and its diff_id checked.
   */
  validate?: (image: Image) => Promise<void>;
}

/**
 * `docker load`: copies the image(s) of a local archive, layout directory or .wasm file into the store.
 * Every blob is verified (size, digest, and each layer's diff_id after decompression) before anything is
 * published; a failure leaves the store exactly as it was.
 */
export async function loadImage(store: LayoutStore, input: string | ImageRef, o: LoadOptions = {}): Promise<StoredImage[]> {
  let ref = typeof input === 'string' ? parseRef(input) : input;
  if (ref.transport === 'store' && typeof input === 'string') ref = { transport: 'path', path: input };
  if (ref.transport === 'path') ref = await detectLocalRef(ref.path);
  if (ref.transport === 'store' || ref.transport === 'registry') {
    throw new SandboxError('INVALID_ARGUMENT', `load takes an archive, an image layout directory or a .wasm file, not ${ref.transport} references`);
  }
  const path = ref.path;
  const core = await openLocalSource(ref);
  const tx = await store.beginLoad();
  try {
    const targets = await loadTargets(core, ref, o, path);
    const committed: Array<{ names: ImageName[]; root: Descriptor }> = [];
    for (const t of targets) {
      const image = await openImage(core, t.target, { store: tx, platform: o.platform, limits: o.limits });
      await copyLayers(image, tx);
      await (o.validate ?? checkDiffIds)(image);
      committed.push({ names: t.names, root: image.manifestDescriptor });
    }
    return await tx.commitMany(committed);
  } catch (e) {
    await tx.abort();
    throw e;
  } finally {
    await core.close?.().catch(() => {});
  }
}

/** Puts every layer blob into the load (the Image then reads its layers from there). */
async function copyLayers(image: Image, tx: ContentStore): Promise<void> {
  for (const layer of image.layers) {
    if (!(await tx.has(layer.descriptor.digest))) await tx.put(await layer.blob(), layer.descriptor);
  }
}

/** Reads every tar layer decompressed to its end, which checks its diff_id. */
async function checkDiffIds(image: Image): Promise<void> {
  for (const layer of image.layers) {
    if (layer.kind !== 'tar') continue;
    const reader = (await layer.open()).getReader();
    try {
      for (;;) if ((await reader.read()).done) break;
    } finally {
      reader.releaseLock();
    }
  }
}

interface LoadTarget {
  target: ImageRef | Descriptor;
  names: ImageName[];
}

/** What to load: the one image the reference names, or every named image of a multi-image archive. */
async function loadTargets(core: SourceCore, ref: ImageRef, o: LoadOptions, path: string): Promise<LoadTarget[]> {
  const stem = nameStem(path);
  if (o.names && o.names.length > 0) return [{ target: ref, names: o.names.map(asName) }];
  const hasTag = 'tag' in ref && ref.tag !== undefined;
  // A bare module carries no names of its own: it is named after its file.
  const listed = core.list && ref.transport !== 'wasm' ? await core.list() : [];
  const named = listed.filter((l) => l.names.length > 0);
  if (!hasTag && named.length > 1 && named.length === listed.length && new Set(named.map((l) => l.descriptor.digest)).size > 1) {
    return named.map((l) => ({ target: l.descriptor, names: namesFor(l.names, stem) }));
  }
  const root = await core.resolve(ref);
  const entry = listed.find((l) => l.descriptor.digest === root.digest);
  const names = namesFor(entry?.names ?? [], stem);
  if (hasTag && 'tag' in ref && ref.tag) {
    // `oci-archive:F:hello:1.0` or `docker-archive:F:hello:1.0`: the tag the user gave is the name.
    const t = ref.tag;
    const full = tryName(t);
    if (full && (t.includes(':') || t.includes('/'))) return [{ target: root, names: [full] }];
  }
  return [{ target: root, names }];
}

function asName(s: string): ImageName {
  const n = parseImageName(s);
  return { repository: n.repository, tag: n.tag };
}

function tryName(s: string): ImageName | undefined {
  try {
    return asName(s);
  } catch {
    return undefined;
  }
}

/**
 * Names for an image from what its archive says: full names (`hello:1.0`, `docker.io/library/hello:latest`)
 * as they are; bare tags (an OCI ref.name such as `latest`) under the file's name; nothing: `FILE:latest`.
 */
export function namesFor(annotated: string[], stem: string): ImageName[] {
  const out = new Map<string, ImageName>();
  const full = annotated.filter((n) => n.includes(':') || n.includes('/'));
  for (const n of full) {
    const name = tryName(n);
    if (name) out.set(`${name.repository}:${name.tag}`, name);
  }
  if (out.size === 0) {
    for (const t of annotated) {
      if (isValidTag(t)) out.set(`${stem}:${t}`, { repository: stem, tag: t });
    }
  }
  if (out.size === 0) out.set(`${stem}:latest`, { repository: stem, tag: 'latest' });
  return [...out.values()];
}

/** A repository name from a file name: `Hello_World.oci.tar` -> `hello_world`. */
export function nameStem(path: string): string {
  const base = path.replace(/\/+$/, '').split('/').pop() ?? '';
  const stem = base
    .replace(/(\.(tar|tgz|gz|oci|wasm|docker|zst))+$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .replace(/[._-]{2,}/g, '-');
  return stem === '' ? 'image' : stem;
}
