import { describe, expect, it, onTestFinished } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { newDir, newFile, newSymlink, type DirInode, type FileInode, type Inode } from '../src/fs/inode.ts';
import { treeVfs } from '../src/fs/tree-vfs.ts';
import * as paths from '../src/fs/paths.ts';
import { applyTar } from '../src/fs/apply-tar.ts';
import type { LayerTree } from '../src/fs/layer-tree.ts';
import { parseDigest } from '../src/loader/digest.ts';
import { makeTar, type FixtureEntry } from './helpers/tar-fixtures.ts';
import { extract } from 'tar-stream';
import { resolvePath } from '../src/fs/resolve.ts';
import { hostDirVfs } from '../src/host/node/host-vfs.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packTree } from '../src/fs/packed-tree.ts';
import { packedVfs } from '../src/fs/packed-vfs.ts';
import { runVfsSuite } from './vfs-suite.ts';
import { rng } from './helpers/rng.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A small lower built through an overlay and then frozen behind a read-only view. */
function sampleLower(): Overlay<unknown> {
  const o = Overlay.prepare();
  const root = o.root();
  const etc = o.mkdir(root, 'etc', 0o755);
  const f = o.createFile(etc, 'hosts', 0o644);
  o.write(f, enc.encode('127.0.0.1 localhost\n'), 0);
  o.link(root, 'hosts-link', f);
  o.symlink(root, 'hosts-sym', 'etc/hosts');
  const usr = o.mkdir(root, 'usr', 0o755);
  o.mkdir(usr, 'bin', 0o755);
  return o;
}

runVfsSuite('Overlay.prepare() over nothing', () => ({ vfs: Overlay.prepare() }));
runVfsSuite('Overlay.prepare() over an overlay', () => ({ vfs: Overlay.prepare(Overlay.view(sampleLower())) }));
runVfsSuite('Overlay.view() over an overlay', () => ({ vfs: Overlay.view(sampleLower()) }));

describe('Overlay basics', () => {
  it('starts with an empty root directory', () => {
    const o = Overlay.prepare();
    expect(o.readdir(o.root())).toEqual([]);
    expect(o.stat(o.root()).kind).toBe('dir');
  });
  it('throws FsError', () => {
    const o = Overlay.prepare();
    expect(() => o.rmdir(o.root(), 'x')).toThrow(FsError);
  });
  it('refuses handles of another overlay with EBADF', () => {
    const a = Overlay.prepare();
    const b = Overlay.prepare();
    const f = a.createFile(a.root(), 'f', 0o644);
    expect(() => b.stat(f)).toThrow(expect.objectContaining({ errno: 'EBADF' }));
    expect(() => b.write(f, new Uint8Array(1), 0)).toThrow(expect.objectContaining({ errno: 'EBADF' }));
    expect(() => b.lookup({}, 'x')).toThrow(expect.objectContaining({ errno: 'EBADF' }));
  });
});

// ---- copy-up over an immutable layer tree

interface LowerSpec {
  [name: string]: string | LowerSpec | { symlink: string } | { hardlink: string };
}

/** A frozen layer-tree root built in code: strings are files, objects directories. */
function buildLower(spec: LowerSpec): { root: DirInode; nextIno: number; byPath: Map<string, Inode> } {
  let ino = 1;
  const meta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_000_000_000n };
  const byPath = new Map<string, Inode>();
  const fill = (dir: DirInode, s: LowerSpec, prefix: string): void => {
    for (const [name, v] of Object.entries(s)) {
      const path = prefix + name;
      let node: Inode;
      if (typeof v === 'string') node = newFile(ino++, { ...meta, mode: 0o644 }, enc.encode(v));
      else if ('symlink' in v && typeof v.symlink === 'string') node = newSymlink(ino++, meta, v.symlink);
      else if ('hardlink' in v && typeof v.hardlink === 'string') {
        node = byPath.get(v.hardlink)!;
        node.nlink++;
      } else {
        const d = newDir(ino++, meta);
        fill(d, v as LowerSpec, path + '/');
        node = d;
        dir.nlink++;
      }
      dir.entries.set(name, node);
      byPath.set(path, node);
    }
  };
  const root = newDir(ino++, meta);
  fill(root, spec, '');
  const freeze = (n: Inode): void => {
    if (Object.isFrozen(n)) return;
    Object.freeze(n);
    if (n.kind === 'dir') for (const c of n.entries.values()) freeze(c);
  };
  freeze(root);
  return { root, nextIno: ino, byPath };
}

const LOWER: LowerSpec = {
  etc: { hosts: '127.0.0.1 localhost\n', passwd: 'root:x:0:0\n' },
  usr: { bin: { sh: 'ELF-sh', ls: 'ELF-ls' }, lib: {} },
  bin: { sh: { hardlink: 'usr/bin/sh' } },
  link: { symlink: 'etc/hosts' },
  readme: 'read me',
};

function text<H>(vfs: Vfs<H>, h: H): string {
  const buf = new Uint8Array(vfs.stat(h).size);
  vfs.read(h, buf, 0);
  return dec.decode(buf);
}

