// Several wasmbox processes on one store at once: loads and removals must never corrupt it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Layout, hex, sha, tagged } from './helpers/image-fixtures.ts';
import { ensureBuilt, dirListing, cliBin } from './helpers/cli.ts';

const bin = cliBin;

let tmp: string;
let home: string;

function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [bin, '--home', home, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (status) => res({ status, stdout, stderr }));
  });
}

/** An image archive: a shared base layer (big enough for the loads to overlap) plus its own top layer. */
async function archive(name: string, tag: string): Promise<string> {
  const layout = new Layout();
  const img = await layout.image({
    layers: [
      { entries: [{ path: 'base/blob', data: 'B'.repeat(400_000) }], compression: 'none' },
      { entries: [{ path: `${name}.txt`, data: `${name} `.repeat(50_000) }], compression: 'gzip' },
    ],
  });
  layout.finish([tagged(img.manifest, tag)]);
  const file = join(tmp, `${name}.tar`);
  writeFileSync(file, await layout.toTar());
  return file;
}

/**
 * The store is consistent: index.json parses, every blob an entry reaches is present with the right sha256,
 * and no lock, staging directory or temp file is left behind.
 */
function fsck(): string[] {
  const index = JSON.parse(readFileSync(join(home, 'index.json'), 'utf8'));
  const names: string[] = [];
  const check = (digest: string): Buffer => {
    const p = join(home, 'blobs/sha256', hex(digest));
    expect(existsSync(p), `blob ${digest}`).toBe(true);
    const data = readFileSync(p);
    expect(sha(data)).toBe(digest);
    return data;
  };
  for (const entry of index.manifests) {
    names.push(entry.annotations['org.opencontainers.image.ref.name']);
    const manifest = JSON.parse(check(entry.digest).toString());
    check(manifest.config.digest);
    for (const l of manifest.layers) check(l.digest);
  }
  expect(existsSync(join(home, '.wasmbox/lock'))).toBe(false);
  expect(readdirSync(join(home, '.wasmbox/staging'))).toEqual([]);
  expect(readdirSync(join(home, '.wasmbox/tmp'))).toEqual([]);
  expect(readdirSync(home).filter((f) => f.includes('.tmp-'))).toEqual([]);
  return names.sort();
}

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-conc-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  home = mkdtempSync(join(tmp, 'home-'));
});

describe('concurrent processes on one store', () => {
  it('simultaneous loads (shared layers, one name loaded twice) all land intact', async () => {
    const files = await Promise.all(['a', 'b', 'c'].map((n) => archive(n, `${n}:1`)));
    const results = await Promise.all([...files, files[0]!].map((f) => run('load', '-i', f)));
    for (const r of results) expect(r.status, r.stderr).toBe(0);
    expect(fsck()).toEqual(['a:1', 'b:1', 'c:1']);
  });

  it('a load racing an rmi of an image that shares its base layer keeps every blob it needs', async () => {
    const x = await archive('x', 'x:1');
    const y = await archive('y', 'y:1');
    for (let round = 0; round < 3; round++) {
      expect((await run('load', '-i', x)).status).toBe(0);
      if (round > 0) expect((await run('rmi', 'y:1')).status).toBe(0);
      const [rm, load] = await Promise.all([run('rmi', 'x:1'), run('load', '-i', y)]);
      expect(rm.status, rm.stderr).toBe(0);
      expect(load.status, load.stderr).toBe(0);
      expect(fsck()).toEqual(['y:1']);
    }
  });

  it('an interrupted load (SIGINT, or SIGKILL then any command) leaves the store as it was', async () => {
    const { randomBytes } = await import('node:crypto');
    const layout = new Layout();
    const img = await layout.image({ layers: [{ entries: [{ path: 'noise', data: randomBytes(24 << 20) }], compression: 'gzip' }] });
    layout.finish([tagged(img.manifest, 'big:1')]);
    const dir = await layout.writeDir(join(tmp, 'big-layout'));
    expect((await run('images')).status).toBe(0);
    const before = dirListing(home);
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      const p = spawn(process.execPath, [bin, '--home', home, 'load', '-i', dir], { stdio: 'ignore' });
      const exited = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
      // Wait until the load has staged something, then interrupt it.
      const staging = join(home, '.wasmbox/staging');
      // (a staging directory may go between the two reads: the load committed it)
      const staged = () => readdirSync(staging).some((d) => { try { return readdirSync(join(staging, d)).length > 0; } catch { return false; } });
      for (let i = 0; i < 400 && !staged(); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      p.kill(signal);
      const code = await exited;
      if (signal === 'SIGINT') expect(code).toBe(130);
      expect((await run('images')).status).toBe(0); // the next open removes what a killed load staged
      expect(dirListing(home), signal).toEqual(before);
    }
  });

  it('breaks a lock left by a process that died, and removes what a killed load staged', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const a = await archive('a', 'a:1');
    expect((await run('images')).status).toBe(0); // creates the store
    writeFileSync(join(home, '.wasmbox/lock'), `${dead} ${Date.now()} stale\n`);
    mkdirSync(join(home, `.wasmbox/staging/${dead}-0123456789ab`));
    writeFileSync(join(home, `.wasmbox/staging/${dead}-0123456789ab/${'0'.repeat(64)}`), 'half a blob');
    const r = await run('load', '-i', a);
    expect(r.status, r.stderr).toBe(0);
    expect(fsck()).toEqual(['a:1']);
  });
});
