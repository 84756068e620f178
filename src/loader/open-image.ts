import { SandboxError } from '../errors.ts';
import { sha256Text, type Digest } from './digest.ts';
import { readAll } from './byte-source.ts';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType, RAW_WASM_LAYER_TYPES, layerCompression, type Compression } from './media-types.ts';
import { MemoryStore } from './memory-store.ts';
import { choosePlatform, formatPlatform, isWasiPlatform, parsePlatform, platformMatches } from './platform.ts';
import type { ContentStore, Image, ImageRef, Layer, SourceCore } from './source.ts';
import { peekTarMember } from './tar-index.ts';
import type { Descriptor, ImageConfig, ImageKind, ImageManifest, Platform } from './types.ts';
import { asObject, parseJson, validateConfig, validateDescriptor, validateIndex, validateManifest, verifyBytes, verifyStream } from './verify.ts';
import { wasmKind } from './wasm-image.ts';

export interface OpenImageLimits {
  /** Bound on each layer's uncompressed size: the gzip-bomb defence. Default 8 GiB. */
  maxLayerBytes?: number;
  /** Bound on manifests, indexes and configs. Default 4 MiB. */
  maxManifestBytes?: number;
}

export interface OpenImageOptions {
  /** Where manifest and config land once verified (default: a fresh MemoryStore). Layers are read from it when present. */
  store?: ContentStore;
  /** "os/arch[/variant]" or a Platform; default: wasi/wasm (wasip1, wasip2), then the host's linux/<arch>. */
  platform?: Platform | string;
  limits?: OpenImageLimits;
  /**
   * The kind of a WASI image by manifest digest, when the caller recorded it before (a module or a
   * component): telling it otherwise means reading into the layers for the entrypoint's header.
   */
  kindHint?: (manifest: Digest) => ImageKind | undefined;
  /**
   * Manifests, indexes and configs already in `store` are read without hashing them again: for a store that
   * verified each blob before it wrote it (the LayoutStore), as containerd trusts its content store. They are
   * still parsed and validated; layers are always verified (digest as they stream, diff_id when unpacked).
   */
  trustStore?: boolean;
}

export const DEFAULT_LIMITS: Required<OpenImageLimits> = {
  maxLayerBytes: 8 * 1024 ** 3,
  maxManifestBytes: 4 * 1024 ** 2,
};

/** The limits in force: a limit given as undefined keeps its default (it never removes the bound). */
export function effectiveLimits(l: OpenImageLimits = {}): Required<OpenImageLimits> {
  return {
    maxLayerBytes: l.maxLayerBytes ?? DEFAULT_LIMITS.maxLayerBytes,
    maxManifestBytes: l.maxManifestBytes ?? DEFAULT_LIMITS.maxManifestBytes,
  };
}

const MAX_INDEX_DEPTH = 4;

/** Configs of wasm artifacts (CNCF v0; wasm-to-oci's legacy v1), which carry no rootfs: one is synthesized. */
const WASM_ARTIFACT_CONFIG_TYPES: readonly string[] = [MediaType.wasmConfig, 'application/vnd.wasm.config.v1+json'];

/** chainID(1) = diffID(1); chainID(n) = sha256(chainID(n-1) + " " + diffID(n)). */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256Text(`${out[out.length - 1]} ${d}`));
  return out;
}

function isRef(t: ImageRef | Descriptor): t is ImageRef {
  return typeof (t as { transport?: unknown }).transport === 'string';
}

/** The blob's bytes: from the store when it has them, else from the source through a verifying stream. */
async function fetchSmall(core: SourceCore, store: ContentStore, d: Descriptor, limit: number, what: string, trusted: boolean): Promise<Uint8Array> {
  if (d.size > limit) {
    throw new SandboxError('LIMIT_EXCEEDED', `${what} ${d.digest}: ${d.size} bytes is more than the ${limit} allowed`, { data: { limit, size: d.size } });
  }
  if (await store.has(d.digest)) {
    const bytes = await store.readBytes(d);
    if (!trusted || bytes.length !== d.size) verifyBytes(bytes, d, `${what} ${d.digest} (in the store)`);
    return bytes;
  }
  return readAll(verifyStream(await core.fetch(d), { digest: d.digest, size: d.size, what: `${what} ${d.digest}` }), limit, what);
}

function mediaTypeOf(d: Descriptor, json: unknown, what: string): string {
  const inner = (json as { mediaType?: unknown })?.mediaType;
  if (typeof inner === 'string' && d.mediaType && inner !== d.mediaType && [...INDEX_TYPES, ...MANIFEST_TYPES].includes(d.mediaType)) {
    throw new SandboxError('MALFORMED', `${what} ${d.digest}: its mediaType ${inner} differs from its descriptor's ${d.mediaType}`);
  }
  return typeof inner === 'string' ? inner : d.mediaType;
}

