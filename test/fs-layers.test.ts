import { describe, expect, test } from 'vitest';
import { applyTar } from '../src/fs/apply-tar.ts';
import { makeRdev, type DirInode, type Inode } from '../src/fs/inode.ts';
import { LayerCache } from '../src/fs/layer-cache.ts';
import type { LayerTree } from '../src/fs/layer-tree.ts';
import { resolvePath } from '../src/fs/resolve.ts';
import { buildRootfs } from '../src/fs/rootfs.ts';
import { treeVfs } from '../src/fs/tree-vfs.ts';
import { FsError } from '../src/fs/vfs.ts';
import { sha256Text, type Digest } from '../src/loader/digest.ts';
import type { Image, Layer } from '../src/loader/source.ts';
import { DEFAULT_MTIME, makeTar, rawEntry, rawTar, streamOf, type FixtureEntry } from './helpers/tar-fixtures.ts';

const text = (d: Uint8Array): string => new TextDecoder().decode(d);

let counter = 0;
function ids(): { chainId: Digest; diffId: Digest } {
  counter++;
  return { chainId: sha256Text(`chain ${counter}`), diffId: sha256Text(`diff ${counter}`) };
}

async function layer(parent: LayerTree | undefined, entries: FixtureEntry[], chunk = 65536): Promise<LayerTree> {
  return applyTar(parent, streamOf(await makeTar(entries), chunk), ids());
}

function at(tree: LayerTree | DirInode, path: string): Inode | undefined {
  let n: Inode = 'kind' in tree ? tree : tree.root;
  for (const c of path.split('/').filter(Boolean)) {
    if (n.kind !== 'dir') return undefined;
    const next = n.entries.get(c);
    if (next === undefined) return undefined;
    n = next;
  }
  return n;
}

/** Every path with what matters about its node; hard links show up as shared ino numbers. */
function listing(tree: LayerTree): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: DirInode, p: string): void => {
    for (const [name, n] of d.entries) {
      const path = p ? `${p}/${name}` : name;
      let s = `${n.kind} ${n.mode.toString(8)} ${n.uid}:${n.gid} n${n.nlink} t${n.mtimeNs}`;
      if (n.kind === 'file') s += ` "${text(n.data)}"`;
      if (n.kind === 'symlink') s += ` -> ${n.target}`;
      if (n.kind === 'chardev' || n.kind === 'blockdev') s += ` rdev ${n.rdev}`;
      out[path] = s;
      if (n.kind === 'dir') walk(n, path);
    }
  };
  walk(tree.root, '');
  return out;
}

