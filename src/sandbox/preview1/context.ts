import { processCpuNs, threadCpuNs } from '#host/cpu-time';
import { monotonicNs, wallClockNs } from '#host/clock';
import type { NodeKind, Stat, Vfs } from '../../fs/vfs.ts';
import { WasiErrno, WasiError } from '../errno.ts';
import {
  Clockid, Filetype, RIGHTS_DIR_BASE, RIGHTS_DIR_INHERITING, RIGHTS_STDIN, RIGHTS_STDOUT,
} from './constants.ts';
import { FdTable, type FdEntry } from './fd-table.ts';
import { GuestMemory } from './memory.ts';
import { Iovecs } from './io.ts';
import type { Preview1Clock, Preview1Options } from './types.ts';

const encoder = new TextEncoder();

/** Everything one Preview1 instance owns: memory binding, descriptor table, options. */
export class Context {
  readonly mem = new GuestMemory();
  readonly fds = new FdTable();
  /** Scratch for the iovec array of the current call. */
  readonly iovecs = new Iovecs();
  readonly clock: Preview1Clock;
  readonly startMonotonic: bigint;
  /** The CPU-time clocks at the start (the guest's clocks count from there); undefined without them. */
  readonly #startProcessCpu: bigint | undefined;
  readonly #startThreadCpu: bigint | undefined;
  /** Set by proc_exit. */
  exitCode: number | undefined;

  constructor(readonly opts: Preview1Options) {
    this.clock = opts.clock ?? defaultClock();
    this.startMonotonic = this.clock.monotonicNs();
    this.#startProcessCpu = this.clock.processCpuNs?.();
    this.#startThreadCpu = this.clock.threadCpuNs?.();
    const stdioType = opts.tty ? Filetype.CHARACTER_DEVICE : Filetype.UNKNOWN;
    for (const n of [0, 1, 2] as const) {
      this.fds.add({
        filetype: stdioType, stdio: n, vfs: undefined, handle: undefined, parent: undefined,
        rightsBase: n === 0 ? RIGHTS_STDIN : RIGHTS_STDOUT, rightsInheriting: 0, fdflags: 0, position: 0,
        readOnly: false, preopenName: undefined, containerRoot: undefined, containerTop: undefined,
        listing: undefined, pathCache: undefined,
      });
    }
    for (const p of opts.preopens) {
      const root = p.vfs.root();
      this.fds.add({
        filetype: Filetype.DIRECTORY, stdio: undefined, vfs: p.vfs, handle: root, parent: root,
        rightsBase: RIGHTS_DIR_BASE, rightsInheriting: RIGHTS_DIR_INHERITING, fdflags: 0, position: 0,
        readOnly: p.readOnly || p.vfs.readOnly, preopenName: encoder.encode(p.guestPath),
        containerRoot: p.containerRoot === true, containerTop: p.containerRoot === true,
        listing: undefined, pathCache: undefined,
      });
    }
  }

  /** The entry for `fd` (EBADF when not open). */
  fd(fd: number): FdEntry {
    return this.fds.get(fd);
  }

  /** The entry for `fd`, which must be a directory with a Vfs behind it. */
  dir(fd: number): FdEntry & { vfs: Vfs<unknown> } {
    const e = this.fds.get(fd);
    if (e.filetype !== Filetype.DIRECTORY || e.vfs === undefined) throw new WasiError(WasiErrno.NOTDIR);
    return e as FdEntry & { vfs: Vfs<unknown> };
  }

  now(clockId: number): bigint {
    switch (clockId) {
      case Clockid.REALTIME: return this.clock.realtimeNs();
      case Clockid.MONOTONIC: return this.clock.monotonicNs();
      case Clockid.PROCESS_CPUTIME_ID: return this.#processCpu();
      case Clockid.THREAD_CPUTIME_ID: return this.#threadCpu();
      default: throw new WasiError(WasiErrno.INVAL, `unknown clock ${clockId}`);
    }
  }

  /** CPU time of the host process since the instance started; wall time where the host cannot tell. */
  #processCpu(): bigint {
    if (this.#startProcessCpu === undefined || this.clock.processCpuNs === undefined) {
      return this.clock.monotonicNs() - this.startMonotonic;
    }
    return this.clock.processCpuNs() - this.#startProcessCpu;
  }

  /** CPU time of this thread since the instance started, or the closest bound the host gives. */
  #threadCpu(): bigint {
    if (this.#startThreadCpu !== undefined && this.clock.threadCpuNs !== undefined) {
      return this.clock.threadCpuNs() - this.#startThreadCpu;
    }
    // Both bounds only grow, so their minimum never goes back either.
    const wall = this.clock.monotonicNs() - this.startMonotonic;
    const cpu = this.#processCpu();
    return cpu < wall ? cpu : wall;
  }

  sleep(ns: bigint): void {
    if (ns <= 0n) return;
    if (this.opts.sleep) this.opts.sleep(ns);
    else defaultSleep(ns);
  }
}

export function filetypeOf(kind: NodeKind): number {
  switch (kind) {
    case 'file': return Filetype.REGULAR_FILE;
    case 'dir': return Filetype.DIRECTORY;
    case 'symlink': return Filetype.SYMBOLIC_LINK;
    case 'chardev': return Filetype.CHARACTER_DEVICE;
    case 'blockdev': return Filetype.BLOCK_DEVICE;
    case 'socket': return Filetype.SOCKET_STREAM;
    default: return Filetype.UNKNOWN;
  }
}

/** filestat: dev, ino, filetype, nlink, size, atim, mtim, ctim (64 bytes). */
export function writeFilestat(mem: GuestMemory, ptr: number, st: Stat | undefined, filetype?: number): void {
  const p = mem.check(ptr, 64);
  const v = mem.view;
  if (st === undefined) {
    for (let i = 0; i < 64; i += 8) v.setBigUint64(p + i, 0n, true);
    v.setUint8(p + 16, filetype ?? Filetype.UNKNOWN);
    return;
  }
  // Numbers go in as two u32 halves: no BigInt made per field.
  setU64Of(v, p, st.dev);
  setU64Of(v, p + 8, st.ino);
  v.setUint32(p + 16, filetypeOf(st.kind), true);
  v.setUint32(p + 20, 0, true);
  setU64Of(v, p + 24, st.nlink);
  setU64Of(v, p + 32, st.size);
  v.setBigInt64(p + 40, st.atimeNs, true);
  v.setBigInt64(p + 48, st.mtimeNs, true);
  v.setBigInt64(p + 56, st.ctimeNs, true);
}

/** A non-negative safe integer as a little-endian u64 at `p`. */
export function setU64Of(v: DataView, p: number, n: number): void {
  v.setUint32(p, n >>> 0, true);
  v.setUint32(p + 4, Math.floor(n / 0x100000000) >>> 0, true);
}

export function defaultClock(): Preview1Clock {
  return {
    realtimeNs: wallClockNs,
    monotonicNs,
    ...(processCpuNs ? { processCpuNs } : {}),
    ...(threadCpuNs ? { threadCpuNs } : {}),
  };
}

let sleepCell: Int32Array | undefined;

/** Blocks with Atomics.wait where the host allows it (Node, Workers); otherwise spins. */
export function defaultSleep(ns: bigint): void {
  const ms = Number(ns) / 1e6;
  try {
    sleepCell ??= new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(sleepCell, 0, 0, ms);
  } catch {
    const end = performance.now() + ms;
    while (performance.now() < end) { /* no blocking wait on this thread */ }
  }
}
