import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSandboxError } from '../../src/errors.ts';

/** Whether Debian's docker-registry (CNCF distribution) is installed. */
export const haveRegistry = spawnSync('docker-registry', ['--version']).status === 0;
export const haveSkopeo = spawnSync('skopeo', ['--version']).status === 0;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RegistryAuth {
  htpasswd?: string;
  /** Bearer tokens: realm URL, service, issuer, and the PEM bundle of certificates that sign tokens. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface TestRegistry {
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** The environment without REGISTRY_* (each overrides the config file). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

/**
 * Starts `docker-registry serve` on 127.0.0.1 with filesystem storage in a temp dir; `stop()` ends it.
 * (The free port is closed before the registry binds it: another process may take it meanwhile, an
 * outgoing connection's local port among them. Then the registry is started again on another one.)
 */
export async function startRegistry(auth: RegistryAuth = {}): Promise<TestRegistry> {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'wasmbox-registry-'));
    try {
      return await startRegistryOn(dir, await freePort(), auth);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      if (attempt >= 5 || !/address already in use/.test(String((e as Error).message))) throw e;
    }
  }
}

async function startRegistryOn(dir: string, port: number, auth: RegistryAuth): Promise<TestRegistry> {
  const lines = [
    'version: 0.1',
    'log:', '  level: error', '  accesslog:', '    disabled: true',
    'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`, '  delete:', '    enabled: true',
    'http:', `  addr: 127.0.0.1:${port}`,
  ];
  if (auth.htpasswd) {
    writeFileSync(join(dir, 'htpasswd'), auth.htpasswd);
    lines.push('auth:', '  htpasswd:', '    realm: wasmbox-test', `    path: ${join(dir, 'htpasswd')}`);
  } else if (auth.token) {
    writeFileSync(join(dir, 'tokens.pem'), auth.token.rootCertBundle);
    lines.push('auth:', '  token:', `    realm: ${auth.token.realm}`, `    service: ${auth.token.service}`, `    issuer: ${auth.token.issuer}`, `    rootcertbundle: ${join(dir, 'tokens.pem')}`);
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  let child: ChildProcess | undefined;
  let stderr = '';
  const reg: TestRegistry = {
    host: `127.0.0.1:${port}`,
    port,
    dir,
    async start() {
      stderr = '';
      child = spawn('docker-registry', ['serve', config], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
      const closed = new Promise((r) => child!.once('close', r));
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) {
          await closed; // (its last words may come after its exit)
          throw new Error(`docker-registry exited ${child.exitCode}: ${stderr}`);
        }
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(2000) });
          await res.body?.cancel();
          // (another process's server on the port is not ours: ours then exits, and we retry elsewhere)
          if (res.headers.get('docker-distribution-api-version') !== null) return;
          throw new Error('another server answers on the port');
        } catch {
          if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 3000).unref();
      });
    },
  };
  await reg.start();
  const stop = reg.stop;
  reg.stop = async () => stop();
  return reg;
}

/** Stops the registry and removes its storage. */
export async function removeRegistry(reg: TestRegistry | undefined): Promise<void> {
  if (!reg) return;
  await reg.stop();
  rmSync(reg.dir, { recursive: true, force: true });
}

/** Pushes a docker-archive / oci-archive into the registry with skopeo (the reference implementation). */
export function skopeo(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const root = join(import.meta.dirname, '..', '..');

export { ensureBuilt } from './cli.ts';

/** Runs the built CLI without blocking this process's event loop (fake registries in the test answer meanwhile). */
export function wasmbox(home: string, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/wasmbox.cjs'), '--home', home, ...args], { env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.stdin!.end(o.input ?? '');
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Every file under `dir` with its size: what "nothing half-written" is compared against. */
export function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(p);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const full = join(p, n);
      // (a Linux run's scratch directories are removed by its namespace helper just after the CLI exits)
      const st = statSync(full, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(full, `${rel}${n}/`);
      else out.push(`${rel}${n} ${st.size}`);
    }
  };
  walk(dir, '');
  return out;
}

/** The SandboxError code `p` rejects with (anything else, or success, fails the test). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isSandboxError(e)) return e.code;
    throw e;
  }
  throw new Error('expected a failure');
}
