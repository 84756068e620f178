// Preview1 imports called directly over a hand-made memory, with the in-memory overlay as preopens.
import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { Preview1 } from '../src/sandbox/preview1/preview1.ts';
import { Rights } from '../src/sandbox/preview1/constants.ts';
import { ALL_RIGHTS, E, Harness } from './helpers/preview1-harness.ts';

const enc = new TextEncoder();
const ROOT = 3;

function fresh(extra: ConstructorParameters<typeof Harness>[1] = {}): { h: Harness; fs: Overlay } {
  const fs = Overlay.prepare();
  return { h: new Harness([{ guestPath: '/', vfs: fs as Vfs, readOnly: false }], extra), fs };
}

function writeFile(h: Harness, path: string, text: string): void {
  const [rc, fd] = h.open(ROOT, path, { oflags: 1 | 8 });
  expect(rc).toBe(0);
  expect(h.write(fd, text)).toEqual([0, enc.encode(text).length]);
  expect(h.call('fd_close', fd)).toBe(0);
}

describe('args, environ, clocks, random', () => {
  it('counts args and environ in UTF-8 bytes and writes them NUL-terminated', () => {
    const h = new Harness([], { args: ['prog', 'héllo', '日本'], env: ['A=1', 'NAME=ünï'] });
    const count = h.alloc(4), size = h.alloc(4);
    expect(h.call('args_sizes_get', count, size)).toBe(0);
    expect(h.u32(count)).toBe(3);
    const bytes = enc.encode('prog\0héllo\0日本\0').length;
    expect(h.u32(size)).toBe(bytes);
    const argv = h.alloc(12), buf = h.alloc(bytes, 1);
    expect(h.call('args_get', argv, buf)).toBe(0);
    const strs = [0, 1, 2].map((i) => {
      const p = h.u32(argv + i * 4);
      const end = h.u8.indexOf(0, p);
      return h.text(p, end - p);
    });
    expect(strs).toEqual(['prog', 'héllo', '日本']);
    expect(h.call('environ_sizes_get', count, size)).toBe(0);
    expect([h.u32(count), h.u32(size)]).toEqual([2, enc.encode('A=1\0NAME=ünï\0').length]);
  });

  it('returns EFAULT for out-of-bounds result pointers', () => {
    const h = new Harness([], { args: ['a'] });
    const end = h.memory.buffer.byteLength;
    expect(h.call('args_sizes_get', end - 2, 0)).toBe(E.FAULT);
    expect(h.call('args_get', end, end)).toBe(E.FAULT);
    expect(h.call('clock_time_get', 1, 0n, end - 4)).toBe(E.FAULT);
    expect(h.call('random_get', end - 10, 11)).toBe(E.FAULT);
    expect(h.call('random_get', -1, 1)).toBe(E.FAULT);
  });

  it('has four clocks with a resolution, a monotonic clock that does not go back, and EINVAL for others', () => {
    const h = new Harness([]);
    const t = h.alloc(8);
    for (const id of [0, 1, 2, 3]) {
      expect(h.call('clock_res_get', id, t)).toBe(0);
      expect(h.u64(t)).toBeGreaterThan(0n);
      expect(h.call('clock_time_get', id, 1n, t)).toBe(0);
    }
    expect(h.call('clock_time_get', 0, 1n, t)).toBe(0);
    const wall = h.u64(t);
    expect(Number(wall / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
    h.call('clock_time_get', 1, 1n, t);
    const a = h.u64(t);
    h.call('clock_time_get', 1, 1n, t);
    expect(h.u64(t)).toBeGreaterThanOrEqual(a);
    expect(h.call('clock_time_get', 4, 1n, t)).toBe(E.INVAL);
    expect(h.call('clock_res_get', 99, t)).toBe(E.INVAL);
  });

  it('uses the given clock and random source', () => {
    const h = new Harness([], {
      clock: { realtimeNs: () => 42n, monotonicNs: () => 7n },
      randomFill: (b) => b.fill(0xab),
    });
    const t = h.alloc(8);
    h.call('clock_time_get', 0, 0n, t);
    expect(h.u64(t)).toBe(42n);
    const buf = h.alloc(100_000, 1);
    expect(h.call('random_get', buf, 100_000)).toBe(0);
    expect(h.u8.subarray(buf, buf + 100_000).every((b) => b === 0xab)).toBe(true);
  });

  it('fills random_get with varying bytes by default', () => {
    const h = new Harness([]);
    const buf = h.alloc(64, 1);
    expect(h.call('random_get', buf, 64)).toBe(0);
    expect(new Set(h.u8.subarray(buf, buf + 64)).size).toBeGreaterThan(8);
  });
});

describe('descriptor table', () => {
  it('has stdio at 0-2 and preopens from 3 with their names', () => {
    const a = Overlay.prepare(), b = Overlay.prepare();
    const h = new Harness([{ guestPath: '/', vfs: a as Vfs, readOnly: false }, { guestPath: '/data', vfs: b as Vfs, readOnly: true }]);
    const pre = h.alloc(8);
    expect(h.call('fd_prestat_get', 3, pre)).toBe(0);
    expect([h.u8[pre], h.u32(pre + 4)]).toEqual([0, 1]);
    expect(h.call('fd_prestat_get', 4, pre)).toBe(0);
    expect(h.u32(pre + 4)).toBe(5);
    const name = h.alloc(16, 1);
    expect(h.call('fd_prestat_dir_name', 4, name, 4)).toBe(E.NAMETOOLONG);
    expect(h.call('fd_prestat_dir_name', 4, name, 5)).toBe(0);
    expect(h.text(name, 5)).toBe('/data');
    for (const fd of [0, 1, 2]) expect(h.call('fd_prestat_get', fd, pre)).toBe(E.BADF);
    expect(h.call('fd_prestat_get', 5, pre)).toBe(E.BADF);
  });

  it('gives EBADF for forged, negative and closed descriptors', () => {
    const { h } = fresh();
    const st = h.alloc(24);
    for (const fd of [4, 1000, -1, 0x7fffffff]) {
      expect(h.call('fd_fdstat_get', fd, st)).toBe(E.BADF);
      expect(h.call('fd_close', fd)).toBe(E.BADF);
      expect(h.path('path_create_directory', fd, 'x')).toBe(E.BADF);
    }
    const [, fd] = h.open(ROOT, 'f', { oflags: 1 });
    expect(h.call('fd_close', fd)).toBe(0);
    expect(h.call('fd_close', fd)).toBe(E.BADF);
    expect(h.write(fd, 'x')[0]).toBe(E.BADF);
  });

  it('closes a preopen for good; a descriptor opened from it keeps working', () => {
    const { h } = fresh();
    const [, sub] = h.open(ROOT, '.', { oflags: 2 });
    expect(h.call('fd_close', ROOT)).toBe(0);
    expect(h.path('path_create_directory', ROOT, 'x')).toBe(E.BADF);
    expect(h.call('fd_prestat_get', ROOT, h.alloc(8))).toBe(E.BADF);
    expect(h.path('path_create_directory', sub, 'x')).toBe(0);
    // The number is free again, but it is no preopen and reaches nothing granted.
    const [, again] = h.open(sub, 'x', { oflags: 2 });
    expect(again).toBe(ROOT);
    expect(h.call('fd_prestat_get', again, h.alloc(8))).toBe(E.BADF);
  });

  it('renumbers onto an open descriptor only, closing it; the source number is gone', () => {
    const { h } = fresh();
    const [, a] = h.open(ROOT, 'a', { oflags: 1 });
    const [, b] = h.open(ROOT, 'b', { oflags: 1 });
    h.write(a, 'from a');
    expect(h.call('fd_renumber', a, 99)).toBe(E.BADF);
    expect(h.call('fd_renumber', a, b)).toBe(0);
    expect(h.call('fd_close', a)).toBe(E.BADF);
    expect(h.call('fd_seek', b, 0n, 0, h.alloc(8))).toBe(0);
    expect(h.read(b)).toEqual([0, 'from a']);
    expect(h.call('fd_renumber', b, b)).toBe(0);
  });

  it('renumbering a preopen moves the capability with it: the old number is dead', () => {
    const { h } = fresh();
    const [, f] = h.open(ROOT, 'f', { oflags: 1 });
    expect(h.call('fd_renumber', ROOT, f)).toBe(0);
    expect(h.path('path_create_directory', ROOT, 'x')).toBe(E.BADF);
    expect(h.path('path_create_directory', f, 'x')).toBe(0);
    const pre = h.alloc(8);
    expect(h.call('fd_prestat_get', f, pre)).toBe(0);
  });

  it('never hands out a number that is open', () => {
    const { h } = fresh();
    const fds = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const [rc, fd] = h.open(ROOT, `f${i}`, { oflags: 1 });
      expect(rc).toBe(0);
      expect(fds.has(fd)).toBe(false);
      fds.add(fd);
      if (i % 3 === 0) {
        h.call('fd_close', fd);
        fds.delete(fd);
      }
    }
    expect([...fds].every((fd) => fd > ROOT)).toBe(true);
  });
});

describe('rights', () => {
  it('reports preopen rights and lets fd_fdstat_set_rights only drop them', () => {
    const { h } = fresh();
    const st = h.alloc(24);
    expect(h.call('fd_fdstat_get', ROOT, st)).toBe(0);
    expect(h.u8[st]).toBe(3);
    const base = h.u64(st + 8), inh = h.u64(st + 16);
    expect(base & BigInt(Rights.PATH_OPEN)).not.toBe(0n);
    expect(inh & BigInt(Rights.FD_WRITE)).not.toBe(0n);
    expect(base & BigInt(Rights.FD_WRITE)).toBe(0n);
    const noCreate = base & ~BigInt(Rights.PATH_CREATE_DIRECTORY);
    expect(h.call('fd_fdstat_set_rights', ROOT, noCreate, inh)).toBe(0);
    expect(h.path('path_create_directory', ROOT, 'd')).toBe(E.NOTCAPABLE);
    expect(h.call('fd_fdstat_set_rights', ROOT, base, inh)).toBe(E.NOTCAPABLE);
    expect(h.call('fd_fdstat_set_rights', ROOT, noCreate | (1n << 40n), inh)).toBe(E.NOTCAPABLE);
  });

  it('intersects path_open rights with the directory\'s inheriting rights', () => {
    const { h } = fresh();
    const st = h.alloc(24);
    h.call('fd_fdstat_get', ROOT, st);
    const inh = h.u64(st + 16) & ~BigInt(Rights.FD_WRITE);
    expect(h.call('fd_fdstat_set_rights', ROOT, h.u64(st + 8), inh)).toBe(0);
    const [rc, fd] = h.open(ROOT, 'f', { oflags: 1, base: ALL_RIGHTS });
    expect(rc).toBe(0);
    h.call('fd_fdstat_get', fd, st);
    expect(h.u64(st + 8) & BigInt(Rights.FD_WRITE)).toBe(0n);
    expect(h.u64(st + 8) & BigInt(Rights.FD_READ)).not.toBe(0n);
    expect(h.write(fd, 'x')[0]).toBe(E.NOTCAPABLE);
  });

  it('enforces read and write rights on files; directories get no byte rights', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'data');
    const [, ro] = h.open(ROOT, 'f', { base: BigInt(Rights.FD_READ) });
    expect(h.write(ro, 'x')[0]).toBe(E.NOTCAPABLE);
    expect(h.read(ro)).toEqual([0, 'data']);
    const [, wo] = h.open(ROOT, 'f', { base: BigInt(Rights.FD_WRITE) });
    expect(h.read(wo)[0]).toBe(E.NOTCAPABLE);
    const [, d] = h.open(ROOT, '.', { oflags: 2, base: BigInt(Rights.FD_READ | Rights.FD_SEEK) });
    const st = h.alloc(24);
    h.call('fd_fdstat_get', d, st);
    expect(h.u64(st + 8)).toBe(0n);
    expect(h.open(ROOT, '.', { oflags: 2, base: BigInt(Rights.FD_WRITE) })[0]).toBe(E.ISDIR);
  });

  it('needs PATH_FILESTAT_SET_SIZE for O_TRUNC and PATH_CREATE_FILE for O_CREAT', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'data');
    const st = h.alloc(24);
    h.call('fd_fdstat_get', ROOT, st);
    const base = h.u64(st + 8), inh = h.u64(st + 16);
    h.call('fd_fdstat_set_rights', ROOT, base & ~BigInt(Rights.PATH_FILESTAT_SET_SIZE | Rights.PATH_CREATE_FILE), inh);
    expect(h.open(ROOT, 'f', { oflags: 8 })[0]).toBe(E.NOTCAPABLE);
    expect(h.open(ROOT, 'g', { oflags: 1 })[0]).toBe(E.NOTCAPABLE);
    expect(h.open(ROOT, 'f')[0]).toBe(0);
  });
});

