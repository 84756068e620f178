import { WasiErrno, WasiError } from '../errno.ts';
import type { Context } from './context.ts';

/** proc_exit unwinds the guest through this; Preview1.start turns it into the exit code. */
export class ProcExit extends Error {
  override readonly name = 'ProcExit';
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

/** No socket is ever granted: a valid descriptor is ENOTSOCK, anything else EBADF. */
function notSocket(ctx: Context, fd: number): never {
  ctx.fd(fd);
  throw new WasiError(WasiErrno.NOTSOCK);
}

export function procSockImports(ctx: Context) {
  return {
    proc_exit(code: number): never {
      throw new ProcExit(code >>> 0);
    },
    proc_raise(_sig: number): number {
      throw new WasiError(WasiErrno.NOSYS, 'signals are not supported');
    },
    sched_yield(): number {
      return 0;
    },
    sock_accept(fd: number, _flags: number, _fdPtr: number): number {
      return notSocket(ctx, fd);
    },
    sock_recv(fd: number, _riData: number, _riLen: number, _riFlags: number, _roLen: number, _roFlags: number): number {
      return notSocket(ctx, fd);
    },
    sock_send(fd: number, _siData: number, _siLen: number, _siFlags: number, _soLen: number): number {
      return notSocket(ctx, fd);
    },
    sock_shutdown(fd: number, _how: number): number {
      return notSocket(ctx, fd);
    },
  };
}
