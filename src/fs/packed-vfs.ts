import { SandboxError } from '../errors.ts';
import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from './vfs.ts';
import { ReadOnlyVfs } from './read-only-vfs.ts';
import { ENTRY_WORDS, KIND_CODES, NODE_BYTES, PACKED_FORMAT, nodeColumns, type PackedTree } from './packed-tree.ts';

const decoder = new TextDecoder();
/** Browsers refuse to decode a view of a SharedArrayBuffer: such bytes are copied first. */
const utf8 = (b: Uint8Array): string => decoder.decode(b.buffer instanceof ArrayBuffer ? b : b.slice());
const encoder = new TextEncoder();
const KIND_FILE = 0;
const KIND_DIR = 1;
const KIND_SYMLINK = 2;

/**
 * A read-only Vfs over a packed tree; handles are node indexes (0 is the root). The tree is checked
 * once when opened (ranges in bounds, directories form a tree), so a malformed one fails here with a
 * SandboxError instead of misbehaving later.
 */
export function packedVfs(p: PackedTree): Vfs<number> & { readonly nextIno: number } {
  return new PackedVfs(p);
}

class PackedVfs extends ReadOnlyVfs<number> {
  readonly nextIno: number;
  readonly #n: number;
  readonly #dev: number;
  readonly #f64: Float64Array;
  readonly #i64: BigInt64Array;
  readonly #u32: Uint32Array;
  readonly #entries: Uint32Array;
  readonly #sortedBase: number;
  readonly #strings: Uint8Array;
  readonly #data: Uint8Array;
  readonly #names: (string | undefined)[];
  readonly #scratch = new Uint8Array(1024);

  constructor(p: PackedTree) {
    validate(p);
    super('packed trees');
    const n = p.nodeCount;
    const cols = nodeColumns(p.nodes, n);
    this.#n = n;
    this.#dev = p.dev;
    this.nextIno = p.nextIno;
    this.#f64 = cols.f64;
    this.#i64 = cols.i64;
    this.#u32 = cols.u32;
    this.#entries = new Uint32Array(p.entries);
    this.#sortedBase = ENTRY_WORDS * p.entryCount;
    this.#strings = new Uint8Array(p.strings);
    this.#data = new Uint8Array(p.data);
    this.#names = new Array<string | undefined>(p.entryCount);
  }

  root(): number {
    return 0;
  }

