import { SandboxError } from '../errors.ts';
import { digestHex, sha256, type Digest } from './digest.ts';
import { MediaType, layerCompression } from './media-types.ts';
import type { ContentStore, Image, Layer } from './source.ts';
import type { Descriptor, ImageIndex, ImageManifest } from './types.ts';
import {
  basenameOf,
  createTempFile,
  dirnameOf,
  openReadStream,
  removePath,
  resolvePath,
  statPath,
} from '#host/files';
import { createTarWriter, type TarWriter } from './store/tar-writer.ts';
import { CONTAINERD_NAME, REF_NAME, parseImageName } from './store/names.ts';

export type SaveFormat = 'oci-archive' | 'docker-archive';

export interface SaveOptions {
  format?: SaveFormat;
  /** `NAME:TAG` names written into the archive (OCI ref.name annotations, docker RepoTags). */
  names?: string[];
}

const encoder = new TextEncoder();
const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));

/**
 * Writes `image` as an OCI archive (the image layout as a tar, blobs as stored) or as a docker-save archive
 * in the form docker 25+ writes: an OCI layout whose layers are uncompressed tars named by their diffID, plus
 * `manifest.json` and the legacy `repositories` file, so both old and new readers load it.
 * The archive is streamed to a temp file next to `output` and renamed into place when complete.
 */
export async function saveImage(
  image: Image,
  store: Pick<ContentStore, 'read' | 'readBytes'>,
  output: string,
  o: SaveOptions = {},
): Promise<void> {
  const format = o.format ?? 'oci-archive';
  if (format !== 'oci-archive' && format !== 'docker-archive') {
    throw new SandboxError('INVALID_ARGUMENT', `unknown archive format ${JSON.stringify(format)}: use oci-archive or docker-archive`);
  }
  const names = (o.names ?? []).map((n) => {
    const p = parseImageName(n);
    return `${p.repository}:${p.tag}`;
  });
  const target = resolvePath(output);
  const dir = dirnameOf(target);
  if (!(await statPath(dir))?.isDirectory) {
    throw new SandboxError('NOT_FOUND', `cannot write ${output}: directory ${dir} does not exist`);
  }
  if ((await statPath(target))?.isDirectory) throw new SandboxError('INVALID_ARGUMENT', `cannot write ${output}: it is a directory`);
  if (format === 'docker-archive') {
    const raw = image.layers.find((l) => l.kind !== 'tar');
    if (raw) {
      throw new SandboxError(
        'UNSUPPORTED_MEDIA_TYPE',
        `a docker archive holds only tar layers; layer ${raw.descriptor.digest} is ${raw.descriptor.mediaType} (save as oci-archive instead)`,
      );
    }
  }
  const file = await createTempFile(dir, `.${basenameOf(target)}.tmp-`);
  const tar = createTarWriter((chunk) => file.write(chunk));
  const scratch: string[] = [];
  try {
    if (format === 'oci-archive') await writeOciArchive(tar, image, store, names);
    else await writeDockerArchive(tar, image, store, names, dir, scratch);
    await tar.finish();
    await file.commit(target);
  } catch (e) {
    tar.destroy();
    await file.abort();
    throw e;
  } finally {
    for (const p of scratch) await removePath(p).catch(() => {});
  }
}

/** `docker.io/library/hello:latest` for `hello:latest`: the full name containerd and docker 25+ record. */
export function fullName(name: string): string {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) return name;
  return slash < 0 ? `docker.io/library/${name}` : `docker.io/${name}`;
}

/**
 * The archive's index.json: `root` once per name, annotated with the full name containerd reads and the
 * `ref.name` this format uses (`refName`), or once unnamed.
 */
function archiveIndex(root: Descriptor, names: string[], refName: (name: string) => string): ImageIndex {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: names.length === 0
      ? [root]
      : names.map((n) => ({ ...root, annotations: { [CONTAINERD_NAME]: fullName(n), [REF_NAME]: refName(n) } })),
  };
}