/** The node at `path` (no symlinks followed), or undefined typed as a handle for brevity. */
function at<H>(vfs: Vfs<H>, path: string): H {
  let h = vfs.root();
  for (const c of path.split('/').filter(Boolean)) {
    const next = vfs.lookup(h, c);
    if (next === undefined) return undefined as H;
    h = next;
  }
  return h;
}

function lowerOverlay() {
  const lower = buildLower(LOWER);
  const o = Overlay.prepare(treeVfs(lower.root), { nextIno: lower.nextIno });
  return { o, lower };
}

runVfsSuite('Overlay.prepare over a layer tree', () => ({ vfs: lowerOverlay().o }));
runVfsSuite('Overlay.view over a layer tree', () => ({ vfs: Overlay.view(treeVfs(buildLower(LOWER).root)) }));

describe('Overlay copy-up', () => {
  it('reads without copying anything up', () => {
    const { o } = lowerOverlay();
    expect(text(o, at(o, 'etc/hosts'))).toBe('127.0.0.1 localhost\n');
    expect(o.readdir(at(o, 'usr/bin')).map((e) => e.name)).toEqual(['sh', 'ls']);
    expect(o.readlink(at(o, 'link'))).toBe('etc/hosts');
    o.stat(at(o, 'readme'));
    expect(o.copiedUp).toBe(0);
  });

  it('writing a lower file changes the overlay, never the lower', () => {
    const { o, lower } = lowerOverlay();
    const h = at(o, 'etc/hosts');
    o.write(h, enc.encode('10.0.0.1'), 0);
    expect(text(o, at(o, 'etc/hosts'))).toBe('10.0.0.11 localhost\n');
    expect(dec.decode((lower.byPath.get('etc/hosts') as FileInode).data)).toBe('127.0.0.1 localhost\n');
    const other = Overlay.prepare(treeVfs(lower.root));
    expect(text(other, at(other, 'etc/hosts'))).toBe('127.0.0.1 localhost\n');
    expect(o.stat(h).ino).toBe(lower.byPath.get('etc/hosts')!.ino);
  });

  it('keeps a hard-linked lower file linked after copy-up through either name', () => {
    for (const [writeVia, readVia] of [['usr/bin/sh', 'bin/sh'], ['bin/sh', 'usr/bin/sh']] as const) {
      const { o } = lowerOverlay();
      const before = at(o, readVia);
      o.write(at(o, writeVia), enc.encode('NEW'), 0);
      expect(text(o, at(o, readVia))).toBe('NEW-sh');
      expect(text(o, before)).toBe('NEW-sh');
      expect(at(o, readVia)).toBe(at(o, writeVia));
      expect(o.stat(at(o, readVia)).nlink).toBe(2);
      o.unlink(at(o, 'bin'), 'sh');
      expect(o.stat(at(o, 'usr/bin/sh')).nlink).toBe(1);
    }
  });

  it('an open handle to a lower directory keeps working after a copy-up through another path', () => {
    const { o } = lowerOverlay();
    const etcBefore = at(o, 'etc');
    const hostsBefore = at(o, 'etc/hosts');
    o.createFile(at(o, 'etc'), 'new', 0o644); // copies etc up
    expect(o.copiedUp).toBe(1);
    expect(o.readdir(etcBefore).map((e) => e.name)).toEqual(['hosts', 'passwd', 'new']);
    o.createFile(etcBefore, 'via-old-handle', 0o644);
    expect(o.lookup(at(o, 'etc'), 'via-old-handle')).toBeDefined();
    o.write(at(o, 'etc/hosts'), enc.encode('X'), 0);
    expect(text(o, hostsBefore)).toBe('X27.0.0.1 localhost\n');
    o.write(hostsBefore, enc.encode('Y'), 1);
    expect(text(o, at(o, 'etc/hosts'))).toBe('XY7.0.0.1 localhost\n');
  });

  it('a whiteout hides a lower file and a removed lower directory; the lower keeps them', () => {
    const { o, lower } = lowerOverlay();
    o.unlink(at(o, 'etc'), 'passwd');
    expect(at(o, 'etc/passwd')).toBeUndefined();
    expect(o.readdir(at(o, 'etc')).map((e) => e.name)).toEqual(['hosts']);
    expect(errnoOf(() => o.rmdir(at(o, 'usr'), 'bin'))).toBe('ENOTEMPTY');
    o.rmdir(at(o, 'usr'), 'lib');
    expect(at(o, 'usr/lib')).toBeUndefined();
    const lib = o.mkdir(at(o, 'usr'), 'lib', 0o700);
    expect(o.readdir(lib)).toEqual([]);
    expect((lower.root.entries.get('etc') as DirInode).entries.has('passwd')).toBe(true);
    expect(o.stat(lib).ino).toBeGreaterThanOrEqual(lower.nextIno);
  });

  it('renames lower directories; their content moves along, unchanged in the lower', () => {
    const { o, lower } = lowerOverlay();
    o.rename(o.root(), 'usr', at(o, 'etc'), 'usr2');
    expect(at(o, 'usr')).toBeUndefined();
    expect(text(o, at(o, 'etc/usr2/bin/ls'))).toBe('ELF-ls');
    expect(o.stat(at(o, 'etc')).nlink).toBe(3);
    expect(errnoOf(() => o.rename(at(o, 'etc'), 'usr2', at(o, 'etc/usr2/bin'), 'x'))).toBe('EINVAL');
    expect(lower.root.entries.has('usr')).toBe(true);
  });

  it('copies only metadata on setTimes and shares content until the first write', () => {
    const { o } = lowerOverlay();
    const h = at(o, 'readme');
    o.setTimes(h, 5n, 6n);
    expect(o.stat(h).mtimeNs).toBe(6n);
    expect(text(o, h)).toBe('read me');
    o.setSize(h, 4);
    expect(text(o, h)).toBe('read');
  });

  it('keeps two overlays over the same lower isolated', () => {
    const lower = buildLower(LOWER);
    const a = Overlay.prepare(treeVfs(lower.root));
    const b = Overlay.prepare(treeVfs(lower.root));
    a.write(at(a, 'readme'), enc.encode('A'), 0);
    a.unlink(at(a, 'etc'), 'hosts');
    a.mkdir(a.root(), 'only-a', 0o755);
    expect(text(b, at(b, 'readme'))).toBe('read me');
    expect(at(b, 'etc/hosts')).toBeDefined();
    expect(at(b, 'only-a')).toBeUndefined();
    b.write(at(b, 'readme'), enc.encode('B'), 0);
    expect(text(a, at(a, 'readme'))).toBe('Aead me');
  });

  it('is read-only as a view, whatever the lower', () => {
    const v = Overlay.view(treeVfs(buildLower(LOWER).root));
    expect(errnoOf(() => v.write(at(v, 'readme'), enc.encode('x'), 0))).toBe('EROFS');
    expect(errnoOf(() => v.unlink(at(v, 'etc'), 'hosts'))).toBe('EROFS');
    expect(v.copiedUp).toBe(0);
  });

  it('numbers new nodes above the lower (nextIno from the lower or the option)', () => {
    const lower = buildLower(LOWER);
    const o = Overlay.prepare(treeVfs(lower.root), { nextIno: lower.nextIno });
    const f = o.createFile(o.root(), 'n', 0o644);
    expect(o.stat(f).ino).toBe(lower.nextIno);
    const stacked = Overlay.prepare(Overlay.view(o));
    expect(stacked.stat(stacked.createFile(stacked.root(), 'm', 0o644)).ino).toBe(o.nextIno);
  });

  it('refuses new entries in a removed directory reached through an old handle (ENOENT)', () => {
    const { o } = lowerOverlay();
    const lib = at(o, 'usr/lib');
    const fresh = o.mkdir(o.root(), 'fresh', 0o755);
    o.rmdir(at(o, 'usr'), 'lib');
    o.rmdir(o.root(), 'fresh');
    for (const d of [lib, fresh]) {
      expect(o.stat(d).nlink).toBe(0);
      expect(errnoOf(() => o.createFile(d, 'x', 0o644))).toBe('ENOENT');
      expect(errnoOf(() => o.mkdir(d, 'x', 0o755))).toBe('ENOENT');
      expect(errnoOf(() => o.rename(at(o, 'etc'), 'hosts', d, 'x'))).toBe('ENOENT');
    }
    expect(at(o, 'etc/hosts')).toBeDefined();
  });

  it('uses the injected clock for every change', () => {
    let t = 1000n;
    const o = Overlay.prepare(undefined, { clock: () => (t += 7n) });
    expect(o.stat(o.root()).mtimeNs).toBe(1007n);
    const f = o.createFile(o.root(), 'f', 0o644);
    expect(o.stat(f).mtimeNs).toBe(1014n);
    expect(o.stat(o.root()).mtimeNs).toBe(1014n);
    o.write(f, enc.encode('x'), 0);
    expect(o.stat(f).mtimeNs).toBe(1021n);
    expect(o.stat(f).ctimeNs).toBe(1021n);
    expect(o.stat(f).atimeNs).toBe(1014n);
  });

  it('bounds content with quotaBytes (ENOSPC)', () => {
    const o = Overlay.prepare(undefined, { quotaBytes: 100 });
    const f = o.createFile(o.root(), 'f', 0o644);
    o.write(f, new Uint8Array(60), 0);
    expect(errnoOf(() => o.write(f, new Uint8Array(60), 60))).toBe('ENOSPC');
    o.setSize(f, 10);
    o.write(f, new Uint8Array(60), 10);
    expect(o.stat(f).size).toBe(70);
  });
});

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e.errno;
    throw e;
  }
  return 'none';
}

