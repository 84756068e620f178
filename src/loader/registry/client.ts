import { SandboxError, isSandboxError } from '../../errors.ts';
import { readAll } from '../byte-source.ts';
import { sha256, type Digest } from '../digest.ts';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType } from '../media-types.ts';
import type { Descriptor } from '../types.ts';
import { parseChallenge, repositoryScope, type Challenge } from './challenge.ts';
import type { Credential, CredentialProvider } from './credentials.ts';
import { apiHost, isLoopback } from './reference.ts';
import { fetchTransport, type HttpBody, type HttpHeaders, type HttpTransport } from './transport.ts';
import { hostTransport } from '#host/http';

export interface RegistryClientOptions {
  /** Allow plain HTTP (always allowed for loopback registries, tried after HTTPS fails there). */
  insecure?: boolean;
  credentials?: CredentialProvider;
  /** Time allowed for response headers, and for each read of a body (no byte in this long: TIMEOUT). Default 30 s. */
  timeoutMs?: number;
  /** Attempts after the first for 429, 5xx, network errors and cut connections. Default 5. */
  retries?: number;
  /** First backoff delay, doubled each attempt. Default 200 ms. */
  backoffMs?: number;
  /** The fetch to use. Default: node:http with keep-alive on Node, globalThis.fetch in browsers. */
  fetch?: typeof fetch;
  userAgent?: string;
}

export const ACCEPT_MANIFESTS = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

const MAX_REDIRECTS = 5;
/** PATCH chunk size when a blob cannot go up in one streamed PUT. */
const DEFAULT_CHUNK_BYTES = 16 * 1024 ** 2;

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A body that can be sent again on retry (bytes, or a stream opened again). */
  body?: HttpBody;
  /** Token scopes this request needs. */
  scopes: string[];
  /** Names the operation in messages. */
  what: string;
}

/** A response whose body reads are guarded by the idle timeout. */
export interface RegistryResponse {
  status: number;
  headers: HttpHeaders;
  url: string;
  body: ReadableStream<Uint8Array> | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function registryMessage(text: string): string {
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
    if (Array.isArray(doc.errors) && doc.errors.length > 0) {
      return doc.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    }
  } catch {
    // not JSON: use the text
  }
  return text.trim().slice(0, 300);
}

/**
 * A client for one registry host speaking the OCI distribution API over `fetch` (Node 20 and browsers):
 * auth (anonymous, Basic, Bearer tokens from the challenge, cached per scope), retries with backoff,
 * redirects followed by hand so Authorization never goes to another host, and timeouts.
 */
export class RegistryClient {
  readonly registry: string;
  readonly #o: Required<Omit<RegistryClientOptions, 'credentials' | 'fetch' | 'userAgent'>>;
  readonly #transport: HttpTransport;
  readonly #credentials?: CredentialProvider;
  readonly #userAgent?: string;
  #base: string;
  #challenge?: Challenge;
  #credential?: Promise<Credential | undefined>;
  readonly #tokens = new Map<string, Promise<string>>();

