/**
 * The one conformance suite of the Vfs contract (src/fs/vfs.ts), run against every implementation:
 * the overlay in prepare and view modes, over each kind of lower, and the host-directory Vfs.
 * Writable implementations get the full contract (each test works in a fresh directory under the
 * root); read-only ones get EROFS on every mutation and consistent reads.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsError, type Errno, type Vfs } from '../src/fs/vfs.ts';

export interface VfsSuiteOptions {
  /** Granularity of stored timestamps (1n: nanoseconds; a host fs reached through Node may keep less). */
  timePrecisionNs?: bigint;
  /** readdir lists entries in creation order (the in-memory contract); false for a host directory. */
  insertionOrder?: boolean;
}

type H = unknown;
const enc = new TextEncoder();
const dec = new TextDecoder();

function errnoOf(fn: () => unknown): Errno | 'none' {
  try {
    fn();
  } catch (e) {
    if (e instanceof FsError) return e.errno;
    throw e;
  }
  return 'none';
}

function readAll(vfs: Vfs<H>, h: H): Uint8Array {
  const size = vfs.stat(h).size;
  const out = new Uint8Array(size + 16);
  let done = 0;
  for (;;) {
    const n = vfs.read(h, out.subarray(done), done);
    if (n === 0) break;
    done += n;
    if (done === out.length) break;
  }
  return out.subarray(0, done);
}

function readText(vfs: Vfs<H>, h: H): string {
  return dec.decode(readAll(vfs, h));
}

function writeFile(vfs: Vfs<H>, dir: H, name: string, text: string, mode = 0o644): H {
  const h = vfs.createFile(dir, name, mode);
  vfs.write(h, enc.encode(text), 0);
  return h;
}

function names(vfs: Vfs<H>, dir: H): string[] {
  return vfs.readdir(dir).map((e) => e.name);
}

