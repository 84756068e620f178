// C programs built with clang-14 for wasm32-wasi, run on wasmbox's Preview1 (and node:wasi as an oracle).
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WASI } from 'node:wasi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import type { Vfs } from '../src/fs/vfs.ts';
import { hostDirVfs } from '../src/host/node/host-vfs.ts';
import { WasiErrno as E } from '../src/sandbox/errno.ts';
import { Preview1, type Preopen } from '../src/sandbox/preview1/preview1.ts';
import { compileWasi, hasWasiClang } from './helpers/compile-wasi.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const clang = hasWasiClang();
if (!clang) console.log('preview1-c tests skipped: clang-14 with wasi-libc is not installed');

function run(wasm: Uint8Array, preopens: Preopen[], args: string[] = ['prog']): { code: number; stdout: string; stderr: string } {
  let stdout = '', stderr = '';
  const p1 = new Preview1({
    args, env: [], preopens, stdin: { read: () => null },
    stdout: (b) => { stdout += dec.decode(b); }, stderr: (b) => { stderr += dec.decode(b); },
  });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>), { wasi_snapshot_preview1: p1.imports });
  return { code: p1.start(instance), stdout, stderr };
}

function runNodeWasi(wasm: Uint8Array, dir: string): string {
  const outPath = join(dir, '..', `node-wasi-out-${process.pid}.txt`);
  const out = openSync(outPath, 'w');
  try {
    const wasi = new WASI({ version: 'preview1', args: ['prog'], env: {}, preopens: { '/': dir }, stdout: out, returnOnExit: true });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>), wasi.getImportObject() as WebAssembly.Imports);
    wasi.start(instance);
  } finally {
    closeSync(out);
  }
  const text = readFileSync(outPath, 'utf8');
  rmSync(outPath);
  return text;
}

describe.skipIf(!clang)('C programs on Preview1', () => {
  const temps: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'wasmbox-p1c-'));
    temps.push(d);
    return d;
  };
  let fsops: Uint8Array;
  let escape: Uint8Array;

  beforeAll(async () => {
    fsops = await compileWasi(new URL('./fixtures/wasi/fsops.c', import.meta.url));
    escape = await compileWasi(new URL('./fixtures/wasi/escape.c', import.meta.url));
  });
  afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('runs a file-operations transcript identically on the overlay, a host directory and node:wasi', () => {
    const onOverlay = run(fsops, [{ guestPath: '/', vfs: Overlay.prepare() as Vfs, readOnly: false }]);
    expect(onOverlay.code).toBe(0);
    const hostDir = join(tempDir(), 'root');
    mkdirSync(hostDir);
    const onHost = run(fsops, [{ guestPath: '/', vfs: hostDirVfs(hostDir, { readOnly: false }) as Vfs, readOnly: false }]);
    expect(onHost.code).toBe(0);
    const nodeDir = join(tempDir(), 'root');
    mkdirSync(nodeDir);
    const oracle = runNodeWasi(fsops, nodeDir);
    expect(onOverlay.stdout).toContain('read \'hello\'');
    expect(onOverlay.stdout).toContain('mtime 2000.000000000');
    expect(onOverlay.stdout).toBe(onHost.stdout);
    // node:wasi (uvwasi) lists directories without '.' and '..'; everything else must agree.
    const withoutDots = (t: string) => t.replace(/^(ls [^:]*:)((?: \S+)*)$/gm, (_, head: string, names: string) =>
      head + names.split(' ').filter((n) => n !== '.' && n !== '..').map((n) => ` ${n}`).join(''));
    expect(onOverlay.stdout).toMatch(/^ls d: \. \.\. g h l sub$/m);
    expect(withoutDots(onOverlay.stdout)).toBe(withoutDots(oracle));
  });

  it('never leaves its preopens, whatever it tries', () => {
    const outside = tempDir();
    writeFileSync(join(outside, 'secret'), 'TOP SECRET');
    const mount = join(outside, 'mount');
    mkdirSync(mount);
    writeFileSync(join(mount, 'file'), 'mine');
    const ro = Overlay.prepare();
    ro.write(ro.createFile(ro.root(), 'keep', 0o644), enc.encode('kept'), 0);
    const root = Overlay.prepare();
    const r = run(escape, [
      { guestPath: '/', vfs: root as Vfs, readOnly: false },
      { guestPath: '/ro', vfs: ro as Vfs, readOnly: true },
      { guestPath: '/host', vfs: hostDirVfs(mount, { readOnly: false }) as Vfs, readOnly: false },
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('TOP SECRET');
    const lines = r.stdout.trim().split('\n');
    // The only file it could read is the one it was granted read-only.
    expect(lines.filter((l) => l.startsWith('READ '))).toEqual(['READ /ro/keep: kept']);
    const got = Object.fromEntries(lines.filter((l) => !l.startsWith('READ ')).map((l) => {
      const [k, v] = l.split(' ');
      return [k, Number(v)];
    }));
    expect(got).toEqual({
      dotdot_host: E.NOTCAPABLE,
      dotdot_rel: E.NOTCAPABLE,
      symlink_rel_create: 0,
      symlink_rel_follow: E.NOTCAPABLE,
      symlink_chain_create: 0,
      symlink_chain_follow: E.NOTCAPABLE,
      symlink_abs_create: E.NOTCAPABLE,
      symlink_dir_create: 0,
      symlink_dir_follow: E.NOTCAPABLE,
      hardlink_across: E.XDEV,
      rename_across: E.XDEV,
      rename_up: E.NOTCAPABLE,
      ro_write: E.ROFS,
      ro_create: E.ROFS,
      ro_mkdir: E.ROFS,
      ro_unlink: E.ROFS,
      ro_rename: E.ROFS,
      ro_read: 0,
      forged_fd_open: E.BADF,
      forged_fd_read: E.BADF,
      huge_iovec_count: E.INVAL,
      iovec_out_of_memory: E.FAULT,
      result_out_of_memory: E.FAULT,
      renumber_preopen: 0,
      host_after_renumber: E.BADF,
      close_root: 0,
      root_after_close: E.BADF,
    });
    // Nothing reached the host outside the mount; the mount and the read-only preopen are intact.
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('TOP SECRET');
    expect(existsSync(join(outside, 'file'))).toBe(false);
    expect(readFileSync(join(mount, 'file'), 'utf8')).toBe('mine');
    expect(root.lookup(root.root(), 'stolen')).toBeUndefined();
    expect(ro.readdir(ro.root()).map((e) => e.name)).toEqual(['keep']);
  });

  it('returns the exit code of main and of exit()', async () => {
    const wasm = await compileWasi('#include <stdlib.h>\n#include <stdio.h>\nint main(int c, char **v) { printf("%s|%s\\n", v[1], v[2]); if (c > 2) exit(atoi(v[2])); return 3; }\n');
    expect(run(wasm, [], ['p', 'héllo'])).toEqual({ code: 3, stdout: 'héllo|(null)\n', stderr: '' });
    expect(run(wasm, [], ['p', 'x', '42']).code).toBe(42);
  });
});