  constructor(registry: string, o: RegistryClientOptions = {}) {
    this.registry = registry;
    this.#o = {
      insecure: o.insecure ?? false,
      timeoutMs: o.timeoutMs ?? 30_000,
      retries: o.retries ?? 5,
      backoffMs: o.backoffMs ?? 200,
    };
    this.#transport = o.fetch ? fetchTransport(o.fetch) : (hostTransport() ?? fetchTransport(globalThis.fetch.bind(globalThis)));
    if (o.credentials) this.#credentials = o.credentials;
    if (o.userAgent) this.#userAgent = o.userAgent;
    const plain = this.#o.insecure || isLoopback(registry);
    this.#base = `${plain ? 'http' : 'https'}://${apiHost(registry)}`;
  }

  get baseUrl(): string {
    return this.#base;
  }

  /** Closes idle kept-alive connections (they never keep a process alive; this frees them sooner). */
  close(): void {
    this.#transport.close();
  }

  #credentialFor(): Promise<Credential | undefined> {
    return (this.#credential ??= this.#credentials?.get(this.registry) ?? Promise.resolve(undefined));
  }

  async #authorization(scopes: string[]): Promise<string | undefined> {
    const c = this.#challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') {
      const cred = await this.#credentialFor();
      return cred ? `Basic ${basic(cred)}` : undefined;
    }
    const key = [...new Set(scopes)].sort().join(' ');
    let token = this.#tokens.get(key);
    if (!token) {
      token = this.#fetchToken(c, scopes);
      this.#tokens.set(key, token);
      token.catch(() => this.#tokens.delete(key));
    }
    return `Bearer ${await token}`;
  }

  async #fetchToken(c: Challenge, scopes: string[]): Promise<string> {
    const cred = await this.#credentialFor();
    const res = cred?.identityToken ? await this.#oauthToken(c, scopes, cred.identityToken) : await this.#basicToken(c, scopes, cred);
    const text = await readText(res, 1024 * 1024);
    if (res.status === 401 || res.status === 403) {
      throw new SandboxError(res.status === 401 ? 'UNAUTHORIZED' : 'DENIED', `${this.registry}: token server refused ${cred ? (cred.identityToken ? 'the identity token' : `user ${cred.username}`) : 'anonymous access'}: ${registryMessage(text) || res.status}`, { data: { status: res.status } });
    }
    if (res.status !== 200) throw new SandboxError('NETWORK', `${this.registry}: token server answered ${res.status}: ${registryMessage(text)}`, { data: { status: res.status } });
    let token: unknown;
    try {
      const doc = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = doc.token ?? doc.access_token;
    } catch {
      // below
    }
    if (typeof token !== 'string' || token === '') throw new SandboxError('MALFORMED', `${this.registry}: token server sent no token`);
    return token;
  }

  /** docker's token request: GET realm?service=&scope=, Basic-authenticated when there is a password. */
  #basicToken(c: Challenge, scopes: string[], cred: Credential | undefined): Promise<RegistryResponse> {
    const url = new URL(c.params.realm!);
    if (c.params.service) url.searchParams.set('service', c.params.service);
    for (const s of new Set(scopes)) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (cred && !cred.identityToken) headers.authorization = `Basic ${basic(cred)}`;
    return this.#send(url.toString(), { method: 'GET', headers, scopes: [], what: `token from ${url.origin}` }, false);
  }

  /** An identity token is an OAuth2 refresh token: POST realm with grant_type=refresh_token (as docker does). */
  #oauthToken(c: Challenge, scopes: string[], refreshToken: string): Promise<RegistryResponse> {
    const url = new URL(c.params.realm!);
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'wasmbox' });
    if (c.params.service) form.set('service', c.params.service);
    if (scopes.length > 0) form.set('scope', [...new Set(scopes)].join(' '));
    return this.#send(url.toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new TextEncoder().encode(form.toString()),
      scopes: [],
      what: `token from ${url.origin}`,
    }, false);
  }

  /**
   * One request with auth, retries and redirects. Returns every status but 401 after auth was tried;
   * callers turn the status into errors with `check`.
   */
  async request(path: string, o: RequestOptions): Promise<RegistryResponse> {
    const url = /^https?:\/\//.test(path) ? path : `${this.#base}${path}`;
    let res = await this.#send(url, o, true);
    if (res.status === 401) {
      const header = res.headers.get('www-authenticate');
      await discard(res);
      if (!header) throw new SandboxError('UNAUTHORIZED', `${this.registry}: ${o.what}: 401 Unauthorized without a WWW-Authenticate challenge`);
      const fresh = parseChallenge(header);
      const had = this.#challenge;
      this.#challenge = fresh;
      if (fresh.scheme === 'bearer' && had?.scheme === 'bearer') this.#tokens.clear();
      if (fresh.scheme === 'basic' && !(await this.#credentialFor())) {
        throw new SandboxError('UNAUTHORIZED', `${this.registry}: ${o.what}: authentication required (wasmbox login ${this.registry})`, { data: { status: 401 } });
      }
      res = await this.#send(url, o, true);
      if (res.status === 401) {
        const text = await readText(res, 64 * 1024);
        const cred = await this.#credentialFor();
        throw new SandboxError('UNAUTHORIZED', `${this.registry}: ${o.what}: unauthorized${cred ? ` as ${cred.username}` : ''}: ${registryMessage(text) || '401'}`, { data: { status: 401 } });
      }
    }
    return res;
  }

  /** Sends with retries (429, 5xx, network errors) and manual redirects; Authorization only to the registry's own origin. */
  async #send(url: string, o: RequestOptions, withAuth: boolean): Promise<RegistryResponse> {
    const origin = new URL(url).origin;
    let delay = this.#o.backoffMs;
    for (let attempt = 0; ; attempt++) {
      try {
        let target = url;
        for (let hop = 0; ; hop++) {
          const headers: Record<string, string> = { ...o.headers };
          if (this.#userAgent) headers['user-agent'] = this.#userAgent;
          if (withAuth && new URL(target).origin === origin) {
            const auth = await this.#authorization(o.scopes);
            if (auth) headers.authorization = auth;
          }
          const res = await this.#fetchOnce(target, o.method ?? 'GET', headers, o.body);
          const location = res.headers.get('location');
          if ([301, 302, 303, 307, 308].includes(res.status) && location && ['GET', 'HEAD'].includes(o.method ?? 'GET')) {
            await discard(res);
            if (hop >= MAX_REDIRECTS) throw new SandboxError('NETWORK', `${this.registry}: ${o.what}: more than ${MAX_REDIRECTS} redirects`);
            target = new URL(location, target).toString();
            continue;
          }
          if ((res.status === 429 || res.status >= 500) && attempt < this.#o.retries) {
            const retryAfter = Number(res.headers.get('retry-after'));
            await discard(res);
            await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 10_000) : delay);
            delay *= 2;
            break;
          }
          return res;
        }
      } catch (e) {
        if (isSandboxError(e) || attempt >= this.#o.retries || isCertificateError(e)) throw asNetworkError(e, this.registry, o.what);
        await sleep(delay);
        delay *= 2;
      }
    }
  }

  #fetchOnce(url: string, method: string, headers: Record<string, string>, body?: HttpBody): Promise<RegistryResponse> {
    const timeoutMs = this.#o.timeoutMs;
    const timeoutError = () => new SandboxError('TIMEOUT', `${this.registry}: no answer within ${timeoutMs} ms (${method} ${url})`, { data: { timeoutMs } });
    return this.#transport.request(url, { method, headers, ...(body ? { body } : {}), timeoutMs, timeoutError });
  }

  /** Throws the typed error for a failed status, with the registry's own message. */
  async check(res: RegistryResponse, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.status)) return;
    const text = await readText(res, 64 * 1024).catch(() => '');
    const msg = `${this.registry}: ${what}: ${registryMessage(text) || `status ${res.status}`}`;
    const data = { status: res.status, registry: this.registry };
    if (res.status === 401) throw new SandboxError('UNAUTHORIZED', msg, { data });
    if (res.status === 403) throw new SandboxError('DENIED', msg, { data });
    if (res.status === 404) throw new SandboxError('NOT_FOUND', msg, { data });
    if (res.status === 429 || res.status >= 500) throw new SandboxError('NETWORK', msg, { data });
    throw new SandboxError('INVALID_STATE', `${msg} (status ${res.status})`, { data });
  }

  // ---- the distribution API ----

  /** `GET /v2/`, authenticating as the credentials say (what `docker login` checks). */
  async ping(): Promise<void> {
    const res = await this.request('/v2/', { scopes: [], what: 'GET /v2/' });
    await this.check(res, [200], 'GET /v2/');
    await discard(res);
  }

  /** GET a manifest or index by tag or digest, bounded by `maxBytes`; its digest computed (and checked when asked by digest). */
  async getManifest(repository: string, reference: string, maxBytes = 4 * 1024 ** 2): Promise<{ bytes: Uint8Array; descriptor: Descriptor }> {
    const what = `manifest ${repository}:${reference}`;
    const res = await this.request(`/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT_MANIFESTS }, scopes: [repositoryScope(repository, ['pull'])], what });
    await this.check(res, [200], what);
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (length > maxBytes) {
      await discard(res);
      throw new SandboxError('LIMIT_EXCEEDED', `${this.registry}: ${what}: ${length} bytes is more than the ${maxBytes} allowed`, { data: { limit: maxBytes, size: length } });
    }
    const bytes = await readBytes(res, maxBytes, `${this.registry}: ${what}`);
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new SandboxError('DIGEST_MISMATCH', `${this.registry}: ${what}: content digest is ${digest}`, { data: { expected: reference, actual: digest } });
    }
    let mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    if (![...INDEX_TYPES, ...MANIFEST_TYPES].includes(mediaType)) {
      try {
        const inner = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown }).mediaType;
        if (typeof inner === 'string') mediaType = inner;
      } catch {
        // openImage reports the bad JSON
      }
    }
    return { bytes, descriptor: { mediaType, digest, size: bytes.byteLength } };
  }

  async hasManifest(repository: string, reference: string): Promise<boolean> {
    const what = `manifest ${repository}:${reference}`;
    const res = await this.request(`/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { accept: ACCEPT_MANIFESTS }, scopes: [repositoryScope(repository, ['pull'])], what });
    await discard(res);
    if (res.status === 404) return false;
    await this.check(res, [200], what);
    return true;
  }

  async putManifest(repository: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    const what = `push manifest ${repository}:${reference}`;
    const res = await this.request(`/v2/${repository}/manifests/${reference}`, {
      method: 'PUT', headers: { 'content-type': mediaType }, body: bytes, scopes: [repositoryScope(repository, ['pull', 'push'])], what,
    });
    await this.check(res, [201, 200], what);
    await discard(res);
    return sha256(bytes);
  }

  async hasBlob(repository: string, digest: Digest, scopes: string[] = [repositoryScope(repository, ['pull'])]): Promise<boolean> {
    const what = `blob ${repository}@${digest}`;
    const res = await this.request(`/v2/${repository}/blobs/${digest}`, { method: 'HEAD', scopes, what });
    await discard(res);
    if (res.status === 404) return false;
    await this.check(res, [200], what);
    return true;
  }

  /**
   * The blob's bytes as a stream that survives a cut connection: it asks again from where it stopped
   * with `Range` (or skips what it already has when the registry answers 200). Not verified here:
   * openImage and the store check size and digest.
   */
  async getBlob(repository: string, d: Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    const what = `blob ${repository}@${d.digest}`;
    const scopes = [repositoryScope(repository, ['pull'])];
    const open = async (offset: number): Promise<ReadableStreamDefaultReader<Uint8Array>> => {
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const res = await this.request(`/v2/${repository}/blobs/${d.digest}`, { headers, scopes, what });
      await this.check(res, offset > 0 ? [200, 206] : [200], what);
      if (!res.body) throw new SandboxError('NETWORK', `${this.registry}: ${what}: empty response`);
      const reader = res.body.getReader();
      if (offset > 0 && res.status === 206) {
        const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
        if (Number(start) !== offset) {
          await reader.cancel().catch(() => {});
          throw new SandboxError('NETWORK', `${this.registry}: ${what}: asked to resume at ${offset}, got ${res.headers.get('content-range')}`);
        }
      } else if (offset > 0) {
        await skip(reader, offset);
      }
      return reader;
    };
    let offset = 0;
    let reader = await open(0);
    let resumes = 0;
    let delay = this.#o.backoffMs;
    return new ReadableStream<Uint8Array>({
      pull: async (c) => {
        for (;;) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              c.close();
              return;
            }
            offset += value.byteLength;
            c.enqueue(value);
            return;
          } catch (e) {
            if (isSandboxError(e) || resumes >= this.#o.retries || offset >= d.size) throw asNetworkError(e, this.registry, what);
            resumes++;
            await sleep(delay);
            delay *= 2;
            reader = await open(offset);
          }
        }
      },
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
    }, { highWaterMark: 0 });
  }

  /**
   * Tries a cross-repository mount: true when the registry mounted the blob; otherwise the upload it
   * started instead is cancelled and false returned.
   */
  async mountBlob(repository: string, digest: Digest, from: string): Promise<boolean> {
    const what = `mount ${digest} from ${from} into ${repository}`;
    const res = await this.request(`/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, {
      method: 'POST', scopes: [repositoryScope(repository, ['pull', 'push']), repositoryScope(from, ['pull'])], what,
    });
    await discard(res);
    if (res.status === 201) return true;
    if (res.status === 202) {
      const loc = res.headers.get('location');
      if (loc) {
        const del = await this.request(new URL(loc, res.url).toString(), { method: 'DELETE', scopes: [repositoryScope(repository, ['pull', 'push'])], what: `cancel upload in ${repository}` }).catch(() => undefined);
        if (del) await discard(del);
      }
      return false;
    }
    await this.check(res, [201, 202], what);
    return false;
  }

  /**
   * Uploads a blob: POST to start, then one PUT `?digest=` with the whole body (monolithic; streamed from
   * its source where the transport can stream request bodies, as Node's does), or PATCH chunks of
   * `chunkBytes` and a closing PUT (when `chunkBytes` is given and the blob is bigger, or when a big stream
   * would otherwise have to be held in memory). `read` may be called again for a retry. `onBytes` reports progress.
   */
  async uploadBlob(
    repository: string,
    d: Pick<Descriptor, 'digest' | 'size'>,
    read: () => Promise<Uint8Array | ReadableStream<Uint8Array>>,
    o: { chunkBytes?: number; onBytes?: (n: number) => void } = {},
  ): Promise<void> {
    const what = `upload ${d.digest} to ${repository}`;
    const scopes = [repositoryScope(repository, ['pull', 'push'])];
    const start = await this.request(`/v2/${repository}/blobs/uploads/`, { method: 'POST', scopes, what });
    await this.check(start, [202], what);
    await discard(start);
    let location = uploadLocation(start, what, this.registry);
    let data: Uint8Array | ReadableStream<Uint8Array> | undefined = await read();
    const chunked = o.chunkBytes !== undefined
      ? d.size > o.chunkBytes
      : !(data instanceof Uint8Array) && !this.#transport.streamsBodies && d.size > DEFAULT_CHUNK_BYTES;
    if (!chunked) {
      const first = data;
      const body: HttpBody = first instanceof Uint8Array ? first : {
        size: d.size,
        // The stream already opened for the first attempt, then a fresh one for each retry.
        open: async () => {
          const again = data ?? (await read());
          data = undefined;
          return again instanceof Uint8Array ? singleStream(again) : again;
        },
      };
      const res = await this.request(withDigest(location, d.digest), {
        method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body, scopes, what,
      });
      await this.check(res, [201], what);
      await discard(res);
      o.onBytes?.(d.size);
      return;
    }
    const chunks = data instanceof Uint8Array ? singleStream(data) : data;
    const reader = rechunk(chunks, o.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    let offset = 0;
    for (;;) {
      const { done, value } = await reader.next();
      if (done) break;
      const res = await this.request(location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + value.byteLength - 1}` },
        body: value, scopes, what,
      });
      await this.check(res, [202], what);
      await discard(res);
      location = uploadLocation(res, what, this.registry);
      offset += value.byteLength;
      o.onBytes?.(value.byteLength);
    }
    const done = await this.request(withDigest(location, d.digest), { method: 'PUT', scopes, what });
    await this.check(done, [201], what);
    await discard(done);
  }
}

