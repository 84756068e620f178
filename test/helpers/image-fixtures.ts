/**
 * Image fixtures built in code: OCI layouts (as file maps, directories or tars), docker-save archives in
 * both forms, and wasm binaries. Digests are computed here with node:crypto, independently of the loader.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTar, type FixtureEntry } from './tar-fixtures.ts';

export type Desc = { mediaType: string; digest: string; size: number; platform?: Record<string, string>; annotations?: Record<string, string> };

export const enc = (s: string) => new TextEncoder().encode(s);
export const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hex = (d: string) => d.slice('sha256:'.length);

export const OCI = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  tar: 'application/vnd.oci.image.layer.v1.tar',
  tarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  tarZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

/** A minimal wasm module (magic + version 1) or component (version 0x0d, layer 1). */
export function wasmBytes(kind: 'module' | 'component' = 'module', extra = 0): Uint8Array {
  const head = kind === 'module' ? [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0] : [0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0];
  return new Uint8Array([...head, ...new Array(extra).fill(0)]);
}

export interface LayerSpec { entries?: FixtureEntry[]; tar?: Uint8Array; compression?: 'none' | 'gzip' | 'zstd'; mediaType?: string }

export interface BuiltLayer { blob: Uint8Array; tar: Uint8Array; diffId: string; mediaType: string }

export async function buildLayer(spec: LayerSpec): Promise<BuiltLayer> {
  const tar = spec.tar ?? (await makeTar(spec.entries ?? []));
  const c = spec.compression ?? 'gzip';
  const blob = c === 'gzip' ? new Uint8Array(gzipSync(tar)) : c === 'zstd' ? zstdCompress(tar) : tar;
  const mediaType = spec.mediaType ?? (c === 'gzip' ? OCI.tarGzip : c === 'zstd' ? OCI.tarZstd : OCI.tar);
  return { blob, tar, diffId: sha(tar), mediaType };
}

function zstdCompress(data: Uint8Array): Uint8Array {
  // The zstd CLI is installed on this machine; node:zlib has no zstd encoder on Node 20.
  return new Uint8Array(execFileSync('zstd', ['-q', '-c', '-3'], { input: data }));
}

export interface ImageSpec {
  os?: string;
  architecture?: string;
  variant?: string;
  layers?: LayerSpec[];
  entrypoint?: string[];
  cmd?: string[];
  /** Replace the config JSON (for garbage / malformed tests). */
  configBytes?: Uint8Array;
  configMediaType?: string;
  configOverride?: (c: Record<string, unknown>) => Record<string, unknown>;
  manifestOverride?: (m: Record<string, unknown>) => Record<string, unknown>;
}

/** An OCI image layout as a map of files (`oci-layout`, `index.json`, `blobs/sha256/...`). */
export class Layout {
  readonly files = new Map<string, Uint8Array>();
  readonly layers: BuiltLayer[] = [];

  blob(mediaType: string, data: Uint8Array): Desc {
    const digest = sha(data);
    this.files.set(`blobs/sha256/${hex(digest)}`, data);
    return { mediaType, digest, size: data.byteLength };
  }

  json(mediaType: string, value: unknown): Desc {
    return this.blob(mediaType, enc(JSON.stringify(value)));
  }

  async image(spec: ImageSpec = {}): Promise<{ manifest: Desc; config: Desc; layers: BuiltLayer[] }> {
    const layers = await Promise.all((spec.layers ?? [{ entries: [{ path: 'hello.txt', data: 'hi' }] }]).map(buildLayer));
    this.layers.push(...layers);
    const layerDescs = layers.map((l) => this.blob(l.mediaType, l.blob));
    let config: Record<string, unknown> = {
      architecture: spec.architecture ?? 'amd64',
      os: spec.os ?? 'linux',
      ...(spec.variant ? { variant: spec.variant } : {}),
      config: { Entrypoint: spec.entrypoint ?? null, Cmd: spec.cmd ?? ['/bin/sh'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    };
    if (spec.configOverride) config = spec.configOverride(config);
    const configDesc = spec.configBytes
      ? this.blob(spec.configMediaType ?? OCI.config, spec.configBytes)
      : this.json(spec.configMediaType ?? OCI.config, config);
    let manifest: Record<string, unknown> = { schemaVersion: 2, mediaType: OCI.manifest, config: configDesc, layers: layerDescs };
    if (spec.manifestOverride) manifest = spec.manifestOverride(manifest);
    return { manifest: this.json(OCI.manifest, manifest), config: configDesc, layers };
  }

  index(manifests: Desc[], mediaType = OCI.index): Desc {
    return this.json(mediaType, { schemaVersion: 2, mediaType, manifests });
  }

  /** Writes oci-layout and index.json listing `entries`. */
  finish(entries: Desc[]): this {
    this.files.set('oci-layout', enc(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    this.files.set('index.json', enc(JSON.stringify({ schemaVersion: 2, mediaType: OCI.index, manifests: entries })));
    return this;
  }

  async toTar(): Promise<Uint8Array> {
    return filesToTar(this.files);
  }

  async writeDir(dir: string): Promise<string> {
    await writeFiles(dir, this.files);
    return dir;
  }
}

export function tagged(d: Desc, tag: string): Desc {
  return { ...d, annotations: { ...d.annotations, 'org.opencontainers.image.ref.name': tag } };
}

export function withPlatform(d: Desc, os: string, architecture: string, variant?: string): Desc {
  return { ...d, platform: { os, architecture, ...(variant ? { variant } : {}) } };
}

export async function filesToTar(files: Map<string, Uint8Array>): Promise<Uint8Array> {
  const dirs = new Set<string>();
  for (const p of files.keys()) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/') + '/');
  }
  return makeTar([
    ...[...dirs].sort().map((path) => ({ path })),
    ...[...files].map(([path, data]) => ({ path, data })),
  ]);
}

export async function writeFiles(dir: string, files: Map<string, Uint8Array>): Promise<void> {
  for (const [p, data] of files) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), data);
  }
}

