// Writing a layer tree to disk (the Linux backend's read-only lower), straight from the in-memory inodes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureMaterialised, writeTree } from '../src/linux-backend/index.ts';
import { makeRdev, newDevice, newDir, newFile, newSlabFile, newSpecial, newSymlink, type DirInode, type Inode } from '../src/fs/inode.ts';
import type { Digest } from '../src/loader/digest.ts';
import { isSandboxError } from '../src/errors.ts';
import { tempDir } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-mat-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const asRoot = process.getuid?.() === 0;
const T = 1_700_000_000_123_456_789n;
const meta = (mode: number, uid = 0, gid = 0) => ({ mode, uid, gid, mtimeNs: T });
let ino = 1;
const dir = (entries: Record<string, Inode>, mode = 0o755, uid = 0, gid = 0): DirInode => {
  const d = newDir(ino++, meta(mode, uid, gid));
  for (const [k, v] of Object.entries(entries)) d.entries.set(k, v);
  return d;
};
const file = (text: string, mode = 0o644, uid = 0, gid = 0) => newFile(ino++, meta(mode, uid, gid), new TextEncoder().encode(text));

describe('writeTree', () => {
  it('writes files, modes (setuid after chown), owners, mtimes, symlinks, hard links, fifos, devices', () => {
    const shared = file('same inode\n');
    shared.nlink = 2;
    const slab = new TextEncoder().encode('xxHELLOyy');
    const root = dir({
      bin: dir({ tool: file('#!/bin/sh\n', 0o4755, 0, 0), sgid: file('g', 0o2711, 0, 50) }),
      home: dir({ app: dir({ notes: file('mine\n', 0o600, 1000, 1000) }, 0o750, 1000, 1000) }),
      links: dir({ a: shared, b: shared, rel: newSymlink(ino++, meta(0o777), 'a'), abs: newSymlink(ino++, meta(0o777), '/etc/shadow') }),
      ro: dir({ inside: file('x') }, 0o555),
      slab: newSlabFile(ino++, meta(0o644), slab, 2, 5),
      fifo: newSpecial(ino++, 'fifo', meta(0o640)),
      null: newDevice(ino++, 'chardev', meta(0o666), makeRdev(1, 3)),
    });
    const dest = path.join(work, 'tree1');
    const stats = writeTree(root, dest);
    expect(stats).toMatchObject({ files: 6, hardLinks: 1, symlinks: 2 });

    expect(fs.readFileSync(path.join(dest, 'slab'), 'utf8')).toBe('HELLO');
    const tool = fs.statSync(path.join(dest, 'bin/tool'));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect(fs.statSync(path.join(dest, 'bin/sgid')).mode & 0o7777).toBe(0o2711);
    const mtimeNs = fs.statSync(path.join(dest, 'bin/tool'), { bigint: true }).mtimeNs;
    expect(mtimeNs > T - 2_000n && mtimeNs < T + 2_000n).toBe(true); // microsecond precision (futimes)
    const a = fs.statSync(path.join(dest, 'links/a'));
    const b = fs.statSync(path.join(dest, 'links/b'));
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    expect(fs.readlinkSync(path.join(dest, 'links/rel'))).toBe('a');
    expect(fs.readlinkSync(path.join(dest, 'links/abs'))).toBe('/etc/shadow');
    expect(fs.statSync(path.join(dest, 'fifo')).isFIFO()).toBe(true);
    expect(fs.statSync(path.join(dest, 'ro')).mode & 0o777).toBe(asRoot ? 0o555 : 0o755);
    // mount points bwrap needs are there even though the tree had none
    for (const d of ['proc', 'dev', 'sys', 'tmp']) expect(fs.statSync(path.join(dest, d)).isDirectory()).toBe(true);
    expect(fs.statSync(path.join(dest, 'tmp')).mode & 0o7777).toBe(0o1777);
    if (asRoot) {
      const notes = fs.statSync(path.join(dest, 'home/app/notes'));
      expect([notes.uid, notes.gid, notes.mode & 0o777]).toEqual([1000, 1000, 0o600]);
      expect(fs.statSync(path.join(dest, 'bin/sgid')).gid).toBe(50);
      const dev = fs.statSync(path.join(dest, 'null'));
      expect(dev.isCharacterDevice()).toBe(true);
      expect(dev.rdev).toBe(makeRdev(1, 3));
    } else {
      expect(stats.skipped).toContain('/null');
    }
  });

  it('refuses names that are not one path component', () => {
    for (const bad of ['..', '.', 'a/b', '']) {
      const root = dir({});
      root.entries.set(bad, file('x'));
      let err: unknown;
      try { writeTree(root, path.join(work, `bad-${Math.random()}`)); } catch (e) { err = e; }
      expect(isSandboxError(err, 'UNSAFE_LAYER')).toBe(true);
    }
    expect(fs.existsSync(path.join(work, '..', 'x'))).toBe(false);
  });
});

describe('ensureMaterialised', () => {
  it('writes once per chainID, atomically, and reuses the directory', async () => {
    const home = path.join(work, 'home');
    const chainId = `sha256:${'ab'.repeat(32)}` as Digest;
    let builds = 0;
    const tree = async () => { builds++; return dir({ f: file('v\n') }); };
    const [a, b] = await Promise.all([ensureMaterialised(home, chainId, tree), ensureMaterialised(home, chainId, tree)]);
    expect(a.dir).toBe(path.join(home, 'linux', 'layers', 'ab'.repeat(32)));
    expect(b.dir).toBe(a.dir);
    expect(fs.readFileSync(path.join(a.dir, 'f'), 'utf8')).toBe('v\n');
    const again = await ensureMaterialised(home, chainId, tree);
    expect(again.created).toBe(false);
    expect(builds).toBeLessThanOrEqual(2);
    expect(fs.readdirSync(path.join(home, 'linux', 'layers'))).toEqual(['ab'.repeat(32)]); // no temp dirs left
  });

  it('leaves nothing behind when the tree is unsafe', async () => {
    const home = path.join(work, 'home2');
    const root = dir({});
    root.entries.set('../escape', file('x'));
    await expect(ensureMaterialised(home, `sha256:${'cd'.repeat(32)}` as Digest, async () => root)).rejects.toMatchObject({ code: 'UNSAFE_LAYER' });
    expect(fs.readdirSync(path.join(home, 'linux', 'layers'))).toEqual([]);
  });
});
