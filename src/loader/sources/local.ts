import { SandboxError } from '../../errors.ts';
import { directoryTree, openFileSource, pathKind } from '#host/byte-source';
import { openTarTree } from '../tar-index.ts';
import { parseRef } from '../ref.ts';
import { openImage, type OpenImageOptions } from '../open-image.ts';
import type { Image, ImageRef, SourceCore } from '../source.ts';
import { detectFileFormat, detectTreeFormat, treeSource, wasmSource } from './detect.ts';
import { dockerArchiveSource } from './docker-archive.ts';
import { ociLayoutSource } from './oci-layout.ts';

/**
 * Finds what a local path holds (Node): a directory with `oci-layout` is an OCI layout, one with
 * `manifest.json` an unpacked docker save; a file is a wasm binary, an OCI archive or a docker-save archive.
 */
export async function detectLocalRef(path: string): Promise<ImageRef> {
  const kind = await pathKind(path);
  if (kind === 'missing') throw new SandboxError('NOT_FOUND', `no such file or directory: ${path}`);
  if (kind === 'directory') {
    const format = await detectTreeFormat(directoryTree(path));
    return format === 'oci' ? { transport: 'oci', path } : { transport: 'docker-archive', path };
  }
  const format = await detectFileFormat(await openFileSource(path));
  if (format === 'wasm') return { transport: 'wasm', path };
  return format === 'oci' ? { transport: 'oci-archive', path } : { transport: 'docker-archive', path };
}

/**
 * The SourceCore for a local reference (oci, oci-archive, docker-archive, wasm, path).
 * Store names and registry references are opened by the image store / registry client, not here.
 */
export async function openLocalSource(ref: ImageRef): Promise<SourceCore> {
  switch (ref.transport) {
    case 'path': return openLocalSource(await detectLocalRef(ref.path));
    case 'oci': {
      const kind = await pathKind(ref.path);
      if (kind === 'missing') throw new SandboxError('NOT_FOUND', `no such directory: ${ref.path}`);
      if (kind === 'file') return ociLayoutSource(await openTarTree(await openFileSource(ref.path)));
      return ociLayoutSource(directoryTree(ref.path));
    }
    case 'oci-archive': return ociLayoutSource(await openTarTree(await openFileSource(ref.path)));
    case 'docker-archive': {
      const kind = await pathKind(ref.path);
      if (kind === 'missing') throw new SandboxError('NOT_FOUND', `no such file: ${ref.path}`);
      if (kind === 'directory') return dockerArchiveSource(directoryTree(ref.path));
      return dockerArchiveSource(await openTarTree(await openFileSource(ref.path)));
    }
    case 'wasm': return wasmSource(await openFileSource(ref.path));
    case 'store': throw new SandboxError('INVALID_ARGUMENT', `${ref.name} names an image in the local store; open it through the store`);
    case 'registry': throw new SandboxError('BACKEND_UNAVAILABLE', `registry references (${ref.registry}/${ref.repository}) are not supported yet`);
  }
}

/**
 * parseRef + openLocalSource + openImage in one call, for local references. A `path` ref keeps any tag
 * the detected format cannot take from the string (tags need the explicit `oci:` / `docker-archive:` forms).
 */
export async function openLocalImage(ref: string | ImageRef, opts: OpenImageOptions = {}): Promise<Image> {
  const parsed = typeof ref === 'string' ? parseRef(ref) : ref;
  const resolved = parsed.transport === 'path' ? await detectLocalRef(parsed.path) : parsed;
  return openImage(await openLocalSource(resolved), resolved, opts);
}

export { treeSource };
