// Bad registries: each failure a typed error (exit 125 from the CLI) and nothing half-written in the store.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSandboxError } from '../src/errors.ts';
import { RegistryClient } from '../src/loader/registry/client.ts';
import { pullImage } from '../src/loader/registry/pull.ts';
import { pushImage } from '../src/loader/registry/push.ts';
import { staticCredentials } from '../src/loader/registry/credentials.ts';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { loadImage } from '../src/loader/store/load.ts';
import { Layout, tagged } from './helpers/image-fixtures.ts';
import { buildBusyboxImage, busyboxAvailable } from './helpers/linux-images.ts';
import { codeOf, ensureBuilt, haveRegistry, listing, removeRegistry, startRegistry, wasmbox, type TestRegistry } from './helpers/registry.ts';

const images = join(import.meta.dirname, '..', 'images');

interface Blob { type: string; bytes: Uint8Array }

/** A tiny registry in node:http serving one repository `demo/hello:latest` from a store's blobs, with faults. */
class FakeRegistry {
  server!: Server;
  port = 0;
  blobs = new Map<string, Blob>();
  tags = new Map<string, string>();
  requests: Array<{ method: string; url: string; authorization?: string }> = [];
  handler?: (req: IncomingMessage, res: ServerResponse) => boolean;

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.requests.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      if (this.handler?.(req, res)) return;
      const m = /^\/v2\/demo\/hello\/(manifests|blobs)\/([^/?]+)$/.exec(req.url!);
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (!m) return void res.writeHead(404).end();
      const ref = m[1] === 'manifests' ? (this.tags.get(m[2]!) ?? m[2]!) : m[2]!;
      const blob = this.blobs.get(ref);
      if (!blob) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: `unknown ${m[2]}` }] }));
      }
      res.writeHead(200, { 'content-type': blob.type, 'content-length': blob.bytes.byteLength, 'docker-content-digest': ref });
      res.end(req.method === 'HEAD' ? undefined : blob.bytes);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Serves the image of `store` named `name` as demo/hello:latest. */
  async serve(store: LayoutStore, name: string, tag = 'latest'): Promise<{ manifest: string; config: string; layers: string[] }> {
    const [img] = await store.get(name);
    const d = img!.descriptor;
    const bytes = await store.readBytes(d);
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as { config: { digest: string; mediaType: string; size: number }; layers: Array<{ digest: string; mediaType: string; size: number }> };
    this.blobs.set(d.digest, { type: d.mediaType, bytes });
    for (const b of [manifest.config, ...manifest.layers]) this.blobs.set(b.digest, { type: 'application/octet-stream', bytes: await store.readBytes(b as never) });
    this.tags.set(tag, d.digest);
    return { manifest: d.digest, config: manifest.config.digest, layers: manifest.layers.map((l) => l.digest) };
  }
}

/** Serves `served` again under `tag` with a config whose first diff_id is wrong (layers untouched). */
function tamperDiffId(fake: FakeRegistry, served: { manifest: string; config: string }, tag: string): string {
  const manifest = JSON.parse(new TextDecoder().decode(fake.blobs.get(served.manifest)!.bytes));
  const config = JSON.parse(new TextDecoder().decode(fake.blobs.get(served.config)!.bytes));
  config.rootfs.diff_ids[0] = `sha256:${'1'.repeat(64)}`;
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  fake.blobs.set(configDigest, { type: 'application/octet-stream', bytes: configBytes });
  manifest.config = { ...manifest.config, digest: configDigest, size: configBytes.byteLength };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  const manifestDigest = `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`;
  fake.blobs.set(manifestDigest, { type: manifest.mediaType, bytes: manifestBytes });
  fake.tags.set(tag, manifestDigest);
  return tag;
}

