import { SandboxError } from '../errors.ts';

/**
 * Caps a module's linear memory by rewriting the binary: every memory the module defines (section 5)
 * or imports (section 2) gets `maximum = min(declared maximum, limit)`. The engine then makes
 * `memory.grow` return -1 past the limit, which is what a guest's allocator expects; nothing has to
 * watch the guest. A module whose initial memory is already above the limit is refused before it runs.
 */

export const WASM_PAGE_BYTES = 65536;

export interface MemoryInfo {
  /** Present for an imported memory: the host must create it (with `maximum`) and pass it in. */
  import?: { module: string; name: string };
  initialPages: number;
  maximumPages: number | undefined;
  shared: boolean;
  memory64: boolean;
}

export interface LimitedModule {
  bytes: Uint8Array;
  memories: MemoryInfo[];
}

const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;

/** Reads the memories of a module without changing it. */
export function readMemories(bytes: Uint8Array): MemoryInfo[] {
  return rewrite(bytes, undefined).memories;
}

/** Returns the module with every memory's maximum set to at most `limitBytes` (rounded down to pages). */
export function limitMemory(bytes: Uint8Array, limitBytes: number): LimitedModule {
  if (!Number.isFinite(limitBytes) || limitBytes < 0) {
    throw new SandboxError('INVALID_ARGUMENT', `memory limit must be a non-negative number of bytes, got ${limitBytes}`);
  }
  return rewrite(bytes, Math.floor(limitBytes / WASM_PAGE_BYTES));
}

function rewrite(bytes: Uint8Array, limitPages: number | undefined): LimitedModule {
  const r = new Reader(bytes);
  const magic = r.bytes(8);
  if (magic[0] !== 0x00 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) {
    throw new SandboxError('NOT_RUNNABLE', 'not a WebAssembly module (bad magic number)');
  }
  if (magic[4] !== 1 || magic[5] !== 0 || magic[6] !== 0 || magic[7] !== 0) {
    throw new SandboxError('NOT_RUNNABLE', 'not a WebAssembly core module (a component, or an unknown version)');
  }
  const out: Uint8Array[] = [magic];
  const memories: MemoryInfo[] = [];
  while (!r.done()) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const body = r.bytes(size);
    if (id === SECTION_IMPORT || id === SECTION_MEMORY) {
      const w = new Writer();
      if (id === SECTION_IMPORT) rewriteImports(new Reader(body), w, limitPages, memories);
      else rewriteMemories(new Reader(body), w, limitPages, memories);
      const newBody = w.finish();
      const head = new Writer();
      head.byte(id);
      head.u32(newBody.length);
      out.push(head.finish(), newBody);
    } else {
      out.push(bytes.subarray(start, r.pos));
    }
  }
  return { bytes: limitPages === undefined ? bytes : concat(out), memories };
}

function rewriteImports(r: Reader, w: Writer, limitPages: number | undefined, memories: MemoryInfo[]): void {
  const count = r.u32();
  w.u32(count);
  for (let i = 0; i < count; i++) {
    const module = r.name();
    const name = r.name();
    w.name(module);
    w.name(name);
    const kind = r.byte();
    w.byte(kind);
    switch (kind) {
      case 0: w.u32(r.u32()); break; // function: type index
      case 1: w.byte(r.byte()); copyLimits(r, w); break; // table: reftype, limits
      case 2: memories.push({ import: { module, name }, ...limitOne(r, w, limitPages) }); break;
      case 3: w.byte(r.byte()); w.byte(r.byte()); break; // global: valtype, mutability
      case 4: w.byte(r.byte()); w.u32(r.u32()); break; // tag: attribute, type index
      default: throw new SandboxError('NOT_RUNNABLE', `malformed WebAssembly module: unknown import kind ${kind}`);
    }
  }
  if (!r.done()) throw new SandboxError('NOT_RUNNABLE', 'malformed WebAssembly module: import section has trailing bytes');
}

function rewriteMemories(r: Reader, w: Writer, limitPages: number | undefined, memories: MemoryInfo[]): void {
  const count = r.u32();
  w.u32(count);
  for (let i = 0; i < count; i++) memories.push(limitOne(r, w, limitPages));
  if (!r.done()) throw new SandboxError('NOT_RUNNABLE', 'malformed WebAssembly module: memory section has trailing bytes');
}

function copyLimits(r: Reader, w: Writer): void {
  const flags = r.byte();
  w.byte(flags);
  const wide = (flags & 4) !== 0;
  w.uleb(r.uleb(wide));
  if (flags & 1) w.uleb(r.uleb(wide));
}

function limitOne(r: Reader, w: Writer, limitPages: number | undefined): Omit<MemoryInfo, 'import'> {
  const flags = r.byte();
  if (flags > 7) throw new SandboxError('NOT_RUNNABLE', `malformed WebAssembly module: memory limits flags ${flags}`);
  const memory64 = (flags & 4) !== 0;
  const shared = (flags & 2) !== 0;
  const initialPages = r.uleb(memory64);
  const declaredMax = flags & 1 ? r.uleb(memory64) : undefined;
  let maximumPages = declaredMax;
  if (limitPages !== undefined) {
    if (initialPages > limitPages) {
      throw new SandboxError(
        'LIMIT_EXCEEDED',
        `the module needs ${formatBytes(initialPages * WASM_PAGE_BYTES)} of memory at start, above the memory limit of ${formatBytes(limitPages * WASM_PAGE_BYTES)}`,
        { data: { initialBytes: initialPages * WASM_PAGE_BYTES, limitBytes: limitPages * WASM_PAGE_BYTES } },
      );
    }
    maximumPages = declaredMax === undefined ? limitPages : Math.min(declaredMax, limitPages);
  }
  w.byte(maximumPages === undefined ? flags & ~1 : flags | 1);
  w.uleb(initialPages);
  if (maximumPages !== undefined) w.uleb(maximumPages);
  return { initialPages, maximumPages, shared, memory64 };
}

function formatBytes(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`;
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  done(): boolean { return this.pos >= this.buf.length; }
  byte(): number {
    if (this.pos >= this.buf.length) throw truncated();
    return this.buf[this.pos++]!;
  }
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) throw truncated();
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u32(): number {
    const v = this.uleb(false);
    return v;
  }
  /** Unsigned LEB128; up to 5 bytes (u32) or 10 (u64, kept exact up to 2^53). */
  uleb(wide: boolean): number {
    let result = 0;
    let scale = 1;
    const maxBytes = wide ? 10 : 5;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!wide && result > 0xffffffff) break;
        return result;
      }
      scale *= 128;
    }
    throw new SandboxError('NOT_RUNNABLE', 'malformed WebAssembly module: bad LEB128 integer');
  }
  name(): string {
    const len = this.u32();
    return new TextDecoder('utf-8', { fatal: false }).decode(this.bytes(len));
  }
}

class Writer {
  private readonly parts: number[] = [];
  private readonly chunks: Uint8Array[] = [];
  byte(b: number): void { this.parts.push(b & 0xff); }
  u32(n: number): void { this.uleb(n); }
  uleb(n: number): void {
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      this.parts.push(b);
    } while (n > 0);
  }
  name(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u32(b.length);
    this.flush();
    this.chunks.push(b);
  }
  private flush(): void {
    if (this.parts.length) { this.chunks.push(Uint8Array.from(this.parts)); this.parts.length = 0; }
  }
  finish(): Uint8Array {
    this.flush();
    return concat(this.chunks);
  }
}

function truncated(): SandboxError {
  return new SandboxError('NOT_RUNNABLE', 'malformed WebAssembly module: truncated');
}
