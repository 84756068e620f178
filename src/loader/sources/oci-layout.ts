import { SandboxError } from '../../errors.ts';
import { digestHex, sha256, type Digest } from '../digest.ts';
import { bytesSource, readAll, type ByteSource, type FileTree } from '../byte-source.ts';
import { INDEX_TYPES, MediaType } from '../media-types.ts';
import type { ImageRef, SourceCore } from '../source.ts';
import type { Descriptor, ImageIndex } from '../types.ts';
import { parseJson, validateIndex } from '../verify.ts';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

export async function readSmallFile(tree: FileTree, path: string, limit = MAX_INDEX_BYTES): Promise<Uint8Array | undefined> {
  const f = await tree.open(path);
  if (!f) return undefined;
  if (f.size > limit) throw new SandboxError('LIMIT_EXCEEDED', `${f.name}: ${f.size} bytes is more than the ${limit} allowed`);
  return readAll(f.stream(), limit, f.name);
}

function tagAndDigest(ref: ImageRef): { tag?: string; digest?: Digest } {
  switch (ref.transport) {
    case 'oci': case 'oci-archive': case 'store': case 'registry': return { tag: ref.tag, digest: ref.digest };
    case 'docker-archive': return { tag: ref.tag };
    default: return {};
  }
}

function namesOf(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  return [a[REF_NAME], a[CONTAINERD_NAME]].filter((x): x is string => typeof x === 'string' && x !== '');
}

/**
 * An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) in any FileTree: a directory,
 * an OCI archive's members, or files in memory.
 */
export async function ociLayoutSource(tree: FileTree): Promise<SourceCore> {
  const layoutFile = await readSmallFile(tree, 'oci-layout', 64 * 1024);
  if (layoutFile) {
    const layout = parseJson(layoutFile, `${tree.name}/oci-layout`) as { imageLayoutVersion?: unknown };
    if (typeof layout !== 'object' || layout === null || typeof layout.imageLayoutVersion !== 'string') {
      throw new SandboxError('MALFORMED', `${tree.name}/oci-layout: no imageLayoutVersion`);
    }
  }
  const indexBytes = await readSmallFile(tree, 'index.json');
  if (!indexBytes) throw new SandboxError('NOT_FOUND', `${tree.name}: no index.json (not an OCI image layout)`);
  const index: ImageIndex = validateIndex(parseJson(indexBytes, `${tree.name}/index.json`), `${tree.name}/index.json`);
  const indexDesc: Descriptor = { mediaType: MediaType.ociIndex, digest: sha256(indexBytes), size: indexBytes.byteLength };

  const openBlob = async (d: Descriptor): Promise<ByteSource> => {
    const f = await tree.open(`blobs/sha256/${digestHex(d.digest)}`);
    if (!f) throw new SandboxError('NOT_FOUND', `blob ${d.digest} not found in ${tree.name}`, { data: { digest: d.digest } });
    return f;
  };

  const allNames = () => index.manifests.flatMap(namesOf);

  return {
    async resolve(ref) {
      const { tag, digest } = tagAndDigest(ref);
      if (digest) {
        const listed = index.manifests.find((m) => m.digest === digest);
        if (listed) return listed;
        // A blob of the layout that index.json does not list: learn its media type from its content.
        const f = await openBlob({ mediaType: '', digest, size: 0 });
        const bytes = await readAll(f.stream(), MAX_INDEX_BYTES, f.name);
        const obj = parseJson(bytes, f.name) as { mediaType?: unknown; manifests?: unknown };
        const mediaType = typeof obj?.mediaType === 'string' ? obj.mediaType : Array.isArray(obj?.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
        return { mediaType, digest, size: f.size };
      }
      if (tag !== undefined) {
        const hit = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag)
          ?? index.manifests.find((m) => m.annotations?.[CONTAINERD_NAME] === tag);
        if (hit) return hit;
        const names = allNames();
        throw new SandboxError('NOT_FOUND', `${tree.name}: no image tagged ${JSON.stringify(tag)}${names.length ? ` (it has: ${names.join(', ')})` : ' (it has no tags)'}`, { data: { tag, available: names } });
      }
      if (index.manifests.length === 1) return index.manifests[0]!;
      if (index.manifests.length === 0) throw new SandboxError('NOT_FOUND', `${tree.name}: index.json lists no images`);
      // Several entries, each for a platform: the layout's index is itself a multi-platform image.
      if (index.manifests.every((m) => m.platform && !INDEX_TYPES.includes(m.mediaType)) && new Set(allNames()).size <= 1) return indexDesc;
      throw new SandboxError('NOT_FOUND', `${tree.name} holds ${index.manifests.length} images; name one with :TAG${allNames().length ? ` (${allNames().join(', ')})` : ''}`);
    },
    async fetch(d) {
      if (d.digest === indexDesc.digest) return bytesSource(indexBytes).stream();
      return (await openBlob(d)).stream();
    },
    async list() {
      const byDigest = new Map<string, { names: string[]; descriptor: Descriptor }>();
      for (const m of index.manifests) {
        const e = byDigest.get(m.digest) ?? { names: [], descriptor: m };
        e.names.push(...namesOf(m).filter((n) => !e.names.includes(n)));
        byDigest.set(m.digest, e);
      }
      return [...byDigest.values()];
    },
  };
}
