// Drives Preview1's imports directly over a hand-made WebAssembly.Memory (no guest module).
import { Preview1, type Preopen, type Preview1Options } from '../../src/sandbox/preview1/preview1.ts';
import { WasiErrno } from '../../src/sandbox/errno.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export { WasiErrno as E };

export class Harness {
  readonly memory = new WebAssembly.Memory({ initial: 4, maximum: 64 });
  readonly p1: Preview1;
  readonly stdout: Uint8Array[] = [];
  readonly stderr: Uint8Array[] = [];
  #next = 1024;

  constructor(preopens: Preopen[], extra: Partial<Preview1Options> = {}) {
    this.p1 = new Preview1({
      args: [], env: [], preopens, stdin: { read: () => null },
      stdout: (b) => this.stdout.push(b), stderr: (b) => this.stderr.push(b), ...extra,
    });
    this.p1.bindMemory(this.memory);
  }

  call(name: string, ...args: (number | bigint)[]): number {
    const f = this.p1.imports[name] as ((...a: (number | bigint)[]) => number) | undefined;
    if (typeof f !== 'function') throw new Error(`no import ${name}`);
    return f(...args);
  }

  get view(): DataView {
    return new DataView(this.memory.buffer);
  }
  get u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  alloc(n: number, align = 8): number {
    this.#next = Math.ceil(this.#next / align) * align;
    const p = this.#next;
    this.#next += n;
    if (this.#next > this.memory.buffer.byteLength) throw new Error('harness memory exhausted');
    return p;
  }

  /** Bytes placed in memory: [ptr, len]. */
  put(data: string | Uint8Array): [number, number] {
    const b = typeof data === 'string' ? enc.encode(data) : data;
    const p = this.alloc(Math.max(1, b.length), 1);
    this.u8.set(b, p);
    return [p, b.length];
  }

  u32(p: number): number {
    return this.view.getUint32(p, true);
  }
  u64(p: number): bigint {
    return this.view.getBigUint64(p, true);
  }
  text(p: number, n: number): string {
    return dec.decode(this.u8.slice(p, p + n));
  }

  /** path_open returning [errno, fd]. */
  open(dirFd: number, path: string, o: { oflags?: number; follow?: boolean; base?: bigint; inheriting?: bigint; fdflags?: number } = {}): [number, number] {
    const [p, n] = this.put(path);
    const out = this.alloc(4, 4);
    const base = o.base ?? ((o.oflags ?? 0) & 2 ? ALL_RIGHTS & ~FD_WRITE : ALL_RIGHTS);
    const rc = this.call('path_open', dirFd, o.follow ? 1 : 0, p, n, o.oflags ?? 0, base, o.inheriting ?? ALL_RIGHTS, o.fdflags ?? 0, out);
    return [rc, rc === 0 ? this.u32(out) : -1];
  }

  /** fd_write of one buffer: [errno, nwritten]. */
  write(fd: number, data: string | Uint8Array): [number, number] {
    const [p, n] = this.put(data);
    const iov = this.alloc(8, 4);
    this.view.setUint32(iov, p, true);
    this.view.setUint32(iov + 4, n, true);
    const out = this.alloc(4, 4);
    const rc = this.call('fd_write', fd, iov, 1, out);
    return [rc, rc === 0 ? this.u32(out) : -1];
  }

  /** fd_read into one buffer: [errno, text]. */
  read(fd: number, max = 256): [number, string] {
    const buf = this.alloc(max, 1);
    const iov = this.alloc(8, 4);
    this.view.setUint32(iov, buf, true);
    this.view.setUint32(iov + 4, max, true);
    const out = this.alloc(4, 4);
    const rc = this.call('fd_read', fd, iov, 1, out);
    return [rc, rc === 0 ? this.text(buf, this.u32(out)) : ''];
  }

  /** Calls a path_* import taking (fd, path) or (fd, flags, path) plus extra args. */
  path(name: string, fd: number, path: string, ...rest: (number | bigint)[]): number {
    const [p, n] = this.put(path);
    return this.call(name, fd, p, n, ...rest);
  }

  stdoutText(): string {
    return this.stdout.map((b) => dec.decode(b)).join('');
  }
}

export const ALL_RIGHTS = (1n << 30n) - 1n;
const FD_WRITE = 1n << 6n;
