// Auth against the real registry: htpasswd (bcrypt) Basic auth and bearer tokens from a token server
// written here; credentials from `wasmbox login` and from Docker's config.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/loader/registry/client.ts';
import { staticCredentials } from '../src/loader/registry/credentials.ts';
import { pullImage } from '../src/loader/registry/pull.ts';
import { pushImage } from '../src/loader/registry/push.ts';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { loadImage } from '../src/loader/store/load.ts';
import { codeOf, ensureBuilt, haveRegistry, listing, removeRegistry, startRegistry, wasmbox, type TestRegistry } from './helpers/registry.ts';

const images = join(import.meta.dirname, '..', 'images');
const haveHtpasswd = spawnSync('htpasswd', ['-h']).status !== null && spawnSync('which', ['htpasswd']).status === 0;
const haveOpenssl = spawnSync('which', ['openssl']).status === 0;

describe.skipIf(!haveRegistry || !haveHtpasswd)('htpasswd (Basic) auth', () => {
  let reg: TestRegistry;
  let dir: string;
  let store: LayoutStore;

  beforeAll(async () => {
    ensureBuilt();
    const line = execFileSync('htpasswd', ['-Bbn', 'alice', 's3cret pass'], { encoding: 'utf8' });
    reg = await startRegistry({ htpasswd: line });
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-basic-'));
    store = await LayoutStore.open(join(dir, 'home'));
    await loadImage(store, join(images, 'hello.tar'), { names: ['hello:latest'] });
  }, 60_000);

  afterAll(async () => {
    await removeRegistry(reg);
    rmSync(dir, { recursive: true, force: true });
  });

  it('anonymous and wrong passwords are refused (UNAUTHORIZED); the right one pushes and pulls', async () => {
    expect(await codeOf(pushImage(store, 'hello:latest', `${reg.host}/app/hello:1`))).toBe('UNAUTHORIZED');
    const wrong = { credentials: staticCredentials({ [reg.host]: { username: 'alice', password: 'nope' } }) };
    expect(await codeOf(pushImage(store, 'hello:latest', `${reg.host}/app/hello:1`, wrong))).toBe('UNAUTHORIZED');
    const right = { credentials: staticCredentials({ [reg.host]: { username: 'alice', password: 's3cret pass' } }) };
    await pushImage(store, 'hello:latest', `${reg.host}/app/hello:1`, right);
    const fresh = await LayoutStore.open(join(dir, 'pulled'));
    expect(await codeOf(pullImage(fresh, `${reg.host}/app/hello:1`))).toBe('UNAUTHORIZED');
    const r = await pullImage(fresh, `${reg.host}/app/hello:1`, right);
    expect(r.image.kind).toBe('wasm-module');
  });

  it('wasmbox login --password-stdin stores auth.json (0600); pull, run and push use it; logout removes it', async () => {
    const home = join(dir, 'cli');
    const bad = await wasmbox(home, ['login', '-u', 'alice', '--password-stdin', reg.host], { input: 'wrong\n' });
    expect(bad.status).toBe(125);
    expect(bad.stderr).toMatch(/unauthorized/i);
    const ok = await wasmbox(home, ['login', '-u', 'alice', '--password-stdin', reg.host], { input: 's3cret pass\n' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Login Succeeded/);
    const file = join(home, 'auth.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const auths = JSON.parse(readFileSync(file, 'utf8')).auths;
    expect(Buffer.from(auths[reg.host].auth, 'base64').toString()).toBe('alice:s3cret pass');
    const pull = await wasmbox(home, ['pull', '-q', `${reg.host}/app/hello:1`]);
    expect(pull.status, pull.stderr).toBe(0);
    const run = await wasmbox(join(dir, 'cli'), ['run', `${reg.host}/app/hello:1`]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/hello from wasmbox/);
    const tag = await wasmbox(home, ['tag', `${reg.host}/app/hello:1`, `${reg.host}/app/hello:2`]);
    expect(tag.status, tag.stderr).toBe(0);
    const push = await wasmbox(home, ['push', `${reg.host}/app/hello:2`]);
    expect(push.status, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/2: digest: sha256:[0-9a-f]{64} size: \d+/);
    const out = await wasmbox(home, ['logout', reg.host]);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).auths[reg.host]).toBeUndefined();
    const before = listing(home);
    const denied = await wasmbox(home, ['pull', `${reg.host}/app/hello:2`]);
    expect(denied.status).toBe(125);
    expect(listing(home)).toEqual(before);
  }, 60_000);

  it('credentials from Docker\'s config.json (auths, base64 auth field)', async () => {
    const dockerDir = join(dir, 'docker');
    rmSync(dockerDir, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', dockerDir]);
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('alice:s3cret pass').toString('base64') } } }));
    const r = await wasmbox(join(dir, 'docker-home'), ['pull', '-q', `${reg.host}/app/hello:1`], { env: { DOCKER_CONFIG: dockerDir } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${reg.host}/app/hello:1`);
  }, 30_000);

  it('credentials from a Docker credential helper (credHelpers, then credsStore), never from a path', async () => {
    const bin = join(dir, 'helper-bin');
    mkdirSync(bin, { recursive: true });
    const asked = join(dir, 'helper-asked');
    // docker-credential-NAME get: the server URL on stdin, {Username, Secret} on stdout; unknown: exit 1.
    const helper = `#!/bin/sh
read server
echo "$server" >> ${asked}
if [ "$server" = "${reg.host}" ]; then echo '{"ServerURL":"${reg.host}","Username":"alice","Secret":"s3cret pass"}'; exit 0; fi
echo "credentials not found in native keychain"; exit 1
`;
    writeFileSync(join(bin, 'docker-credential-fake'), helper);
    chmodSync(join(bin, 'docker-credential-fake'), 0o755);
    const env = (config: object) => {
      const dockerDir = mkdtempSync(join(dir, 'docker-helper-'));
      writeFileSync(join(dockerDir, 'config.json'), JSON.stringify(config));
      return { DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env.PATH}` };
    };
    for (const config of [{ credHelpers: { [reg.host]: 'fake' } }, { credsStore: 'fake' }]) {
      const r = await wasmbox(mkdtempSync(join(dir, 'helper-home-')), ['pull', '-q', `${reg.host}/app/hello:1`], { env: env(config) });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(readFileSync(asked, 'utf8').split('\n')).toContain(reg.host);
    // A helper name that is a path is ignored, so the pull has no credentials and is refused.
    const path = await wasmbox(mkdtempSync(join(dir, 'helper-home-')), ['pull', '-q', `${reg.host}/app/hello:1`], { env: env({ credsStore: `../${bin}/fake` }) });
    expect(path.status).toBe(125);
  }, 60_000);
});