/** The CNCF wasm artifact's config (application/vnd.wasm.config.v0+json) as an image config. */
function wasmArtifactConfig(json: unknown, manifest: ImageManifest, what: string): ImageConfig {
  const o = asObject(json, what);
  const os = typeof o.os === 'string' && o.os !== '' ? o.os : 'wasip1';
  const config: ImageConfig = {
    architecture: typeof o.architecture === 'string' ? o.architecture : 'wasm',
    os,
    rootfs: { type: 'layers', diff_ids: manifest.layers.map((l) => l.digest) },
  };
  if (typeof o.created === 'string') config.created = o.created;
  if (typeof o.author === 'string') config.author = o.author;
  // The artifact names no command (runwasi runs the module itself): its one module is the entrypoint,
  // named by the layer's title annotation when that is a plain file name.
  const raw = manifest.layers.filter((l) => RAW_WASM_LAYER_TYPES.includes(l.mediaType));
  if (raw.length === 1) {
    const title = raw[0]!.annotations?.['org.opencontainers.image.title'];
    const name = title && /^[\w.-]+$/.test(title) && title !== '.' && title !== '..' ? title : 'module.wasm';
    config.config = { Entrypoint: [`/${name}`], WorkingDir: '/' };
  }
  return config;
}

async function readHead(stream: ReadableStream<Uint8Array>, n: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: number[] = [];
  try {
    while (parts.length < n) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length && parts.length < n; i++) parts.push(value[i]!);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return new Uint8Array(parts);
}

function entrypointPath(config: ImageConfig): string | undefined {
  const c = config.config;
  const exe = c?.Entrypoint?.[0] ?? c?.Cmd?.[0];
  if (!exe) return undefined;
  if (exe.startsWith('/')) return exe;
  return `${c?.WorkingDir || '/'}/${exe}`;
}

/** `hint`: the kind recorded for this image before, asked for only when the image is a WASI one. */
async function detectKind(config: ImageConfig, layers: Layer[], what: string, hint: () => ImageKind | undefined): Promise<ImageKind> {
  if (config.os === 'linux' && config.architecture !== 'wasm') return 'linux';
  if (!isWasiPlatform(config)) {
    throw new SandboxError('PLATFORM_MISMATCH', `${what} is for ${formatPlatform(config)}; wasmbox runs linux and wasi images`);
  }
  const hinted = hint();
  if (hinted === 'wasm-module' || hinted === 'wasm-component') return hinted;
  const raw = layers.find((l) => l.kind === 'wasm');
  if (raw) {
    const kind = wasmKind(await readHead(await raw.blob(), 8));
    if (!kind) throw new SandboxError('MALFORMED', `${what}: wasm layer ${raw.descriptor.digest} is not a WebAssembly module or component`);
    return kind === 'module' ? 'wasm-module' : 'wasm-component';
  }
  const entry = entrypointPath(config);
  if (entry) {
    for (const layer of [...layers].reverse()) {
      const head = await peekTarMember(await layer.open(), entry, 8, `layer ${layer.descriptor.digest}`);
      if (head) return wasmKind(head) === 'component' ? 'wasm-component' : 'wasm-module';
    }
  }
  return 'wasm-module';
}

/**
 * Completes a SourceCore into an Image: resolves the reference, picks the platform from an index,
 * fetches manifest and config through verifying streams, validates them, and describes the layers
 * (each opened later as a verified, bounded, decompressed stream). Manifest and config are put into
 * the store only once everything checked out, so a bad image leaves nothing behind.
 */