describe('applyTar: one layer', () => {
  test('keeps kinds, modes, owners, nanosecond mtimes, links and devices', async () => {
    const t = await layer(undefined, [
      { path: 'bin/', mode: 0o755 },
      { path: 'bin/su', data: 'su!', mode: 0o4755, uid: 0, gid: 0 },
      { path: 'usr/bin/wall', data: 'w', mode: 0o2755, gid: 5 },
      { path: 'tmp/', mode: 0o1777 },
      { path: 'etc/shadow', data: 'secret', mode: 0o000, uid: 0, gid: 42 },
      { path: 'home/u/f', data: 'x', uid: 1000, gid: 1000, mtimeNs: 1_700_000_000_123_456_789n },
      { path: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { path: 'bin/su2', type: 'link', linkname: 'bin/su' },
      { path: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
      { path: 'dev/sda', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 0 },
      { path: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]);
    const su = at(t, 'bin/su');
    expect(su).toMatchObject({ kind: 'file', mode: 0o4755, nlink: 2 });
    expect(at(t, 'bin/su2')).toBe(su);
    expect(at(t, 'usr/bin/wall')).toMatchObject({ mode: 0o2755, gid: 5 });
    expect(at(t, 'tmp')).toMatchObject({ kind: 'dir', mode: 0o1777 });
    expect(at(t, 'etc/shadow')).toMatchObject({ mode: 0, gid: 42, size: 6 });
    expect(at(t, 'home/u/f')).toMatchObject({ uid: 1000, gid: 1000, mtimeNs: 1_700_000_000_123_456_789n });
    expect(at(t, 'bin/sh')).toMatchObject({ kind: 'symlink', target: '/bin/busybox' });
    expect(at(t, 'dev/null')).toMatchObject({ kind: 'chardev', rdev: makeRdev(1, 3), mode: 0o666 });
    expect(at(t, 'dev/sda')).toMatchObject({ kind: 'blockdev', rdev: makeRdev(8, 0) });
    expect(at(t, 'run/fifo')).toMatchObject({ kind: 'fifo', mode: 0o600 });
    // Implicit parents: 0755, root-owned.
    expect(at(t, 'usr')).toMatchObject({ kind: 'dir', mode: 0o755, uid: 0, gid: 0 });
    expect(at(t, 'bin')!.nlink).toBe(2);
    expect(at(t, 'home')!.nlink).toBe(3);
    expect(t.files).toBe(11);
    expect(t.bytes).toBe(3 + 1 + 6 + 1);
    const inos = new Set<number>();
    const walk = (d: DirInode): void => {
      inos.add(d.ino);
      for (const n of d.entries.values()) n.kind === 'dir' ? walk(n) : inos.add(n.ino);
    };
    walk(t.root);
    expect(Math.max(...inos)).toBeLessThan(t.nextIno);
  });

  test('reads entries split across many small chunks', async () => {
    const big = new Uint8Array(70_000).map((_, i) => i % 251);
    const tar = await makeTar([{ path: 'a', data: big }, { path: 'b', data: 'bee' }]);
    const t = await applyTar(undefined, streamOf(tar, 7), ids());
    expect((at(t, 'a') as { data: Uint8Array }).data).toEqual(big);
    expect(text((at(t, 'b') as { data: Uint8Array }).data)).toBe('bee');
  });

  test('long names (PAX and ustar prefix), non-ASCII names, "./" prefixes', async () => {
    const long = `${'d'.repeat(80)}/${'e'.repeat(80)}/${'f'.repeat(120)}`;
    const t = await layer(undefined, [
      { path: long, data: 'long' },
      { path: './dot/x', data: 'dot' },
      { path: 'ünïcødé/名前', data: 'utf8' },
      { path: 'l', type: 'symlink', linkname: 'x'.repeat(300) },
    ]);
    expect(text((at(t, long) as { data: Uint8Array }).data)).toBe('long');
    expect(text((at(t, 'dot/x') as { data: Uint8Array }).data)).toBe('dot');
    expect(text((at(t, 'ünïcødé/名前') as { data: Uint8Array }).data)).toBe('utf8');
    expect((at(t, 'l') as { target: string }).target).toBe('x'.repeat(300));
    // ustar prefix field written by hand.
    const raw = rawTar([rawEntry({ name: 'file.txt', prefix: 'some/prefix/dir' }, 'pre')]);
    const t2 = await applyTar(undefined, streamOf(raw), ids());
    expect(text((at(t2, 'some/prefix/dir/file.txt') as { data: Uint8Array }).data)).toBe('pre');
  });

  test('later entries replace earlier ones; a directory entry over a directory keeps its children', async () => {
    const t = await layer(undefined, [
      { path: 'a', data: 'file first' },
      { path: 'a/', mode: 0o700 },
      { path: 'a/child', data: 'c' },
      { path: 'b/', mode: 0o755 },
      { path: 'b/keep', data: 'k' },
      { path: 'b/', mode: 0o750, uid: 7 },
      { path: 'c/', mode: 0o755 },
      { path: 'c/gone', data: 'g' },
      { path: 'c', data: 'now a file' },
      { path: 'd', data: 'old' },
      { path: 'd', type: 'symlink', linkname: 'elsewhere' },
    ]);
    expect(at(t, 'a')).toMatchObject({ kind: 'dir', mode: 0o700 });
    expect(at(t, 'a/child')).toBeDefined();
    expect(at(t, 'b')).toMatchObject({ kind: 'dir', mode: 0o750, uid: 7 });
    expect(at(t, 'b/keep')).toBeDefined();
    expect(at(t, 'c')).toMatchObject({ kind: 'file' });
    expect(at(t, 'd')).toMatchObject({ kind: 'symlink', target: 'elsewhere' });
    expect(at(t, '')!.nlink).toBe(2 + 2); // a and b are directories
  });

  test('the root entry "./" sets the root metadata', async () => {
    const t = await layer(undefined, [{ path: './', mode: 0o700, uid: 3 }, { path: 'x', data: '' }]);
    expect(t.root).toMatchObject({ mode: 0o700, uid: 3 });
    expect(at(t, 'x')).toMatchObject({ kind: 'file', size: 0 });
  });

  test('an empty tar and an empty stream give an empty root', async () => {
    const a = await applyTar(undefined, streamOf(await makeTar([])), ids());
    const b = await applyTar(undefined, streamOf(new Uint8Array(0)), ids());
    expect(a.root.entries.size).toBe(0);
    expect(b.root.entries.size).toBe(0);
  });
});

describe('applyTar: layers on layers', () => {
  test('path copying: shares what it does not touch, never changes the parent', async () => {
    const base = await layer(undefined, [
      { path: 'usr/lib/a', data: 'a' },
      { path: 'usr/share/doc/x', data: 'x' },
      { path: 'etc/hosts', data: 'h' },
    ]);
    const before = listing(base);
    const child = await layer(base, [{ path: 'usr/lib/b', data: 'b' }]);
    expect(listing(base)).toEqual(before);
    expect(child.parent).toBe(base);
    expect(at(child, 'etc')).toBe(at(base, 'etc'));
    expect(at(child, 'usr/share')).toBe(at(base, 'usr/share'));
    expect(at(child, 'usr/lib/a')).toBe(at(base, 'usr/lib/a'));
    expect(at(child, 'usr/lib')).not.toBe(at(base, 'usr/lib'));
    expect(at(child, 'usr/lib')!.ino).toBe(at(base, 'usr/lib')!.ino);
    expect(at(child, 'usr/lib/b')!.ino).toBeGreaterThanOrEqual(base.nextIno);
    expect(child.nextIno).toBeGreaterThan(base.nextIno);
    expect(at(base, 'usr/lib/b')).toBeUndefined();
  });

  test('.wh.NAME deletes a lower file or directory tree; missing names are fine', async () => {
    const base = await layer(undefined, [
      { path: 'etc/a', data: 'a' },
      { path: 'etc/b', data: 'b' },
      { path: 'opt/tool/bin/x', data: 'x' },
    ]);
    const child = await layer(base, [
      { path: 'etc/.wh.a', data: '' },
      { path: 'opt/.wh.tool', data: '' },
      { path: 'nothing/.wh.here', data: '' },
      { path: 'etc/.wh.missing', data: '' },
    ]);
    expect(at(child, 'etc/a')).toBeUndefined();
    expect(at(child, 'etc/b')).toBeDefined();
    expect(at(child, 'opt/tool')).toBeUndefined();
    expect(at(child, 'opt')!.nlink).toBe(2);
    expect(at(child, 'nothing')).toBeUndefined();
    expect(at(child, 'etc/.wh.a')).toBeUndefined();
    expect(at(base, 'etc/a')).toBeDefined();
    expect(at(base, 'opt/tool/bin/x')).toBeDefined();
  });

  test('whiteouts hide only lower layers, whatever their order in the tar', async () => {
    const base = await layer(undefined, [{ path: 'd/old', data: 'old' }, { path: 'f', data: 'lower' }]);
    const child = await layer(base, [
      { path: 'f', data: 'upper' },
      { path: '.wh.f', data: '' },
      { path: 'd/new', data: 'new' },
      { path: '.wh.d', data: '' },
    ]);
    expect(text((at(child, 'f') as { data: Uint8Array }).data)).toBe('upper');
    expect(at(child, 'd/new')).toBeDefined();
    expect(at(child, 'd/old')).toBeUndefined();
  });

  test('.wh..wh..opq hides everything lower in the directory, before or after the new entries', async () => {
    const base = await layer(undefined, [
      { path: 'a/x', data: 'x' },
      { path: 'a/sub/y', data: 'y' },
      { path: 'b/x', data: 'x' },
      { path: 'b/sub/y', data: 'y' },
      { path: 'c/keep', data: 'k' },
    ]);
    const child = await layer(base, [
      { path: 'a/.wh..wh..opq', data: '' },
      { path: 'a/new', data: 'n1' },
      { path: 'b/new', data: 'n2' },
      { path: 'b/sub/z', data: 'z' },
      { path: 'b/.wh..wh..opq', data: '' },
    ]);
    expect([...(at(child, 'a') as DirInode).entries.keys()]).toEqual(['new']);
    expect([...(at(child, 'b') as DirInode).entries.keys()].sort()).toEqual(['new', 'sub']);
    expect([...(at(child, 'b/sub') as DirInode).entries.keys()]).toEqual(['z']);
    expect(at(child, 'c/keep')).toBeDefined();
    expect(at(child, 'a/.wh..wh..opq')).toBeUndefined();
    expect(at(base, 'a/x')).toBeDefined();
  });

  test('an opaque marker for a missing directory creates it', async () => {
    const t = await layer(undefined, [{ path: 'newdir/.wh..wh..opq', data: '' }]);
    expect(at(t, 'newdir')).toMatchObject({ kind: 'dir' });
  });

  test('hard links: nlink follows the names across layers; the parent inode is untouched', async () => {
    const base = await layer(undefined, [
      { path: 'a', data: 'shared' },
      { path: 'b', data: 'alone' },
    ]);
    const l2 = await layer(base, [
      { path: 'dir/a2', type: 'link', linkname: 'a' },
      { path: 'a3', type: 'link', linkname: 'a' },
    ]);
    expect(at(base, 'a')!.nlink).toBe(1);
    expect(at(l2, 'a')!.nlink).toBe(3);
    expect(at(l2, 'dir/a2')).toBe(at(l2, 'a'));
    expect(at(l2, 'a3')).toBe(at(l2, 'a'));
    expect(at(l2, 'a')!.ino).toBe(at(base, 'a')!.ino);
    expect(l2.hardLinks.get(at(l2, 'a')!.ino)).toEqual(['a', 'dir/a2', 'a3']);

    const l3 = await layer(l2, [
      { path: '.wh.dir', data: '' },
      { path: 'a', data: 'replaced' },
    ]);
    expect(at(l3, 'a3')!.nlink).toBe(1);
    expect(text((at(l3, 'a3') as { data: Uint8Array }).data)).toBe('shared');
    expect(text((at(l3, 'a') as { data: Uint8Array }).data)).toBe('replaced');
    expect(at(l3, 'a')!.nlink).toBe(1);
    expect(at(l2, 'a')!.nlink).toBe(3);
    expect(l3.hardLinks.size).toBe(0);
  });

  test('a hard link replacing a name in the same layer', async () => {
    const t = await layer(undefined, [
      { path: 'x', data: 'x' },
      { path: 'y', data: 'y' },
      { path: 'y', type: 'link', linkname: 'x' },
      { path: 'z', type: 'link', linkname: 'y' },
      { path: 'x', data: 'new x' },
    ]);
    expect(at(t, 'y')).toBe(at(t, 'z'));
    expect(at(t, 'y')!.nlink).toBe(2);
    expect(text((at(t, 'y') as { data: Uint8Array }).data)).toBe('x');
    expect(at(t, 'x')!.nlink).toBe(1);
  });

  test('finished trees are frozen', async () => {
    const t = await layer(undefined, [{ path: 'f', data: 'f' }]);
    expect(() => {
      (at(t, 'f') as { mode: number }).mode = 0o777;
    }).toThrow(TypeError);
    expect(at(t, 'f')!.mode).toBe(0o644);
  });
});

describe('treeVfs', () => {
  test('reads through the Vfs contract and refuses every change with EROFS', async () => {
    const t = await layer(undefined, [
      { path: 'etc/motd', data: 'hello world', mtimeNs: 5_000_000_001n },
      { path: 'link', type: 'symlink', linkname: 'etc/motd' },
      { path: 'dev/tty', type: 'character-device', devmajor: 5, devminor: 0 },
    ]);
    const vfs = treeVfs(t, { dev: 9 });
    expect(vfs.readOnly).toBe(true);
    const r = resolvePath(vfs, vfs.root(), '/link', { followFinal: true, escape: 'clamp' });
    expect(r.node).toBe(at(t, 'etc/motd'));
    const st = vfs.stat(r.node!);
    expect(st).toMatchObject({ dev: 9, kind: 'file', size: 11, mtimeNs: 5_000_000_001n, nlink: 1 });
    const buf = new Uint8Array(5);
    expect(vfs.read(r.node!, buf, 6)).toBe(5);
    expect(text(buf)).toBe('world');
    expect(vfs.read(r.node!, buf, 11)).toBe(0);
    expect(vfs.readlink(at(t, 'link')!)).toBe('etc/motd');
    expect(vfs.stat(at(t, 'link')!).size).toBe(8);
    expect(vfs.stat(at(t, 'dev/tty')!).rdev).toBe(makeRdev(5, 0));
    expect(vfs.readdir(vfs.root()).map((e) => e.name)).toEqual(['etc', 'link', 'dev']);
    expect(vfs.lookup(vfs.root(), 'nope')).toBeUndefined();
    const errno = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof FsError ? e.errno : 'not FsError';
      }
      return undefined;
    };
    const root = vfs.root();
    const motd = at(t, 'etc/motd')!;
    expect(errno(() => vfs.write(motd, new Uint8Array(1), 0))).toBe('EROFS');
    expect(errno(() => vfs.setSize(motd, 0))).toBe('EROFS');
    expect(errno(() => vfs.setTimes(motd, 1n, 1n))).toBe('EROFS');
    expect(errno(() => vfs.mkdir(root, 'x', 0o755))).toBe('EROFS');
    expect(errno(() => vfs.createFile(root, 'x', 0o644))).toBe('EROFS');
    expect(errno(() => vfs.symlink(root, 'x', 'y'))).toBe('EROFS');
    expect(errno(() => vfs.link(root, 'x', motd))).toBe('EROFS');
    expect(errno(() => vfs.unlink(root, 'link'))).toBe('EROFS');
    expect(errno(() => vfs.rmdir(root, 'etc'))).toBe('EROFS');
    expect(errno(() => vfs.rename(root, 'link', root, 'l2'))).toBe('EROFS');
    expect(errno(() => vfs.read(root, buf, 0))).toBe('EISDIR');
    expect(errno(() => vfs.readlink(motd))).toBe('EINVAL');
    expect(errno(() => vfs.readdir(motd))).toBe('ENOTDIR');
    expect(at(t, 'link')).toBeDefined();
  });
});

describe('LayerCache and buildRootfs', () => {
  function fakeLayer(kind: 'tar' | 'wasm', bytes: Uint8Array, chainId: Digest, opened: string[]): Layer {
    return {
      descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: chainId, size: bytes.length },
      diffId: chainId,
      chainId,
      kind,
      open: async () => {
        opened.push(chainId);
        return streamOf(bytes);
      },
      blob: async () => streamOf(bytes),
    };
  }

  test('builds each chainID once, even when asked concurrently; failures are not kept', async () => {
    const cache = new LayerCache();
    const id = ids().chainId;
    let builds = 0;
    const build = async (): Promise<LayerTree> => {
      builds++;
      return applyTar(undefined, streamOf(await makeTar([{ path: 'f', data: 'f' }])), { chainId: id, diffId: id });
    };
    const [a, b] = await Promise.all([cache.getOrBuild(id, build), cache.getOrBuild(id, build)]);
    expect(a).toBe(b);
    expect(builds).toBe(1);
    expect(cache.get(id)).toBe(a);
    const bad = ids().chainId;
    await expect(cache.getOrBuild(bad, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(cache.has(bad)).toBe(false);
    await expect(cache.getOrBuild(bad, build)).resolves.toBeDefined();
  });

  test('buildRootfs stacks the tar layers, skips wasm layers, and reuses cached trees', async () => {
    const l1 = await makeTar([{ path: 'etc/a', data: '1' }]);
    const l2 = await makeTar([{ path: 'etc/.wh.a', data: '' }, { path: 'etc/b', data: '2' }]);
    const c1 = ids().chainId;
    const c2 = ids().chainId;
    const cw = ids().chainId;
    const opened: string[] = [];
    const image = {
      layers: [fakeLayer('tar', l1, c1, opened), fakeLayer('wasm', new Uint8Array(8), cw, opened), fakeLayer('tar', l2, c2, opened)],
    } as unknown as Image;
    const cache = new LayerCache();
    const top = await buildRootfs(image, cache);
    expect(top!.chainId).toBe(c2);
    expect(top!.parent!.chainId).toBe(c1);
    expect(at(top!, 'etc/a')).toBeUndefined();
    expect(at(top!, 'etc/b')).toBeDefined();
    expect(opened).toEqual([c1, c2]);
    const again = await buildRootfs(image, cache);
    expect(again).toBe(top);
    expect(opened).toEqual([c1, c2]);
    const wasmOnly = { layers: [fakeLayer('wasm', new Uint8Array(8), cw, opened)] } as unknown as Image;
    expect(await buildRootfs(wasmOnly, cache)).toBeUndefined();
  });
});

test('default fixture mtime is what the trees report', async () => {
  const t = await layer(undefined, [{ path: 'f', data: '' }]);
  expect(at(t, 'f')!.mtimeNs).toBe(BigInt(DEFAULT_MTIME) * 1_000_000_000n);
});