describe('registry failures against a fake registry (node:http)', () => {
  let dir: string;
  let source: LayoutStore;
  let fake: FakeRegistry;
  let served: { manifest: string; config: string; layers: string[] };

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-err-'));
    source = await LayoutStore.open(join(dir, 'source'));
    await loadImage(source, join(images, 'hello.tar'), { names: ['hello:latest'] });
    fake = new FakeRegistry();
    await fake.start();
    served = await fake.serve(source, 'hello:latest');
  }, 60_000);

  afterAll(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const freshStore = async (name: string) => LayoutStore.open(join(dir, name));

  it('pulls the served image (the fake is a faithful registry when no fault is set)', async () => {
    const store = await freshStore('ok');
    const r = await pullImage(store, `${fake.host}/demo/hello`, { retries: 0 });
    expect(r.image.digest).toBe(served.manifest);
    const accept = fake.requests.find((q) => q.url.includes('/manifests/'));
    expect(accept).toBeDefined();
  });

  it('a store still opening: layers are requested at once, then skipped if the store has them; a store that fails to open fails the pull', async () => {
    const store = await freshStore('opening');
    await pullImage(store, `${fake.host}/demo/hello`, { retries: 0 });
    const before = listing(store.dir);
    const events: string[] = [];
    const later = new Promise<LayoutStore>((r) => setTimeout(() => r(store), 200));
    const r = await pullImage(later, `${fake.host}/demo/hello`, { retries: 0, onProgress: (e) => events.push(`${e.type} ${e.digest}`) });
    expect(r.image.digest).toBe(served.manifest);
    for (const l of served.layers) expect(events).toContain(`skip ${l}`);
    expect(listing(store.dir)).toEqual(before);
    const broken = Promise.reject(new Error('cannot open the store'));
    await expect(pullImage(broken, `${fake.host}/demo/hello`, { retries: 0 })).rejects.toThrow('cannot open the store');
  });

  it('a blob that cannot be published (a directory has its name in blobs/): the pull fails, index.json as it was, nothing staged left, every blob whole', async () => {
    const store = await freshStore('unpublishable');
    const layer = served.layers[0]!;
    mkdirSync(join(store.dir, 'blobs', 'sha256', layer.slice(7)));
    const index = readFileSync(join(store.dir, 'index.json'));
    await expect(pullImage(store, `${fake.host}/demo/hello`, { retries: 0 })).rejects.toThrow();
    expect(readFileSync(join(store.dir, 'index.json'))).toEqual(index);
    expect(readdirSync(join(store.dir, '.wasmbox', 'staging'))).toEqual([]);
    // Blobs renamed before the refused one are complete (each its digest's bytes), never partial.
    for (const name of readdirSync(join(store.dir, 'blobs', 'sha256'))) {
      if (name === layer.slice(7)) continue;
      expect(createHash('sha256').update(readFileSync(join(store.dir, 'blobs', 'sha256', name))).digest('hex')).toBe(name);
    }
  });

  it('404 for a tag: NOT_FOUND with the registry message; CLI exit 125; store untouched', async () => {
    const store = await freshStore('404');
    const before = listing(store.dir);
    expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:nope`, { retries: 0 }))).toBe('NOT_FOUND');
    expect(listing(store.dir)).toEqual(before);
    const r = await wasmbox(store.dir, ['pull', `${fake.host}/demo/hello:nope`]);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/MANIFEST_UNKNOWN: unknown nope/);
    expect(listing(store.dir)).toEqual(before);
  });

  it('a layer whose bytes do not match its digest: DIGEST_MISMATCH, nothing stored', async () => {
    const layer = served.layers[0]!;
    const good = fake.blobs.get(layer)!;
    const bad = good.bytes.slice();
    bad[bad.length - 1]! ^= 0xff;
    fake.blobs.set(layer, { ...good, bytes: bad });
    try {
      const store = await freshStore('mismatch');
      const before = listing(store.dir);
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello`, { retries: 0 }))).toBe('DIGEST_MISMATCH');
      expect(listing(store.dir)).toEqual(before);
      const r = await wasmbox(store.dir, ['pull', '-q', `${fake.host}/demo/hello`]);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/digest/);
      expect(listing(store.dir)).toEqual(before);
    } finally {
      fake.blobs.set(layer, good);
    }
  });

  it('a config whose diff_id does not match the layer: pull stores it (blobs verified), run fails with DIGEST_MISMATCH, exit 125, nothing cached', async () => {
    // As containerd: pull checks each blob's size and digest as it streams in; the diff_id is checked where
    // the layer is unpacked (Layer.open), so the image is stored and refused at run.
    const tag = tamperDiffId(fake, served, 'baddiff');
    const store = await freshStore('baddiff');
    const r = await pullImage(store, `${fake.host}/demo/hello:${tag}`, { retries: 0 });
    expect((await store.list()).map((i) => i.name?.tag)).toEqual(['baddiff']);
    const before = listing(store.dir);
    const run = await wasmbox(store.dir, ['run', `${fake.host}/demo/hello:${tag}`]);
    expect(run.status).toBe(125);
    expect(run.stderr).toMatch(/DIGEST_MISMATCH|digest/i);
    expect(run.stderr).toMatch(/diff_id/);
    expect(run.stdout).toBe('');
    // Nothing derived from the layer is kept (no layer tree, no materialised directory, no blob); the
    // runtime's image-kind hint (keyed by manifest digest, read from the layer's first bytes) may be.
    const kindHint = (line: string) => line.startsWith('.wasmbox/cache/kind/');
    expect(listing(store.dir).filter((l) => !kindHint(l))).toEqual(before.filter((l) => !kindHint(l)));
    // The library reports the same typed error where it unpacks the layer.
    const e = await r.image.layers[0]!.open().then(async (s) => { await new Response(s).arrayBuffer(); }).catch((x: unknown) => x);
    expect(isSandboxError(e) && e.code).toBe('DIGEST_MISMATCH');
  });

  it('a Linux image whose diff_id lies: run fails with DIGEST_MISMATCH, exit 125, and nothing is materialised', async (ctx) => {
    const skip = busyboxAvailable();
    if (skip) return ctx.skip();
    const linuxSource = await freshStore('linux-source');
    await loadImage(linuxSource, `oci:${await buildBusyboxImage(join(dir, 'busybox'))}`, { names: ['busybox:latest'] });
    const tag = tamperDiffId(fake, await fake.serve(linuxSource, 'busybox:latest', 'busybox'), 'busybox-baddiff');
    const store = await freshStore('linux-baddiff');
    const r = await pullImage(store, `${fake.host}/demo/hello:${tag}`, { retries: 0 });
    expect(r.image.kind).toBe('linux');
    const before = listing(store.dir);
    const run = await wasmbox(store.dir, ['run', `${fake.host}/demo/hello:${tag}`, 'true']);
    expect(run.status).toBe(125);
    expect(run.stderr).toMatch(/diff_id/);
    const after = listing(store.dir);
    // No materialised layer (linux/layers/<chainID>) nor a temporary directory of one; the store as it was.
    expect(after.filter((l) => l.startsWith('linux/layers'))).toEqual([]);
    expect(after.filter((l) => !l.startsWith('linux/'))).toEqual(before);
    // The same image with its true diff_id runs, and that is what leaves a materialised layer.
    const good = await wasmbox(store.dir, ['run', `${fake.host}/demo/hello:busybox`, 'true']);
    expect(good.status, good.stderr).toBe(0);
    expect(listing(store.dir).some((l) => l.startsWith('linux/layers/'))).toBe(true);
  }, 60_000);

  it('a manifest asked for by digest whose bytes differ: DIGEST_MISMATCH', async () => {
    const other = '0'.repeat(64);
    fake.blobs.set(`sha256:${other}`, fake.blobs.get(served.manifest)!);
    const store = await freshStore('manifest-mismatch');
    expect(await codeOf(pullImage(store, `${fake.host}/demo/hello@sha256:${other}`, { retries: 0 }))).toBe('DIGEST_MISMATCH');
    expect((await store.list()).length).toBe(0);
  });

  it('a manifest over 4 MiB: LIMIT_EXCEEDED (by Content-Length, and without one)', async () => {
    const big = new Uint8Array(4 * 1024 * 1024 + 10).fill(0x20);
    fake.handler = (req, res) => {
      if (!req.url!.includes('/manifests/big')) return false;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(req.url!.endsWith('chunked') ? {} : { 'content-length': big.byteLength }) });
      res.end(big);
      return true;
    };
    try {
      const store = await freshStore('big');
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:big`, { retries: 0 }))).toBe('LIMIT_EXCEEDED');
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:bigchunked`, { retries: 0 }))).toBe('LIMIT_EXCEEDED');
    } finally {
      fake.handler = undefined;
    }
  });

  it('a registry that hangs: TIMEOUT (headers, and in the middle of a body); CLI exit 125', async () => {
    fake.handler = (req, res) => {
      if (req.url!.includes('/manifests/hang')) return true; // never answers
      if (req.url!.includes(served.layers[0]!)) {
        res.writeHead(200, { 'content-length': 100000 });
        res.write(new Uint8Array(10)); // then nothing more
        return true;
      }
      return false;
    };
    try {
      const store = await freshStore('hang');
      const before = listing(store.dir);
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:hang`, { timeoutMs: 300, retries: 0 }))).toBe('TIMEOUT');
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello`, { timeoutMs: 300, retries: 0 }))).toBe('TIMEOUT');
      expect(listing(store.dir)).toEqual(before);
      const r = await wasmbox(store.dir, ['pull', '--timeout', '300ms', `${fake.host}/demo/hello:hang`]);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/no answer within 300 ms/);
    } finally {
      fake.handler = undefined;
    }
  });

  it('retries 429 and 503 with backoff, then succeeds', async () => {
    let failures = 0;
    fake.handler = (req, res) => {
      if (req.url!.includes('/blobs/') && failures < 3) {
        failures++;
        res.writeHead(failures === 1 ? 429 : 503).end();
        return true;
      }
      return false;
    };
    try {
      const store = await freshStore('retry');
      const r = await pullImage(store, `${fake.host}/demo/hello`, { backoffMs: 10, concurrency: 1 });
      expect(r.image.digest).toBe(served.manifest);
      expect(failures).toBe(3);
    } finally {
      fake.handler = undefined;
    }
  });

  it('a cut connection in the middle of a blob resumes with Range from where it stopped', async () => {
    const layer = served.layers[0]!;
    const bytes = fake.blobs.get(layer)!.bytes;
    const ranges: string[] = [];
    let cut = false;
    fake.handler = (req, res) => {
      if (!req.url!.endsWith(layer)) return false;
      if (req.headers.range) {
        ranges.push(req.headers.range);
        const start = Number(/bytes=(\d+)-/.exec(req.headers.range)![1]);
        res.writeHead(206, { 'content-length': bytes.byteLength - start, 'content-range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` });
        res.end(bytes.subarray(start));
        return true;
      }
      if (cut) return false;
      cut = true;
      res.writeHead(200, { 'content-length': bytes.byteLength });
      res.write(bytes.subarray(0, 1000), () => setTimeout(() => res.destroy(), 50));
      return true;
    };
    try {
      const store = await freshStore('resume');
      const r = await pullImage(store, `${fake.host}/demo/hello`, { backoffMs: 10 });
      expect(r.image.digest).toBe(served.manifest);
      expect(ranges).toEqual(['bytes=1000-']);
    } finally {
      fake.handler = undefined;
    }
  });

  it('follows a blob redirect to another host without sending it the Authorization header', async () => {
    const other = new FakeRegistry();
    await other.start();
    const layer = served.layers[0]!;
    other.handler = (req, res) => {
      res.writeHead(200, { 'content-length': fake.blobs.get(layer)!.bytes.byteLength });
      res.end(fake.blobs.get(layer)!.bytes);
      return true;
    };
    fake.handler = (req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
        return true;
      }
      if (req.url!.endsWith(layer)) {
        // "localhost" is another origin than 127.0.0.1 (a CDN, as registries use for blobs).
        res.writeHead(307, { location: `http://localhost:${other.port}/cdn/blob?sig=1` }).end();
        return true;
      }
      return false;
    };
    try {
      const store = await freshStore('redirect');
      const r = await pullImage(store, `${fake.host}/demo/hello`, { credentials: staticCredentials({ [fake.host]: { username: 'u', password: 'p' } }) });
      expect(r.image.digest).toBe(served.manifest);
      expect(other.requests.map((q) => q.url)).toEqual(['/cdn/blob?sig=1']);
      expect(other.requests[0]!.authorization).toBeUndefined();
      expect(fake.requests.some((q) => q.authorization?.startsWith('Basic '))).toBe(true);
    } finally {
      fake.handler = undefined;
      await other.stop();
    }
  });

  it('push: a big blob goes up in one streamed PUT (no PATCH chunks), sent whole again after a 503', async () => {
    const layout = new Layout();
    const big = randomBytes(17 * 1024 * 1024); // above the size read into memory: streamed from the store
    const img = await layout.image({ layers: [{ entries: [{ path: 'big.bin', data: big }], compression: 'none' }] });
    layout.finish([tagged(img.manifest, 'latest')]);
    const src = await freshStore('push-src');
    await loadImage(src, await layout.writeDir(join(dir, 'push-layout')) + '/', { names: ['big:latest'] });
    const manifest = JSON.parse(new TextDecoder().decode(await src.readBytes((await src.get('big:latest'))[0]!.descriptor))) as { layers: Array<{ digest: string; size: number }> };
    const layer = manifest.layers[0]!;
    const received = new Map<string, Buffer>();
    const log: string[] = [];
    let failedOnce = false;
    fake.handler = (req, res) => {
      const url = new URL(req.url!, 'http://x');
      log.push(`${req.method} ${url.pathname.replace(/sha256:[0-9a-f]+/, 'DIGEST')}`);
      if (req.method === 'HEAD') return void res.writeHead(404).end(), true;
      if (req.method === 'POST') return void res.writeHead(202, { location: `/upload/${log.length}?_state=x` }).end(), true;
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        if (url.pathname.startsWith('/upload/')) {
          const digest = url.searchParams.get('digest')!;
          if (digest === layer.digest && !failedOnce) {
            failedOnce = true;
            return void res.writeHead(503).end();
          }
          if (`sha256:${createHash('sha256').update(body).digest('hex')}` !== digest || url.searchParams.get('_state') !== 'x') return void res.writeHead(400).end();
          received.set(digest, body);
          return void res.writeHead(201).end();
        }
        res.writeHead(201, { 'docker-content-digest': 'sha256:0' }).end();
      });
      return true;
    };
    try {
      await pushImage(src, 'big:latest', `${fake.host}/demo/pushed:1`, { backoffMs: 10 });
      expect(failedOnce).toBe(true);
      expect(received.get(layer.digest)?.byteLength).toBe(layer.size);
      expect(log.filter((l) => l.startsWith('HEAD')).length).toBe(2);
      expect(log.some((l) => l.startsWith('PATCH'))).toBe(false);
    } finally {
      fake.handler = undefined;
    }
  });

  it.skipIf(spawnSync('which', ['openssl']).status !== 0)('HTTPS: a certificate the client does not trust fails at once (NETWORK, not retried)', async () => {
    const certDir = mkdtempSync(join(dir, 'tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    let handshakes = 0; // TCP connections: one, then no retry
    const server = createHttpsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, (_req, res) => res.writeHead(200).end('{}'));
    server.on('connection', () => handshakes++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = new RegistryClient('registry.invalid', { backoffMs: 50, retries: 3 });
      const e = await client.request(`https://127.0.0.1:${(server.address() as { port: number }).port}/v2/`, { scopes: [], what: 'GET /v2/' }).catch((x: unknown) => x);
      expect(isSandboxError(e) && e.code).toBe('NETWORK');
      expect((e as Error).message).toMatch(/certificate/i);
      expect(handshakes).toBe(1);
      client.close();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('401 and 403 with the registry message: UNAUTHORIZED / DENIED; malformed challenge: MALFORMED', async () => {
    fake.handler = (req, res) => {
      if (req.url!.includes('/manifests/locked')) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"', 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return true;
      }
      if (req.url!.includes('/manifests/denied')) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
        return true;
      }
      if (req.url!.includes('/manifests/badchallenge')) {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://x, service=' }).end();
        return true;
      }
      return false;
    };
    try {
      const store = await freshStore('auth-errors');
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:locked`))).toBe('UNAUTHORIZED');
      const withCred = { credentials: staticCredentials({ [fake.host]: { username: 'bob', password: 'x' } }) };
      const e = await pullImage(store, `${fake.host}/demo/hello:locked`, withCred).catch((x: unknown) => x as Error);
      expect((e as { code?: string }).code).toBe('UNAUTHORIZED');
      expect((e as Error).message).toMatch(/as bob: UNAUTHORIZED: authentication required/);
      const d = await pullImage(store, `${fake.host}/demo/hello:denied`).catch((x: unknown) => x as Error);
      expect((d as { code?: string }).code).toBe('DENIED');
      expect((d as Error).message).toMatch(/requested access to the resource is denied/);
      expect(await codeOf(pullImage(store, `${fake.host}/demo/hello:badchallenge`))).toBe('MALFORMED');
      const r = await wasmbox(store.dir, ['pull', `${fake.host}/demo/hello:denied`]);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/denied/);
      expect((await store.list()).length).toBe(0);
    } finally {
      fake.handler = undefined;
    }
  });

  it('plain HTTP only for loopback unless insecure', () => {
    expect(new RegistryClient('127.0.0.1:5000').baseUrl).toBe('http://127.0.0.1:5000');
    expect(new RegistryClient('localhost:5000').baseUrl).toBe('http://localhost:5000');
    expect(new RegistryClient('registry.example:5000').baseUrl).toBe('https://registry.example:5000');
    expect(new RegistryClient('registry.example', { insecure: true }).baseUrl).toBe('http://registry.example');
    expect(new RegistryClient('docker.io').baseUrl).toBe('https://registry-1.docker.io');
  });
});

describe.skipIf(!haveRegistry)('registry stopped and restarted during a pull (docker-registry)', () => {
  let reg: TestRegistry;
  let dir: string;

  beforeAll(async () => {
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-restart-'));
  }, 30_000);

  afterAll(async () => {
    await removeRegistry(reg);
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes the layer and completes; the image is whole', async () => {
    // A 24 MiB uncompressed random layer, pushed with wasmbox push.
    const layout = new Layout();
    const img = await layout.image({ layers: [{ entries: [{ path: 'big.bin', data: randomBytes(24 * 1024 * 1024) }], compression: 'none' }] });
    layout.finish([tagged(img.manifest, 'latest')]);
    const src = await LayoutStore.open(join(dir, 'src'));
    await loadImage(src, await layout.writeDir(join(dir, 'layout')) + '/', { names: ['big:latest'] });
    await pushImage(src, 'big:latest', `${reg.host}/big:latest`);

    const store = await LayoutStore.open(join(dir, 'dst'));
    let restarted: Promise<void> | undefined;
    // A slow reader keeps most of the layer in flight, so stopping the registry cuts the connection.
    const ranges: string[] = [];
    const slowFetch: typeof fetch = async (input, init) => {
      const range = (init?.headers as Record<string, string> | undefined)?.range;
      if (range) ranges.push(range);
      const res = await fetch(input, init);
      if (!res.body || !String(input).includes('/blobs/')) return res;
      const reader = res.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 2));
          const { done, value } = await reader.read();
          if (done) c.close();
          else c.enqueue(value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const r = await pullImage(store, `${reg.host}/big:latest`, {
      fetch: slowFetch,
      backoffMs: 100,
      retries: 8,
      onProgress: (e) => {
        if (e.type === 'bytes' && e.done > 1024 * 1024 && !restarted) {
          restarted = (async () => {
            await reg.stop();
            await new Promise((res) => setTimeout(res, 300));
            await reg.start();
          })();
        }
      },
    });
    await restarted;
    expect(restarted).toBeDefined();
    // The registry went away in the middle of the layer: the pull asked for the rest with Range.
    expect(ranges.length).toBeGreaterThan(0);
    expect(ranges[0]).toMatch(/^bytes=[1-9]\d*-$/);
    const [local] = await src.get('big:latest');
    expect(r.image.digest).toBe(local!.descriptor.digest);
    expect((await store.list()).map((i) => i.name?.repository)).toEqual([`${reg.host}/big`]);
  }, 120_000);
});