function basic(c: Credential): string {
  const bytes = new TextEncoder().encode(`${c.username}:${c.password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function uploadLocation(res: RegistryResponse, what: string, registry: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new SandboxError('MALFORMED', `${registry}: ${what}: no Location for the upload`);
  return new URL(loc, res.url).toString();
}

/** Adds `digest=` to an upload URL that may already carry a query (`?_state=...`). */
export function withDigest(location: string, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/** A TLS certificate the client does not trust: asking again cannot help. */
function isCertificateError(e: unknown): boolean {
  const code = String((e as { code?: unknown })?.code ?? (e as { cause?: { code?: unknown } })?.cause?.code ?? '');
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
}

function asNetworkError(e: unknown, registry: string, what: string): SandboxError {
  if (isSandboxError(e)) return e;
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const detail = cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
  return new SandboxError('NETWORK', `${registry}: ${what}: ${detail}`, { cause: e });
}

async function discard(res: RegistryResponse): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

async function readBytes(res: RegistryResponse, limit: number, what: string): Promise<Uint8Array> {
  return res.body ? readAll(res.body, limit, what) : new Uint8Array(0);
}

async function readText(res: RegistryResponse, limit: number): Promise<string> {
  return new TextDecoder().decode(await readBytes(res, limit, 'response'));
}

async function skip(reader: ReadableStreamDefaultReader<Uint8Array>, n: number): Promise<void> {
  while (n > 0) {
    const { done, value } = await reader.read();
    if (done) throw new SandboxError('NETWORK', 'blob ended before the resume point');
    n -= value.byteLength;
    if (n < 0) throw new SandboxError('INTERNAL', 'resume skip crossed a chunk (registry ignored Range)');
  }
}

function singleStream(data: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(c) { c.enqueue(data); c.close(); } });
}

/** Regroups a stream into chunks of exactly `size` bytes (the last one shorter). */
async function* rechunkGen(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let buf = new Uint8Array(size);
  let fill = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let at = 0;
    while (at < value.byteLength) {
      const n = Math.min(size - fill, value.byteLength - at);
      buf.set(value.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield buf;
        buf = new Uint8Array(size);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

function rechunk(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  return rechunkGen(stream, size);
}
