import { SandboxError } from '../errors.ts';
import type { NodeKind, Stat, Vfs } from './vfs.ts';

/**
 * A read-only filesystem tree flattened into four buffers, so that it can be posted to a Worker
 * (with SharedArrayBuffers: without copying) and read there through `packedVfs`.
 *
 * Layout, N nodes (node 0 is the root), E directory entries:
 * - nodes: Float64 [ino, size, dataOffset] x N, then BigInt64 [atime, mtime, ctime] x N,
 *   then Uint32 [kind << 16 | mode, uid, gid, nlink, rdev, a, b] x N, each column contiguous.
 *   a/b: first entry and entry count for a directory, string offset and byte length for a symlink.
 * - entries: Uint32 [nameOffset, nameLength, node] x E in readdir order, then Uint32 x E: for each
 *   directory's range, its entry indexes sorted by the UTF-8 bytes of the name (for binary search).
 * - strings: UTF-8 names and symlink targets (each distinct string stored once).
 * - data: file contents; a hard-linked file is one node and its content is stored once.
 */
export interface PackedTree {
  readonly format: typeof PACKED_FORMAT;
  readonly nodeCount: number;
  readonly entryCount: number;
  readonly dev: number;
  /** Above every ino in the tree (an overlay over it numbers its new nodes from here). */
  readonly nextIno: number;
  /** True when the buffers are SharedArrayBuffers (postMessage shares instead of copying). */
  readonly shared: boolean;
  readonly nodes: ArrayBuffer | SharedArrayBuffer;
  readonly entries: ArrayBuffer | SharedArrayBuffer;
  readonly strings: ArrayBuffer | SharedArrayBuffer;
  readonly data: ArrayBuffer | SharedArrayBuffer;
}

export const PACKED_FORMAT = 'wasmbox-packed-tree/1';

export const NODE_BYTES = 76;
export const ENTRY_WORDS = 3;

export const KIND_CODES: readonly NodeKind[] = ['file', 'dir', 'symlink', 'chardev', 'blockdev', 'fifo', 'socket'];
const KIND_CODE = new Map<NodeKind, number>(KIND_CODES.map((k, i) => [k, i]));

/** Typed-array views over a packed tree's node table (columns as in the layout above). */
export interface NodeColumns {
  f64: Float64Array;
  i64: BigInt64Array;
  u32: Uint32Array;
}

export function nodeColumns(nodes: ArrayBuffer | SharedArrayBuffer, n: number): NodeColumns {
  return {
    f64: new Float64Array(nodes, 0, 3 * n),
    i64: new BigInt64Array(nodes, 24 * n, 3 * n),
    u32: new Uint32Array(nodes, 48 * n, 7 * n),
  };
}

export interface PackOptions {
  /** Use SharedArrayBuffers when the platform has them (default false). */
  shared?: boolean;
}

/** A node's Stat (less the tree-wide dev), its handle, and its a/b words (see the layout above). */
interface PendingNode<H> extends Omit<Stat, 'dev'> {
  h: H;
  a: number;
  b: number;
}

const encoder = new TextEncoder();

/** Byte order of UTF-8 strings, as the packed lookup compares them. */
export function compareBytes(x: Uint8Array, y: Uint8Array): number {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i]! - y[i]!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/**
 * Flattens the tree under `vfs.root()`. Hard links (non-directories with nlink > 1 and one ino) become
 * one node. Works over any Vfs, including an Overlay whose handles change on copy-up.
 */