describe('fd_* on files', () => {
  it('reads and writes with iovec arrays, pread/pwrite without moving the offset', () => {
    const { h } = fresh();
    const [, fd] = h.open(ROOT, 'f', { oflags: 1 });
    const [a, an] = h.put('hello ');
    const [b, bn] = h.put('world');
    const iovs = h.alloc(16, 4);
    h.view.setUint32(iovs, a, true); h.view.setUint32(iovs + 4, an, true);
    h.view.setUint32(iovs + 8, b, true); h.view.setUint32(iovs + 12, bn, true);
    const n = h.alloc(4);
    expect(h.call('fd_write', fd, iovs, 2, n)).toBe(0);
    expect(h.u32(n)).toBe(11);
    const [c, cn] = h.put('W');
    h.view.setUint32(iovs, c, true); h.view.setUint32(iovs + 4, cn, true);
    expect(h.call('fd_pwrite', fd, iovs, 1, 6n, n)).toBe(0);
    const pos = h.alloc(8);
    expect(h.call('fd_tell', fd, pos)).toBe(0);
    expect(h.u64(pos)).toBe(11n);
    const out = h.alloc(32, 1);
    h.view.setUint32(iovs, out, true); h.view.setUint32(iovs + 4, 3, true);
    h.view.setUint32(iovs + 8, out + 3, true); h.view.setUint32(iovs + 12, 20, true);
    expect(h.call('fd_pread', fd, iovs, 2, 0n, n)).toBe(0);
    expect(h.text(out, h.u32(n))).toBe('hello World');
    expect(h.call('fd_pread', fd, iovs, 2, 100n, n)).toBe(0);
    expect(h.u32(n)).toBe(0);
    expect(h.call('fd_pread', fd, iovs, 2, -1n, n)).toBe(E.INVAL);
  });

  it('bounds iovec counts and buffers: EINVAL for huge counts, EFAULT outside memory, no host crash', () => {
    const { h } = fresh();
    const [, fd] = h.open(ROOT, 'f', { oflags: 1 });
    const n = h.alloc(4);
    const end = h.memory.buffer.byteLength;
    expect(h.call('fd_write', fd, 0, 0x7fffffff, n)).toBe(E.INVAL);
    expect(h.call('fd_write', fd, 0, -1, n)).toBe(E.INVAL);
    expect(h.call('fd_read', 0, 0, 1 << 20, n)).toBe(E.INVAL);
    expect(h.call('fd_write', fd, end - 4, 1, n)).toBe(E.FAULT);
    const iov = h.alloc(8, 4);
    h.view.setUint32(iov, 16, true);
    h.view.setUint32(iov + 4, 0xffffffff, true);
    expect(h.call('fd_write', fd, iov, 1, n)).toBe(E.FAULT);
    expect(h.call('fd_read', fd, iov, 1, n)).toBe(E.FAULT);
    expect(h.call('fd_write', 1, iov, 1, n)).toBe(E.FAULT);
    h.view.setUint32(iov, end - 2, true);
    h.view.setUint32(iov + 4, 4, true);
    expect(h.call('fd_write', 1, iov, 1, n)).toBe(E.FAULT);
    // Many iovecs over the whole memory: a short write, bounded by the per-call cap.
    const many = h.alloc(8 * 1024, 4);
    for (let i = 0; i < 1024; i++) {
      h.view.setUint32(many + i * 8, 0, true);
      h.view.setUint32(many + i * 8 + 4, end, true);
    }
    expect(h.call('fd_write', 1, many, 1024, n)).toBe(0);
    expect(h.u32(n)).toBe(64 * 1024 * 1024);
    expect(h.stdout.at(-1)!.length).toBe(64 * 1024 * 1024);
    expect(h.call('fd_write', fd, iov, 1, end)).toBe(E.FAULT);
  });

  it('sees memory growth between calls', () => {
    const { h } = fresh();
    const before = h.memory.buffer.byteLength;
    h.memory.grow(1);
    const [p] = h.put('x');
    const iov = before + 100;
    h.view.setUint32(iov, p, true);
    h.view.setUint32(iov + 4, 1, true);
    expect(h.call('fd_write', 1, iov, 1, before + 200)).toBe(0);
    expect(h.u32(before + 200)).toBe(1);
  });

  it('seeks with set, cur and end; negative results are EINVAL', () => {
    const { h } = fresh();
    writeFile(h, 'f', '0123456789');
    const [, fd] = h.open(ROOT, 'f');
    const p = h.alloc(8);
    expect(h.call('fd_seek', fd, 4n, 0, p)).toBe(0);
    expect(h.read(fd, 2)).toEqual([0, '45']);
    expect(h.call('fd_seek', fd, -1n, 1, p)).toBe(0);
    expect(h.u64(p)).toBe(5n);
    expect(h.call('fd_seek', fd, -2n, 2, p)).toBe(0);
    expect(h.u64(p)).toBe(8n);
    expect(h.call('fd_seek', fd, -20n, 1, p)).toBe(E.INVAL);
    expect(h.call('fd_seek', fd, 0n, 3, p)).toBe(E.INVAL);
    expect(h.call('fd_seek', fd, 100n, 0, p)).toBe(0);
    expect(h.read(fd)).toEqual([0, '']);
    expect(h.call('fd_seek', 1, 0n, 0, p)).toBe(E.SPIPE);
  });

  it('appends with FDFLAGS_APPEND and switches it with fd_fdstat_set_flags', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'abc');
    const [, fd] = h.open(ROOT, 'f', { fdflags: 1 });
    const p = h.alloc(8);
    h.call('fd_seek', fd, 0n, 0, p);
    h.write(fd, 'X');
    const st = h.alloc(24);
    h.call('fd_fdstat_get', fd, st);
    expect(h.view.getUint16(st + 2, true)).toBe(1);
    expect(h.call('fd_fdstat_set_flags', fd, 0)).toBe(0);
    h.call('fd_seek', fd, 0n, 0, p);
    h.write(fd, 'Y');
    expect(h.call('fd_fdstat_set_flags', fd, 0x40)).toBe(E.INVAL);
    expect(h.call('fd_fdstat_set_flags', fd, 4 | 16)).toBe(0);
    h.call('fd_seek', fd, 0n, 0, p);
    expect(h.read(fd)).toEqual([0, 'YbcX']);
  });

  it('gets and sets size and times with nanoseconds; X with X_NOW is EINVAL', () => {
    const { h } = fresh({ clock: { realtimeNs: () => 5_000_000_000_000_000_123n, monotonicNs: () => 1n } });
    writeFile(h, 'f', 'abc');
    const [, fd] = h.open(ROOT, 'f');
    const st = h.alloc(64);
    expect(h.call('fd_filestat_get', fd, st)).toBe(0);
    expect(h.u8[st + 16]).toBe(4);
    expect(h.u64(st + 32)).toBe(3n);
    expect(h.call('fd_filestat_set_size', fd, 10n)).toBe(0);
    h.call('fd_filestat_get', fd, st);
    expect(h.u64(st + 32)).toBe(10n);
    expect(h.call('fd_filestat_set_times', fd, 111n, 222n, 1 | 4)).toBe(0);
    h.call('fd_filestat_get', fd, st);
    expect([h.u64(st + 40), h.u64(st + 48)]).toEqual([111n, 222n]);
    expect(h.call('fd_filestat_set_times', fd, 0n, 0n, 2)).toBe(0);
    h.call('fd_filestat_get', fd, st);
    expect([h.u64(st + 40), h.u64(st + 48)]).toEqual([5_000_000_000_000_000_123n, 222n]);
    expect(h.call('fd_filestat_set_times', fd, 1n, 1n, 1 | 2)).toBe(E.INVAL);
    expect(h.call('fd_filestat_set_times', fd, 1n, 1n, 4 | 8)).toBe(E.INVAL);
    expect(h.call('fd_filestat_set_times', fd, 1n, 1n, 16)).toBe(E.INVAL);
  });

  it('advises, allocates (growing only), syncs', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'abc');
    const [, fd] = h.open(ROOT, 'f');
    expect(h.call('fd_advise', fd, 0n, 10n, 2)).toBe(0);
    expect(h.call('fd_advise', fd, 0n, 10n, 9)).toBe(E.INVAL);
    expect(h.call('fd_allocate', fd, 0n, 2n)).toBe(0);
    expect(h.call('fd_allocate', fd, 10n, 10n)).toBe(0);
    const st = h.alloc(64);
    h.call('fd_filestat_get', fd, st);
    expect(h.u64(st + 32)).toBe(20n);
    expect(h.call('fd_sync', fd)).toBe(0);
    expect(h.call('fd_datasync', fd)).toBe(0);
    expect(h.call('fd_sync', 99)).toBe(E.BADF);
  });

  it('lists a directory with . and .. first, stable cookies, and an exactly filled buffer', () => {
    const { h } = fresh();
    h.path('path_create_directory', ROOT, 'd');
    for (const n of ['a', 'bb', 'ccc']) writeFile(h, `d/${n}`, n);
    const [, d] = h.open(ROOT, 'd', { oflags: 2 });
    const buf = h.alloc(1024, 8), used = h.alloc(4);
    expect(h.call('fd_readdir', d, buf, 1024, 0n, used)).toBe(0);
    const entries: { next: bigint; ino: bigint; name: string; type: number }[] = [];
    for (let p = buf; p < buf + h.u32(used);) {
      const len = h.u32(p + 16);
      entries.push({ next: h.u64(p), ino: h.u64(p + 8), type: h.u8[p + 20]!, name: h.text(p + 24, len) });
      p += 24 + len;
    }
    expect(entries.map((e) => e.name)).toEqual(['.', '..', 'a', 'bb', 'ccc']);
    expect(entries.map((e) => e.type)).toEqual([3, 3, 4, 4, 4]);
    const st = h.alloc(64);
    h.call('fd_filestat_get', d, st);
    expect(entries[0]!.ino).toBe(h.u64(st + 8));
    h.call('fd_filestat_get', ROOT, st);
    expect(entries[1]!.ino).toBe(h.u64(st + 8));
    // Resume after 'a': the same entries follow.
    expect(h.call('fd_readdir', d, buf, 1024, entries[2]!.next, used)).toBe(0);
    expect(h.text(buf + 24, 2)).toBe('bb');
    // A buffer that ends inside an entry is filled completely, the entry truncated.
    const total = entries.reduce((n, e) => n + 24 + e.name.length, 0);
    expect(h.call('fd_readdir', d, buf, total - 2, 0n, used)).toBe(0);
    expect(h.u32(used)).toBe(total - 2);
    expect(h.call('fd_readdir', d, buf, 10, 0n, used)).toBe(0);
    expect(h.u32(used)).toBe(10);
    expect(h.call('fd_readdir', d, buf, 1024, 1000n, used)).toBe(0);
    expect(h.u32(used)).toBe(0);
    const [, f] = h.open(ROOT, 'd/a');
    expect(h.call('fd_readdir', f, buf, 1024, 0n, used)).toBe(E.NOTCAPABLE);
  });

  it('reports stdio as streams: no seek, filestat with a type', () => {
    const { h } = fresh();
    const st = h.alloc(64);
    expect(h.call('fd_filestat_get', 1, st)).toBe(0);
    expect(h.call('fd_tell', 0, st)).toBe(E.SPIPE);
    expect(h.read(1)[0]).toBe(E.NOTCAPABLE);
    expect(h.write(0, 'x')[0]).toBe(E.NOTCAPABLE);
    h.write(1, 'out');
    h.write(2, 'err');
    expect(h.stdoutText()).toBe('out');
    expect(new TextDecoder().decode(h.stderr[0])).toBe('err');
  });

  it('reads stdin until EOF', () => {
    const chunks = [enc.encode('line one\n'), enc.encode('two')];
    const { h } = fresh({ stdin: { read: (max) => chunks.shift()?.subarray(0, max) ?? null } });
    expect(h.read(0)).toEqual([0, 'line one\n']);
    expect(h.read(0)).toEqual([0, 'two']);
    expect(h.read(0)).toEqual([0, '']);
  });
});