async function writeOciArchive(
  tar: TarWriter,
  image: Image,
  store: Pick<ContentStore, 'read' | 'readBytes'>,
  names: string[],
): Promise<void> {
  const m = image.manifestDescriptor;
  const root: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  if (image.platform) root.platform = { os: image.platform.os, architecture: image.platform.architecture };
  if (image.platform?.variant) root.platform!.variant = image.platform.variant;
  await tar.addFile('oci-layout', json({ imageLayoutVersion: '1.0.0' }));
  await tar.addFile('index.json', json(archiveIndex(root, names, (n) => n)));
  await tar.addDirectory('blobs');
  await tar.addDirectory('blobs/sha256');
  const written = new Set<Digest>();
  const add = async (d: Pick<Descriptor, 'digest' | 'size'>, bytes?: Uint8Array): Promise<void> => {
    if (written.has(d.digest)) return;
    written.add(d.digest);
    await tar.addFile(`blobs/sha256/${digestHex(d.digest)}`, bytes ?? (await store.read(d)), d.size);
  };
  await add(m, await store.readBytes(m));
  await add(image.manifest.config, await store.readBytes(image.manifest.config));
  for (const layer of image.layers) await add(layer.descriptor);
}

async function writeDockerArchive(
  tar: TarWriter,
  image: Image,
  store: Pick<ContentStore, 'read' | 'readBytes'>,
  names: string[],
  scratchDir: string,
  scratch: string[],
): Promise<void> {
  const configBytes = await store.readBytes(image.manifest.config);
  const configPath = `blobs/sha256/${digestHex(image.manifest.config.digest)}`;
  await tar.addDirectory('blobs');
  await tar.addDirectory('blobs/sha256');
  await tar.addFile(configPath, configBytes);

  const layerDescriptors: Descriptor[] = [];
  const written = new Set<Digest>();
  for (const layer of image.layers) {
    const { size, open } = await uncompressedLayer(layer, scratchDir, scratch);
    layerDescriptors.push({ mediaType: MediaType.ociLayer, digest: layer.diffId, size });
    if (written.has(layer.diffId)) continue;
    written.add(layer.diffId);
    await tar.addFile(`blobs/sha256/${digestHex(layer.diffId)}`, await open(), size);
  }

  // The OCI side of the archive: a manifest over the uncompressed layers, as docker 25+ writes it.
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: image.manifest.config.digest, size: image.manifest.config.size },
    layers: layerDescriptors,
  };
  const manifestBytes = json(manifest);
  const manifestDigest = sha256(manifestBytes);
  await tar.addFile(`blobs/sha256/${digestHex(manifestDigest)}`, manifestBytes);
  const root: Descriptor = { mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifestBytes.byteLength };
  // docker 25+ records only the tag as ref.name in its archives.
  await tar.addFile('index.json', json(archiveIndex(root, names, (n) => n.slice(n.lastIndexOf(':') + 1))));

  const layerPaths = layerDescriptors.map((d) => `blobs/sha256/${digestHex(d.digest)}`);
  const layerSources: Record<string, Descriptor> = {};
  for (const d of layerDescriptors) layerSources[d.digest] = d;
  await tar.addFile(
    'manifest.json',
    json([{ Config: configPath, RepoTags: names, Layers: layerPaths, LayerSources: layerSources }]),
  );
  await tar.addFile('oci-layout', json({ imageLayoutVersion: '1.0.0' }));
  if (names.length > 0 && layerDescriptors.length > 0) {
    const top = digestHex(layerDescriptors[layerDescriptors.length - 1]!.digest);
    const repositories: Record<string, Record<string, string>> = {};
    for (const n of names) {
      const colon = n.lastIndexOf(':');
      (repositories[n.slice(0, colon)] ??= {})[n.slice(colon + 1)] = top;
    }
    await tar.addFile('repositories', json(repositories));
  }
}

/**
 * A layer's uncompressed tar and its size. An uncompressed blob is streamed as it is; a compressed one is
 * decompressed (and its diffID verified) into a scratch file first, because a tar entry needs its size up front.
 */
async function uncompressedLayer(
  layer: Layer,
  scratchDir: string,
  scratch: string[],
): Promise<{ size: number; open: () => Promise<ReadableStream<Uint8Array>> }> {
  if (layerCompression(layer.descriptor.mediaType) === 'none' && layer.diffId === layer.descriptor.digest) {
    return { size: layer.descriptor.size, open: () => layer.open() };
  }
  const tmp = await createTempFile(scratchDir, '.wasmbox-layer-');
  scratch.push(tmp.path);
  let size = 0;
  const reader = (await layer.open()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      await tmp.write(value);
    }
    await tmp.close();
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    await tmp.abort();
    throw e;
  } finally {
    reader.releaseLock();
  }
  return { size, open: () => openReadStream(tmp.path) };
}