describe('path helpers over an overlay', () => {
  it('writes, reads, lists and stats by path', () => {
    const o = Overlay.prepare();
    paths.mkdirp(o, '/a/b/c');
    paths.mkdirp(o, 'a/b/c/../d');
    expect(paths.readdir(o, '/a/b')).toEqual(['c', 'd']);
    paths.writeFile(o, '/a/b/c/f.txt', 'hello');
    expect(paths.readText(o, 'a/b/c/f.txt')).toBe('hello');
    paths.writeFile(o, '/a/b/c/f.txt', 'hi');
    expect(paths.readText(o, '/a/b/c/f.txt')).toBe('hi');
    expect(paths.stat(o, '/a/b/c/f.txt').size).toBe(2);
    expect(errnoOf(() => paths.writeFile(o, '/a/b', 'x'))).toBe('EISDIR');
    expect(errnoOf(() => paths.mkdirp(o, '/a/b/c/f.txt/x'))).toBe('ENOTDIR');
    expect(errnoOf(() => paths.readFile(o, '/missing'))).toBe('ENOENT');
    expect(errnoOf(() => paths.stat(o, '/a/' + 'x'.repeat(256)))).toBe('ENAMETOOLONG');
    expect(errnoOf(() => paths.stat(o, '/a/' + '\u20ac'.repeat(86)))).toBe('ENAMETOOLONG');
    expect(errnoOf(() => paths.stat(o, '/a/' + '\u20ac'.repeat(85)))).toBe('ENOENT');
  });

  it('follows symlinks for stat but not lstat, and clamps escapes to the root', () => {
    const o = Overlay.prepare();
    paths.writeFile(o, '/passwd', 'root');
    paths.mkdirp(o, '/etc');
    paths.writeFile(o, '/etc/passwd', 'inside');
    paths.symlink(o, '/../../../etc/passwd', '/escape');
    expect(paths.lstat(o, '/escape').kind).toBe('symlink');
    expect(paths.stat(o, '/escape').kind).toBe('file');
    expect(paths.readText(o, '/escape')).toBe('inside');
    expect(paths.readText(o, '/../../etc/passwd')).toBe('inside');
    expect(paths.exists(o, '/escape')).toBe(true);
    paths.symlink(o, 'nowhere', '/dangling');
    expect(paths.exists(o, '/dangling')).toBe(false);
    expect(errnoOf(() => paths.symlink(o, 'x', '/dangling'))).toBe('EEXIST');
  });

  it('removes recursively, refuses a directory without recursive, ignores missing with force', () => {
    const o = Overlay.prepare(treeVfs(buildLower(LOWER).root));
    expect(errnoOf(() => paths.rm(o, '/usr'))).toBe('EISDIR');
    paths.rm(o, '/usr', { recursive: true });
    expect(paths.exists(o, '/usr')).toBe(false);
    expect(paths.readText(o, '/bin/sh')).toBe('ELF-sh');
    paths.rm(o, '/link');
    expect(paths.exists(o, '/etc/hosts')).toBe(true);
    expect(errnoOf(() => paths.rm(o, '/nope'))).toBe('ENOENT');
    paths.rm(o, '/nope', { force: true });
    expect(errnoOf(() => paths.rm(o, '/', { recursive: true }))).toBe('EINVAL');
    expect(paths.readdir(o, '/')).toEqual(['etc', 'bin', 'readme']);
  });
});

