import { WasiErrno, WasiError } from '../errno.ts';
import { SandboxError } from '../../errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });
/** Strings up to this many bytes are decoded by hand when they are ASCII. */
const SHORT = 128;

/**
 * Bounds-checked access to the guest's linear memory. Views are re-fetched whenever the memory's
 * buffer changed (memory.grow detaches it), so every call sees the current memory. Pointers and
 * lengths arrive from wasm as signed i32: every method takes them as u32.
 */
export class GuestMemory {
  #memory: WebAssembly.Memory | undefined;
  #buffer: ArrayBufferLike | undefined;
  /** The memory is shared (its buffer is never detached, so refresh() cannot tell growth by length). */
  #shared = false;
  #u8 = new Uint8Array(0);
  #dv = new DataView(new ArrayBuffer(0));
  /** The last two ioView() ranges and their views (dropped when the buffer changes). */
  #ioPtr = [-1, -1];
  #ioLen = [-1, -1];
  #ioViews = [new Uint8Array(0), new Uint8Array(0)];
  #ioNext = 0;
  /** Char-code arrays by length for short ASCII strings, reused (one fromCharCode.apply, no garbage). */
  readonly #codes: number[][] = [];

  bind(memory: WebAssembly.Memory): void {
    this.#memory = memory;
    this.#buffer = undefined;
    this.#u8 = new Uint8Array(0);
    this.refresh();
  }

  get bound(): boolean {
    return this.#memory !== undefined;
  }

  /**
   * Re-fetches the views when memory grew (its buffer was replaced). Called on entry to every import:
   * nothing an import does grows guest memory, so the views stay current for the rest of the call.
   */
  refresh(): void {
    // Growing a non-shared memory detaches its old buffer (length 0): only then is `buffer` (a slow
    // getter) read again. A shared memory keeps its old buffer on growth, so it is always re-read.
    if (this.#u8.byteLength !== 0 && !this.#shared) return;
    const m = this.#memory;
    if (m === undefined) throw new SandboxError('INVALID_STATE', 'preview1: no guest memory bound (start/initialize not called)');
    const buf = m.buffer;
    if (buf !== this.#buffer) {
      this.#buffer = buf;
      this.#ioPtr[0] = this.#ioPtr[1] = -1;
      this.#shared = !(buf instanceof ArrayBuffer);
      this.#u8 = new Uint8Array(buf);
      this.#dv = new DataView(buf);
    }
  }

  /** The bytes of memory as of the last refresh(). */
  get u8(): Uint8Array {
    return this.#u8;
  }

  get view(): DataView {
    return this.#dv;
  }

  /** Throws EFAULT unless [ptr, ptr+len) lies inside memory; returns ptr as u32. */
  check(ptr: number, len: number): number {
    const p = ptr >>> 0;
    const n = len >>> 0;
    if (p + n > this.#u8.length) throw new WasiError(WasiErrno.FAULT, `guest range ${p}+${n} out of bounds`);
    return p;
  }

  /** A live view of guest bytes (no copy). */
  bytes(ptr: number, len: number): Uint8Array {
    const p = this.check(ptr, len);
    return this.#u8.subarray(p, p + (len >>> 0));
  }

  /**
   * bytes(ptr, len) for the buffers of one I/O call. Guests read and write through the same few
   * buffers (stdio's, a stack array), so the views of the last two ranges are kept and handed out
   * again; the callee must not keep a view past the call (a Vfs copies what it is given).
   */
  ioView(ptr: number, len: number): Uint8Array {
    const p = this.check(ptr, len);
    const n = len >>> 0;
    const ptrs = this.#ioPtr;
    const lens = this.#ioLen;
    if (ptrs[0] === p && lens[0] === n) return this.#ioViews[0]!;
    if (ptrs[1] === p && lens[1] === n) return this.#ioViews[1]!;
    const k = this.#ioNext;
    this.#ioNext = k ^ 1;
    const view = this.#u8.subarray(p, p + n);
    ptrs[k] = p;
    lens[k] = n;
    this.#ioViews[k] = view;
    return view;
  }

  u8At(ptr: number): number {
    return this.u8[this.check(ptr, 1)]!;
  }
  u16(ptr: number): number {
    return this.view.getUint16(this.check(ptr, 2), true);
  }
  u32(ptr: number): number {
    return this.view.getUint32(this.check(ptr, 4), true);
  }
  u64(ptr: number): bigint {
    return this.view.getBigUint64(this.check(ptr, 8), true);
  }

  setU8(ptr: number, v: number): void {
    this.u8[this.check(ptr, 1)] = v;
  }
  setU16(ptr: number, v: number): void {
    this.view.setUint16(this.check(ptr, 2), v, true);
  }
  setU32(ptr: number, v: number): void {
    this.view.setUint32(this.check(ptr, 4), v >>> 0, true);
  }
  setU64(ptr: number, v: bigint | number): void {
    this.view.setBigUint64(this.check(ptr, 8), BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v)), true);
  }

  /** Copies `data` into guest memory at ptr. */
  write(ptr: number, data: Uint8Array): void {
    const p = this.check(ptr, data.length);
    this.#u8.set(data, p);
  }

  /**
   * When the `len` bytes at `ptr` are `prefix` (ASCII) followed by one short ASCII name without '/' or
   * NUL: that name. Otherwise undefined (the caller reads the whole path with string()).
   */
  nameAfter(ptr: number, len: number, prefix: string, maxBytes: number): string | undefined {
    const n = len >>> 0;
    const k = prefix.length;
    if (k === 0 || n <= k || n - k > SHORT || n > maxBytes) return undefined;
    const p = this.check(ptr, n);
    const u8 = this.#u8;
    for (let i = 0; i < k; i++) if (u8[p + i] !== prefix.charCodeAt(i)) return undefined;
    return this.#ascii(p + k, n - k, true);
  }

  /** The ASCII string of `n` (<= SHORT) bytes at `p`; undefined at a byte >= 0x80 (and at '/' or NUL when `nameOnly`). */
  #ascii(p: number, n: number, nameOnly: boolean): string | undefined {
    // One fromCharCode over an array: a flat string (adding characters one by one made a rope that
    // every later slice and hash had to flatten).
    const u8 = this.#u8;
    const codes = (this.#codes[n] ??= new Array<number>(n).fill(0));
    for (let i = 0; i < n; i++) {
      const b = u8[p + i]!;
      if (b >= 0x80 || (nameOnly && (b === 0x2f || b === 0))) return undefined;
      codes[i] = b;
    }
    return String.fromCharCode.apply(null, codes);
  }

  /** A UTF-8 string argument (EILSEQ when it is not valid UTF-8). */
  string(ptr: number, len: number, maxBytes: number): string {
    if (len >>> 0 > maxBytes) throw new WasiError(WasiErrno.NAMETOOLONG);
    const n = len >>> 0;
    const p = this.check(ptr, n);
    if (n <= SHORT) {
      const s = this.#ascii(p, n, false);
      if (s !== undefined) return s;
    }
    const bytes = this.#u8.subarray(p, p + n);
    try {
      // TextDecoder refuses views of shared memory: copy those first.
      return decoder.decode(bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice());
    } catch {
      throw new WasiError(WasiErrno.ILSEQ, 'path is not valid UTF-8');
    }
  }
}
