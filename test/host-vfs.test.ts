import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostDirVfs, type HostHandle } from '../src/host/node/host-vfs.ts';
import { hostDirVfs as browserHostDirVfs } from '../src/host/browser/host-vfs.ts';
import { resolvePath } from '../src/fs/resolve.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { isSandboxError } from '../src/errors.ts';
import { runVfsSuite } from './vfs-suite.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'wasmbox-hostvfs-'));
}

runVfsSuite('host directory (writable)', () => {
  const dir = tempDir();
  return { vfs: hostDirVfs(dir, { readOnly: false }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}, { insertionOrder: false });

runVfsSuite('host directory (read-only)', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'file'), 'content');
  mkdirSync(join(dir, 'sub'));
  return { vfs: hostDirVfs(dir, { readOnly: true }), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}, { insertionOrder: false });

function errno(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof FsError) return e.errno;
    throw e;
  }
  return 'none';
}

describe('hostDirVfs confinement', () => {
  let outside: string;
  let root: string;
  let vfs: Vfs<HostHandle>;

  beforeEach(() => {
    outside = tempDir();
    writeFileSync(join(outside, 'secret'), 'top secret');
    root = join(outside, 'mount');
    mkdirSync(root);
    vfs = hostDirVfs(root, { readOnly: false });
  });
  afterEach(() => rmSync(outside, { recursive: true, force: true }));

  it('never follows a host symlink in the last component', () => {
    symlinkSync(join(outside, 'secret'), join(root, 'abs'));
    symlinkSync('../secret', join(root, 'rel'));
    for (const name of ['abs', 'rel']) {
      const h = vfs.lookup(vfs.root(), name)!;
      expect(vfs.stat(h).kind).toBe('symlink');
      expect(errno(() => vfs.read(h, new Uint8Array(16), 0))).toBe('ELOOP');
      expect(errno(() => vfs.write(h, new Uint8Array([1]), 0))).toBe('ELOOP');
      expect(errno(() => vfs.setSize(h, 0))).toBe('ELOOP');
    }
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('top secret');
  });

  it('never walks through a host symlink to a directory, even with a handle taken before the swap', () => {
    mkdirSync(join(root, 'd'));
    writeFileSync(join(root, 'd', 'f'), 'inside');
    const d = vfs.lookup(vfs.root(), 'd')!;
    const f = vfs.lookup(d, 'f')!;
    // The directory is swapped for a symlink to the outside after the handles were made.
    renameSync(join(root, 'd'), join(root, 'moved'));
    symlinkSync('..', join(root, 'd'));
    expect(errno(() => vfs.lookup(d, 'secret'))).toBe('ENOENT');
    expect(errno(() => vfs.readdir(d))).toBe('ENOENT');
    expect(errno(() => vfs.read(f, new Uint8Array(16), 0))).toBe('ENOENT');
    expect(errno(() => vfs.createFile(d, 'planted', 0o644))).toBe('ENOENT');
    expect(existsSync(join(outside, 'planted'))).toBe(false);
  });

  it('keeps resolvePath inside the mount', () => {
    symlinkSync('../secret', join(root, 'rel'));
    symlinkSync('/etc/passwd', join(root, 'abs'));
    const opts = { followFinal: true, escape: 'error' as const };
    expect(errno(() => resolvePath(vfs, vfs.root(), '../secret', opts))).toBe('ENOTCAPABLE');
    expect(errno(() => resolvePath(vfs, vfs.root(), 'rel', opts))).toBe('ENOTCAPABLE');
    expect(errno(() => resolvePath(vfs, vfs.root(), 'abs', opts))).toBe('ENOTCAPABLE');
    // 'clamp' reads an absolute target as relative to the mount root: /etc is not there.
    expect(errno(() => resolvePath(vfs, vfs.root(), 'abs', { followFinal: true, escape: 'clamp' }))).toBe('ENOENT');
  });

  it('rejects names that are not one component', () => {
    for (const bad of ['..', '.', '', 'a/b', 'x\0']) {
      expect(errno(() => vfs.lookup(vfs.root(), bad))).toBe('EINVAL');
      expect(errno(() => vfs.createFile(vfs.root(), bad, 0o644))).toBe('EINVAL');
    }
  });

  it('denies every mutation when read-only', () => {
    writeFileSync(join(root, 'f'), 'x');
    const ro = hostDirVfs(root, { readOnly: true });
    const f = ro.lookup(ro.root(), 'f')!;
    expect(ro.readOnly).toBe(true);
    expect(errno(() => ro.write(f, new Uint8Array([1]), 0))).toBe('EROFS');
    expect(errno(() => ro.createFile(ro.root(), 'n', 0o644))).toBe('EROFS');
    expect(errno(() => ro.mkdir(ro.root(), 'n', 0o755))).toBe('EROFS');
    expect(errno(() => ro.unlink(ro.root(), 'f'))).toBe('EROFS');
    expect(errno(() => ro.setTimes(f, 0n, 0n))).toBe('EROFS');
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe('x');
  });

  it('reports nanosecond times it set', () => {
    writeFileSync(join(root, 'f'), 'x');
    const f = vfs.lookup(vfs.root(), 'f')!;
    const mtime = 1_700_000_000_123_456_789n;
    vfs.setTimes(f, undefined, mtime);
    expect(vfs.stat(f).mtimeNs).toBe(mtime);
  });

  it('maps a missing root to an FsError and the browser variant to CAPABILITY_DENIED', () => {
    expect(errno(() => hostDirVfs(join(outside, 'nope'), { readOnly: false }))).toBe('ENOENT');
    let caught: unknown;
    try {
      browserHostDirVfs('/tmp', { readOnly: false });
    } catch (e) {
      caught = e;
    }
    expect(isSandboxError(caught, 'CAPABILITY_DENIED')).toBe(true);
  });
});

describe('hostDirVfs removed files', () => {
  it('keeps a removed file readable through an earlier handle, within a bounded number of host fds', () => {
    const dir = tempDir();
    try {
      const vfs = hostDirVfs(dir, { readOnly: false });
      const handles: HostHandle[] = [];
      for (let i = 0; i < 300; i++) {
        const h = vfs.createFile(vfs.root(), `f${i}`, 0o644);
        vfs.write(h, new TextEncoder().encode(`n${i}`), 0);
        handles.push(h);
        vfs.unlink(vfs.root(), `f${i}`);
      }
      const buf = new Uint8Array(8);
      expect(new TextDecoder().decode(buf.subarray(0, vfs.read(handles[299]!, buf, 0)))).toBe('n299');
      expect(vfs.stat(handles[299]!).nlink).toBe(0);
      // The oldest ones were given up rather than holding 300 host descriptors.
      expect(errno(() => vfs.read(handles[0]!, buf, 0))).toBe('ENOENT');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