describe('path_*', () => {
  it('opens with creat, excl, trunc and directory; O_DIRECTORY on a file is ENOTDIR', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'abc');
    expect(h.open(ROOT, 'f', { oflags: 1 | 4 })[0]).toBe(E.EXIST);
    expect(h.open(ROOT, 'f', { oflags: 2 })[0]).toBe(E.NOTDIR);
    expect(h.open(ROOT, 'missing')[0]).toBe(E.NOENT);
    expect(h.open(ROOT, 'f/')[0]).toBe(E.NOTDIR);
    expect(h.open(ROOT, 'new/', { oflags: 1 })[0]).toBe(E.ISDIR);
    expect(h.open(ROOT, 'x', { oflags: 1 | 2 })[0]).toBe(E.INVAL);
    expect(h.open(ROOT, 'f', { oflags: 0x10 })[0]).toBe(E.INVAL);
    const [, fd] = h.open(ROOT, 'f', { oflags: 8 });
    expect(h.read(fd)).toEqual([0, '']);
    h.path('path_create_directory', ROOT, 'd');
    expect(h.open(ROOT, 'd/', { oflags: 2 })[0]).toBe(0);
    expect(h.open(ROOT, 'd', { oflags: 8 })[0]).toBe(E.ISDIR);
  });

  it('treats symlinks per lookupflags: O_NOFOLLOW on a symlink is ELOOP, loops are ELOOP', () => {
    const { h } = fresh();
    writeFile(h, 'target', 'T');
    const [t, tn] = h.put('target');
    const [l, ln] = h.put('link');
    expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(0);
    expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(E.EXIST);
    expect(h.open(ROOT, 'link')[0]).toBe(E.LOOP);
    const [rc, fd] = h.open(ROOT, 'link', { follow: true });
    expect(rc).toBe(0);
    expect(h.read(fd)).toEqual([0, 'T']);
    const st = h.alloc(64);
    const [p, pn] = h.put('link');
    expect(h.call('path_filestat_get', ROOT, 0, p, pn, st)).toBe(0);
    expect(h.u8[st + 16]).toBe(7);
    expect(h.call('path_filestat_get', ROOT, 1, p, pn, st)).toBe(0);
    expect(h.u8[st + 16]).toBe(4);
    const [s, sn] = h.put('self');
    h.call('path_symlink', s, sn, ROOT, s, sn);
    expect(h.open(ROOT, 'self', { follow: true })[0]).toBe(E.LOOP);
    const buf = h.alloc(16, 1), used = h.alloc(4);
    expect(h.path('path_readlink', ROOT, 'link', buf, 16, used)).toBe(0);
    expect(h.text(buf, h.u32(used))).toBe('target');
    expect(h.path('path_readlink', ROOT, 'link', buf, 3, used)).toBe(0);
    expect(h.u32(used)).toBe(3);
    expect(h.path('path_readlink', ROOT, 'target', buf, 16, used)).toBe(E.INVAL);
  });

  it('creates and removes directories and files with the POSIX errors', () => {
    const { h } = fresh();
    expect(h.path('path_create_directory', ROOT, 'd')).toBe(0);
    expect(h.path('path_create_directory', ROOT, 'd')).toBe(E.EXIST);
    expect(h.path('path_create_directory', ROOT, 'd/e/')).toBe(0);
    expect(h.path('path_remove_directory', ROOT, 'd')).toBe(E.NOTEMPTY);
    expect(h.path('path_unlink_file', ROOT, 'd')).toBe(E.ISDIR);
    writeFile(h, 'f', 'x');
    expect(h.path('path_remove_directory', ROOT, 'f')).toBe(E.NOTDIR);
    expect(h.path('path_unlink_file', ROOT, 'f/')).toBe(E.NOTDIR);
    expect(h.path('path_unlink_file', ROOT, 'f')).toBe(0);
    expect(h.path('path_unlink_file', ROOT, 'f')).toBe(E.NOENT);
    expect(h.path('path_remove_directory', ROOT, 'd/e/')).toBe(0);
    expect(h.path('path_remove_directory', ROOT, '.')).toBe(E.INVAL);
    expect(h.path('path_remove_directory', ROOT, 'd')).toBe(0);
  });

  it('links and renames with the POSIX errors', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'content');
    h.path('path_create_directory', ROOT, 'd');
    const [f, fn] = h.put('f');
    const [g, gn] = h.put('d/g');
    expect(h.call('path_link', ROOT, 0, f, fn, ROOT, g, gn)).toBe(0);
    expect(h.call('path_link', ROOT, 0, f, fn, ROOT, g, gn)).toBe(E.EXIST);
    const [dd, ddn] = h.put('d');
    expect(h.call('path_link', ROOT, 0, dd, ddn, ROOT, f, fn)).toBe(E.PERM);
    const st = h.alloc(64);
    h.call('path_filestat_get', ROOT, 0, f, fn, st);
    expect(h.u64(st + 24)).toBe(2n);
    const [r, rn] = h.put('renamed');
    expect(h.call('path_rename', ROOT, f, fn, ROOT, r, rn)).toBe(0);
    expect(h.open(ROOT, 'f')[0]).toBe(E.NOENT);
    const [, fd] = h.open(ROOT, 'renamed');
    expect(h.read(fd)).toEqual([0, 'content']);
    expect(h.call('path_rename', ROOT, r, rn, ROOT, dd, ddn)).toBe(E.ISDIR);
    expect(h.call('path_rename', ROOT, dd, ddn, ROOT, r, rn)).toBe(E.NOTDIR);
    expect(h.call('path_rename', ROOT, f, fn, ROOT, r, rn)).toBe(E.NOENT);
  });

  it('sets times by path, following symlinks only when asked', () => {
    const { h } = fresh();
    writeFile(h, 'f', 'x');
    const [t, tn] = h.put('f');
    const [l, ln] = h.put('l');
    h.call('path_symlink', t, tn, ROOT, l, ln);
    expect(h.call('path_filestat_set_times', ROOT, 0, l, ln, 0n, 77n, 4)).toBe(0);
    const st = h.alloc(64);
    h.call('path_filestat_get', ROOT, 0, l, ln, st);
    expect(h.u64(st + 48)).toBe(77n);
    h.call('path_filestat_get', ROOT, 0, t, tn, st);
    expect(h.u64(st + 48)).not.toBe(77n);
    expect(h.call('path_filestat_set_times', ROOT, 1, l, ln, 0n, 88n, 4)).toBe(0);
    h.call('path_filestat_get', ROOT, 0, t, tn, st);
    expect(h.u64(st + 48)).toBe(88n);
    expect(h.call('path_filestat_set_times', ROOT, 1, l, ln, 0n, 88n, 12)).toBe(E.INVAL);
  });

  it('returns EILSEQ for paths that are not UTF-8 and EINVAL for NUL', () => {
    const { h } = fresh();
    const [p, n] = h.put(new Uint8Array([0x66, 0xff, 0xfe]));
    expect(h.call('path_create_directory', ROOT, p, n)).toBe(E.ILSEQ);
    expect(h.path('path_create_directory', ROOT, 'a\0b')).toBe(E.INVAL);
    expect(h.call('path_create_directory', ROOT, h.memory.buffer.byteLength - 1, 5)).toBe(E.FAULT);
  });
});

