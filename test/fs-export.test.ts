import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyTar } from '../src/fs/apply-tar.ts';
import { exportFlattened } from '../src/fs/export.ts';
import { makeRdev, rdevMajor, rdevMinor, type DirInode, type Inode } from '../src/fs/inode.ts';
import type { LayerTree } from '../src/fs/layer-tree.ts';
import { vfsTarEntries, writeTar, type TarEntry } from '../src/fs/tar-writer.ts';
import { treeVfs } from '../src/fs/tree-vfs.ts';
import { sha256Text, type Digest } from '../src/loader/digest.ts';
import { makeTar, streamOf, type FixtureEntry } from './helpers/tar-fixtures.ts';

const isRoot = process.getuid?.() === 0;
let n = 0;
const ids = (): { chainId: Digest; diffId: Digest } => {
  n++;
  return { chainId: sha256Text(`export chain ${n}`), diffId: sha256Text(`export diff ${n}`) };
};

async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) parts.push(c);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function build(layers: FixtureEntry[][]): Promise<LayerTree> {
  let t: LayerTree | undefined;
  for (const entries of layers) t = await applyTar(t, streamOf(await makeTar(entries)), ids());
  return t!;
}

interface Node {
  kind: Inode['kind'];
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  nlink: number;
  data?: string;
  target?: string;
  rdev?: number;
  /** Smallest path with the same inode (hard-link groups, independent of ino numbers). */
  group: string;
}

/** path -> node description, for any tree; hard links show as a shared `group`. */
function describeTree(t: LayerTree): Map<string, Node> {
  const out = new Map<string, Node>();
  const byIno = new Map<number, string>();
  const walk = (d: DirInode, p: string): void => {
    for (const name of [...d.entries.keys()].sort()) {
      const node = d.entries.get(name)!;
      const path = p ? `${p}/${name}` : name;
      const group = byIno.get(node.ino) ?? path;
      byIno.set(node.ino, group);
      const desc: Node = { kind: node.kind, mode: node.mode, uid: node.uid, gid: node.gid, mtimeNs: node.mtimeNs, nlink: node.nlink, group };
      if (node.kind === 'file') desc.data = new TextDecoder().decode(node.data);
      if (node.kind === 'symlink') desc.target = node.target;
      if (node.kind === 'chardev' || node.kind === 'blockdev') desc.rdev = node.rdev;
      out.set(path, desc);
      if (node.kind === 'dir') walk(node, path);
    }
  };
  walk(t.root, '');
  return out;
}

const LONG = `deep/${'x'.repeat(90)}/${'y'.repeat(90)}/name-longer-than-a-hundred-bytes.txt`;