export async function openImage(core: SourceCore, target: ImageRef | Descriptor, opts: OpenImageOptions = {}): Promise<Image> {
  const store = opts.store ?? new MemoryStore();
  const limits = effectiveLimits(opts.limits);
  const wanted = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform;

  let desc = validateDescriptor(isRef(target) ? await core.resolve(target) : target, 'image descriptor');
  let viaIndex = false;
  let manifest: ImageManifest | undefined;
  let manifestBytes: Uint8Array | undefined;
  for (let depth = 0; !manifest; depth++) {
    if (depth > MAX_INDEX_DEPTH) throw new SandboxError('MALFORMED', `image index nesting deeper than ${MAX_INDEX_DEPTH}`);
    const kindName = INDEX_TYPES.includes(desc.mediaType) ? 'index' : 'manifest';
    const bytes = await fetchSmall(core, store, desc, limits.maxManifestBytes, kindName, opts.trustStore === true);
    const what = `${kindName} ${desc.digest}`;
    const json = parseJson(bytes, what);
    const mediaType = mediaTypeOf(desc, json, kindName);
    if (INDEX_TYPES.includes(mediaType)) {
      const index = validateIndex(json, what);
      desc = choosePlatform(index.manifests, wanted, what);
      viaIndex = true;
    } else if (MANIFEST_TYPES.includes(mediaType)) {
      manifest = validateManifest(json, what);
      manifestBytes = bytes;
    } else {
      throw new SandboxError('UNSUPPORTED_MEDIA_TYPE', `${what}: media type ${JSON.stringify(mediaType)} is neither an image manifest nor an index`, { data: { mediaType } });
    }
  }
  const manifestDesc: Descriptor = { mediaType: manifest.mediaType ?? desc.mediaType, digest: desc.digest, size: desc.size };
  if (desc.platform) manifestDesc.platform = desc.platform;
  if (desc.annotations) manifestDesc.annotations = desc.annotations;
  const what = `image ${desc.digest}`;

  const configType = manifest.config.mediaType;
  const allRawWasm = manifest.layers.length > 0 && manifest.layers.every((l) => RAW_WASM_LAYER_TYPES.includes(l.mediaType));
  const synthesized = WASM_ARTIFACT_CONFIG_TYPES.includes(configType) || (configType === MediaType.ociEmpty && allRawWasm);
  if (configType !== MediaType.ociConfig && configType !== MediaType.dockerConfig && !synthesized) {
    throw new SandboxError('UNSUPPORTED_MEDIA_TYPE', `${what}: config media type ${JSON.stringify(configType)} is not an image config`, { data: { mediaType: configType } });
  }
  const configBytes = await fetchSmall(core, store, manifest.config, limits.maxManifestBytes, 'config', opts.trustStore === true);
  const configJson = parseJson(configBytes, `config ${manifest.config.digest}`);
  const config = synthesized
    ? wasmArtifactConfig(configJson, manifest, `config ${manifest.config.digest}`)
    : validateConfig(configJson, `config ${manifest.config.digest}`);

  const platform: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) platform.variant = config.variant;
  if (wanted && !viaIndex && !platformMatches(platform, wanted) && !(wanted.os === 'wasi' && isWasiPlatform(platform) && platform.architecture === wanted.architecture)) {
    throw new SandboxError('PLATFORM_MISMATCH', `${what} is ${formatPlatform(platform)}, not ${formatPlatform(wanted)}`, { data: { wanted, available: [platform] } });
  }

  const kinds = manifest.layers.map((l, i): { kind: 'tar' | 'wasm'; compression: Compression } => {
    if (RAW_WASM_LAYER_TYPES.includes(l.mediaType)) return { kind: 'wasm', compression: 'none' };
    const compression = layerCompression(l.mediaType);
    if (compression === undefined) {
      throw new SandboxError('UNSUPPORTED_MEDIA_TYPE', `${what}: layer ${i} (${l.digest}) has media type ${JSON.stringify(l.mediaType)}`, { data: { mediaType: l.mediaType } });
    }
    return { kind: 'tar', compression };
  });
  let diffIds = config.rootfs.diff_ids;
  if (diffIds.length === 0 && kinds.every((k) => k.kind === 'wasm')) diffIds = manifest.layers.map((l) => l.digest);
  if (diffIds.length !== manifest.layers.length) {
    throw new SandboxError('MALFORMED', `${what}: ${manifest.layers.length} layers but ${diffIds.length} diff_ids in config ${manifest.config.digest}`);
  }
  const chains = chainIds(diffIds);

  const layers: Layer[] = manifest.layers.map((descriptor, i) => {
    const { kind, compression } = kinds[i]!;
    const diffId = diffIds[i]!;
    const blob = async (): Promise<ReadableStream<Uint8Array>> => {
      // Store or source, the bytes are checked as they stream: a store on disk can be tampered with too.
      const fromStore = await store.has(descriptor.digest);
      const raw = fromStore ? await store.read(descriptor) : await core.fetch(descriptor);
      return verifyStream(raw, { digest: descriptor.digest, size: descriptor.size, what: `layer ${descriptor.digest}${fromStore ? ' (in the store)' : ''}` });
    };
    return {
      descriptor,
      diffId,
      chainId: chains[i]!,
      kind,
      blob,
      async open() {
        // Decompressors (fzstd, zlib) load with the first layer read, not with every image opened.
        const { decompress } = await import('./decompress.ts');
        const plain = decompress(await blob(), compression, `layer ${descriptor.digest}`);
        return verifyStream(plain, { digest: diffId, maxBytes: limits.maxLayerBytes, what: `layer ${descriptor.digest} uncompressed (diff_id ${diffId})` });
      },
    };
  });

  const kind = await detectKind(config, layers, what, () => opts.kindHint?.(manifestDesc.digest));

  await store.put(manifestBytes!, manifestDesc);
  await store.put(configBytes, manifest.config);

  return {
    digest: manifestDesc.digest,
    id: manifest.config.digest,
    manifestDescriptor: manifestDesc,
    manifest,
    config,
    platform,
    kind,
    layers,
  };
}