describe('read-only preopens', () => {
  function roFixture(readOnlyFlag: boolean): Harness {
    const fs = Overlay.prepare();
    const dir = fs.mkdir(fs.root(), 'd', 0o755);
    fs.write(fs.createFile(fs.root(), 'f', 0o644), enc.encode('keep'), 0);
    void dir;
    const vfs: Vfs = readOnlyFlag ? fs as Vfs : Overlay.view(fs as Vfs) as Vfs;
    return new Harness([{ guestPath: '/ro', vfs, readOnly: readOnlyFlag }]);
  }

  for (const [label, flag] of [['readOnly: true', true], ['a read-only Vfs', false]] as const) {
    it(`denies every mutation with EROFS (${label}) and still reads`, () => {
      const h = roFixture(flag);
      expect(h.path('path_create_directory', ROOT, 'x')).toBe(E.ROFS);
      expect(h.open(ROOT, 'new', { oflags: 1 })[0]).toBe(E.ROFS);
      expect(h.open(ROOT, 'f', { oflags: 8 })[0]).toBe(E.ROFS);
      expect(h.open(ROOT, 'f', { base: BigInt(Rights.FD_WRITE | Rights.FD_READ) })[0]).toBe(E.ROFS);
      expect(h.path('path_unlink_file', ROOT, 'f')).toBe(E.ROFS);
      expect(h.path('path_remove_directory', ROOT, 'd')).toBe(E.ROFS);
      const [a, an] = h.put('f');
      const [b, bn] = h.put('g');
      expect(h.call('path_rename', ROOT, a, an, ROOT, b, bn)).toBe(E.ROFS);
      expect(h.call('path_link', ROOT, 0, a, an, ROOT, b, bn)).toBe(E.ROFS);
      expect(h.call('path_symlink', a, an, ROOT, b, bn)).toBe(E.ROFS);
      expect(h.call('path_filestat_set_times', ROOT, 0, a, an, 0n, 0n, 2)).toBe(E.ROFS);
      const [rc, fd] = h.open(ROOT, 'f', { base: BigInt(Rights.FD_READ | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_FILESTAT_SET_TIMES) });
      expect(rc).toBe(0);
      expect(h.read(fd)).toEqual([0, 'keep']);
      expect(h.call('fd_filestat_set_size', fd, 0n)).toBe(E.ROFS);
      expect(h.call('fd_filestat_set_times', fd, 0n, 0n, 2)).toBe(E.ROFS);
      // Also through a directory descriptor opened below the preopen.
      const [, d] = h.open(ROOT, 'd', { oflags: 2 });
      expect(h.path('path_create_directory', d, 'x')).toBe(E.ROFS);
      expect(h.open(d, 'new', { oflags: 1 })[0]).toBe(E.ROFS);
    });
  }
});

