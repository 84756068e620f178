import { WasiErrno, WasiError } from '../errno.ts';
import { RIGHTS_ALL } from './constants.ts';
import type { FdEntry } from './fd-table.ts';

/** Throws ENOTCAPABLE unless the descriptor holds every right in `rights`. */
export function need(entry: FdEntry, rights: number): void {
  if ((entry.rightsBase & rights) !== rights) throw new WasiError(WasiErrno.NOTCAPABLE, 'descriptor lacks a right');
}

/** Throws EROFS when the descriptor lies below a read-only preopen. */
export function needWritable(entry: FdEntry): void {
  if (entry.readOnly || entry.vfs?.readOnly) throw new WasiError(WasiErrno.ROFS, 'read-only mount');
}

/** Guest rights (u64) as the 30 known bits; unknown bits are reported separately. */
export function rightsOf(v: bigint): { rights: number; unknown: boolean } {
  const u = BigInt.asUintN(64, v);
  const rights = Number(u & BigInt(RIGHTS_ALL));
  return { rights, unknown: (u & ~BigInt(RIGHTS_ALL)) !== 0n };
}
