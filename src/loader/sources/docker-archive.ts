import { SandboxError } from '../../errors.ts';
import { createSha256, isDigest, sha256, type Digest } from '../digest.ts';
import { bytesSource, safeRelativePath, type ByteSource, type FileTree } from '../byte-source.ts';
import { sniffCompression } from '../decompress.ts';
import { MediaType } from '../media-types.ts';
import type { ImageRef, SourceCore } from '../source.ts';
import type { Descriptor } from '../types.ts';
import { parseJson, validateConfig } from '../verify.ts';
import { readSmallFile } from './oci-layout.ts';

interface SaveEntry { Config: string; RepoTags: string[]; Layers: string[] }

const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

function parseSaveManifest(data: Uint8Array, what: string): SaveEntry[] {
  const v = parseJson(data, what);
  if (!Array.isArray(v) || v.length === 0) throw new SandboxError('MALFORMED', `${what}: expected a non-empty array of images`);
  return v.map((e, i) => {
    const o = e as Record<string, unknown>;
    const here = `${what}[${i}]`;
    if (typeof o !== 'object' || o === null) throw new SandboxError('MALFORMED', `${here}: not an object`);
    if (typeof o.Config !== 'string') throw new SandboxError('MALFORMED', `${here}: no Config`);
    if (!Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) throw new SandboxError('MALFORMED', `${here}: Layers must be an array of paths`);
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new SandboxError('MALFORMED', `${here}: RepoTags must be an array of strings`);
    return {
      Config: safeRelativePath(o.Config, here),
      RepoTags: tags as string[],
      Layers: (o.Layers as string[]).map((l) => safeRelativePath(l, here)),
    };
  });
}

/** Docker's short forms: `busybox` = `busybox:latest` = `docker.io/library/busybox:latest`. */
export function normalizeDockerName(name: string): string {
  let n = name;
  const lastSlash = n.lastIndexOf('/');
  if (!n.includes('@') && n.lastIndexOf(':') <= lastSlash) n += ':latest';
  const first = n.split('/')[0]!;
  const hasDomain = n.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) n = `docker.io/${n}`;
  if (n.startsWith('docker.io/') && n.split('/').length === 2) n = n.replace('docker.io/', 'docker.io/library/');
  return n;
}

function digestFromBlobPath(path: string): Digest | undefined {
  const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path);
  return m ? (`sha256:${m[1]}` as Digest) : undefined;
}

async function hashSource(src: ByteSource): Promise<Digest> {
  const h = createSha256();
  const reader = src.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    h.update(value);
  }
  return `sha256:${h.digestHex()}` as Digest;
}

/**
 * A `docker save` archive (manifest.json with Config/RepoTags/Layers), legacy `<id>/layer.tar` form or the
 * newer form with files under `blobs/sha256/`. It has no OCI manifest, so one is synthesized per image: a
 * docker v2 manifest whose config digest is the config JSON's sha256 and whose layer descriptors carry the
 * layer files' sizes and digests (an uncompressed layer's digest is its diff_id, checked while it streams).
 */
export async function dockerArchiveSource(tree: FileTree): Promise<SourceCore> {
  const what = `${tree.name}/manifest.json`;
  const raw = await readSmallFile(tree, 'manifest.json');
  if (!raw) throw new SandboxError('NOT_FOUND', `${tree.name}: no manifest.json (not a docker-save archive)`);
  const entries = parseSaveManifest(raw, what);
  const built = new Map<SaveEntry, Descriptor>();
  const blobs = new Map<Digest, () => Promise<ByteSource>>();

  const open = async (path: string): Promise<ByteSource> => {
    const f = await tree.open(path);
    if (!f) throw new SandboxError('NOT_FOUND', `${tree.name}: ${path} is listed in manifest.json but missing`);
    return f;
  };

  const synthesize = async (e: SaveEntry): Promise<Descriptor> => {
    const done = built.get(e);
    if (done) return done;
    const configBytes = await readSmallFile(tree, e.Config);
    if (!configBytes) throw new SandboxError('NOT_FOUND', `${tree.name}: config ${e.Config} is missing`);
    const config = validateConfig(parseJson(configBytes, `${tree.name}/${e.Config}`), `${tree.name}/${e.Config}`);
    const configDesc: Descriptor = { mediaType: MediaType.dockerConfig, digest: sha256(configBytes), size: configBytes.byteLength };
    blobs.set(configDesc.digest, async () => bytesSource(configBytes, `${tree.name}/${e.Config}`));
    if (config.rootfs.diff_ids.length !== e.Layers.length) {
      throw new SandboxError('MALFORMED', `${tree.name}: ${e.Layers.length} layers in manifest.json but ${config.rootfs.diff_ids.length} diff_ids in ${e.Config}`);
    }
    const layers: Descriptor[] = [];
    for (const [i, path] of e.Layers.entries()) {
      const f = await open(path);
      const compression = sniffCompression(await f.read(0, 8));
      const named = digestFromBlobPath(path);
      const diffId = config.rootfs.diff_ids[i]!;
      const digest = named ?? (compression === 'none' && isDigest(diffId) ? diffId : await hashSource(f));
      const mediaType = compression === 'gzip' ? MediaType.dockerLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : DOCKER_LAYER_TAR;
      layers.push({ mediaType, digest, size: f.size });
      blobs.set(digest, () => open(path));
    }
    const manifestBytes = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: configDesc,
      layers,
    }));
    const desc: Descriptor = { mediaType: MediaType.dockerManifest, digest: sha256(manifestBytes), size: manifestBytes.byteLength };
    blobs.set(desc.digest, async () => bytesSource(manifestBytes, `${tree.name} (manifest for ${e.Config})`));
    built.set(e, desc);
    return desc;
  };

  const pick = (ref: ImageRef): SaveEntry => {
    const tag = ref.transport === 'docker-archive' || ref.transport === 'oci-archive' || ref.transport === 'oci' ? ref.tag : undefined;
    if (tag !== undefined) {
      const want = normalizeDockerName(tag);
      const hit = entries.find((e) => e.RepoTags.some((t) => t === tag || normalizeDockerName(t) === want));
      if (hit) return hit;
      const all = entries.flatMap((e) => e.RepoTags);
      throw new SandboxError('NOT_FOUND', `${tree.name}: no image tagged ${JSON.stringify(tag)}${all.length ? ` (it has: ${all.join(', ')})` : ''}`, { data: { tag, available: all } });
    }
    if (entries.length === 1) return entries[0]!;
    throw new SandboxError('NOT_FOUND', `${tree.name} holds ${entries.length} images; name one with :NAME:TAG (${entries.flatMap((e) => e.RepoTags).join(', ')})`);
  };

  return {
    async resolve(ref) {
      return synthesize(pick(ref));
    },
    async fetch(d) {
      const get = blobs.get(d.digest);
      if (!get) throw new SandboxError('NOT_FOUND', `blob ${d.digest} not found in ${tree.name}`, { data: { digest: d.digest } });
      return (await get()).stream();
    },
    async list() {
      const out = [];
      for (const e of entries) out.push({ names: e.RepoTags, descriptor: await synthesize(e) });
      return out;
    },
  };
}
