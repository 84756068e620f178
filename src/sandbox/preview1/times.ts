import { WasiErrno, WasiError } from '../errno.ts';
import { Fstflags } from './constants.ts';
import type { Context } from './context.ts';

/** fstflags to (atime, mtime) for Vfs.setTimes; undefined leaves a time unchanged. */
export function timesFrom(ctx: Context, atim: bigint, mtim: bigint, flags: number): [bigint | undefined, bigint | undefined] {
  const f = flags & 0xffff;
  if ((f & ~0xf) !== 0) throw new WasiError(WasiErrno.INVAL);
  if ((f & Fstflags.ATIM) && (f & Fstflags.ATIM_NOW)) throw new WasiError(WasiErrno.INVAL, 'ATIM and ATIM_NOW');
  if ((f & Fstflags.MTIM) && (f & Fstflags.MTIM_NOW)) throw new WasiError(WasiErrno.INVAL, 'MTIM and MTIM_NOW');
  let now: bigint | undefined;
  const current = () => (now ??= ctx.clock.realtimeNs());
  const a = f & Fstflags.ATIM ? BigInt.asUintN(64, atim) : f & Fstflags.ATIM_NOW ? current() : undefined;
  const m = f & Fstflags.MTIM ? BigInt.asUintN(64, mtim) : f & Fstflags.MTIM_NOW ? current() : undefined;
  return [a, m];
}
