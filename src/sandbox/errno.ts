/**
 * WASI preview1 errno numbers and the one place where anything thrown inside an import becomes one.
 * Filesystem failures arrive as FsError (POSIX names); preview1 code throws WasiError(errno); anything
 * else is unexpected and becomes EIO for the guest (never a host crash).
 */
import { FsError, type Errno as FsErrno } from '../fs/vfs.ts';
import { SandboxError } from '../errors.ts';

export const WasiErrno = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, ADDRINUSE: 3, ADDRNOTAVAIL: 4, AFNOSUPPORT: 5, AGAIN: 6, ALREADY: 7,
  BADF: 8, BADMSG: 9, BUSY: 10, CANCELED: 11, CHILD: 12, CONNABORTED: 13, CONNREFUSED: 14, CONNRESET: 15,
  DEADLK: 16, DESTADDRREQ: 17, DOM: 18, DQUOT: 19, EXIST: 20, FAULT: 21, FBIG: 22, HOSTUNREACH: 23,
  IDRM: 24, ILSEQ: 25, INPROGRESS: 26, INTR: 27, INVAL: 28, IO: 29, ISCONN: 30, ISDIR: 31, LOOP: 32,
  MFILE: 33, MLINK: 34, MSGSIZE: 35, MULTIHOP: 36, NAMETOOLONG: 37, NETDOWN: 38, NETRESET: 39,
  NETUNREACH: 40, NFILE: 41, NOBUFS: 42, NODEV: 43, NOENT: 44, NOEXEC: 45, NOLCK: 46, NOLINK: 47,
  NOMEM: 48, NOMSG: 49, NOPROTOOPT: 50, NOSPC: 51, NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55,
  NOTRECOVERABLE: 56, NOTSOCK: 57, NOTSUP: 58, NOTTY: 59, NXIO: 60, OVERFLOW: 61, OWNERDEAD: 62,
  PERM: 63, PIPE: 64, PROTO: 65, PROTONOSUPPORT: 66, PROTOTYPE: 67, RANGE: 68, ROFS: 69, SPIPE: 70,
  SRCH: 71, STALE: 72, TIMEDOUT: 73, TXTBSY: 74, XDEV: 75, NOTCAPABLE: 76,
} as const;
export type WasiErrnoValue = (typeof WasiErrno)[keyof typeof WasiErrno];

/** Thrown by preview1 code to return an errno to the guest. */
export class WasiError extends Error {
  override readonly name = 'WasiError';
  constructor(readonly errno: number, message?: string) {
    super(message ?? `errno ${errno}`);
  }
}

const FROM_FS: Record<FsErrno, number> = {
  ENOENT: WasiErrno.NOENT, EEXIST: WasiErrno.EXIST, ENOTDIR: WasiErrno.NOTDIR, EISDIR: WasiErrno.ISDIR,
  ENOTEMPTY: WasiErrno.NOTEMPTY, ELOOP: WasiErrno.LOOP, EACCES: WasiErrno.ACCES, EPERM: WasiErrno.PERM,
  EROFS: WasiErrno.ROFS, EINVAL: WasiErrno.INVAL, EXDEV: WasiErrno.XDEV, ENAMETOOLONG: WasiErrno.NAMETOOLONG,
  EBADF: WasiErrno.BADF, EFBIG: WasiErrno.FBIG, ENOSPC: WasiErrno.NOSPC, ENOTCAPABLE: WasiErrno.NOTCAPABLE,
  EIO: WasiErrno.IO, EBUSY: WasiErrno.BUSY, EMLINK: WasiErrno.MLINK, ENOTSUP: WasiErrno.NOTSUP, ENXIO: WasiErrno.NXIO,
  ESPIPE: WasiErrno.SPIPE, EOVERFLOW: WasiErrno.OVERFLOW, EDQUOT: WasiErrno.DQUOT, ETXTBSY: WasiErrno.TXTBSY,
};

/** Called with every unexpected exception an import turned into EIO (for debugging); none by default. */
export type UnexpectedErrorHook = (e: unknown) => void;

/** The errno the guest sees for anything thrown while serving an import. */
export function errnoOf(e: unknown, onUnexpected?: UnexpectedErrorHook): number {
  if (e instanceof WasiError) return e.errno;
  if (e instanceof FsError) return FROM_FS[e.errno] ?? WasiErrno.IO;
  if (e instanceof SandboxError) {
    switch (e.code) {
      case 'CAPABILITY_DENIED': return WasiErrno.NOTCAPABLE;
      case 'LIMIT_EXCEEDED': return WasiErrno.NOSPC;
      case 'INVALID_ARGUMENT': return WasiErrno.INVAL;
      case 'NOT_FOUND': return WasiErrno.NOENT;
      default: break;
    }
  }
  // An allocation the host could not make (e.g. a huge buffer) is the guest's ENOMEM, not a crash.
  if (e instanceof RangeError && /allocat|memory|Invalid array length|Array buffer/i.test(e.message)) return WasiErrno.NOMEM;
  onUnexpected?.(e);
  return WasiErrno.IO;
}
