import { WasiErrno, WasiError } from '../errno.ts';
import { Limits } from './constants.ts';
import type { GuestMemory } from './memory.ts';

/**
 * The (pointer, length) pairs of an iovec array, bounds-checked: at most Limits.maxIovecs entries
 * (EINVAL beyond), every buffer inside memory (EFAULT), and lengths clipped so that one call moves
 * at most Limits.maxIoBytes (a short read or write, as POSIX allows).
 */
export function iovecs(mem: GuestMemory, ptr: number, count: number): { ptrs: number[]; lens: number[]; total: number } {
  const n = count >>> 0;
  if (n > Limits.maxIovecs) throw new WasiError(WasiErrno.INVAL, `${n} iovecs`);
  const base = mem.check(ptr, n * 8);
  const view = mem.view;
  const ptrs: number[] = [];
  const lens: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const p = view.getUint32(base + i * 8, true);
    let len = view.getUint32(base + i * 8 + 4, true);
    mem.check(p, len);
    if (total + len > Limits.maxIoBytes) len = Limits.maxIoBytes - total;
    ptrs.push(p);
    lens.push(len);
    total += len;
  }
  return { ptrs, lens, total };
}

/** A signed 64-bit file offset as a safe integer (EINVAL when negative or too large). */
export function offsetOf(v: bigint): number {
  const s = BigInt.asIntN(64, v);
  if (s < 0n || s > BigInt(Number.MAX_SAFE_INTEGER)) throw new WasiError(WasiErrno.INVAL, `offset ${s}`);
  return Number(s);
}
