import { SandboxError } from '../errors.ts';
import { PACKED_FORMAT, type PackedTree } from './packed-tree.ts';

/**
 * A packed tree as one file: a 64-byte header, then the nodes, entries, strings and data buffers, each
 * starting on an 8-byte boundary. The header: magic "WBPT", format version, node and entry counts, then
 * dev, nextIno and the four buffer lengths as float64. `decodePackedTree` checks the header and lengths;
 * `packedVfs` checks the contents, so a damaged file is refused, never misread.
 */
const MAGIC = 0x54504257; // "WBPT" little-endian
const VERSION = 1;
const HEADER_BYTES = 64;

const align8 = (n: number) => (n + 7) & ~7;

export function encodePackedTree(p: PackedTree): Uint8Array {
  const parts = [p.nodes, p.entries, p.strings, p.data];
  const total = HEADER_BYTES + parts.reduce((n, b) => n + align8(b.byteLength), 0);
  const out = new Uint8Array(total);
  const header = new DataView(out.buffer, 0, HEADER_BYTES);
  header.setUint32(0, MAGIC, true);
  header.setUint32(4, VERSION, true);
  header.setUint32(8, p.nodeCount, true);
  header.setUint32(12, p.entryCount, true);
  header.setFloat64(16, p.dev, true);
  header.setFloat64(24, p.nextIno, true);
  parts.forEach((b, i) => header.setFloat64(32 + 8 * i, b.byteLength, true));
  let at = HEADER_BYTES;
  for (const b of parts) {
    out.set(new Uint8Array(b), at);
    at += align8(b.byteLength);
  }
  return out;
}

/** The tree in `bytes` (as `encodePackedTree` wrote it), in SharedArrayBuffers when `shared` and available. */
export function decodePackedTree(bytes: Uint8Array, opts: { shared?: boolean; what?: string } = {}): PackedTree {
  const what = opts.what ?? 'packed tree file';
  const bad = (why: string) => new SandboxError('MALFORMED', `${what}: ${why}`);
  if (bytes.byteLength < HEADER_BYTES) throw bad('shorter than its header');
  const header = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (header.getUint32(0, true) !== MAGIC) throw bad('not a packed tree');
  if (header.getUint32(4, true) !== VERSION) throw bad(`format version ${header.getUint32(4, true)}, expected ${VERSION}`);
  const lengths = [0, 1, 2, 3].map((i) => header.getFloat64(32 + 8 * i, true));
  if (!lengths.every((n) => Number.isSafeInteger(n) && n >= 0)) throw bad('bad buffer lengths');
  const expected = HEADER_BYTES + lengths.reduce((n, l) => n + align8(l), 0);
  if (expected !== bytes.byteLength) throw bad(`${bytes.byteLength} bytes where the header describes ${expected}`);
  const dev = header.getFloat64(16, true);
  const nextIno = header.getFloat64(24, true);
  if (!Number.isSafeInteger(dev) || !Number.isSafeInteger(nextIno) || nextIno < 1) throw bad('bad dev or inode numbers');

  const shared = (opts.shared ?? false) && typeof SharedArrayBuffer !== 'undefined';
  let at = bytes.byteOffset + HEADER_BYTES;
  const [nodes, entries, strings, data] = lengths.map((len) => {
    const buf = shared ? new SharedArrayBuffer(len) : new ArrayBuffer(len);
    new Uint8Array(buf).set(new Uint8Array(bytes.buffer, at, len));
    at += align8(len);
    return buf;
  }) as [ArrayBuffer, ArrayBuffer, ArrayBuffer, ArrayBuffer];
  return {
    format: PACKED_FORMAT,
    nodeCount: header.getUint32(8, true),
    entryCount: header.getUint32(12, true),
    dev,
    nextIno,
    shared,
    nodes,
    entries,
    strings,
    data,
  };
}
