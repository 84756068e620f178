import { SandboxError } from '../errors.ts';
import { MediaType } from './media-types.ts';
import { BlobMap, memorySource } from './sources/memory.ts';
import type { SourceCore } from './source.ts';
import type { ImageConfig } from './types.ts';

export const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/**
 * Marks an image wrapped from a bare .wasm file. Such a module runs as `wasmtime run` would run it:
 * no filesystem and no environment beyond what the caller grants (-v, -e), instead of docker's defaults.
 */
export const BARE_MODULE_LABEL = 'io.wasmbox.bare-module';

export function isBareModule(config: ImageConfig): boolean {
  return config.config?.Labels?.[BARE_MODULE_LABEL] === 'true';
}

/** 'module' (version 1, layer 0), 'component' (layer 1), or undefined when the bytes are not wasm. */
export function wasmKind(head: Uint8Array): 'module' | 'component' | undefined {
  if (head.length < 8 || !WASM_MAGIC.every((b, i) => head[i] === b)) return undefined;
  const layer = head[6]! | (head[7]! << 8);
  if (layer === 0 && head[4] === 1 && head[5] === 0) return 'module';
  if (layer === 1) return 'component';
  return undefined;
}

const enc = new TextEncoder();

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A one-file ustar archive (mode 0755, root-owned, mtime 0: the same module gives the same digest). */
export function singleFileTar(name: string, data: Uint8Array, mode = 0o755): Uint8Array {
  const nameBytes = enc.encode(name);
  if (nameBytes.length > 100) throw new SandboxError('INVALID_ARGUMENT', `file name too long for a tar header: ${name}`);
  const padded = Math.ceil(data.byteLength / 512) * 512;
  const out = new Uint8Array(512 + padded + 1024);
  const h = out.subarray(0, 512);
  h.set(nameBytes, 0);
  h.set(enc.encode(octal(mode, 8)), 100);
  h.set(enc.encode(octal(0, 8)), 108);
  h.set(enc.encode(octal(0, 8)), 116);
  h.set(enc.encode(octal(data.byteLength, 12)), 124);
  h.set(enc.encode(octal(0, 12)), 136);
  h[156] = 0x30; // '0': regular file
  h.set(enc.encode('ustar\x0000'), 257);
  h.set(enc.encode('root'), 265);
  h.set(enc.encode('root'), 297);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
  out.set(data, 512);
  return out;
}

/** A file name safe as a single path component: the module keeps its own name where it can. */
function moduleFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '');
  const withExt = clean.endsWith('.wasm') ? clean : `${clean || 'module'}.wasm`;
  return withExt.length > 100 ? 'module.wasm' : withExt;
}

/**
 * A bare .wasm wrapped as a one-layer `wasi/wasm` OCI image: the layer is a tar holding `/NAME.wasm`,
 * the config's Entrypoint is that file. A tar layer (not a raw wasm layer) so the module is also
 * visible in the container's filesystem and runs through the same path as any wasi image.
 */
export function wasmImageSource(module: Uint8Array, fileName: string): SourceCore {
  const kind = wasmKind(module.subarray(0, 8));
  if (!kind) throw new SandboxError('MALFORMED', `${fileName}: not a WebAssembly module or component (bad header)`);
  const name = moduleFileName(fileName);
  const blobs = new BlobMap();
  const layerTar = singleFileTar(name, module);
  const layer = blobs.add(MediaType.ociLayer, layerTar);
  const config: ImageConfig = {
    architecture: 'wasm',
    os: 'wasi',
    config: { Entrypoint: [`/${name}`], WorkingDir: '/', Labels: { [BARE_MODULE_LABEL]: 'true' } },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created_by: `wasmbox: wrapped ${name}` }],
  };
  const configDesc = blobs.addJson(MediaType.ociConfig, config);
  const manifest = blobs.addJson(MediaType.ociManifest, {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers: [layer],
  });
  return memorySource(blobs, manifest, [name.replace(/\.wasm$/, '').toLowerCase()], fileName);
}
