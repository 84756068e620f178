import { SandboxError } from '../errors.ts';
import { sliceSource, type ByteSource, type FileTree } from './byte-source.ts';

/** One tar header, with GNU long names and pax `path`/`linkpath`/`size` already applied. */
export interface TarHeader {
  name: string;
  size: number;
  /** 'file' | 'directory' | 'symlink' | 'link' (hard) | 'other'. */
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  linkname: string;
}

export interface TarMember extends TarHeader {
  /** Offset of the member's data in the archive. */
  offset: number;
}

const BLOCK = 512;
const decoder = new TextDecoder();

function cString(b: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && b[end] !== 0) end++;
  return decoder.decode(b.subarray(start, end));
}

function numeric(b: Uint8Array, start: number, len: number): number {
  if (b[start]! & 0x80) {
    // GNU base-256: big-endian, high bit of the first byte set.
    let v = b[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cString(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

/** Normalized member name: no leading `./` or `/`, no trailing `/`, no empty segments. */
export function normalizeTarName(name: string): string {
  return name.split('/').filter((p) => p !== '' && p !== '.').join('/');
}

function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    let sp = pos;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const len = parseInt(decoder.decode(data.subarray(pos, sp)), 10);
    if (!(len > 0) || pos + len > data.length) break;
    const rec = decoder.decode(data.subarray(sp + 1, pos + len - 1));
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

type RawHeader = { name: string; size: number; flag: string; linkname: string };

function parseHeaderBlock(b: Uint8Array, where: string): RawHeader {
  const stored = numeric(b, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  if (stored !== sum) throw new SandboxError('MALFORMED', `${where}: not a tar header (bad checksum)`);
  const size = numeric(b, 124, 12);
  if (!Number.isSafeInteger(size) || size < 0) throw new SandboxError('MALFORMED', `${where}: bad member size`);
  let name = cString(b, 0, 100);
  const magic = cString(b, 257, 6);
  if (magic === 'ustar') {
    const prefix = cString(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return { name, size, flag: String.fromCharCode(b[156] || 0x30), linkname: cString(b, 157, 100) };
}

function memberType(flag: string, name: string): TarHeader['type'] {
  switch (flag) {
    case '0': case '7': return name.endsWith('/') ? 'directory' : 'file';
    case '5': return 'directory';
    case '2': return 'symlink';
    case '1': return 'link';
    default: return 'other';
  }
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/**
 * A pull parser over tar headers. `readAt(offset, n)` returns the archive's bytes at an offset, so the
 * same walk serves random-access indexing (member data is skipped, never read) and streaming scans.
 */
async function walkTar(
  size: number | undefined,
  readAt: (offset: number, n: number) => Promise<Uint8Array>,
  where: string,
  visit: (h: TarHeader, dataOffset: number) => Promise<boolean | void> | boolean | void,
): Promise<void> {
  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  for (;;) {
    const block = await readAt(offset, BLOCK);
    if (block.length === 0 && (size === undefined || offset >= size)) return; // end without zero blocks
    if (block.length < BLOCK) throw new SandboxError('MALFORMED', `${where}: truncated tar (header at ${offset})`);
    if (isZeroBlock(block)) return;
    const raw = parseHeaderBlock(block, `${where} at offset ${offset}`);
    const dataOffset = offset + BLOCK;
    let dataSize = raw.size;
    if (size !== undefined && dataOffset + raw.size > size) {
      throw new SandboxError('MALFORMED', `${where}: truncated tar (member ${JSON.stringify(raw.name)} needs ${raw.size} bytes at ${dataOffset}, archive is ${size})`);
    }
    if (raw.flag === 'L' || raw.flag === 'K' || raw.flag === 'x') {
      if (raw.size > 1 << 20) throw new SandboxError('MALFORMED', `${where}: oversized extended header at ${offset}`);
      const data = await readAt(dataOffset, raw.size);
      if (data.length < raw.size) throw new SandboxError('MALFORMED', `${where}: truncated tar (extended header at ${offset})`);
      if (raw.flag === 'L') longName = cString(data, 0, data.length);
      else if (raw.flag === 'K') longLink = cString(data, 0, data.length);
      else pax = parsePax(data);
    } else if (raw.flag === 'g') {
      // global pax header: nothing we need
    } else {
      const name = pax.path ?? longName ?? raw.name;
      const linkname = pax.linkpath ?? longLink ?? raw.linkname;
      if (pax.size !== undefined) {
        dataSize = Number(pax.size);
        if (!Number.isSafeInteger(dataSize) || dataSize < 0) throw new SandboxError('MALFORMED', `${where}: bad pax size`);
        if (size !== undefined && dataOffset + dataSize > size) throw new SandboxError('MALFORMED', `${where}: truncated tar (member ${JSON.stringify(name)})`);
      }
      longName = longLink = undefined;
      pax = {};
      const stop = await visit({ name: normalizeTarName(name), size: dataSize, type: memberType(raw.flag, name), linkname }, dataOffset);
      if (stop === true) return;
    }
    offset = dataOffset + padded(dataSize);
  }
}

/** Reads only the headers of a tar held in a ByteSource: member name -> offset and size. */
export async function indexTar(src: ByteSource): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  await walkTar(src.size, (o, n) => src.read(o, n), src.name, (h, offset) => {
    members.set(h.name, { ...h, offset });
  });
  return members;
}

/** The members of an indexed tar as a FileTree; symlinks and hard links inside the archive are followed. */
export function tarTree(src: ByteSource, members: Map<string, TarMember>): FileTree {
  const lookup = (path: string, depth: number): TarMember | undefined => {
    const m = members.get(normalizeTarName(path));
    if (!m || depth > 16) return undefined;
    if (m.type === 'file') return m;
    if (m.type === 'link') return lookup(m.linkname, depth + 1);
    if (m.type === 'symlink') {
      const base = m.linkname.startsWith('/') ? [] : m.name.split('/').slice(0, -1);
      for (const part of m.linkname.split('/')) {
        if (part === '..') base.pop();
        else if (part !== '' && part !== '.') base.push(part);
      }
      return lookup(base.join('/'), depth + 1);
    }
    return undefined;
  };
  return {
    name: src.name,
    async open(path) {
      const m = lookup(path, 0);
      return m && sliceSource(src, m.offset, m.size, `${src.name}:${m.name}`);
    },
  };
}

export async function openTarTree(src: ByteSource): Promise<FileTree> {
  return tarTree(src, await indexTar(src));
}

/** Sequential reads over a stream, for walking a tar that only exists as a stream. */
class StreamCursor {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #pos = 0; // absolute offset of #buf[0]
  constructor(stream: ReadableStream<Uint8Array>) { this.#reader = stream.getReader(); }

  async readAt(offset: number, n: number): Promise<Uint8Array> {
    // Discard up to offset (skipping member data we do not need).
    while (this.#pos + this.#buf.length < offset) {
      this.#pos += this.#buf.length;
      this.#buf = new Uint8Array(0);
      const { done, value } = await this.#reader.read();
      if (done) return new Uint8Array(0);
      this.#buf = value;
    }
    this.#buf = this.#buf.subarray(offset - this.#pos);
    this.#pos = offset;
    while (this.#buf.length < n) {
      const { done, value } = await this.#reader.read();
      if (done) break;
      const joined = new Uint8Array(this.#buf.length + value.length);
      joined.set(this.#buf);
      joined.set(value, this.#buf.length);
      this.#buf = joined;
    }
    return this.#buf.subarray(0, n);
  }

  async cancel(): Promise<void> { await this.#reader.cancel().catch(() => {}); }
}

/**
 * Walks a tar stream and returns the first `n` bytes of the member named `path` (following nothing),
 * or undefined when the archive does not hold it. The stream is cancelled once found.
 */
export async function peekTarMember(stream: ReadableStream<Uint8Array>, path: string, n: number, where: string): Promise<Uint8Array | undefined> {
  const cursor = new StreamCursor(stream);
  const want = normalizeTarName(path);
  let found: Uint8Array | undefined;
  try {
    await walkTar(undefined, (o, k) => cursor.readAt(o, k), where, async (h, dataOffset) => {
      if (h.name !== want || h.type !== 'file') return false;
      found = (await cursor.readAt(dataOffset, Math.min(n, h.size))).slice();
      return true;
    });
  } finally {
    await cursor.cancel();
  }
  return found;
}
