// Every import, called with arbitrary arguments, returns an errno (or unwinds for proc_exit): it never
// throws into the host, never hangs, and the instance keeps working afterwards.
import { describe, expect, it } from 'vitest';
import { Overlay } from '../src/fs/overlay.ts';
import type { Vfs } from '../src/fs/vfs.ts';
import { ProcExit } from '../src/sandbox/preview1/preview1.ts';
import { E, Harness } from './helpers/preview1-harness.ts';
import { rng } from './helpers/rng.ts';

const I64_PARAMS: Record<string, number[]> = {
  clock_time_get: [1], fd_pread: [3], fd_pwrite: [3], fd_seek: [1], fd_advise: [1, 2], fd_allocate: [1, 2],
  fd_filestat_set_size: [1], fd_filestat_set_times: [1, 2], fd_readdir: [3], path_open: [5, 6],
  path_filestat_set_times: [4, 5], fd_fdstat_set_rights: [1, 2],
};

describe('preview1 under arbitrary arguments', () => {
  it('answers every call with an errno and stays usable', () => {
    const fs = Overlay.prepare();
    fs.mkdir(fs.root(), 'd', 0o755);
    fs.write(fs.createFile(fs.root(), 'f', 0o644), new TextEncoder().encode('data'), 0);
    let now = 0n;
    const unexpected: unknown[] = [];
    const h = new Harness([{ guestPath: '/', vfs: fs as Vfs, readOnly: false }], {
      args: ['a', 'b'], env: ['K=V'],
      clock: { realtimeNs: () => now, monotonicNs: () => now },
      sleep: (ns) => { now += ns; },
      onUnexpectedError: (e) => unexpected.push(e),
    });
    const size = h.memory.buffer.byteLength;
    const next = rng(Number(process.env.PREVIEW1_FUZZ_SEED ?? 1234));
    const pick = (): number => {
      const r = next();
      if (r < 0.3) return Math.floor(next() * 8);             // small numbers: valid fds, flags
      if (r < 0.6) return Math.floor(next() * size);          // in-bounds pointers
      if (r < 0.7) return size - Math.floor(next() * 16);     // at the end of memory
      return (next() * 0x100000000) | 0;                      // anything, negative included
    };
    const names = Object.keys(h.p1.imports).filter((n) => n !== 'proc_exit');
    // Valid iovec and string material near the start of memory for the small-pointer picks.
    h.view.setUint32(8, 64, true);
    h.view.setUint32(12, 16, true);
    let calls = 0;
    for (let round = 0; round < 4000; round++) {
      const name = names[Math.floor(next() * names.length)]!;
      const fn = h.p1.imports[name] as (...a: unknown[]) => number;
      const wide = I64_PARAMS[name] ?? [];
      const args = Array.from({ length: 9 }, (_, i) => (wide.includes(i) ? BigInt.asIntN(64, BigInt(pick()) * BigInt(pick())) : pick()));
      const rc = fn(...args);
      expect(Number.isInteger(rc) && rc >= 0 && rc <= E.NOTCAPABLE, `${name} -> ${rc}`).toBe(true);
      calls++;
    }
    expect(calls).toBe(4000);
    // Every failure was a designed errno, not an internal exception turned into EIO.
    expect(unexpected.map(String)).toEqual([]);
    // Still a working instance: stdout writes, the root preopen may have been closed or renumbered.
    const [p, n] = h.put('alive');
    const iov = h.alloc(8, 4);
    h.view.setUint32(iov, p, true);
    h.view.setUint32(iov + 4, n, true);
    const st = h.alloc(24);
    if (h.call('fd_fdstat_get', 1, st) === 0) expect(h.call('fd_write', 1, iov, 1, h.alloc(4))).toBe(0);
    expect(() => h.call('proc_exit', 9)).toThrow(ProcExit);
  });
});
