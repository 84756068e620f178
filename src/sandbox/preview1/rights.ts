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

const KNOWN = BigInt(RIGHTS_ALL);

/** Guest rights (u64) as the 30 known bits; unknown bits are reported separately. */
export function rightsOf(v: bigint): { rights: number; unknown: boolean } {
  return { rights: Number(v & KNOWN), unknown: (BigInt.asUintN(64, v) & ~KNOWN) !== 0n };
}

/** Guest rights (u64) as the 30 known bits, the rest dropped. */
export function knownRights(v: bigint): number {
  return Number(v & KNOWN);
}