describe('escapes never work', () => {
  function twoPreopens(): { h: Harness; a: Overlay; b: Overlay } {
    const a = Overlay.prepare(), b = Overlay.prepare();
    b.write(b.createFile(b.root(), 'secret', 0o600), enc.encode('secret'), 0);
    a.mkdir(a.root(), 'sub', 0o755);
    return { h: new Harness([{ guestPath: '/a', vfs: a as Vfs, readOnly: false }, { guestPath: '/b', vfs: b as Vfs, readOnly: false }]), a, b };
  }

  it('refuses .. above a preopen and above a directory descriptor', () => {
    const { h } = twoPreopens();
    for (const p of ['..', '../b/secret', 'sub/../..', 'sub/../../b', './../x', 'sub/./../../../']) {
      expect(h.open(ROOT, p)[0]).toBe(E.NOTCAPABLE);
      expect(h.path('path_create_directory', ROOT, `${p}/new`)).toBe(E.NOTCAPABLE);
    }
    const [, sub] = h.open(ROOT, 'sub', { oflags: 2 });
    expect(h.open(sub, '..')[0]).toBe(E.NOTCAPABLE);
    expect(h.open(sub, '.', { oflags: 2 })[0]).toBe(0);
  });

  it('refuses absolute paths and absolute symlinks', () => {
    const { h, a } = twoPreopens();
    expect(h.open(ROOT, '/b/secret')[0]).toBe(E.NOTCAPABLE);
    expect(h.open(ROOT, '/')[0]).toBe(E.NOTCAPABLE);
    const [t, tn] = h.put('/b/secret');
    const [l, ln] = h.put('abs');
    expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(E.NOTCAPABLE);
    // One planted by the host (e.g. from an image layer) is not followed out either.
    a.symlink(a.root(), 'planted', '/b/secret');
    expect(h.open(ROOT, 'planted', { follow: true })[0]).toBe(E.NOTCAPABLE);
    expect(h.open(ROOT, 'planted/x', { follow: true })[0]).toBe(E.NOTCAPABLE);
  });

  it('refuses relative symlinks and chains that climb out', () => {
    const { h } = twoPreopens();
    const sym = (target: string, name: string) => {
      const [t, tn] = h.put(target);
      const [l, ln] = h.put(name);
      expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(0);
    };
    sym('../b/secret', 'up');
    sym('sub/../..', 'up2');
    sym('hop1', 'hop0');
    sym('hop2', 'hop1');
    sym('sub/../../b', 'hop2');
    for (const p of ['up', 'up2/b/secret', 'hop0/secret', 'hop0']) {
      expect(h.open(ROOT, p, { follow: true })[0]).toBe(E.NOTCAPABLE);
      const st = h.alloc(64);
      const [pp, pn] = h.put(p);
      expect(h.call('path_filestat_get', ROOT, 1, pp, pn, st)).toBe(E.NOTCAPABLE);
    }
    // A symlink inside a subdirectory descriptor can't climb above that descriptor either.
    sym('..', 'sub/parent');
    const [, sub] = h.open(ROOT, 'sub', { oflags: 2 });
    expect(h.open(sub, 'parent', { follow: true })[0]).toBe(E.NOTCAPABLE);
    expect(h.open(sub, 'parent/sub', { follow: true })[0]).toBe(E.NOTCAPABLE);
  });

  it('refuses hard links and renames across preopens (EXDEV) and out of one (ENOTCAPABLE)', () => {
    const { h, b } = twoPreopens();
    const [s, sn] = h.put('secret');
    const [x, xn] = h.put('x');
    expect(h.call('path_link', 4, 0, s, sn, ROOT, x, xn)).toBe(E.XDEV);
    expect(h.call('path_rename', 4, s, sn, ROOT, x, xn)).toBe(E.XDEV);
    writeFile(h, 'mine', 'm');
    const [m, mn] = h.put('mine');
    const [out, outn] = h.put('../b/stolen');
    expect(h.call('path_rename', ROOT, m, mn, ROOT, out, outn)).toBe(E.NOTCAPABLE);
    expect(h.call('path_link', ROOT, 0, m, mn, ROOT, out, outn)).toBe(E.NOTCAPABLE);
    expect(b.lookup(b.root(), 'stolen')).toBeUndefined();
    expect(b.lookup(b.root(), 'x')).toBeUndefined();
  });

  it('refuses to work through closed, renumbered or forged preopen descriptors', () => {
    const { h } = twoPreopens();
    expect(h.call('fd_close', 4)).toBe(0);
    expect(h.open(4, 'secret')[0]).toBe(E.BADF);
    const [, f] = h.open(ROOT, 'f', { oflags: 1 });
    expect(h.call('fd_renumber', f, ROOT)).toBe(0);
    expect(h.open(ROOT, 'sub')[0]).toBe(E.NOTDIR);
    expect(h.path('path_create_directory', ROOT, 'x')).toBe(E.NOTDIR);
    for (const fd of [4, 5, 6, 7, 100, 2 ** 31 - 1]) expect(h.open(fd, 'secret')[0]).toBe(E.BADF);
  });
});

