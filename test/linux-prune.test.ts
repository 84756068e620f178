// `rmi` removes the root filesystems materialised from images the store no longer holds, but never one a
// running container uses; which chainIDs the stored images name.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import { EMPTY_ROOTFS_CHAIN_ID, rootfsChainIds } from '../src/loader/store/rootfs-ids.ts';
import { chainIds } from '../src/loader/open-image.ts';
import type { Digest } from '../src/loader/digest.ts';
import type { Descriptor } from '../src/loader/types.ts';
import { MediaType } from '../src/loader/media-types.ts';
import { randomBytes } from 'node:crypto';
import { busyboxAvailable, busyboxEntries, layerTar, openOciDir, tempDir, writeOciLayout } from './helpers/linux-images.ts';

const root = path.resolve(import.meta.dirname, '..');
const work = tempDir('wasmbox-linux-prune-');
const home = path.join(work, 'home');
let busybox = '';
let other = '';
let skipReason = busyboxAvailable();

beforeAll(async () => {
  if (skipReason) return;
  // busybox with a file of this run's own: rmi looks for a root filesystem's chainID in every mount table
  // on the host, where other tests' containers of the plain busybox image (the same chainID) may be running
  const layer = await layerTar([...busyboxEntries(), { type: 'file', name: 'etc/test-run', data: randomBytes(8).toString('hex') }]);
  busybox = writeOciLayout(path.join(work, 'busybox'), [layer], { Cmd: ['sh'] });
  // the same layer under another config: another image, the same materialised root filesystem
  other = writeOciLayout(path.join(work, 'other'), [layer], { Cmd: ['sh', '-c', 'echo other'] });
  const probe = await createLinuxBackend({ home: path.join(work, 'probe-home') }).probe(await openOciDir(busybox));
  if (!probe.ok) skipReason = probe.reason;
  if (!skipReason && !fs.existsSync(path.join(root, 'dist', 'cli.cjs'))) {
    const b = spawnSync(process.execPath, ['build.mjs'], { cwd: root, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`node build.mjs failed: ${b.stderr}`);
  }
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const cli = (args: string[]) => [path.join(root, 'bin', 'wasmbox.cjs'), '--home', home, ...args];
function wasmbox(args: string[]) {
  const r = spawnSync(process.execPath, cli(args), { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const layersDir = path.join(home, 'linux', 'layers');
const materialised = () => (fs.existsSync(layersDir) ? fs.readdirSync(layersDir).sort() : []);
/** Whether a mount table on the host names this root filesystem (a CLI's namespace helper, which holds its
 * container's root, ends a moment after the CLI). */
const mounted = (hex: string) => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((pid) => {
  try { return fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(hex); } catch { return false; }
});

describe('rmi and materialised root filesystems', () => {
  it('the last image that names a root filesystem takes it along; one a running container uses stays until it is free', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    expect(wasmbox(['load', '-q', '-t', 'bb:1', '-i', busybox]).code).toBe(0);
    expect(wasmbox(['tag', 'bb:1', 'bb:2']).code).toBe(0);
    expect(wasmbox(['load', '-q', '-t', 'other:1', '-i', other]).code).toBe(0);
    expect(wasmbox(['run', 'bb:1', 'true']).code).toBe(0);
    const [rootfs] = materialised();
    expect(materialised()).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    // still named by bb:2 and other:1 (same layer)
    expect(wasmbox(['rmi', 'bb:1']).code).toBe(0);
    expect(wasmbox(['rmi', 'bb:2']).code).toBe(0);
    expect(materialised()).toEqual([rootfs]);

    // other:1 is removed while a container of it runs, with a writable root, then one with a read-only
    // root: the directory stays, and the containers read their files to the end
    for (const readOnly of [false, true]) {
      if (readOnly) expect(wasmbox(['load', '-q', '-t', 'other:1', '-i', other]).code).toBe(0);
      const running = spawn(process.execPath, cli(['run', '-i', ...(readOnly ? ['--read-only'] : []), 'other:1', 'sh', '-c', 'echo started; read x; cat /bin/busybox | wc -c']), { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      running.stdout.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => running.on('close', r));
      for (const deadline = Date.now() + 30_000; !out.includes('started') && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
      expect(out, readOnly ? 'read-only' : 'writable').toContain('started');
      expect(wasmbox(['rmi', 'other:1'])).toMatchObject({ code: 0 });
      expect(materialised(), readOnly ? 'read-only' : 'writable').toEqual([rootfs]);
      running.stdin.end('go\n');
      expect(await exited).toBe(0);
      expect(out.trim().split('\n').at(-1)).toBe(String(fs.statSync(fs.realpathSync('/bin/busybox')).size));
    }
    // free now (once the last CLI's namespace helper has gone): the next rmi takes it (and leaves nothing aside)
    for (const deadline = Date.now() + 20_000; mounted(rootfs!) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
    expect(wasmbox(['load', '-q', '-t', 'bb:3', '-i', busybox]).code).toBe(0);
    expect(wasmbox(['rmi', 'bb:3']).code).toBe(0);
    expect(fs.readdirSync(layersDir)).toEqual([]);
    // and a later run materialises it again
    expect(wasmbox(['load', '-q', '-t', 'bb:4', '-i', busybox]).code).toBe(0);
    expect(wasmbox(['run', 'bb:4', 'sh', '-c', 'echo again'])).toMatchObject({ code: 0, stdout: 'again\n' });
    expect(materialised()).toEqual([rootfs]);
  }, 120_000);
});

describe('rootfsChainIds', () => {
  const d = (n: number): Digest => `sha256:${String(n).padStart(64, '0')}` as Digest;
  const desc = (digest: Digest, mediaType: string): Descriptor => ({ digest, mediaType, size: 1 });
  const store = (docs: Map<string, unknown>) => ({
    has: async (x: Digest) => docs.has(x),
    readJson: async (x: Descriptor) => docs.get(x.digest),
  });
  const manifest = (config: Digest) => ({ schemaVersion: 2, config: desc(config, MediaType.ociConfig), layers: [] });

  it('names each image\'s top chainID; an index\'s absent platforms name nothing; an unreadable config makes it unknown', async () => {
    const docs = new Map<string, unknown>([
      [d(1), manifest(d(2))], [d(2), { rootfs: { type: 'layers', diff_ids: [d(10), d(11)] } }],
      [d(3), { schemaVersion: 2, manifests: [desc(d(4), MediaType.ociManifest), desc(d(99), MediaType.ociManifest)] }],
      [d(4), manifest(d(5))], [d(5), { rootfs: { type: 'layers', diff_ids: [] } }],
      [d(6), manifest(d(7))], [d(7), { config: {} }], // a wasm artifact's config: no rootfs
    ]);
    const live = await rootfsChainIds([desc(d(1), MediaType.ociManifest), desc(d(3), MediaType.ociIndex), desc(d(6), MediaType.ociManifest)], store(docs));
    expect(live).toEqual(new Set([chainIds([d(10), d(11)])[1], EMPTY_ROOTFS_CHAIN_ID]));
    docs.set(d(2), 'not a config');
    expect(await rootfsChainIds([desc(d(1), MediaType.ociManifest)], store(docs))).toBeUndefined();
    docs.set(d(2), { rootfs: { diff_ids: ['nope'] } });
    expect(await rootfsChainIds([desc(d(1), MediaType.ociManifest)], store(docs))).toBeUndefined();
  });
});