  lookup(dir: number, name: string): number | undefined {
    this.#dir(dir);
    if (name === '' || name === '.' || name === '..' || name.includes('/')) {
      throw new FsError('EINVAL', `invalid name ${JSON.stringify(name)}`);
    }
    const n = this.#n;
    const u32 = this.#u32;
    let lo = u32[5 * n + dir]!;
    let hi = lo + u32[6 * n + dir]! - 1;
    const scratch = this.#scratch;
    let written = name.length;
    if (written > scratch.length) return undefined; // longer than any valid name
    for (let i = 0; i < written; i++) {
      const c = name.charCodeAt(i);
      if (c > 0x7f) {
        const r = encoder.encodeInto(name, scratch);
        if (r.read < name.length) return undefined;
        written = r.written;
        break;
      }
      scratch[i] = c;
    }
    const entries = this.#entries;
    const strings = this.#strings;
    const base = this.#sortedBase;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = entries[base + mid]!;
      const off = entries[ENTRY_WORDS * e]!;
      const len = entries[ENTRY_WORDS * e + 1]!;
      const m = len < written ? len : written;
      let cmp = 0;
      for (let i = 0; i < m; i++) {
        cmp = strings[off + i]! - scratch[i]!;
        if (cmp !== 0) break;
      }
      if (cmp === 0) cmp = len - written;
      if (cmp === 0) return entries[ENTRY_WORDS * e + 2]!;
      if (cmp < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  kind(h: number): NodeKind {
    this.#check(h);
    return KIND_CODES[this.#u32[h]! >>> 16]!;
  }

  stat(h: number): Stat {
    this.#check(h);
    const n = this.#n;
    const u32 = this.#u32;
    const km = u32[h]!;
    return {
      dev: this.#dev,
      ino: this.#f64[h]!,
      kind: KIND_CODES[km >>> 16]!,
      mode: km & 0o7777,
      uid: u32[n + h]!,
      gid: u32[2 * n + h]!,
      nlink: u32[3 * n + h]!,
      size: this.#f64[n + h]!,
      rdev: u32[4 * n + h]!,
      atimeNs: this.#i64[h]!,
      mtimeNs: this.#i64[n + h]!,
      ctimeNs: this.#i64[2 * n + h]!,
    };
  }

  readdir(dir: number): DirEntry[] {
    this.#dir(dir);
    const n = this.#n;
    const first = this.#u32[5 * n + dir]!;
    const count = this.#u32[6 * n + dir]!;
    const out: DirEntry[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const e = first + i;
      const child = this.#entries[ENTRY_WORDS * e + 2]!;
      out[i] = { name: this.#name(e), ino: this.#f64[child]!, kind: KIND_CODES[this.#u32[child]! >>> 16]! };
    }
    return out;
  }

  readlink(h: number): string {
    this.#check(h);
    if (this.#u32[h]! >>> 16 !== KIND_SYMLINK) throw new FsError('EINVAL', 'not a symlink');
    const n = this.#n;
    const off = this.#u32[5 * n + h]!;
    return utf8(this.#strings.subarray(off, off + this.#u32[6 * n + h]!));
  }

  read(h: number, into: Uint8Array, position: number): number {
    this.#check(h);
    const kind = this.#u32[h]! >>> 16;
    if (kind === KIND_DIR) throw new FsError('EISDIR');
    if (kind !== KIND_FILE) throw new FsError('EINVAL', `cannot read a ${KIND_CODES[kind]}`);
    if (!Number.isSafeInteger(position) || position < 0) throw new FsError('EINVAL', 'bad position');
    const n = this.#n;
    const size = this.#f64[n + h]!;
    if (position >= size) return 0;
    const count = Math.min(into.length, size - position);
    const start = this.#f64[2 * n + h]! + position;
    into.set(this.#data.subarray(start, start + count));
    return count;
  }


  #check(h: number): void {
    if (!(h >>> 0 === h && h < this.#n)) throw new FsError('EBADF', 'not a node of this tree');
  }

  #dir(h: number): void {
    this.#check(h);
    if (this.#u32[h]! >>> 16 !== KIND_DIR) throw new FsError('ENOTDIR');
  }

  #name(e: number): string {
    let s = this.#names[e];
    if (s === undefined) {
      const off = this.#entries[ENTRY_WORDS * e]!;
      s = utf8(this.#strings.subarray(off, off + this.#entries[ENTRY_WORDS * e + 1]!));
      this.#names[e] = s;
    }
    return s;
  }
}


function malformed(why: string): SandboxError {
  return new SandboxError('MALFORMED', `packed tree: ${why}`);
}

function isBuffer(b: unknown): b is ArrayBuffer | SharedArrayBuffer {
  return b instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer);
}

/** One path component: no '/', no NUL, not '.' or '..'. */
function validName(bytes: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (bytes[i] === 0x2f || bytes[i] === 0) return false;
  if (bytes[off] === 0x2e && (len === 1 || (len === 2 && bytes[off + 1] === 0x2e))) return false;
  return true;
}

function validate(p: PackedTree): void {
  if (typeof p !== 'object' || p === null || p.format !== PACKED_FORMAT) throw malformed('unknown format');
  const n = p.nodeCount;
  const e = p.entryCount;
  if (!Number.isSafeInteger(p.nextIno) || !Number.isSafeInteger(p.dev)) throw malformed('bad nextIno or dev');
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(e) || e < 0) throw malformed('bad counts');
  if (!isBuffer(p.nodes) || !isBuffer(p.entries) || !isBuffer(p.strings) || !isBuffer(p.data)) {
    throw malformed('buffers missing');
  }
  if (p.nodes.byteLength !== NODE_BYTES * n) throw malformed('node table size');
  if (p.entries.byteLength !== 4 * (ENTRY_WORDS + 1) * e) throw malformed('entry table size');
  const { f64, u32 } = nodeColumns(p.nodes, n);
  const entries = new Uint32Array(p.entries);
  const stringBytes = p.strings.byteLength;
  const strings = new Uint8Array(p.strings);
  const dataBytes = p.data.byteLength;
  const parents = new Uint8Array(n);
  if (u32[0]! >>> 16 !== KIND_DIR) throw malformed('root is not a directory');
  let covered = 0;
  for (let i = 0; i < n; i++) {
    const kind = u32[i]! >>> 16;
    if (kind >= KIND_CODES.length) throw malformed(`node ${i}: bad kind`);
    const a = u32[5 * n + i]!;
    const b = u32[6 * n + i]!;
    const size = f64[n + i]!;
    if (kind === KIND_DIR) {
      if (a + b > e) throw malformed(`node ${i}: entries out of range`);
      covered += b;
      for (let k = a; k < a + b; k++) {
        const child = entries[ENTRY_WORDS * k + 2]!;
        const off = entries[ENTRY_WORDS * k]!;
        const len = entries[ENTRY_WORDS * k + 1]!;
        const s = entries[ENTRY_WORDS * e + k]!;
        if (child >= n || child === 0) throw malformed(`entry ${k}: bad node`);
        if (off + len > stringBytes || len === 0 || len > 255 || !validName(strings, off, len)) {
          throw malformed(`entry ${k}: bad name`);
        }
        if (s < a || s >= a + b) throw malformed(`entry ${k}: sort index out of its directory`);
        if (u32[child]! >>> 16 === KIND_DIR && parents[child]++ !== 0) throw malformed(`node ${child}: two parents`);
      }
    } else if (kind === KIND_SYMLINK) {
      if (a + b > stringBytes) throw malformed(`node ${i}: target out of range`);
    } else if (kind === KIND_FILE) {
      const off = f64[2 * n + i]!;
      if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(off) || off < 0 || off + size > dataBytes) {
        throw malformed(`node ${i}: data out of range`);
      }
    }
  }
  if (covered !== e) throw malformed('entries not covered by directories');
  // Every directory but the root has exactly one parent, but a cycle among non-root directories
  // would still pass the count; walking from the root must reach each directory once.
  let reached = 1;
  const stack = [0];
  let dirs = 0;
  for (let i = 0; i < n; i++) if (u32[i]! >>> 16 === KIND_DIR) dirs++;
  while (stack.length > 0) {
    const d = stack.pop()!;
    const a = u32[5 * n + d]!;
    const b = u32[6 * n + d]!;
    for (let k = a; k < a + b; k++) {
      const child = entries[ENTRY_WORDS * k + 2]!;
      if (u32[child]! >>> 16 === KIND_DIR) {
        reached++;
        stack.push(child);
      }
    }
  }
  if (reached !== dirs) throw malformed('directories do not form a tree');
}

