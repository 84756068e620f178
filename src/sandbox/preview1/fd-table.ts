import type { PathCache } from '../../fs/resolve.ts';
import type { Vfs } from '../../fs/vfs.ts';
import { WasiErrno, WasiError } from '../errno.ts';
import { Limits } from './constants.ts';

/** One open descriptor. Belongs to one Preview1 instance; never shared. */
export interface FdEntry {
  /** WASI filetype of what the descriptor refers to. */
  filetype: number;
  /** 0, 1, 2 for the stdio streams (wherever they were renumbered to); undefined otherwise. */
  stdio: 0 | 1 | 2 | undefined;
  vfs: Vfs<unknown> | undefined;
  handle: unknown;
  /** For directories: the parent (for the '..' entry of fd_readdir); the directory itself for a preopen. */
  parent: unknown;
  rightsBase: number;
  rightsInheriting: number;
  fdflags: number;
  /** File offset (regular files). */
  position: number;
  /** Below a read-only preopen (or on a read-only Vfs): every mutation is EROFS. */
  readOnly: boolean;
  /** Below a preopen with Preopen.containerRoot. */
  containerRoot?: boolean;
  /** The top directory of a container root (the preopen itself, or a directory opened on it). */
  containerTop?: boolean;
  /** The guest path a preopen was granted as (UTF-8); undefined for other descriptors. */
  preopenName: Uint8Array | undefined;
  /** fd_readdir's listing, taken at cookie 0 and read on by later cookies (so cookies stay stable). */
  listing?: DirListing | undefined;
  /** Directories: the last directory look-up of a path resolved from here (made on first use). */
  pathCache?: PathCache<unknown> | undefined;
}

export interface DirListing {
  /** Entry names; UTF-8 encoded only when a name is not ASCII (encoded[i] set then). */
  names: string[];
  encoded: (Uint8Array | undefined)[];
  inos: number[];
  types: number[];
}

/** The descriptor table: numbers from 0 up, the lowest free number first, never two entries on one number. */
export class FdTable {
  /** Entries by number below #high (a dense array: the lowest free number is always taken first). */
  readonly #entries: (FdEntry | undefined)[] = [];
  /** Freed numbers below #high, kept as a min-heap. */
  readonly #free: number[] = [];
  #high = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(fd: number): FdEntry {
    const n = fd >>> 0;
    const e = n < this.#high ? this.#entries[n] : undefined;
    if (e === undefined) throw new WasiError(WasiErrno.BADF, `fd ${n} is not open`);
    return e;
  }

  has(fd: number): boolean {
    const n = fd >>> 0;
    return n < this.#high && this.#entries[n] !== undefined;
  }

  add(entry: FdEntry): number {
    if (this.#size >= Limits.maxFds) throw new WasiError(WasiErrno.MFILE);
    let fd: number;
    for (;;) {
      if (this.#free.length > 0) {
        fd = heapPop(this.#free);
      } else {
        fd = this.#high++;
        this.#entries.push(undefined);
      }
      if (this.#entries[fd] === undefined) break;
    }
    this.#entries[fd] = entry;
    this.#size++;
    return fd;
  }

  close(fd: number): FdEntry {
    const n = fd >>> 0;
    const e = this.get(n);
    this.#entries[n] = undefined;
    this.#size--;
    heapPush(this.#free, n);
    return e;
  }

  /** Moves `from` onto `to` (closing what `to` held); both must be open. */
  renumber(from: number, to: number): void {
    const f = from >>> 0;
    const t = to >>> 0;
    const e = this.get(f);
    this.get(t);
    if (f === t) return;
    this.#entries[t] = e;
    this.#entries[f] = undefined;
    this.#size--;
    heapPush(this.#free, f);
  }
}

function heapPush(h: number[], v: number): void {
  h.push(v);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]! <= v) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]! < h[l]! ? r : l;
      if (h[c]! >= last) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
  return top;
}