export function packTree<H>(vfs: Vfs<H>, opts: PackOptions = {}): PackedTree {
  const strings = new StringTable();
  const nodes: PendingNode<H>[] = [];
  const entryWords: number[] = [];
  const sorted: number[] = [];
  const byIno = new Map<number, number>();

  const addNode = (h: H): number => {
    const st = vfs.stat(h);
    if (st.kind !== 'dir' && st.nlink > 1) {
      const seen = byIno.get(st.ino);
      if (seen !== undefined) return seen;
      byIno.set(st.ino, nodes.length);
    }
    let a = 0;
    let b = 0;
    if (st.kind === 'symlink') [a, b] = strings.intern(vfs.readlink(h));
    nodes.push({
      h, kind: st.kind, mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink,
      size: st.kind === 'file' ? st.size : st.kind === 'symlink' ? b : st.size,
      rdev: st.rdev, ino: st.ino, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, a, b,
    });
    return nodes.length - 1;
  };

  const root = vfs.root();
  const dev = vfs.stat(root).dev;
  addNode(root);
  // Breadth-first: each directory's entries take one contiguous range.
  for (let i = 0; i < nodes.length; i++) {
    const dir = nodes[i]!;
    if (dir.kind !== 'dir') continue;
    const first = entryWords.length / ENTRY_WORDS;
    const list = vfs.readdir(dir.h);
    const keyed: { bytes: Uint8Array; index: number }[] = [];
    for (const e of list) {
      const child = vfs.lookup(dir.h, e.name);
      if (child === undefined) continue;
      const [off, len, bytes] = strings.internWithBytes(e.name);
      const index = entryWords.length / ENTRY_WORDS;
      entryWords.push(off, len, addNode(child));
      keyed.push({ bytes, index });
    }
    keyed.sort((x, y) => compareBytes(x.bytes, y.bytes));
    for (const k of keyed) sorted.push(k.index);
    dir.a = first;
    dir.b = keyed.length;
  }

  const useShared = (opts.shared ?? false) && typeof SharedArrayBuffer !== 'undefined';
  const alloc = (bytes: number): ArrayBuffer | SharedArrayBuffer =>
    useShared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);

  const n = nodes.length;
  const e = entryWords.length / ENTRY_WORDS;
  const nodeBuf = alloc(NODE_BYTES * n);
  const cols = nodeColumns(nodeBuf, n);
  let dataBytes = 0;
  for (const node of nodes) if (node.kind === 'file') dataBytes += node.size;
  const dataBuf = alloc(dataBytes);
  const data = new Uint8Array(dataBuf);

  let dataOffset = 0;
  for (let i = 0; i < n; i++) {
    const node = nodes[i]!;
    cols.f64[i] = node.ino;
    cols.f64[n + i] = node.size;
    cols.f64[2 * n + i] = node.kind === 'file' ? dataOffset : 0;
    cols.i64[i] = node.atimeNs;
    cols.i64[n + i] = node.mtimeNs;
    cols.i64[2 * n + i] = node.ctimeNs;
    cols.u32[i] = (KIND_CODE.get(node.kind)! << 16) | (node.mode & 0o7777);
    cols.u32[n + i] = node.uid >>> 0;
    cols.u32[2 * n + i] = node.gid >>> 0;
    cols.u32[3 * n + i] = node.nlink >>> 0;
    cols.u32[4 * n + i] = node.rdev >>> 0;
    cols.u32[5 * n + i] = node.a;
    cols.u32[6 * n + i] = node.b;
    if (node.kind === 'file') {
      readInto(vfs, node.h, data.subarray(dataOffset, dataOffset + node.size));
      dataOffset += node.size;
    }
  }

  const entryBuf = alloc(4 * (ENTRY_WORDS + 1) * e);
  const entryView = new Uint32Array(entryBuf);
  entryView.set(entryWords, 0);
  entryView.set(sorted, ENTRY_WORDS * e);

  const stringBytes = strings.bytes();
  const stringBuf = alloc(stringBytes.length);
  new Uint8Array(stringBuf).set(stringBytes);

  let nextIno = 1;
  for (const node of nodes) if (node.ino >= nextIno) nextIno = node.ino + 1;
  return {
    format: PACKED_FORMAT, nodeCount: n, entryCount: e, dev, nextIno, shared: useShared,
    nodes: nodeBuf, entries: entryBuf, strings: stringBuf, data: dataBuf,
  };
}

/** Total bytes a packed tree holds, per buffer. */
export function packedSize(p: PackedTree): { nodes: number; entries: number; strings: number; data: number; total: number } {
  const s = {
    nodes: p.nodes.byteLength, entries: p.entries.byteLength, strings: p.strings.byteLength, data: p.data.byteLength,
  };
  return { ...s, total: s.nodes + s.entries + s.strings + s.data };
}

function readInto<H>(vfs: Vfs<H>, h: H, into: Uint8Array): void {
  let done = 0;
  while (done < into.length) {
    const got = vfs.read(h, into.subarray(done), done);
    if (got === 0) break;
    done += got;
  }
  if (done < into.length) {
    throw new SandboxError('INTERNAL', `file shrank while packing: read ${done} of ${into.length} bytes`);
  }
}

/** UTF-8 bytes of `s`, without a call into the encoder for ASCII (most names). */
function utf8(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(s);
    out[i] = c;
  }
  return out;
}

class StringTable {
  #index = new Map<string, [number, number, Uint8Array]>();
  #chunks: Uint8Array[] = [];
  #length = 0;

  intern(s: string): [number, number] {
    const [off, len] = this.internWithBytes(s);
    return [off, len];
  }

  internWithBytes(s: string): [number, number, Uint8Array] {
    let hit = this.#index.get(s);
    if (hit === undefined) {
      const bytes = utf8(s);
      hit = [this.#length, bytes.length, bytes];
      this.#chunks.push(bytes);
      this.#length += bytes.length;
      this.#index.set(s, hit);
    }
    return hit;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
