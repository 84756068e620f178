import { SandboxError } from '../errors.ts';
import { createSha256, isDigest, type Digest } from './digest.ts';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.ts';

export interface VerifyOptions {
  /** Checked at EOF. */
  digest?: Digest;
  /** Exact size: more bytes fail at once, fewer fail at EOF (SIZE_MISMATCH). */
  size?: number;
  /** Upper bound when the size is not known (decompressed layers): LIMIT_EXCEEDED past it. */
  maxBytes?: number;
  /** Names the blob in messages. */
  what: string;
}

/**
 * Passes a stream through, counting and hashing it: the go-containerregistry `verify` reader.
 * Errors from the input (already typed) pass through unchanged.
 */
export function verifyStream(input: ReadableStream<Uint8Array>, o: VerifyOptions): ReadableStream<Uint8Array> {
  const reader = input.getReader();
  const hash = o.digest ? createSha256() : undefined;
  let total = 0;
  const fail = async (e: SandboxError): Promise<never> => {
    await reader.cancel(e).catch(() => {});
    throw e;
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      const { done, value } = await reader.read();
      if (done) {
        if (o.size !== undefined && total !== o.size) {
          await fail(new SandboxError('SIZE_MISMATCH', `${o.what}: got ${total} bytes, descriptor says ${o.size} (truncated?)`, { data: { expected: o.size, actual: total } }));
        }
        if (hash && o.digest) {
          const actual = `sha256:${hash.digestHex()}`;
          if (actual !== o.digest) {
            await fail(new SandboxError('DIGEST_MISMATCH', `${o.what}: content digest is ${actual}, expected ${o.digest}`, { data: { expected: o.digest, actual } }));
          }
        }
        ctrl.close();
        return;
      }
      total += value.byteLength;
      if (o.size !== undefined && total > o.size) {
        await fail(new SandboxError('SIZE_MISMATCH', `${o.what}: more than the ${o.size} bytes its descriptor says`, { data: { expected: o.size } }));
      }
      if (o.maxBytes !== undefined && total > o.maxBytes) {
        await fail(new SandboxError('LIMIT_EXCEEDED', `${o.what}: larger than the limit of ${o.maxBytes} bytes`, { data: { limit: o.maxBytes } }));
      }
      hash?.update(value);
      ctrl.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/** Checks bytes already in memory against a descriptor. */
export function verifyBytes(data: Uint8Array, d: Pick<Descriptor, 'digest' | 'size'>, what: string): void {
  if (data.byteLength !== d.size) {
    throw new SandboxError('SIZE_MISMATCH', `${what}: got ${data.byteLength} bytes, descriptor says ${d.size}`, { data: { expected: d.size, actual: data.byteLength } });
  }
  const h = createSha256();
  h.update(data);
  const actual = `sha256:${h.digestHex()}`;
  if (actual !== d.digest) {
    throw new SandboxError('DIGEST_MISMATCH', `${what}: content digest is ${actual}, expected ${d.digest}`, { data: { expected: d.digest, actual } });
  }
}

// ---- JSON shapes: validated before use, MALFORMED with the file named otherwise ----

export function parseJson(data: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (e) {
    throw new SandboxError('MALFORMED', `${what}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const malformed = (what: string, why: string) => new SandboxError('MALFORMED', `${what}: ${why}`);

export function asObject(v: unknown, what: string): Record<string, unknown> {
  if (!isObject(v)) throw malformed(what, 'expected a JSON object');
  return v;
}

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw malformed(what, 'annotations must map strings to strings');
  return v as Record<string, string>;
}

export function validatePlatform(v: unknown, what: string): Platform | undefined {
  if (v === undefined) return undefined;
  const o = asObject(v, `${what} platform`);
  if (typeof o.os !== 'string' || typeof o.architecture !== 'string') throw malformed(what, 'platform needs os and architecture strings');
  const p: Platform = { os: o.os, architecture: o.architecture };
  if (typeof o.variant === 'string') p.variant = o.variant;
  if (typeof o['os.version'] === 'string') p['os.version'] = o['os.version'];
  if (isStringArray(o['os.features'])) p['os.features'] = o['os.features'];
  return p;
}

export function validateDescriptor(v: unknown, what: string): Descriptor {
  const o = asObject(v, what);
  if (typeof o.mediaType !== 'string' || o.mediaType === '') throw malformed(what, 'descriptor has no mediaType');
  if (!isDigest(o.digest)) throw malformed(what, `descriptor digest ${JSON.stringify(o.digest)} is not a sha256 digest`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw malformed(what, `descriptor size ${JSON.stringify(o.size)} is not a byte count`);
  const d: Descriptor = { mediaType: o.mediaType, digest: o.digest, size: o.size };
  const platform = validatePlatform(o.platform, what);
  if (platform) d.platform = platform;
  const annotations = stringMap(o.annotations, what);
  if (annotations) d.annotations = annotations;
  if (isStringArray(o.urls)) d.urls = o.urls;
  if (typeof o.artifactType === 'string') d.artifactType = o.artifactType;
  return d;
}

export function validateIndex(v: unknown, what: string): ImageIndex {
  const o = asObject(v, what);
  if (o.schemaVersion !== 2) throw malformed(what, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.manifests)) throw malformed(what, 'index has no manifests array');
  const idx: ImageIndex = { schemaVersion: 2, manifests: o.manifests.map((m, i) => validateDescriptor(m, `${what} manifests[${i}]`)) };
  if (typeof o.mediaType === 'string') idx.mediaType = o.mediaType;
  const annotations = stringMap(o.annotations, what);
  if (annotations) idx.annotations = annotations;
  return idx;
}

export function validateManifest(v: unknown, what: string): ImageManifest {
  const o = asObject(v, what);
  if (o.schemaVersion !== 2) throw malformed(what, `schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.layers)) throw malformed(what, 'manifest has no layers array');
  const m: ImageManifest = {
    schemaVersion: 2,
    config: validateDescriptor(o.config, `${what} config`),
    layers: o.layers.map((l, i) => validateDescriptor(l, `${what} layers[${i}]`)),
  };
  if (typeof o.mediaType === 'string') m.mediaType = o.mediaType;
  if (typeof o.artifactType === 'string') m.artifactType = o.artifactType;
  if (o.subject !== undefined) m.subject = validateDescriptor(o.subject, `${what} subject`);
  const annotations = stringMap(o.annotations, what);
  if (annotations) m.annotations = annotations;
  return m;
}

function optStrings(v: unknown, what: string, field: string): string[] | null | undefined {
  if (v === undefined || v === null) return v as null | undefined;
  if (!isStringArray(v)) throw malformed(what, `${field} must be an array of strings`);
  return v;
}

/** An OCI / docker image config. The JSON is kept whole (unknown fields survive); the used fields are checked. */
export function validateConfig(v: unknown, what: string): ImageConfig {
  const o = asObject(v, what);
  if (typeof o.os !== 'string' || typeof o.architecture !== 'string') throw malformed(what, 'config needs os and architecture strings');
  if (o.variant !== undefined && typeof o.variant !== 'string') throw malformed(what, 'variant must be a string');
  const rootfs = asObject(o.rootfs, `${what} rootfs`);
  if (rootfs.type !== 'layers') throw malformed(what, `rootfs.type ${JSON.stringify(rootfs.type)} is not "layers"`);
  if (!Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every(isDigest)) throw malformed(what, 'rootfs.diff_ids must be an array of sha256 digests');
  if (o.config !== undefined && o.config !== null) {
    const c = asObject(o.config, `${what} config`);
    optStrings(c.Entrypoint, what, 'Entrypoint');
    optStrings(c.Cmd, what, 'Cmd');
    optStrings(c.Env, what, 'Env');
    if (c.WorkingDir !== undefined && typeof c.WorkingDir !== 'string') throw malformed(what, 'WorkingDir must be a string');
    if (c.User !== undefined && typeof c.User !== 'string') throw malformed(what, 'User must be a string');
  }
  return o as unknown as ImageConfig;
}