const LAYERS: FixtureEntry[][] = [
  [
    { path: 'bin/', mode: 0o755 },
    { path: 'bin/busybox', data: 'BUSYBOX', mode: 0o4755 },
    { path: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
    { path: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
    { path: 'bin/env', type: 'symlink', linkname: '/usr/bin/env' },
    { path: 'usr/bin/wall', data: 'wall', mode: 0o2755, gid: 5 },
    { path: 'tmp/', mode: 0o1777 },
    { path: 'etc/shadow', data: 'root:*:', mode: 0o000, gid: 42 },
    { path: 'etc/passwd', data: 'root:x:0:0', mode: 0o644, mtimeNs: 1_600_000_000_123_456_789n },
    { path: 'etc/old', data: 'to be whited out' },
    { path: 'home/u/', mode: 0o700, uid: 1000, gid: 1000 },
    { path: 'home/u/big-id', data: 'id', uid: 300_000, gid: 300_001 },
    { path: 'opt/lower/a', data: 'a' },
    { path: 'opt/lower/b', data: 'b' },
    { path: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
    { path: 'dev/loop0', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 0, gid: 6 },
    { path: 'run/initctl', type: 'fifo', mode: 0o600 },
    { path: LONG, data: 'long' },
    { path: 'lib/long-link', type: 'symlink', linkname: `../${'t'.repeat(150)}` },
    { path: 'empty', data: '' },
    { path: 'ünï/名前.txt', data: 'utf-8 name' },
  ],
  [
    { path: 'etc/.wh.old', data: '' },
    { path: 'opt/lower/.wh..wh..opq', data: '' },
    { path: 'opt/lower/c', data: 'c' },
    { path: 'bin/ls', data: 'a real ls now', mode: 0o755 },
    { path: 'usr/bin/wall2', type: 'link', linkname: 'usr/bin/wall' },
    { path: 'etc/passwd', data: 'root:x:0:0:new', mode: 0o644, mtimeNs: 1_700_000_000_000_000_001n },
  ],
];

describe('export round trip', () => {
  let top: LayerTree;
  let exported: Uint8Array;
  let dir: string;
  let tarFile: string;

  beforeAll(async () => {
    top = await build(LAYERS);
    exported = await collect(exportFlattened(top));
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-export-'));
    tarFile = join(dir, 'rootfs.tar');
    writeFileSync(tarFile, exported);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the flattened tree has the merged view (no whiteouts)', () => {
    const d = describeTree(top);
    expect(d.has('etc/old')).toBe(false);
    expect([...d.keys()].some((p) => p.includes('.wh.'))).toBe(false);
    expect(d.get('opt/lower/a')).toBeUndefined();
    expect(d.get('opt/lower/c')?.data).toBe('c');
    expect(d.get('bin/busybox')!.nlink).toBe(2);
    expect(d.get('bin/sh')!.group).toBe('bin/busybox');
    expect(d.get('bin/ls')!.group).toBe('bin/ls');
    expect(d.get('usr/bin/wall')!.nlink).toBe(2);
  });

  test('applyTar reads the export back to the same tree', async () => {
    const again = await applyTar(undefined, streamOf(exported, 999), ids());
    expect(describeTree(again)).toEqual(describeTree(top));
  });

  test('system tar -tvf lists the same members, modes, owners, links and devices', () => {
    const out = execFileSync('tar', ['--numeric-owner', '--quoting-style=literal', '-tvf', tarFile], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' },
    });
    const listed = new Map<string, { perms: string; owner: string; rest: string }>();
    for (const line of out.trim().split('\n')) {
      const m = /^(\S{10}) (\d+)\/(\d+)\s+(\S+) (\S+ \S+) (.*)$/.exec(line);
      expect(m, line).not.toBeNull();
      const [, perms, uid, gid, , , rest] = m!;
      const name = rest!.replace(/ (->|link to) .*$/, '').replace(/\/$/, '');
      listed.set(name, { perms: perms!, owner: `${uid}/${gid}`, rest: rest! });
    }
    const expected = describeTree(top);
    expect(new Set(listed.keys())).toEqual(new Set(expected.keys()));
    for (const [path, node] of expected) {
      const l = listed.get(path)!;
      const firstOfGroup = node.group === path;
      const typeChar = !firstOfGroup ? 'h' : { file: '-', dir: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's' }[node.kind];
      expect(l.perms, path).toBe(typeChar + permString(node.mode));
      expect(l.owner, path).toBe(`${node.uid}/${node.gid}`);
      if (node.kind === 'symlink') expect(l.rest).toBe(`${path} -> ${node.target}`);
      if (!firstOfGroup) expect(l.rest).toBe(`${path} link to ${node.group}`);
    }
    expect(out).toMatch(/crw-rw-rw- 0\/0\s+1,3 /);
    expect(out).toMatch(/brw-rw---- 0\/6\s+7,0 /);
  });

  test('system tar -xpf gives the same files, modes, owners, times, symlinks and hard links', () => {
    const root = join(dir, 'x');
    execFileSync('mkdir', ['-p', root]);
    const args = ['-xpf', tarFile, '-C', root, '--numeric-owner'];
    if (isRoot) args.push('--same-owner');
    else args.push('--exclude=dev/*');
    execFileSync('tar', args, { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    const expected = describeTree(top);
    const seen = new Map<string, string>();
    const inoGroup = new Map<bigint, string>();
    const walk = (p: string): void => {
      for (const name of readdirSync(join(root, p)).sort()) {
        const rel = p ? `${p}/${name}` : name;
        const st = lstatSync(join(root, rel), { bigint: true });
        seen.set(rel, '');
        const node = expected.get(rel);
        expect(node, rel).toBeDefined();
        expect(Number(st.mode & 0o7777n), rel).toBe(node!.kind === 'symlink' ? 0o777 : node!.mode);
        if (isRoot) expect(`${st.uid}:${st.gid}`, rel).toBe(`${node!.uid}:${node!.gid}`);
        if (node!.kind !== 'symlink') expect(st.mtimeNs, rel).toBe(node!.mtimeNs);
        if (st.isSymbolicLink()) expect(readlinkSync(join(root, rel)), rel).toBe(node!.target);
        if (st.isFile()) {
          expect(readFileSync(join(root, rel), 'utf8'), rel).toBe(node!.data);
          const group = inoGroup.get(st.ino) ?? rel;
          inoGroup.set(st.ino, group);
          expect(group, rel).toBe(node!.group);
          expect(Number(st.nlink), rel).toBe(node!.nlink);
        }
        if (st.isCharacterDevice() || st.isBlockDevice()) {
          expect(node!.kind).toBe(st.isCharacterDevice() ? 'chardev' : 'blockdev');
          expect(Number(st.rdev)).toBe(node!.rdev);
        }
        if (st.isFIFO()) expect(node!.kind).toBe('fifo');
        if (st.isDirectory()) walk(rel);
      }
    };
    walk('');
    const wanted = [...expected.keys()].filter((p) => isRoot || !p.startsWith('dev/'));
    expect(new Set(seen.keys())).toEqual(new Set(wanted));
  });

  test('the same tree gives the same bytes, whatever the order the layer listed it in', async () => {
    const again = await collect(exportFlattened(top));
    expect(again).toEqual(exported);
    const shuffled = [...LAYERS[0]!].reverse().filter((e) => e.type !== 'link');
    const links = LAYERS[0]!.filter((e) => e.type === 'link');
    const other = await build([[...shuffled, ...links], LAYERS[1]!]);
    expect(await collect(exportFlattened(other))).toEqual(exported);
  });

  test('directories come before their children and hard links after their target', async () => {
    const out = execFileSync('tar', ['-tf', tarFile], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } })
      .trim()
      .split('\n');
    const index = new Map(out.map((p, i) => [p.replace(/\/$/, ''), i]));
    for (const [p, i] of index) {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (parent) expect(index.get(parent)!, p).toBeLessThan(i);
    }
    expect(index.get('bin/busybox')!).toBeLessThan(index.get('bin/sh')!);
  });
});

describe('writeTar', () => {
  test('PAX for nanosecond, negative and post-2038 times, big ids, long and non-ASCII names; mode 0', async () => {
    const entries: TarEntry[] = [
      { path: 'd', kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n },
      { path: 'd/ns', kind: 'file', mode: 0o640, uid: 1, gid: 2, mtimeNs: 1_234_567_890_987_654_321n, data: new Uint8Array([1, 2, 3]) },
      { path: 'd/neg', kind: 'file', mode: 0, uid: 0, gid: 0, mtimeNs: -1_500_000_000n, data: new Uint8Array(0) },
      { path: 'd/future', kind: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: 4_102_444_800_000_000_000n },
      { path: 'd/big', kind: 'file', mode: 0o644, uid: 4_000_000, gid: 300_000, mtimeNs: 0n },
      { path: `d/${'é'.repeat(120)}`, kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtimeNs: 0n, linkTarget: 'ü'.repeat(80) },
      { path: 'd/tty', kind: 'chardev', mode: 0o620, uid: 0, gid: 5, mtimeNs: 0n, rdev: makeRdev(136, 300) },
    ];
    const bytes = await collect(writeTar(entries));
    const t = await applyTar(undefined, streamOf(bytes), ids());
    const d = t.root.entries.get('d') as DirInode;
    expect(d.entries.get('ns')).toMatchObject({ mode: 0o640, uid: 1, gid: 2, mtimeNs: 1_234_567_890_987_654_321n, size: 3 });
    expect(d.entries.get('neg')).toMatchObject({ mode: 0, mtimeNs: -1_500_000_000n });
    expect(d.entries.get('future')).toMatchObject({ mtimeNs: 4_102_444_800_000_000_000n });
    expect(d.entries.get('big')).toMatchObject({ uid: 4_000_000, gid: 300_000 });
    expect(d.entries.get('é'.repeat(120))).toMatchObject({ kind: 'symlink', target: 'ü'.repeat(80) });
    const tty = d.entries.get('tty') as Inode & { rdev: number };
    expect([rdevMajor(tty.rdev), rdevMinor(tty.rdev)]).toEqual([136, 300]);
    const dir = mkdtempSync(join(tmpdir(), 'wasmbox-wt-'));
    try {
      writeFileSync(join(dir, 't.tar'), bytes);
      const out = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', join(dir, 't.tar')], {
        encoding: 'utf8',
        env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC' },
      });
      expect(out).toMatch(/-rw-r----- 1\/2\s+3 2009-02-13 23:31:30\.987654321 d\/ns/);
      // GNU tar writes -1.5 s as "mtime=-1.5" too (its listing shows that as 23:59:59.5; extraction gives 58.5).
      expect(out).toMatch(/---------- 0\/0\s+0 1969-12-31 \S+\s+d\/neg/);
      expect(new TextDecoder().decode(bytes)).toContain('mtime=-1.500000000\n');
      expect(out).toMatch(/2100-01-01 00:00:00\s+d\/future/);
      expect(out).toMatch(/-rw-r--r-- 4000000\/300000 /);
      expect(out).toMatch(/crw--w---- 0\/5\s+136,300 /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('vfsTarEntries with a start directory and a prefix', async () => {
    const t = await build([[{ path: 'app/bin/tool', data: 't' }, { path: 'app/lib/x', data: 'x' }, { path: 'other', data: 'o' }]]);
    const vfs = treeVfs(t);
    const app = vfs.lookup(vfs.root(), 'app')!;
    const paths = [...vfsTarEntries(vfs, app, 'srv/app')].map((e) => `${e.kind} ${e.path}`);
    expect(paths).toEqual(['dir srv/app', 'dir srv/app/bin', 'file srv/app/bin/tool', 'dir srv/app/lib', 'file srv/app/lib/x']);
  });

  test('an image without tar layers exports an empty tar', async () => {
    const bytes = await collect(exportFlattened(undefined));
    expect(bytes.length).toBe(1024);
    expect(bytes.every((b) => b === 0)).toBe(true);
    const t = await applyTar(undefined, streamOf(bytes), ids());
    expect(t.root.entries.size).toBe(0);
  });

  test('a failing entry source errors the stream', async () => {
    async function* bad(): AsyncGenerator<TarEntry> {
      yield { path: 'ok', kind: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, data: new Uint8Array(1) };
      throw new Error('source broke');
    }
    await expect(collect(writeTar(bad()))).rejects.toThrow('source broke');
    await expect(collect(writeTar([{ path: '/abs', kind: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n }]))).rejects.toThrow(/relative/);
  });
});

function permString(mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? (special ? ch : 'x') : special ? ch.toUpperCase() : '-');
  return (
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

describe('tars written by GNU tar', () => {
  test.each(['gnu', 'posix', 'ustar'])('--format=%s reads back as the directory it came from', async (format) => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmbox-gnutar-'));
    try {
      const src = join(dir, 'src');
      const longDir = 'l'.repeat(60) + '/' + 'm'.repeat(60);
      mkdirSync(join(src, longDir), { recursive: true });
      mkdirSync(join(src, 'bin'));
      writeFileSync(join(src, 'bin/tool'), 'tool bytes');
      chmodSync(join(src, 'bin/tool'), 0o4755);
      linkSync(join(src, 'bin/tool'), join(src, 'bin/tool-alias'));
      symlinkSync('tool', join(src, 'bin/link'));
      writeFileSync(join(src, longDir, 'file-with-a-long-name.txt'), 'deep');
      mkdirSync(join(src, 'sticky'));
      chmodSync(join(src, 'sticky'), 0o1777);
      utimesSync(join(src, 'bin/tool'), 1_600_000_000, 1_600_000_000);
      const tarFile = join(dir, 'layer.tar');
      execFileSync('tar', [`--format=${format}`, '--numeric-owner', '-cf', tarFile, '-C', src, '.']);
      const t = await applyTar(undefined, streamOf(new Uint8Array(readFileSync(tarFile)), 3000), ids());
      const d = describeTree(t);
      const onDisk = new Map<string, string>();
      const walk = (p: string): void => {
        for (const name of readdirSync(join(src, p)).sort()) {
          const rel = p ? `${p}/${name}` : name;
          const st = lstatSync(join(src, rel));
          onDisk.set(rel, `${st.mode & 0o7777} ${st.uid}:${st.gid}`);
          if (st.isDirectory()) walk(rel);
        }
      };
      walk('');
      expect(new Set(d.keys())).toEqual(new Set(onDisk.keys()));
      for (const [p, meta] of onDisk) expect(`${d.get(p)!.mode} ${d.get(p)!.uid}:${d.get(p)!.gid}`, p).toBe(meta);
      expect(d.get('bin/tool')).toMatchObject({ mode: 0o4755, nlink: 2, data: 'tool bytes', mtimeNs: 1_600_000_000_000_000_000n });
      expect(d.get('bin/tool-alias')!.group).toBe(d.get('bin/tool')!.group);
      expect(d.get('bin/link')).toMatchObject({ kind: 'symlink', target: 'tool' });
      expect(d.get('sticky')!.mode).toBe(0o1777);
      // ustar keeps it through the 155-byte prefix field, gnu through 'L' records, posix through PAX.
      expect(d.get(`${longDir}/file-with-a-long-name.txt`)!.data).toBe('deep');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