describe('poll_oneoff', () => {
  function sub(h: Harness, base: number, i: number, userdata: bigint, tag: number, a: number | bigint, timeout = 0n, flags = 0): void {
    const p = base + i * 48;
    h.view.setBigUint64(p, userdata, true);
    h.view.setUint8(p + 8, tag);
    h.view.setUint32(p + 16, Number(a), true);
    if (tag === 0) {
      h.view.setBigUint64(p + 24, timeout, true);
      h.view.setUint16(p + 40, flags, true);
    }
  }

  it('returns EINVAL for no subscriptions and EFAULT for bad pointers', () => {
    const h = new Harness([]);
    const n = h.alloc(4);
    expect(h.call('poll_oneoff', h.alloc(48), h.alloc(32), 0, n)).toBe(E.INVAL);
    expect(h.call('poll_oneoff', h.memory.buffer.byteLength - 10, h.alloc(32), 1, n)).toBe(E.FAULT);
  });

  it('waits for relative and absolute clocks through the sleep hook', () => {
    let now = 1_000n;
    const slept: bigint[] = [];
    const h = new Harness([], { clock: { realtimeNs: () => now, monotonicNs: () => now }, sleep: (ns) => { slept.push(ns); now += ns; } });
    const subs = h.alloc(96), evs = h.alloc(64), n = h.alloc(4);
    sub(h, subs, 0, 7n, 0, 1, 500n);
    expect(h.call('poll_oneoff', subs, evs, 1, n)).toBe(0);
    expect(h.u32(n)).toBe(1);
    expect(h.u64(evs)).toBe(7n);
    expect(h.view.getUint16(evs + 8, true)).toBe(0);
    expect(h.u8[evs + 10]).toBe(0);
    expect(now).toBe(1_500n);
    sub(h, subs, 0, 8n, 0, 0, 2_000n, 1);
    sub(h, subs, 1, 9n, 0, 1, 10_000n);
    expect(h.call('poll_oneoff', subs, evs, 2, n)).toBe(0);
    expect(h.u32(n)).toBe(1);
    expect(h.u64(evs)).toBe(8n);
    expect(now).toBe(2_000n);
    sub(h, subs, 0, 1n, 0, 9, 1n);
    expect(h.call('poll_oneoff', subs, evs, 1, n)).toBe(0);
    expect(h.view.getUint16(evs + 8, true)).toBe(E.INVAL);
  });

  it('reports fd readiness at once, stdin included, and EBADF events for closed fds', () => {
    let ready = false;
    let now = 0n;
    const h = new Harness([], {
      stdin: { read: () => null, ready: () => ready },
      clock: { realtimeNs: () => now, monotonicNs: () => now },
      sleep: (ns) => { now += ns; if (now > 20_000_000n) ready = true; },
    });
    const subs = h.alloc(48 * 3), evs = h.alloc(32 * 3), n = h.alloc(4);
    sub(h, subs, 0, 1n, 2, 1);
    sub(h, subs, 1, 2n, 1, 0);
    sub(h, subs, 2, 3n, 1, 55);
    expect(h.call('poll_oneoff', subs, evs, 3, n)).toBe(0);
    const got = Array.from({ length: h.u32(n) }, (_, i) => [h.u64(evs + i * 32), h.view.getUint16(evs + i * 32 + 8, true)]);
    expect(got).toEqual([[1n, 0], [3n, E.BADF]]);
    // Only stdin, not ready yet: waits until it is.
    sub(h, subs, 0, 2n, 1, 0);
    expect(h.call('poll_oneoff', subs, evs, 1, n)).toBe(0);
    expect(h.u32(n)).toBe(1);
    expect(h.u64(evs)).toBe(2n);
    expect(ready).toBe(true);
    // A clock that fires before stdin becomes ready.
    ready = false;
    now = 0n;
    sub(h, subs, 0, 2n, 1, 0);
    sub(h, subs, 1, 5n, 0, 1, 1_000_000n);
    expect(h.call('poll_oneoff', subs, evs, 2, n)).toBe(0);
    expect([h.u32(n), h.u64(evs)]).toEqual([1, 5n]);
  });
});