/**
 * A docker-save archive's files. 'legacy': `<id>/layer.tar` + `<hex>.json`; 'blobs': everything under
 * `blobs/sha256/` (docker >= 25, which also writes an OCI index; `withOciIndex` adds it).
 */
export async function dockerSaveFiles(images: Array<{ repoTags: string[]; spec?: ImageSpec }>, form: 'legacy' | 'blobs', withOciIndex = false): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const manifest: unknown[] = [];
  const ociEntries: Desc[] = [];
  for (const { repoTags, spec = {} } of images) {
    const layers = await Promise.all((spec.layers ?? [{ entries: [{ path: 'etc/hostname', data: 'box' }], compression: 'none' }]).map((l) => buildLayer({ compression: 'none', ...l })));
    let config: Record<string, unknown> = {
      architecture: spec.architecture ?? 'amd64',
      os: spec.os ?? 'linux',
      config: { Cmd: spec.cmd ?? ['/bin/sh'], Entrypoint: spec.entrypoint ?? null },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    };
    if (spec.configOverride) config = spec.configOverride(config);
    const configBytes = spec.configBytes ?? enc(JSON.stringify(config));
    const configHex = hex(sha(configBytes));
    const layerPaths: string[] = [];
    for (const [i, l] of layers.entries()) {
      if (form === 'legacy') {
        const id = hex(sha(enc(`${configHex}-${i}`)));
        files.set(`${id}/layer.tar`, l.blob);
        files.set(`${id}/VERSION`, enc('1.0'));
        files.set(`${id}/json`, enc(JSON.stringify({ id })));
        layerPaths.push(`${id}/layer.tar`);
      } else {
        files.set(`blobs/sha256/${hex(sha(l.blob))}`, l.blob);
        layerPaths.push(`blobs/sha256/${hex(sha(l.blob))}`);
      }
    }
    const configPath = form === 'legacy' ? `${configHex}.json` : `blobs/sha256/${configHex}`;
    files.set(configPath, configBytes);
    manifest.push({ Config: configPath, RepoTags: repoTags, Layers: layerPaths });
    if (withOciIndex) {
      const m = enc(JSON.stringify({
        schemaVersion: 2, mediaType: OCI.manifest,
        config: { mediaType: OCI.config, digest: sha(configBytes), size: configBytes.byteLength },
        layers: layers.map((l) => ({ mediaType: OCI.tar, digest: sha(l.blob), size: l.blob.byteLength })),
      }));
      files.set(`blobs/sha256/${hex(sha(m))}`, m);
      ociEntries.push({ mediaType: OCI.manifest, digest: sha(m), size: m.byteLength, annotations: { 'io.containerd.image.name': `docker.io/library/${repoTags[0]}`, 'org.opencontainers.image.ref.name': repoTags[0]!.split(':')[1]! } });
    }
  }
  files.set('manifest.json', enc(JSON.stringify(manifest)));
  if (withOciIndex) {
    files.set('oci-layout', enc(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    files.set('index.json', enc(JSON.stringify({ schemaVersion: 2, mediaType: OCI.index, manifests: ociEntries })));
  }
  return files;
}

/** Reads a whole stream (test side). */
export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let pos = 0;
  for (const c of chunks) { out.set(c, pos); pos += c.byteLength; }
  return out;
}
