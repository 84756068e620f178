import { SandboxError } from '../../errors.ts';
import { readAll, toByteSource, type ByteSource, type FileTree } from '../byte-source.ts';
import type { SourceCore } from '../source.ts';
import { indexTar, tarTree } from '../tar-index.ts';
import { wasmImageSource, wasmKind } from '../wasm-image.ts';
import { dockerArchiveSource } from './docker-archive.ts';
import { ociLayoutSource } from './oci-layout.ts';

export type ArchiveFormat = 'oci' | 'docker' | 'wasm';

const MAX_WASM_BYTES = 1024 ** 3;

/** What a FileTree holds: an OCI layout (`oci-layout` or `index.json`) or a docker save (`manifest.json`). */
export async function detectTreeFormat(tree: FileTree): Promise<'oci' | 'docker'> {
  if (await tree.open('oci-layout')) return 'oci';
  if (await tree.open('manifest.json')) return 'docker';
  if (await tree.open('index.json')) return 'oci';
  throw new SandboxError('INVALID_REFERENCE', `${tree.name}: neither an OCI image layout (oci-layout, index.json) nor a docker save (manifest.json)`);
}

/** The SourceCore for a tree of the given (or detected) format. */
export async function treeSource(tree: FileTree, format?: 'oci' | 'docker'): Promise<SourceCore> {
  return (format ?? (await detectTreeFormat(tree))) === 'oci' ? ociLayoutSource(tree) : dockerArchiveSource(tree);
}

/** A wasm module as an image, read whole (a module is instantiated from memory anyway). */
export async function wasmSource(src: ByteSource): Promise<SourceCore> {
  if (src.size > MAX_WASM_BYTES) throw new SandboxError('LIMIT_EXCEEDED', `${src.name}: ${src.size} bytes is too large for a wasm module`);
  return wasmImageSource(await readAll(src.stream(), MAX_WASM_BYTES, src.name), src.name);
}

/** What a single file holds: a wasm binary, or a tar archive of an OCI layout or a docker save. */
export async function detectFileFormat(src: ByteSource): Promise<ArchiveFormat> {
  const head = await src.read(0, 8);
  if (wasmKind(head)) return 'wasm';
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw new SandboxError('INVALID_REFERENCE', `${src.name} is gzip-compressed; decompress it first (gunzip) so that it can be read by range`);
  }
  return detectTreeFormat(tarTree(src, await indexTar(src)));
}

/**
 * An image source from bytes in hand (browsers: a fetched Blob, an ArrayBuffer, a Uint8Array):
 * a bare wasm module, an OCI archive or a docker-save archive, told apart by content.
 */
export async function sourceFromBytes(data: ByteSource | Blob | ArrayBuffer | Uint8Array, name = 'image'): Promise<SourceCore> {
  const src = toByteSource(data, name);
  const head = await src.read(0, 8);
  if (wasmKind(head)) return wasmSource(src);
  return treeSource(tarTree(src, await indexTar(src)));
}