describe('proc, sched, sockets, failures', () => {
  it('proc_exit unwinds with the code; proc_raise is ENOSYS; sched_yield succeeds', () => {
    const h = new Harness([]);
    expect(h.call('proc_raise', 6)).toBe(E.NOSYS);
    expect(h.call('sched_yield')).toBe(0);
    expect(() => h.call('proc_exit', 3)).toThrow(/proc_exit\(3\)/);
    // Even if the guest caught the unwinding, nothing runs on after proc_exit.
    expect(() => h.call('sched_yield')).toThrow(/proc_exit\(3\)/);
  });

  it('has no sockets: EBADF for a closed fd, ENOTSOCK for any other', () => {
    const { h } = fresh();
    const p = h.alloc(16);
    expect(h.call('sock_shutdown', 77, 1)).toBe(E.BADF);
    expect(h.call('sock_shutdown', 1, 1)).toBe(E.NOTSOCK);
    expect(h.call('sock_accept', ROOT, 0, p)).toBe(E.NOTSOCK);
    expect(h.call('sock_recv', 0, p, 1, 0, p, p)).toBe(E.NOTSOCK);
    expect(h.call('sock_send', 1, p, 1, 0, p)).toBe(E.NOTSOCK);
  });

  it('turns an unexpected host exception into EIO and reports it', () => {
    const fs = Overlay.prepare();
    const broken: Vfs = new Proxy(fs as Vfs, {
      get(t, k) {
        if (k === 'mkdir') return () => { throw new TypeError('boom'); };
        if (k === 'createFile') return () => { throw new FsError('ENOSPC'); };
        const v = Reflect.get(t, k);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const seen: unknown[] = [];
    const h = new Harness([{ guestPath: '/', vfs: broken, readOnly: false }], { onUnexpectedError: (e) => seen.push(e) });
    expect(h.path('path_create_directory', ROOT, 'x')).toBe(E.IO);
    expect(seen).toHaveLength(1);
    expect(h.open(ROOT, 'y', { oflags: 1 })[0]).toBe(E.NOSPC);
  });

  it('start() refuses a module without memory or _start', () => {
    const p1 = new Preview1({ args: [], env: [], preopens: [], stdin: { read: () => null }, stdout: () => {}, stderr: () => {} });
    const empty = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])), {});
    expect(() => p1.start(empty)).toThrow(/memory/);
  });
});