/** A token server: Basic-authenticates the user, grants the asked scopes (push only to `bob`), signs RS256 with x5c. */
class TokenServer {
  server!: Server;
  port = 0;
  requests: Array<{ scopes: string[]; user?: string; grant?: string; authorization?: string }> = [];
  /** The identity token (OAuth2 refresh token) that stands for bob. */
  static readonly refreshToken = 'bob-identity-token-1';
  constructor(private readonly key: string, private readonly certDer: string, private readonly service: string, private readonly issuer: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.method === 'POST') {
        // OAuth2 (docker's identity tokens): a form with grant_type=refresh_token, scopes space-separated.
        let body = '';
        req.on('data', (b: Buffer) => { body += b.toString(); });
        req.on('end', () => {
          const form = new URLSearchParams(body);
          const ok = req.headers['content-type'] === 'application/x-www-form-urlencoded' && form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === TokenServer.refreshToken;
          this.requests.push({ scopes: (form.get('scope') ?? '').split(' ').filter(Boolean), grant: form.get('grant_type') ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(ok ? { user: 'bob' } : {}) });
          if (!ok) return void res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad refresh token' }] }));
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: this.token((form.get('scope') ?? '').split(' ').filter(Boolean), 'bob'), expires_in: 300 }));
        });
        return;
      }
      const url = new URL(req.url!, 'http://x');
      const scopes = url.searchParams.getAll('scope');
      let user: string | undefined;
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const [u, p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
        if (u !== 'bob' || p !== 'hunter2') {
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad user or password' }] }));
          return;
        }
        user = u;
      }
      this.requests.push({ scopes, ...(user ? { user } : {}), ...(auth ? { authorization: auth } : {}) });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: this.token(scopes, user), expires_in: 300 }));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** A JWT granting the asked scopes (push only to bob), signed RS256 with the certificate in x5c. */
  token(scopes: string[], user: string | undefined): string {
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      const granted = actions!.split(',').filter((a) => a === 'pull' || (a === 'push' && user === 'bob'));
      return { type, name, actions: granted };
    });
    const now = Math.floor(Date.now() / 1000);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const head = b64({ alg: 'RS256', typ: 'JWT', x5c: [this.certDer] });
    const claims = b64({ iss: this.issuer, sub: user ?? '', aud: this.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access });
    const signature = sign('sha256', Buffer.from(`${head}.${claims}`), createPrivateKey(this.key)).toString('base64url');
    return `${head}.${claims}.${signature}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe.skipIf(!haveRegistry || !haveOpenssl)('bearer token auth (token server in the test)', () => {
  let reg: TestRegistry;
  let tokens: TokenServer;
  let dir: string;
  let store: LayoutStore;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-token-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=wasmbox-test-token-signer'], { stdio: 'ignore' });
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const der = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    tokens = new TokenServer(readFileSync(join(dir, 'key.pem'), 'utf8'), der, 'wasmbox-test-registry', 'wasmbox-test-issuer');
    await tokens.start();
    reg = await startRegistry({ token: { realm: `http://127.0.0.1:${tokens.port}/token`, service: 'wasmbox-test-registry', issuer: 'wasmbox-test-issuer', rootCertBundle: certPem } });
    store = await LayoutStore.open(join(dir, 'home'));
    await loadImage(store, join(images, 'hello.tar'), { names: ['hello:latest'] });
  }, 60_000);

  afterAll(async () => {
    await removeRegistry(reg);
    await tokens?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('push with a push-scoped token, anonymous pull with a pull token, cached per scope', async () => {
    const anonymous = await codeOf(pushImage(store, 'hello:latest', `${reg.host}/team/hello:1`));
    expect(['UNAUTHORIZED', 'DENIED']).toContain(anonymous);
    const client = new RegistryClient(reg.host, { credentials: staticCredentials({ [reg.host]: { username: 'bob', password: 'hunter2' } }) });
    tokens.requests = [];
    await pushImage(store, 'hello:latest', `${reg.host}/team/hello:1`, { client });
    expect(tokens.requests.some((r) => r.user === 'bob' && r.scopes.includes('repository:team/hello:pull,push'))).toBe(true);
    const afterPush = tokens.requests.length;
    await pushImage(store, 'hello:latest', `${reg.host}/team/hello:2`, { client });
    expect(tokens.requests.length).toBe(afterPush); // same scopes: the cached token
    const fresh = await LayoutStore.open(join(dir, 'anon'));
    const r = await pullImage(fresh, `${reg.host}/team/hello:1`);
    expect(r.image.kind).toBe('wasm-module');
  });

  it('a cross-repository mount asks for pull on the source repository too', async () => {
    await store.tag('hello:latest', `${reg.host}/team/hello:1`);
    const client = new RegistryClient(reg.host, { credentials: staticCredentials({ [reg.host]: { username: 'bob', password: 'hunter2' } }) });
    tokens.requests = [];
    const events: Array<{ type: string; reason?: string }> = [];
    await pushImage(store, `${reg.host}/team/hello:1`, `${reg.host}/elsewhere/hello:1`, { client, onProgress: (e) => events.push(e) });
    expect(tokens.requests.some((r) => r.scopes.includes('repository:elsewhere/hello:pull,push') && r.scopes.includes('repository:team/hello:pull'))).toBe(true);
    expect(events.some((e) => e.reason === 'mounted')).toBe(true);
  });

  it('an identity token from a credential helper (Username <token>) is exchanged as an OAuth2 refresh_token, never sent as a password', async () => {
    const bin = join(dir, 'helper-bin');
    mkdirSync(bin, { recursive: true });
    const helper = `#!/bin/sh
read server
if [ "$server" = "${reg.host}" ]; then echo '{"ServerURL":"${reg.host}","Username":"<token>","Secret":"${TokenServer.refreshToken}"}'; exit 0; fi
echo "credentials not found in native keychain"; exit 1
`;
    writeFileSync(join(bin, 'docker-credential-idtoken'), helper);
    chmodSync(join(bin, 'docker-credential-idtoken'), 0o755);
    const dockerDir = mkdtempSync(join(dir, 'docker-idtoken-'));
    writeFileSync(join(dockerDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'idtoken' } }));
    const env = { DOCKER_CONFIG: dockerDir, PATH: `${bin}:${process.env.PATH}` };
    const home = mkdtempSync(join(dir, 'idtoken-home-'));
    const load = await wasmbox(home, ['load', '-q', '-i', join(images, 'hello.tar')], { env });
    expect(load.status, load.stderr).toBe(0);
    tokens.requests = [];
    // Pushing needs bob's push scope: only the refresh token grants it.
    const push = await wasmbox(home, ['push', '-q', 'hello:latest', `${reg.host}/team/idtoken:1`], { env });
    expect(push.status, push.stderr).toBe(0);
    const grants = tokens.requests.filter((r) => r.grant === 'refresh_token');
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.every((r) => r.user === 'bob')).toBe(true);
    expect(grants.some((r) => r.scopes.includes('repository:team/idtoken:pull,push'))).toBe(true);
    expect(tokens.requests.some((r) => r.authorization?.startsWith('Basic '))).toBe(false);
    // A token server refusing it: UNAUTHORIZED with the server's message, exit 125.
    const bad = mkdtempSync(join(dir, 'docker-idtoken-bad-'));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ auths: { [reg.host]: { identitytoken: 'revoked' } } }));
    const refused = await wasmbox(home, ['push', '-q', 'hello:latest', `${reg.host}/team/idtoken:2`], { env: { DOCKER_CONFIG: bad } });
    expect(refused.status).toBe(125);
    expect(refused.stderr).toMatch(/bad refresh token/);
  }, 60_000);

  it('a token server refusing the password: UNAUTHORIZED with its message', async () => {
    const client = new RegistryClient(reg.host, { credentials: staticCredentials({ [reg.host]: { username: 'bob', password: 'wrong' } }) });
    const fresh = await LayoutStore.open(join(dir, 'wrong'));
    const e = await pullImage(fresh, `${reg.host}/team/hello:1`, { client }).catch((x: unknown) => x as Error);
    expect((e as { code?: string }).code).toBe('UNAUTHORIZED');
    expect((e as Error).message).toMatch(/bad user or password/);
  });
});