// ---- diff: the upper as an OCI layer tar

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}

async function drain(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

const digestOf = (n: number) => parseDigest('sha256:' + n.toString(16).padStart(64, '0'));

async function layerFrom(entries: FixtureEntry[], parent?: LayerTree): Promise<LayerTree> {
  const n = (parent ? 2 : 1) + Math.floor(Math.random() * 1e6);
  return applyTar(parent, streamOf(await makeTar(entries)), { chainId: digestOf(n), diffId: digestOf(n + 1) });
}

/** Names, kinds, modes, owners, mtimes, contents, targets and hard-link groups that differ. */
function sameTree<A, B>(a: Vfs<A>, b: Vfs<B>): string[] {
  const out: string[] = [];
  const linksA = new Map<number, string>();
  const linksB = new Map<number, string>();
  const walk = (x: A, y: B, path: string): void => {
    const sx = a.stat(x);
    const sy = b.stat(y);
    for (const k of ['kind', 'mode', 'uid', 'gid', 'size', 'nlink', 'rdev'] as const) {
      if (sx[k] !== sy[k]) out.push(`${path}: ${k} ${sx[k]} != ${sy[k]}`);
    }
    if (path !== '' && sx.mtimeNs !== sy.mtimeNs) out.push(`${path}: mtime ${sx.mtimeNs} != ${sy.mtimeNs}`);
    if (sx.kind === 'symlink' && a.readlink(x) !== b.readlink(y)) out.push(`${path}: target`);
    if (sx.kind === 'file' && text(a, x) !== text(b, y)) out.push(`${path}: content`);
    if (sx.kind !== 'dir' && sx.nlink > 1) {
      const fa = linksA.get(sx.ino) ?? (linksA.set(sx.ino, path), path);
      const fb = linksB.get(sy.ino) ?? (linksB.set(sy.ino, path), path);
      if (fa !== fb) out.push(`${path}: linked to ${fa} here, ${fb} there`);
    }
    if (sx.kind === 'dir' && sy.kind === 'dir') {
      const ex = a.readdir(x).map((e) => e.name).sort();
      const ey = b.readdir(y).map((e) => e.name).sort();
      if (ex.join('\0') !== ey.join('\0')) out.push(`${path}/: [${ex}] != [${ey}]`);
      for (const name of ex) {
        const cy = b.lookup(y, name);
        if (cy !== undefined) walk(a.lookup(x, name)!, cy, `${path}/${name}`);
      }
    }
  };
  walk(a.root(), b.root(), '');
  return out;
}

async function tarNames(s: ReadableStream<Uint8Array>): Promise<string[]> {
  const bytes = await drain(s);
  const names: string[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      names.push(h.type === 'link' ? `${h.name} => ${h.linkname}` : h.name);
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(Buffer.from(bytes));
  await done;
  return names;
}

const BASE: FixtureEntry[] = [
  { path: 'etc/' },
  { path: 'etc/hosts', data: '127.0.0.1 localhost\n' },
  { path: 'etc/passwd', data: 'root:x:0:0\n', mode: 0o600 },
  { path: 'usr/' },
  { path: 'usr/bin/' },
  { path: 'usr/bin/busybox', data: 'BB', mode: 0o4755 },
  { path: 'usr/bin/sh', type: 'link', linkname: 'usr/bin/busybox' },
  { path: 'bin/' },
  { path: 'bin/ls', type: 'link', linkname: 'usr/bin/busybox' },
  { path: 'lib/' },
  { path: 'lib/a', data: 'a' },
  { path: 'lib/sub/' },
  { path: 'lib/sub/b', data: 'b' },
  { path: 'lnk', type: 'symlink', linkname: 'etc/hosts' },
  { path: 'data/' },
  { path: 'data/x', data: 'x' },
  { path: 'dev/' },
  { path: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
];

describe('Overlay.diff', () => {
  it('applied on the lower, gives the tree the overlay shows', async () => {
    const lowerTree = await layerFrom(BASE);
    const o = Overlay.overLayerTree(lowerTree, { clock: () => 1_700_000_123_456_789_000n });
    paths.writeFile(o, '/etc/hosts', '10.0.0.1 host\n'); // changed content
    paths.rm(o, '/etc/passwd'); // whiteout
    o.setTimes(at(o, 'data/x'), undefined, 1_650_000_000_000_000_001n); // metadata only
    paths.rm(o, '/lib', { recursive: true }); // removed ...
    paths.mkdirp(o, '/lib'); // ... and recreated: opaque
    paths.writeFile(o, '/lib/new', 'fresh');
    o.rename(o.root(), 'usr', o.root(), 'opt'); // moved lower dir with a hard link inside
    paths.mkdirp(o, '/home/user/deep');
    paths.writeFile(o, '/home/user/deep/f', 'deep file');
    o.link(at(o, 'home/user'), 'hl', at(o, 'home/user/deep/f'));
    paths.symlink(o, '../etc/hosts', '/home/lnk');
    paths.rm(o, '/lnk');
    paths.writeFile(o, '/lnk', 'now a file'); // symlink replaced by a file
    paths.rm(o, '/dev/null');
    paths.mkdirp(o, '/dev/null'); // device replaced by a directory

    const applied = await applyTar(lowerTree, o.diff(), { chainId: digestOf(901), diffId: digestOf(902) });
    expect(sameTree(o, treeVfs(applied))).toEqual([]);
    expect(sameTree(treeVfs(applied), o)).toEqual([]);
  });

  it('writes whiteouts and an opaque marker, and nothing for unchanged lower content', async () => {
    const lowerTree = await layerFrom(BASE);
    const o = Overlay.overLayerTree(lowerTree);
    expect(await tarNames(o.diff())).toEqual([]);
    paths.rm(o, '/etc/passwd');
    paths.rm(o, '/lib', { recursive: true });
    paths.mkdirp(o, '/lib');
    const names = await tarNames(o.diff());
    expect(names).toEqual(['etc', 'etc/.wh.passwd', 'lib', 'lib/.wh..wh..opq']);
  });

  it('keeps hard links linked: copy-up through one name writes the node once', async () => {
    const lowerTree = await layerFrom(BASE);
    const o = Overlay.overLayerTree(lowerTree);
    o.write(at(o, 'bin/ls'), enc.encode('NEW'), 0);
    const names = await tarNames(o.diff());
    expect(names).toEqual(['bin/ls', 'usr/bin/busybox => bin/ls', 'usr/bin/sh => bin/ls']);
    const applied = await applyTar(lowerTree, o.diff(), { chainId: digestOf(903), diffId: digestOf(904) });
    expect(sameTree(o, treeVfs(applied))).toEqual([]);
  });

  it('links a moved name of an unchanged hard-linked file to where the lower still has it', async () => {
    const lowerTree = await layerFrom(BASE);
    const o = Overlay.overLayerTree(lowerTree);
    o.rename(at(o, 'bin'), 'ls', o.root(), 'ls');
    const names = await tarNames(o.diff());
    expect(names).toEqual(['bin', 'bin/.wh.ls', 'ls => usr/bin/busybox']);
    const applied = await applyTar(lowerTree, o.diff(), { chainId: digestOf(905), diffId: digestOf(906) });
    expect(sameTree(o, treeVfs(applied))).toEqual([]);
  });

  it('fails, instead of writing a whiteout by accident, for a name with the .wh. prefix', async () => {
    const o = Overlay.prepare();
    paths.writeFile(o, '/.wh.sneaky', 'x');
    await expect(tarNames(o.diff())).rejects.toThrow(/\.wh\./);
  });

  it('exports an overlay over nothing as a plain tar of everything', async () => {
    const o = Overlay.prepare(undefined, { clock: () => 1_000_000_000_000_000_000n });
    paths.mkdirp(o, '/a/b');
    paths.writeFile(o, '/a/b/f', 'x');
    expect(await tarNames(o.diff())).toEqual(['a', 'a/b', 'a/b/f']);
  });
});

// ---- the conformance suite over lowers built from a tar fixture
const fixtureTree = await layerFrom(BASE);
runVfsSuite('Overlay.prepare over a tar-fixture layer tree', () => ({ vfs: Overlay.overLayerTree(fixtureTree) }));
runVfsSuite('Overlay.view over a tar-fixture layer tree', () => ({ vfs: Overlay.view(treeVfs(fixtureTree)) }));
const fixturePacked = packTree(treeVfs(fixtureTree), { shared: true });
runVfsSuite('Overlay.prepare over packedVfs of a tar-fixture tree', () => ({ vfs: Overlay.prepare(packedVfs(fixturePacked)) }));

describe('packedVfs of a tar-fixture tree', () => {
  it('shows the same tree as the layer tree it was packed from', () => {
    expect(sameTree(treeVfs(fixtureTree), packedVfs(fixturePacked))).toEqual([]);
    expect(sameTree(packedVfs(fixturePacked), treeVfs(fixtureTree))).toEqual([]);
  });
});

describe('Overlay over a packed lower (number handles)', () => {
  it('diffs against the packed lower like against the layer tree', async () => {
    const lowerTree = await layerFrom(BASE);
    const packed = packTree(treeVfs(lowerTree));
    const o = Overlay.prepare(packedVfs(packed), { clock: () => 1_700_000_000_000_000_000n });
    paths.writeFile(o, '/etc/hosts', 'changed');
    paths.rm(o, '/lib', { recursive: true });
    paths.mkdirp(o, '/lib/x');
    o.write(at(o, 'usr/bin/sh'), enc.encode('SH'), 0);
    o.rename(o.root(), 'data', at(o, 'etc'), 'data');
    const f = paths.writeFile(o, '/new', 'n');
    expect(o.stat(at(o, 'lib')).ino).toBe(packed.nextIno);
    expect(o.stat(f).ino).toBe(packed.nextIno + 2);
    expect(packed.nextIno).toBeLessThanOrEqual(lowerTree.nextIno);
    const applied = await applyTar(lowerTree, o.diff(), { chainId: digestOf(907), diffId: digestOf(908) });
    expect(sameTree(o, treeVfs(applied))).toEqual([]);
    expect(sameTree(treeVfs(applied), o)).toEqual([]);
  });
});

// ---- differential: random operations on an overlay over a lower and on a plain copy of that lower

/** Copies every node of `src` into a fresh writable overlay (hard links kept, times kept). */
function plainCopy<H>(src: Vfs<H>): Overlay {
  const dst = Overlay.prepare(undefined, { clock: () => 5n });
  const seen = new Map<number, unknown>();
  const copy = (from: H, to: unknown): void => {
    for (const e of src.readdir(from)) {
      const h = src.lookup(from, e.name)!;
      const st = src.stat(h);
      let made: unknown;
      if (st.kind !== 'dir' && st.nlink > 1 && seen.has(st.ino)) {
        dst.link(to, e.name, seen.get(st.ino));
        continue;
      }
      if (st.kind === 'dir') made = dst.mkdir(to, e.name, st.mode);
      else if (st.kind === 'symlink') made = dst.symlink(to, e.name, src.readlink(h));
      else if (st.kind === 'file') {
        made = dst.createFile(to, e.name, st.mode);
        dst.write(made, readAllOf(src, h), 0);
      } else continue; // devices: not creatable through the Vfs
      if (st.kind !== 'dir' && st.nlink > 1) seen.set(st.ino, made);
      if (st.kind === 'dir') copy(h, made);
      dst.setTimes(made, st.atimeNs, st.mtimeNs);
    }
  };
  copy(src.root(), dst.root());
  return dst;
}

function readAllOf<H>(vfs: Vfs<H>, h: H): Uint8Array {
  const out = new Uint8Array(vfs.stat(h).size);
  vfs.read(h, out, 0);
  return out;
}

function listPaths<H>(vfs: Vfs<H>): { path: string; kind: string }[] {
  const out: { path: string; kind: string }[] = [{ path: '/', kind: 'dir' }];
  const walk = (d: H, prefix: string): void => {
    for (const e of vfs.readdir(d)) {
      const path = `${prefix}/${e.name}`;
      out.push({ path, kind: e.kind });
      if (e.kind === 'dir') walk(vfs.lookup(d, e.name)!, path);
    }
  };
  walk(vfs.root(), '');
  return out;
}

/** Like sameTree, but readdir order must match too. */
function sameOrderedTree<A, B>(a: Vfs<A>, b: Vfs<B>): string[] {
  const out = sameTree(a, b);
  const walk = (x: A, y: B, path: string): void => {
    if (a.stat(x).kind !== 'dir' || b.stat(y).kind !== 'dir') return;
    const ex = a.readdir(x).map((e) => e.name);
    const ey = b.readdir(y).map((e) => e.name);
    if (ex.join('\0') !== ey.join('\0')) out.push(`${path}/: order [${ex}] != [${ey}]`);
    for (const n of ex) {
      const cy = b.lookup(y, n);
      if (cy !== undefined) walk(a.lookup(x, n)!, cy, `${path}/${n}`);
    }
  };
  walk(a.root(), b.root(), '');
  return out;
}

describe('Overlay differential against a plain copy of its lower', () => {
  it('gives the same results, errors and trees for random operation sequences; its diff reproduces it', async () => {
    const withoutDevices = BASE.filter((e) => e.type !== 'character-device');
    const lowerTree = await layerFrom(withoutDevices);
    for (let seed = 1; seed <= 12; seed++) {
      const rand = rng(seed);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      // Odd seeds: over the layer tree (object handles); even seeds: over its packed form (number handles).
      const a: Overlay = seed % 2
        ? Overlay.overLayerTree(lowerTree, { clock: () => 5n })
        : Overlay.prepare(packedVfs(packTree(treeVfs(lowerTree))), { clock: () => 5n });
      const b = plainCopy(treeVfs(lowerTree));
      expect(sameOrderedTree(a, b)).toEqual([]);
      const names = ['hosts', 'passwd', 'sh', 'ls', 'busybox', 'a', 'b', 'x', 'sub', 'bin', 'new'];
      const log: string[] = [];
      for (let step = 0; step < 80; step++) {
        // Mostly existing paths (so operations succeed), sometimes new names.
        const all = listPaths(a);
        const dirs = all.filter((x) => x.kind === 'dir').map((x) => x.path);
        const inDir = (d: string): string => (d === '/' ? '' : d) + '/' + pick(names);
        const p = rand() < 0.7 ? pick(all).path : inDir(pick(dirs));
        const q = rand() < 0.3 ? pick(all).path : inDir(pick(dirs));
        const op = Math.floor(rand() * 9);
        const run = (v: Overlay): string => {
          try {
            switch (op) {
              case 0: paths.writeFile(v, p, `w${step}`); break;
              case 1: paths.mkdirp(v, p); break;
              case 2: paths.rm(v, p, { recursive: true }); break;
              case 3: {
                const from = resolvePath(v, v.root(), p, { followFinal: false, escape: 'clamp' });
                const to = resolvePath(v, v.root(), q, { followFinal: false, escape: 'clamp' });
                v.rename(from.parent, from.name, to.parent, to.name);
                break;
              }
              case 4: {
                const to = resolvePath(v, v.root(), q, { followFinal: false, escape: 'clamp' });
                v.link(to.parent, to.name, resolvePath(v, v.root(), p, { followFinal: false, escape: 'clamp' }).node ?? v.root());
                break;
              }
              case 5: paths.symlink(v, '../x', p); break;
              case 6: v.setSize(resolvePath(v, v.root(), p, { followFinal: true, escape: 'clamp' }).node ?? v.root(), step % 5); break;
              case 7: v.write(resolvePath(v, v.root(), p, { followFinal: true, escape: 'clamp' }).node ?? v.root(), enc.encode('Z'), step % 4); break;
              case 8: v.setTimes(resolvePath(v, v.root(), p, { followFinal: false, escape: 'clamp' }).node ?? v.root(), 7n, BigInt(step)); break;
            }
            return 'ok';
          } catch (e) {
            if (e instanceof FsError) return e.errno;
            throw e;
          }
        };
        const ra = run(a);
        const rb = run(b);
        log.push(`${step}: op ${op} ${p} ${q} -> ${ra}`);
        expect(ra, `seed ${seed}\n${log.join('\n')}`).toBe(rb);
        const diffs = sameOrderedTree(a, b);
        expect(diffs, `seed ${seed}\n${log.join('\n')}`).toEqual([]);
      }
      const applied = await applyTar(lowerTree, a.diff(), { chainId: digestOf(1000 + seed), diffId: digestOf(2000 + seed) });
      expect(sameTree(a, treeVfs(applied)), `seed ${seed} diff\n${log.join('\n')}`).toEqual([]);
    }
  });
});

// ---- differential against the kernel: the same random operations on a host directory (Linux
// semantics through hostDirVfs) and on an overlay over the same tree must give the same errno and
// the same tree (names, kinds, nlink, sizes, contents, symlink targets, hard-link groups).

function copyInto<H, G>(src: Vfs<H>, dst: Vfs<G>): void {
  const seen = new Map<number, G>();
  const copy = (from: H, to: G): void => {
    for (const e of src.readdir(from)) {
      const h = src.lookup(from, e.name)!;
      const st = src.stat(h);
      if (st.kind !== 'dir' && st.nlink > 1 && seen.has(st.ino)) {
        dst.link(to, e.name, seen.get(st.ino)!);
        continue;
      }
      let made: G;
      if (st.kind === 'dir') made = dst.mkdir(to, e.name, st.mode);
      else if (st.kind === 'symlink') made = dst.symlink(to, e.name, src.readlink(h));
      else if (st.kind === 'file') {
        made = dst.createFile(to, e.name, st.mode);
        dst.write(made, readAllOf(src, h), 0);
      } else continue;
      if (st.kind !== 'dir' && st.nlink > 1) seen.set(st.ino, made);
      if (st.kind === 'dir') copy(h, made);
    }
  };
  copy(src.root(), dst.root());
}

function shape<H>(v: Vfs<H>): string[] {
  const out: string[] = [];
  const first = new Map<number, string>();
  const walk = (d: H, p: string): void => {
    for (const n of v.readdir(d).map((e) => e.name).sort()) {
      const h = v.lookup(d, n)!;
      const st = v.stat(h);
      const path = `${p}/${n}`;
      let extra = '';
      if (st.kind === 'file') extra = `size=${st.size} ${dec.decode(readAllOf(v, h))}`;
      if (st.kind === 'symlink') extra = `-> ${v.readlink(h)}`;
      if (st.kind !== 'dir' && st.nlink > 1) {
        const f = first.get(st.ino);
        if (f) extra += ` linked to ${f}`;
        else first.set(st.ino, path);
      }
      out.push(`${path} ${st.kind} nlink=${st.nlink} mode=${st.kind === 'symlink' ? '' : st.mode.toString(8)} ${extra}`);
      if (st.kind === 'dir') walk(h, path);
    }
  };
  walk(v.root(), '');
  return out;
}

const SEEDS = Number(process.env.WASMBOX_FS_SEEDS ?? 10);

describe('Overlay differential against the kernel (host directory)', () => {
  it('gives the errno and the tree Linux gives for random operation sequences', async () => {
    const lowerTree = await layerFrom(BASE.filter((e) => e.type !== 'character-device'));
    const names = ['hosts', 'passwd', 'sh', 'ls', 'busybox', 'a', 'b', 'x', 'sub', 'bin', 'new'];
    const umask = process.umask(0); // modes as asked, as the overlay keeps them
    onTestFinished(() => void process.umask(umask));
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = rng(seed);
      const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const a = Overlay.overLayerTree(lowerTree);
      const dir = mkdtempSync(join(tmpdir(), 'wasmbox-overlay-kernel-'));
      try {
        const b = hostDirVfs(dir, { readOnly: false }) as Vfs<unknown>;
        copyInto(treeVfs(lowerTree), b);
        expect(shape(b)).toEqual(shape(a));
        const log: string[] = [];
        for (let step = 0; step < 80; step++) {
          const all = listPaths(a);
          const dirs = all.filter((x) => x.kind === 'dir').map((x) => x.path);
          const inDir = (d: string): string => (d === '/' ? '' : d) + '/' + pick(names);
          const p = rand() < 0.7 ? pick(all).path : inDir(pick(dirs));
          const q = rand() < 0.3 ? pick(all).path : inDir(pick(dirs));
          const op = Math.floor(rand() * 12);
          const mode = pick([0o755, 0o700, 0o1777, 0o2750, 0o644]);
          const run = <H,>(v: Vfs<H>): string => {
            const at2 = (x: string, follow: boolean) => resolvePath(v, v.root(), x, { followFinal: follow, escape: 'clamp' });
            try {
              switch (op) {
                case 0: paths.writeFile(v, p, `w${step}`); break;
                case 1: paths.mkdirp(v, p); break;
                case 2: paths.rm(v, p, { recursive: true }); break;
                case 3: {
                  const from = at2(p, false);
                  const to = at2(q, false);
                  v.rename(from.parent, from.name, to.parent, to.name);
                  break;
                }
                case 4: {
                  const to = at2(q, false);
                  v.link(to.parent, to.name, at2(p, false).node ?? v.root());
                  break;
                }
                case 5: paths.symlink(v, '../x', p); break;
                case 6: v.setSize(at2(p, true).node ?? v.root(), step % 5); break;
                case 7: v.write(at2(p, true).node ?? v.root(), enc.encode('Z'), step % 4); break;
                case 8: v.setTimes(at2(p, false).node ?? v.root(), 7n, BigInt(step)); break;
                case 9: {
                  const r = at2(p, false);
                  v.rmdir(r.parent, r.name);
                  break;
                }
                case 10: {
                  const r = at2(p, false);
                  v.unlink(r.parent, r.name);
                  break;
                }
                case 11: {
                  const r = at2(p, false);
                  if (r.node === undefined) v.mkdir(r.parent, r.name, mode);
                  else v.createFile(r.parent, r.name, mode);
                  break;
                }
              }
              return 'ok';
            } catch (e) {
              if (e instanceof FsError) return e.errno;
              throw e;
            }
          };
          const ra = run(a);
          const rb = run(b);
          log.push(`${step}: op ${op} ${p} ${q} -> overlay ${ra}, kernel ${rb}`);
          expect(ra, `seed ${seed}\n${log.join('\n')}`).toBe(rb);
          expect(shape(a), `seed ${seed}\n${log.join('\n')}`).toEqual(shape(b));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