describe('trailing slashes on the entry itself', () => {
  it('never acts on a symlink\'s target through "link/"', () => {
    const { h, fs } = fresh();
    h.path('path_create_directory', ROOT, 'target');
    const [t, tn] = h.put('target');
    const [l, ln] = h.put('link');
    expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(0);
    expect(h.path('path_remove_directory', ROOT, 'link/')).toBe(E.NOTDIR);
    expect(h.path('path_unlink_file', ROOT, 'link/')).toBe(E.NOTDIR);
    const [ls, lsn] = h.put('link/');
    const [m, mn] = h.put('moved');
    expect(h.call('path_rename', ROOT, ls, lsn, ROOT, m, mn)).toBe(E.NOTDIR);
    expect(fs.lookup(fs.root(), 'target')).toBeDefined();
    expect(h.path('path_remove_directory', ROOT, 'target//')).toBe(0);
    expect(h.path('path_create_directory', ROOT, 'link/')).toBe(E.EXIST);
    expect(h.path('path_unlink_file', ROOT, 'link')).toBe(0);
  });
});

describe('container root preopens (chroot semantics from the top only)', () => {
  function container(): { h: Harness; fs: Overlay; other: Overlay } {
    const fs = Overlay.prepare();
    const other = Overlay.prepare();
    other.write(other.createFile(other.root(), 'secret', 0o600), enc.encode('other'), 0);
    const bin = fs.mkdir(fs.root(), 'bin', 0o755);
    fs.write(fs.createFile(bin, 'busybox', 0o755), enc.encode('BB'), 0);
    fs.symlink(bin, 'sh', '/bin/busybox');
    fs.symlink(fs.root(), 'up', '../../../bin/busybox');
    const h = new Harness([
      { guestPath: '/', vfs: fs as Vfs, readOnly: false, containerRoot: true },
      { guestPath: '/mnt', vfs: other as Vfs, readOnly: false },
    ]);
    return { h, fs, other };
  }

  it('resolves absolute symlinks and .. at the top inside the container, never into another preopen', () => {
    const { h } = container();
    const [rc, fd] = h.open(ROOT, 'bin/sh', { follow: true });
    expect(rc).toBe(0);
    expect(h.read(fd)).toEqual([0, 'BB']);
    expect(h.read(h.open(ROOT, 'up', { follow: true })[1])).toEqual([0, 'BB']);
    expect(h.read(h.open(ROOT, '../../bin/busybox')[1])).toEqual([0, 'BB']);
    // '/mnt' in the container root is not the other preopen: it does not exist here.
    expect(h.open(ROOT, '../mnt/secret')[0]).toBe(E.NOENT);
    const [t, tn] = h.put('/mnt/secret');
    const [l, ln] = h.put('bin/link');
    expect(h.call('path_symlink', t, tn, ROOT, l, ln)).toBe(0);
    expect(h.open(ROOT, 'bin/link', { follow: true })[0]).toBe(E.NOENT);
  });

  it('keeps cap-std rules from subdirectory descriptors and other preopens, also after a write at the top', () => {
    const { h } = container();
    h.path('path_create_directory', ROOT, 'newdir');
    const [, bin] = h.open(ROOT, 'bin', { oflags: 2 });
    expect(h.open(bin, 'sh', { follow: true })[0]).toBe(E.NOTCAPABLE);
    expect(h.open(bin, '../bin/busybox')[0]).toBe(E.NOTCAPABLE);
    const [t, tn] = h.put('/x');
    const [l, ln] = h.put('abs');
    expect(h.call('path_symlink', t, tn, 4, l, ln)).toBe(E.NOTCAPABLE);
    expect(h.open(4, '../secret')[0]).toBe(E.NOTCAPABLE);
    // A descriptor for the top itself has the top's semantics.
    const [, top] = h.open(ROOT, 'bin/..', { oflags: 2 });
    expect(h.read(h.open(top, 'bin/sh', { follow: true })[1])).toEqual([0, 'BB']);
  });
});