export function runVfsSuite(
  label: string,
  make: () => { vfs: Vfs; cleanup?: () => void },
  options: VfsSuiteOptions = {},
): void {
  const precision = options.timePrecisionNs ?? 1n;
  const ordered = options.insertionOrder ?? true;
  const sameNames = (actual: string[], expected: string[]): void => {
    if (ordered) expect(actual).toEqual(expected);
    else expect([...actual].sort()).toEqual([...expected].sort());
  };
  const probe = make();
  const readOnly = probe.vfs.readOnly;
  probe.cleanup?.();

  describe(`Vfs contract: ${label}`, () => {
    let ctx: { vfs: Vfs; cleanup?: () => void };
    let vfs: Vfs<H>;
    let base: H;
    let counter = 0;

    beforeEach(() => {
      ctx = make();
      vfs = ctx.vfs as Vfs<H>;
      if (!readOnly) base = vfs.mkdir(vfs.root(), `vfs-suite-${process.pid}-${counter++}`, 0o755);
    });
    afterEach(() => ctx.cleanup?.());

    if (readOnly) {
      it('reports readOnly and fails every mutation with EROFS, before any other check', () => {
        expect(vfs.readOnly).toBe(true);
        const root = vfs.root();
        const before = names(vfs, root);
        expect(errnoOf(() => vfs.mkdir(root, 'new-dir', 0o755))).toBe('EROFS');
        expect(errnoOf(() => vfs.createFile(root, 'new-file', 0o644))).toBe('EROFS');
        expect(errnoOf(() => vfs.symlink(root, 'new-link', 'x'))).toBe('EROFS');
        expect(errnoOf(() => vfs.unlink(root, 'missing'))).toBe('EROFS');
        expect(errnoOf(() => vfs.rmdir(root, 'missing'))).toBe('EROFS');
        expect(errnoOf(() => vfs.rename(root, 'missing', root, 'other'))).toBe('EROFS');
        expect(errnoOf(() => vfs.link(root, 'new-hard', root))).toBe('EROFS');
        expect(errnoOf(() => vfs.setTimes(root, 1n, 1n))).toBe('EROFS');
        for (const e of vfs.readdir(root)) {
          expect(errnoOf(() => vfs.unlink(root, e.name))).toBe('EROFS');
          expect(errnoOf(() => vfs.rmdir(root, e.name))).toBe('EROFS');
          expect(errnoOf(() => vfs.rename(root, e.name, root, e.name + '.moved'))).toBe('EROFS');
        }
        sameNames(names(vfs, root), before);
      });

      it('refuses writes to every file it holds and leaves content unchanged', () => {
        let files = 0;
        const stack: H[] = [vfs.root()];
        while (stack.length > 0 && files < 50) {
          const d = stack.pop();
          for (const e of vfs.readdir(d)) {
            const h = vfs.lookup(d, e.name);
            expect(h).toBeDefined();
            if (e.kind === 'dir') stack.push(h);
            if (e.kind !== 'file') continue;
            files++;
            const before = readAll(vfs, h);
            expect(errnoOf(() => vfs.write(h, enc.encode('x'), 0))).toBe('EROFS');
            expect(errnoOf(() => vfs.setSize(h, 0))).toBe('EROFS');
            expect(errnoOf(() => vfs.setTimes(h, 0n, 0n))).toBe('EROFS');
            expect(readAll(vfs, h)).toEqual(before);
          }
        }
      });

      it('reads consistently: readdir, lookup and stat agree', () => {
        const root = vfs.root();
        expect(vfs.stat(root).kind).toBe('dir');
        for (const e of vfs.readdir(root)) {
          expect(['.', '..']).not.toContain(e.name);
          const h = vfs.lookup(root, e.name);
          expect(h).toBeDefined();
          const st = vfs.stat(h);
          expect(st.ino).toBe(e.ino);
          expect(st.kind).toBe(e.kind);
          expect(vfs.kind(h)).toBe(e.kind);
          if (e.kind === 'symlink') expect(st.size).toBe(enc.encode(vfs.readlink(h)).length);
        }
        expect(vfs.lookup(root, 'surely-not-there-' + Math.random())).toBeUndefined();
      });
      return;
    }

    describe('files', () => {
      it('creates, writes and reads back a file', () => {
        const h = writeFile(vfs, base, 'hello.txt', 'hello world', 0o640);
        const st = vfs.stat(h);
        expect(st.kind).toBe('file');
        expect(st.size).toBe(11);
        expect(st.mode).toBe(0o640);
        expect(st.nlink).toBe(1);
        expect(readText(vfs, h)).toBe('hello world');
        expect(vfs.lookup(base, 'hello.txt')).toBe(h);
      });

      it('reads partially, at offsets, and returns 0 at and past EOF', () => {
        const h = writeFile(vfs, base, 'f', 'abcdefghij');
        const buf = new Uint8Array(4);
        expect(vfs.read(h, buf, 3)).toBe(4);
        expect(dec.decode(buf)).toBe('defg');
        expect(vfs.read(h, buf, 8)).toBe(2);
        expect(dec.decode(buf.subarray(0, 2))).toBe('ij');
        expect(vfs.read(h, buf, 10)).toBe(0);
        expect(vfs.read(h, buf, 1000)).toBe(0);
      });

      it('overwrites in the middle and extends at the end', () => {
        const h = writeFile(vfs, base, 'f', 'aaaaaaaaaa');
        expect(vfs.write(h, enc.encode('XY'), 4)).toBe(2);
        expect(readText(vfs, h)).toBe('aaaaXYaaaa');
        vfs.write(h, enc.encode('tail'), 8);
        expect(readText(vfs, h)).toBe('aaaaXYaatail');
        expect(vfs.stat(h).size).toBe(12);
      });

      it('fills a gap past the end with zeros', () => {
        const h = writeFile(vfs, base, 'sparse', 'ab');
        vfs.write(h, enc.encode('z'), 100);
        const data = readAll(vfs, h);
        expect(data.length).toBe(101);
        expect(dec.decode(data.subarray(0, 2))).toBe('ab');
        expect(data.subarray(2, 100).every((b) => b === 0)).toBe(true);
        expect(data[100]).toBe('z'.charCodeAt(0));
      });

      it('setSize shrinks and grows with zeros, never resurrecting old bytes', () => {
        const h = writeFile(vfs, base, 'f', 'secret-data');
        vfs.setSize(h, 3);
        expect(readText(vfs, h)).toBe('sec');
        vfs.setSize(h, 8);
        const data = readAll(vfs, h);
        expect(data.length).toBe(8);
        expect(dec.decode(data.subarray(0, 3))).toBe('sec');
        expect(data.subarray(3).every((b) => b === 0)).toBe(true);
        vfs.setSize(h, 0);
        expect(vfs.stat(h).size).toBe(0);
        expect(readAll(vfs, h).length).toBe(0);
      });

      it('keeps binary content of 1 MiB intact', () => {
        const data = new Uint8Array(1 << 20);
        for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
        const h = vfs.createFile(base, 'big.bin', 0o600);
        for (let off = 0; off < data.length; off += 65536) vfs.write(h, data.subarray(off, off + 65536), off);
        expect(vfs.stat(h).size).toBe(data.length);
        const back = readAll(vfs, h);
        expect(back.length).toBe(data.length);
        expect(back.findIndex((b, i) => b !== data[i])).toBe(-1);
      });

      it('fails with EEXIST on an existing name and EISDIR/ENOTDIR on the wrong kind', () => {
        const f = writeFile(vfs, base, 'f', 'x');
        vfs.mkdir(base, 'd', 0o755);
        expect(errnoOf(() => vfs.createFile(base, 'f', 0o644))).toBe('EEXIST');
        expect(errnoOf(() => vfs.createFile(base, 'd', 0o644))).toBe('EEXIST');
        expect(errnoOf(() => vfs.mkdir(base, 'f', 0o755))).toBe('EEXIST');
        expect(errnoOf(() => vfs.symlink(base, 'd', 'x'))).toBe('EEXIST');
        const d = vfs.lookup(base, 'd');
        expect(errnoOf(() => vfs.read(d, new Uint8Array(1), 0))).toBe('EISDIR');
        expect(errnoOf(() => vfs.write(d, enc.encode('x'), 0))).toBe('EISDIR');
        expect(errnoOf(() => vfs.lookup(f, 'x'))).toBe('ENOTDIR');
        expect(errnoOf(() => vfs.readdir(f))).toBe('ENOTDIR');
        expect(errnoOf(() => vfs.createFile(f, 'x', 0o644))).toBe('ENOTDIR');
      });

      it('rejects negative or fractional positions and sizes with EINVAL', () => {
        const h = writeFile(vfs, base, 'f', 'abc');
        const buf = new Uint8Array(2);
        expect(errnoOf(() => vfs.read(h, buf, -1))).toBe('EINVAL');
        expect(errnoOf(() => vfs.write(h, buf, -1))).toBe('EINVAL');
        expect(errnoOf(() => vfs.write(h, buf, 0.5))).toBe('EINVAL');
        expect(errnoOf(() => vfs.setSize(h, -1))).toBe('EINVAL');
        expect(readText(vfs, h)).toBe('abc');
      });

      it('updates mtime and ctime on write', () => {
        const h = writeFile(vfs, base, 'f', 'x');
        vfs.setTimes(h, 1_000_000_000n, 1_000_000_000n);
        vfs.write(h, enc.encode('y'), 1);
        const st = vfs.stat(h);
        expect(st.mtimeNs).toBeGreaterThan(1_000_000_000n);
        expect(st.ctimeNs).toBeGreaterThanOrEqual(st.mtimeNs - 1_000_000_000n);
      });
    });

    describe('directories', () => {
      it('lists entries in creation order with matching ino and kind, without . and ..', () => {
        const want = ['zeta', 'alpha', 'mid', 'Beta', 'link'];
        writeFile(vfs, base, 'zeta', 'z');
        vfs.mkdir(base, 'alpha', 0o755);
        writeFile(vfs, base, 'mid', 'm');
        vfs.mkdir(base, 'Beta', 0o700);
        vfs.symlink(base, 'link', 'zeta');
        const entries = vfs.readdir(base);
        sameNames(entries.map((e) => e.name), want);
        for (const e of entries) {
          const h = vfs.lookup(base, e.name);
          const st = vfs.stat(h);
          expect(e.ino).toBe(st.ino);
          expect(e.kind).toBe(st.kind);
          expect(vfs.kind(h)).toBe(st.kind);
        }
        const kinds = Object.fromEntries(entries.map((e) => [e.name, e.kind]));
        expect(kinds).toEqual({ zeta: 'file', alpha: 'dir', mid: 'file', Beta: 'dir', link: 'symlink' });
      });

      it('counts subdirectories in nlink', () => {
        const d = vfs.mkdir(base, 'd', 0o755);
        expect(vfs.stat(d).nlink).toBe(2);
        vfs.mkdir(d, 'a', 0o755);
        vfs.mkdir(d, 'b', 0o755);
        writeFile(vfs, d, 'f', '');
        expect(vfs.stat(d).nlink).toBe(4);
        vfs.rmdir(d, 'a');
        expect(vfs.stat(d).nlink).toBe(3);
      });

      it('keeps mode bits including setuid, setgid and sticky', () => {
        const d = vfs.mkdir(base, 'sticky', 0o1777);
        const f = vfs.createFile(base, 'suid', 0o4755);
        const g = vfs.createFile(base, 'sgid', 0o2711);
        expect(vfs.stat(d).mode).toBe(0o1777);
        expect(vfs.stat(f).mode).toBe(0o4755);
        expect(vfs.stat(g).mode).toBe(0o2711);
      });

      it('rejects invalid names with EINVAL and long names with ENAMETOOLONG', () => {
        for (const bad of ['', '.', '..', 'a/b', '/']) {
          expect(errnoOf(() => vfs.createFile(base, bad, 0o644)), bad).toBe('EINVAL');
          expect(errnoOf(() => vfs.mkdir(base, bad, 0o755)), bad).toBe('EINVAL');
        }
        const max = 'n'.repeat(255);
        const h = writeFile(vfs, base, max, 'long');
        expect(vfs.lookup(base, max)).toBe(h);
        expect(names(vfs, base)).toContain(max);
        // 85 three-byte characters: 255 bytes, fits; one more byte does not.
        const wide = '\u20ac'.repeat(85);
        vfs.mkdir(base, wide, 0o755);
        expect(names(vfs, base)).toContain(wide);
        expect(errnoOf(() => vfs.createFile(base, 'n'.repeat(256), 0o644))).toBe('ENAMETOOLONG');
        expect(errnoOf(() => vfs.mkdir(base, wide + 'x', 0o755))).toBe('ENAMETOOLONG');
      });

      it('handles non-ASCII names', () => {
        const h = writeFile(vfs, base, 'grüße-日本-🙂', 'ü');
        expect(vfs.lookup(base, 'grüße-日本-🙂')).toBe(h);
        sameNames(names(vfs, base), ['grüße-日本-🙂']);
      });

      it('updates the directory mtime when entries change', () => {
        vfs.setTimes(base, 5n, 5n);
        writeFile(vfs, base, 'f', 'x');
        expect(vfs.stat(base).mtimeNs).toBeGreaterThan(5n);
      });
    });

    describe('unlink and rmdir', () => {
      it('unlinks a file; an open handle still reads it and reports nlink 0', () => {
        const h = writeFile(vfs, base, 'f', 'still here');
        vfs.unlink(base, 'f');
        expect(vfs.lookup(base, 'f')).toBeUndefined();
        sameNames(names(vfs, base), []);
        expect(readText(vfs, h)).toBe('still here');
        expect(vfs.stat(h).nlink).toBe(0);
      });

      it('fails unlink with ENOENT for a missing name and EISDIR/EPERM for a directory', () => {
        vfs.mkdir(base, 'd', 0o755);
        expect(errnoOf(() => vfs.unlink(base, 'missing'))).toBe('ENOENT');
        expect(['EISDIR', 'EPERM']).toContain(errnoOf(() => vfs.unlink(base, 'd')));
        expect(vfs.lookup(base, 'd')).toBeDefined();
      });

      it('removes an empty directory; refuses non-empty, files and missing names', () => {
        const d = vfs.mkdir(base, 'd', 0o755);
        writeFile(vfs, d, 'f', 'x');
        writeFile(vfs, base, 'file', 'x');
        expect(errnoOf(() => vfs.rmdir(base, 'd'))).toBe('ENOTEMPTY');
        expect(errnoOf(() => vfs.rmdir(base, 'file'))).toBe('ENOTDIR');
        expect(errnoOf(() => vfs.rmdir(base, 'missing'))).toBe('ENOENT');
        vfs.unlink(d, 'f');
        vfs.rmdir(base, 'd');
        sameNames(names(vfs, base), ['file']);
      });

      it('unlinks a symlink, not its target', () => {
        writeFile(vfs, base, 'target', 't');
        vfs.symlink(base, 'link', 'target');
        vfs.unlink(base, 'link');
        sameNames(names(vfs, base), ['target']);
      });
    });

    describe('rename', () => {
      it('renames a file within a directory and keeps the handle', () => {
        const h = writeFile(vfs, base, 'a', 'content');
        vfs.rename(base, 'a', base, 'b');
        expect(vfs.lookup(base, 'a')).toBeUndefined();
        expect(vfs.lookup(base, 'b')).toBe(h);
        expect(readText(vfs, h)).toBe('content');
      });

      it('moves a file across directories', () => {
        const d1 = vfs.mkdir(base, 'd1', 0o755);
        const d2 = vfs.mkdir(base, 'd2', 0o755);
        writeFile(vfs, d1, 'f', 'moved');
        vfs.rename(d1, 'f', d2, 'g');
        sameNames(names(vfs, d1), []);
        expect(readText(vfs, vfs.lookup(d2, 'g'))).toBe('moved');
      });

      it('replaces an existing file atomically', () => {
        const old = writeFile(vfs, base, 'dst', 'old');
        writeFile(vfs, base, 'src', 'new');
        vfs.rename(base, 'src', base, 'dst');
        sameNames(names(vfs, base), ['dst']);
        expect(readText(vfs, vfs.lookup(base, 'dst'))).toBe('new');
        expect(vfs.stat(old).nlink).toBe(0);
        expect(readText(vfs, old)).toBe('old');
      });

      it('moves a directory, updating both parents\' nlink, and handles inside keep working', () => {
        const d1 = vfs.mkdir(base, 'd1', 0o755);
        const d2 = vfs.mkdir(base, 'd2', 0o755);
        const sub = vfs.mkdir(d1, 'sub', 0o755);
        const f = writeFile(vfs, sub, 'f', 'deep');
        vfs.rename(d1, 'sub', d2, 'moved');
        expect(vfs.stat(d1).nlink).toBe(2);
        expect(vfs.stat(d2).nlink).toBe(3);
        expect(vfs.lookup(d2, 'moved')).toBe(sub);
        writeFile(vfs, sub, 'g', 'via old handle');
        sameNames(names(vfs, vfs.lookup(d2, 'moved')), ['f', 'g']);
        expect(readText(vfs, f)).toBe('deep');
      });

      it('replaces an empty directory with a directory; refuses a non-empty one', () => {
        const a = vfs.mkdir(base, 'a', 0o755);
        vfs.mkdir(base, 'empty', 0o755);
        const full = vfs.mkdir(base, 'full', 0o755);
        writeFile(vfs, full, 'x', 'x');
        expect(errnoOf(() => vfs.rename(base, 'a', base, 'full'))).toBe('ENOTEMPTY');
        vfs.rename(base, 'a', base, 'empty');
        expect(vfs.lookup(base, 'empty')).toBe(a);
        sameNames(names(vfs, base), ['full', 'empty']);
        expect(vfs.stat(base).nlink).toBe(4);
      });

      it('refuses dir over file (ENOTDIR) and file over dir (EISDIR)', () => {
        vfs.mkdir(base, 'd', 0o755);
        writeFile(vfs, base, 'f', 'x');
        expect(errnoOf(() => vfs.rename(base, 'd', base, 'f'))).toBe('ENOTDIR');
        expect(errnoOf(() => vfs.rename(base, 'f', base, 'd'))).toBe('EISDIR');
        sameNames(names(vfs, base), ['d', 'f']);
      });

      it('refuses to move a directory into itself or its own subtree (EINVAL)', () => {
        const a = vfs.mkdir(base, 'a', 0o755);
        const b = vfs.mkdir(a, 'b', 0o755);
        const c = vfs.mkdir(b, 'c', 0o755);
        expect(errnoOf(() => vfs.rename(base, 'a', a, 'x'))).toBe('EINVAL');
        expect(errnoOf(() => vfs.rename(base, 'a', c, 'x'))).toBe('EINVAL');
        sameNames(names(vfs, base), ['a']);
        sameNames(names(vfs, c), []);
      });

      it('checks in Linux order: subtree (EINVAL), target holding the source (ENOTEMPTY), then kinds', () => {
        const a = vfs.mkdir(base, 'a', 0o755);
        const b = vfs.mkdir(a, 'b', 0o755);
        writeFile(vfs, b, 'file', 'x');
        // the target exists as a file inside the source: still EINVAL, not ENOTDIR
        expect(errnoOf(() => vfs.rename(base, 'a', b, 'file'))).toBe('EINVAL');
        // the target directory exists inside the source: EINVAL, not ENOTEMPTY
        expect(errnoOf(() => vfs.rename(base, 'a', a, 'b'))).toBe('EINVAL');
        // a file onto the directory that holds it: ENOTEMPTY, not EISDIR
        expect(errnoOf(() => vfs.rename(b, 'file', a, 'b'))).toBe('ENOTEMPTY');
        sameNames(names(vfs, b), ['file']);
      });

      it('fails with ENOENT for a missing source', () => {
        expect(errnoOf(() => vfs.rename(base, 'missing', base, 'x'))).toBe('ENOENT');
      });

      it('does nothing when source and target are links to the same file', () => {
        const h = writeFile(vfs, base, 'a', 'same');
        vfs.link(base, 'b', h);
        vfs.rename(base, 'a', base, 'b');
        sameNames(names(vfs, base), ['a', 'b']);
        expect(vfs.stat(h).nlink).toBe(2);
        vfs.rename(base, 'a', base, 'a');
        sameNames(names(vfs, base), ['a', 'b']);
      });
    });

    describe('hard links', () => {
      it('links a file: shared content, shared ino, nlink counted', () => {
        const h = writeFile(vfs, base, 'a', 'one');
        const d = vfs.mkdir(base, 'd', 0o755);
        vfs.link(d, 'b', h);
        const b = vfs.lookup(d, 'b');
        expect(vfs.stat(h).nlink).toBe(2);
        expect(vfs.stat(b).ino).toBe(vfs.stat(h).ino);
        vfs.write(b, enc.encode('two'), 0);
        expect(readText(vfs, h)).toBe('two');
        vfs.unlink(base, 'a');
        expect(vfs.stat(b).nlink).toBe(1);
        expect(readText(vfs, b)).toBe('two');
      });

      it('refuses links to directories (EPERM) and onto existing names (EEXIST)', () => {
        const d = vfs.mkdir(base, 'd', 0o755);
        const f = writeFile(vfs, base, 'f', 'x');
        expect(errnoOf(() => vfs.link(base, 'dlink', d))).toBe('EPERM');
        expect(errnoOf(() => vfs.link(base, 'd', f))).toBe('EEXIST');
        expect(errnoOf(() => vfs.link(base, 'f', d))).toBe('EEXIST'); // the name is checked first, as Linux does
        expect(vfs.stat(f).nlink).toBe(1);
      });
    });

    describe('symlinks', () => {
      it('creates symlinks and reads their targets; lstat size is the target byte length', () => {
        const s = vfs.symlink(base, 'l', '../über/target');
        const st = vfs.stat(s);
        expect(st.kind).toBe('symlink');
        expect(st.size).toBe(enc.encode('../über/target').length);
        expect(vfs.readlink(s)).toBe('../über/target');
        expect(vfs.readlink(vfs.lookup(base, 'l'))).toBe('../über/target');
        const dangling = vfs.symlink(base, 'dangling', 'nowhere');
        expect(vfs.readlink(dangling)).toBe('nowhere');
      });

      it('fails readlink on a non-symlink with EINVAL', () => {
        const f = writeFile(vfs, base, 'f', 'x');
        expect(errnoOf(() => vfs.readlink(f))).toBe('EINVAL');
        expect(errnoOf(() => vfs.readlink(base))).toBe('EINVAL');
      });
    });

    describe('times and stat', () => {
      it('sets atime and mtime with nanosecond precision; undefined leaves a time alone', () => {
        const h = writeFile(vfs, base, 'f', 'x');
        const at = 1_234_567_890_123_456_789n;
        const mt = 1_600_000_000_987_654_321n;
        vfs.setTimes(h, at, mt);
        let st = vfs.stat(h);
        expect(st.atimeNs).toBe(at - (at % precision));
        expect(st.mtimeNs).toBe(mt - (mt % precision));
        vfs.setTimes(h, undefined, 42_000_000_000n);
        st = vfs.stat(h);
        expect(st.atimeNs).toBe(at - (at % precision));
        expect(st.mtimeNs).toBe(42_000_000_000n);
        vfs.setTimes(h, 7_000_000_000n, undefined);
        st = vfs.stat(h);
        expect(st.atimeNs).toBe(7_000_000_000n);
        expect(st.mtimeNs).toBe(42_000_000_000n);
      });

      it('changes ctime on metadata changes', () => {
        const h = writeFile(vfs, base, 'f', 'x');
        const before = vfs.stat(h).ctimeNs;
        vfs.setTimes(h, 1n, 1n);
        expect(vfs.stat(h).ctimeNs).toBeGreaterThanOrEqual(before);
        expect(vfs.stat(h).ctimeNs).not.toBe(1n);
      });

      it('reports complete, typed stat fields with distinct inos and one dev', () => {
        const f = writeFile(vfs, base, 'f', 'abc');
        const d = vfs.mkdir(base, 'd', 0o755);
        const s = vfs.symlink(base, 's', 'f');
        const stats = [vfs.stat(f), vfs.stat(d), vfs.stat(s), vfs.stat(base)];
        for (const st of stats) {
          for (const k of ['dev', 'ino', 'mode', 'uid', 'gid', 'nlink', 'size', 'rdev'] as const) {
            expect(typeof st[k], k).toBe('number');
            expect(Number.isInteger(st[k]), k).toBe(true);
          }
          for (const k of ['atimeNs', 'mtimeNs', 'ctimeNs'] as const) expect(typeof st[k], k).toBe('bigint');
          expect(st.mode & ~0o7777).toBe(0);
          expect(st.dev).toBe(stats[0]!.dev);
        }
        expect(new Set(stats.map((s) => s.ino)).size).toBe(4);
        expect(stats.map((s) => s.kind)).toEqual(['file', 'dir', 'symlink', 'dir']);
      });

      it('lookup returns undefined for missing names and rejects . and ..', () => {
        expect(vfs.lookup(base, 'missing')).toBeUndefined();
        expect(errnoOf(() => vfs.lookup(base, '..'))).toBe('EINVAL');
        expect(errnoOf(() => vfs.lookup(base, '.'))).toBe('EINVAL');
        expect(errnoOf(() => vfs.lookup(base, 'a/b'))).toBe('EINVAL');
      });
    });
  });
}
