import { WasiErrno, WasiError } from '../errno.ts';
import { Limits } from './constants.ts';
import type { GuestMemory } from './memory.ts';

/** The (pointer, length) pairs of one iovec array; reused across calls (no allocation per call). */
export class Iovecs {
  readonly ptrs = new Uint32Array(Limits.maxIovecs);
  readonly lens = new Uint32Array(Limits.maxIovecs);
  count = 0;
  total = 0;

  /**
   * Reads and bounds-checks an iovec array: at most Limits.maxIovecs entries (EINVAL beyond), every
   * buffer inside memory (EFAULT), and lengths clipped so that one call moves at most
   * Limits.maxIoBytes (a short read or write, as POSIX allows).
   */
  load(mem: GuestMemory, ptr: number, count: number): this {
    const n = count >>> 0;
    if (n > Limits.maxIovecs) throw new WasiError(WasiErrno.INVAL, `${n} iovecs`);
    const base = mem.check(ptr, n * 8);
    const view = mem.view;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const p = view.getUint32(base + i * 8, true);
      let len = view.getUint32(base + i * 8 + 4, true);
      mem.check(p, len);
      if (total + len > Limits.maxIoBytes) len = Limits.maxIoBytes - total;
      this.ptrs[i] = p;
      this.lens[i] = len;
      total += len;
    }
    this.count = n;
    this.total = total;
    return this;
  }
}

/** A signed 64-bit file offset as a safe integer (EINVAL when negative or too large). */
export function offsetOf(v: bigint): number {
  const s = BigInt.asIntN(64, v);
  if (s < 0n || s > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(WasiErrno.INVAL, `offset ${s}`);
  return Number(s);
}
