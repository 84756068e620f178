// Preview1 resolves repeated directory parts through its descriptors' PathCache: what the guest sees
// must not change for it when directories are renamed, removed or replaced, or symlinks re-pointed.
import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { E, Harness } from './helpers/preview1-harness.ts';

const CREAT = 1;
const EXCL = 4;

function fresh(): Harness {
  return new Harness([{ guestPath: '/', vfs: Overlay.prepare(), readOnly: false }]);
}

const DIRECTORY = 2;

function rename(h: Harness, from: string, to: string, fd = 3): number {
  const [a, an] = h.put(from);
  const [b, bn] = h.put(to);
  return h.call('path_rename', fd, a, an, fd, b, bn);
}

function symlink(h: Harness, target: string, path: string, fd = 3): number {
  const [a, an] = h.put(target);
  const [b, bn] = h.put(path);
  return h.call('path_symlink', a, an, fd, b, bn);
}

function cat(h: Harness, path: string): string {
  const [rc, fd] = h.open(3, path);
  if (rc !== 0) return `errno ${rc}`;
  const [, text] = h.read(fd);
  h.call('fd_close', fd);
  return text;
}

function put(h: Harness, path: string, text: string): void {
  const [rc, fd] = h.open(3, path, { oflags: CREAT | EXCL });
  expect(rc).toBe(E.SUCCESS);
  h.write(fd, text);
  h.call('fd_close', fd);
}

describe('preview1 path resolution with cached directory parts', () => {
  it('follows a directory renamed away and another made in its place', () => {
    const h = fresh();
    expect(h.path('path_create_directory', 3, 'd')).toBe(0);
    expect(h.path('path_create_directory', 3, 'd/sub')).toBe(0);
    put(h, 'd/sub/x', 'one');
    expect(cat(h, 'd/sub/x')).toBe('one');
    expect(rename(h, 'd', 'old')).toBe(0);
    expect(cat(h, 'd/sub/x')).toBe(`errno ${E.NOENT}`);
    expect(h.path('path_create_directory', 3, 'd')).toBe(0);
    expect(h.path('path_create_directory', 3, 'd/sub')).toBe(0);
    put(h, 'd/sub/x', 'two');
    expect(cat(h, 'd/sub/x')).toBe('two');
    expect(cat(h, 'old/sub/x')).toBe('one');
    expect(h.path('path_unlink_file', 3, 'd/sub/x')).toBe(0);
    expect(h.path('path_remove_directory', 3, 'd/sub')).toBe(0);
    expect(cat(h, 'd/sub/x')).toBe(`errno ${E.NOENT}`);
    expect(rename(h, 'old/sub', 'd/sub')).toBe(0);
    expect(cat(h, 'd/sub/x')).toBe('one');
  });

  it('follows a symlinked directory part re-pointed, and never escapes through one', () => {
    const h = fresh();
    expect(h.path('path_create_directory', 3, 'a')).toBe(0);
    expect(h.path('path_create_directory', 3, 'b')).toBe(0);
    put(h, 'a/f', 'in a');
    put(h, 'b/f', 'in b');
    expect(symlink(h, 'a', 'l')).toBe(0);
    expect(cat(h, 'l/f')).toBe('in a');
    expect(h.path('path_unlink_file', 3, 'l')).toBe(0);
    expect(symlink(h, 'b', 'l')).toBe(0);
    expect(cat(h, 'l/f')).toBe('in b');
    expect(h.path('path_unlink_file', 3, 'l')).toBe(0);
    expect(symlink(h, '..', 'l')).toBe(0);
    expect(cat(h, 'l/f')).toBe(`errno ${E.NOTCAPABLE}`);
  });

  it('reads names after a cached directory part as the whole path would be read (UTF-8, NUL, \'..\', slashes)', () => {
    const h = fresh();
    expect(h.path('path_create_directory', 3, 'dé')).toBe(0);
    put(h, 'dé/x', 'x in dé');
    expect(cat(h, 'dé/x')).toBe('x in dé');
    expect(h.path('path_create_directory', 3, 'd')).toBe(0);
    put(h, 'd/ü', 'ü');
    put(h, 'd/x', 'x');
    expect(cat(h, 'd/x')).toBe('x');
    expect(cat(h, 'd/ü')).toBe('ü');
    expect(cat(h, 'd/x\0')).toBe(`errno ${E.INVAL}`);
    const bad = new Uint8Array([0x64, 0x2f, 0xff]); // "d/" and a byte that is not UTF-8
    const [p, n] = h.put(bad);
    const out = h.alloc(4, 4);
    expect(h.call('path_open', 3, 0, p, n, 0, (1n << 30n) - 1n, (1n << 30n) - 1n, 0, out)).toBe(E.ILSEQ);
    expect(cat(h, 'd/..')).toBe(`errno ${E.ISDIR}`);
    expect(cat(h, 'd/.')).toBe(`errno ${E.ISDIR}`);
    expect(cat(h, 'd/x/')).toBe(`errno ${E.NOTDIR}`);
    expect(cat(h, 'd/..x')).toBe(`errno ${E.NOENT}`);
    expect(cat(h, 'dé/x')).toBe('x in dé');
  });

  // Changes made through another descriptor leave this one's cache in place: only the Vfs's
  // layoutVersion can tell it that its directory part now leads elsewhere.
  it('sees renames, removals and re-pointed symlinks made through another descriptor', () => {
    const h = fresh();
    expect(h.path('path_create_directory', 3, 'd')).toBe(0);
    expect(h.path('path_create_directory', 3, 'd/sub')).toBe(0);
    put(h, 'd/sub/x', 'one');
    const [rc, d] = h.open(3, 'd', { oflags: DIRECTORY });
    expect(rc).toBe(E.SUCCESS);

    expect(cat(h, 'd/sub/x')).toBe('one');
    expect(rename(h, 'sub', 'moved', d)).toBe(0);
    expect(cat(h, 'd/sub/x')).toBe(`errno ${E.NOENT}`);

    expect(cat(h, 'd/moved/x')).toBe('one');
    expect(h.path('path_unlink_file', d, 'moved/x')).toBe(0);
    expect(h.path('path_remove_directory', d, 'moved')).toBe(0);
    expect(cat(h, 'd/moved/x')).toBe(`errno ${E.NOENT}`);

    expect(h.path('path_create_directory', d, 'a')).toBe(0);
    expect(h.path('path_create_directory', d, 'b')).toBe(0);
    put(h, 'd/a/f', 'in a');
    put(h, 'd/b/f', 'in b');
    expect(symlink(h, 'a', 'l', d)).toBe(0);
    expect(cat(h, 'd/l/f')).toBe('in a');
    expect(h.path('path_unlink_file', d, 'l')).toBe(0);
    expect(symlink(h, 'b', 'l', d)).toBe(0);
    expect(cat(h, 'd/l/f')).toBe('in b');

    expect(cat(h, 'd/a/f')).toBe('in a');
    expect(rename(h, 'b', 'a', d)).toBe(E.NOTEMPTY);
    expect(h.path('path_unlink_file', d, 'a/f')).toBe(0);
    expect(rename(h, 'b', 'a', d)).toBe(0); // a directory renamed over an empty one
    expect(cat(h, 'd/a/f')).toBe('in b');
  });
});
