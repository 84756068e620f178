/**
 * Tar fixtures built in code: `makeTar` writes well-formed tars with tar-stream's pack (an encoder
 * independent of wasmbox's own writer), `ustarHeader` + `rawTar` write raw header bytes for the
 * malformed and hostile cases tar-stream refuses to produce.
 */
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

export type FixtureType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

export interface FixtureEntry {
  path: string;
  /** Default: 'directory' when the path ends in '/', else 'file'. */
  type?: FixtureType;
  data?: string | Uint8Array;
  /** Permission bits (0o7777); default 0o644 for files, 0o755 for directories, 0o777 for symlinks. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch (default 1700000000). */
  mtime?: number;
  /** Nanoseconds; written as a PAX mtime with a fraction. */
  mtimeNs?: bigint;
  /** Symlink target, or the hard link's target member name. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records. */
  pax?: Record<string, string>;
}

const TYPE_BITS: Record<FixtureType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

export const DEFAULT_MTIME = 1_700_000_000;

export async function makeTar(entries: readonly FixtureEntry[]): Promise<Uint8Array> {
  const p = pack();
  const chunks: Uint8Array[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Uint8Array));
    p.on('end', () => resolve());
    p.on('error', (e: unknown) => reject(e));
  });
  for (const e of entries) {
    const type = e.type ?? (e.path.endsWith('/') ? 'directory' : 'file');
    const defaultMode = type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644;
    const data = typeof e.data === 'string' ? new TextEncoder().encode(e.data) : e.data;
    const pax: Record<string, string> = { ...e.pax };
    if (e.mtimeNs !== undefined) pax.mtime = paxTime(e.mtimeNs);
    const mtimeSecs = e.mtimeNs !== undefined ? Number(e.mtimeNs / 1_000_000_000n) : (e.mtime ?? DEFAULT_MTIME);
    const header = {
      name: e.path,
      type,
      // File-type bits keep a mode of 0 from being replaced by pack's default.
      mode: TYPE_BITS[type] | (e.mode ?? defaultMode),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date(Math.max(0, mtimeSecs) * 1000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor } : {}),
      ...(e.devminor !== undefined ? { devminor: e.devminor } : {}),
      ...(Object.keys(pax).length > 0 ? { pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file' && data) p.entry({ ...header, size: data.byteLength }, data, cb);
      else (p.entry(header, cb) as unknown as { end(): void }).end();
    });
  }
  p.finalize();
  await done;
  return concat(chunks);
}

export function paxTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const secs = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0');
  return `${neg ? '-' : ''}${secs}.${frac}`;
}

export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(bytes));
}

export interface RawHeader {
  name: string;
  /** One typeflag character: '0' file, '1' hard link, '2' symlink, '5' dir, 'x' PAX, 'S' sparse... */
  typeflag?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: number;
  linkname?: string;
  /** ustar prefix field (joined to the name with '/'). */
  prefix?: string;
  devmajor?: number;
  devminor?: number;
  /** Add this to the computed checksum (a corrupt header). */
  checksumDelta?: number;
}

/** One 512-byte ustar header, written byte by byte. */
export function ustarHeader(h: RawHeader): Uint8Array {
  const b = new Uint8Array(512);
  const enc = new TextEncoder();
  const str = (s: string, off: number, len: number): void => {
    const bytes = enc.encode(s);
    if (bytes.length > len) throw new Error(`field too long: ${s}`);
    b.set(bytes, off);
  };
  const oct = (n: number, off: number, len: number): void => str(n.toString(8).padStart(len - 1, '0'), off, len - 1);
  str(h.name, 0, 100);
  oct(h.mode ?? 0o644, 100, 8);
  oct(h.uid ?? 0, 108, 8);
  oct(h.gid ?? 0, 116, 8);
  oct(h.size ?? 0, 124, 12);
  oct(h.mtime ?? DEFAULT_MTIME, 136, 12);
  b.fill(0x20, 148, 156);
  str(h.typeflag ?? '0', 156, 1);
  if (h.linkname) str(h.linkname, 157, 100);
  str('ustar\0', 257, 6);
  str('00', 263, 2);
  oct(h.devmajor ?? 0, 329, 8);
  oct(h.devminor ?? 0, 337, 8);
  if (h.prefix) str(h.prefix, 345, 155);
  let sum = 0;
  for (const x of b) sum += x;
  str((sum + (h.checksumDelta ?? 0)).toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}

/** A PAX extended header block (typeflag 'x') plus its records, ready to precede an entry. */
export function paxBlocks(records: Record<string, string>): Uint8Array {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rec = ` ${k}=${v}\n`;
    let len = rec.length + 1;
    while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
    body += `${len}${rec}`;
  }
  const data = new TextEncoder().encode(body);
  return concat([ustarHeader({ name: 'PaxHeader', typeflag: 'x', size: data.length }), padBlock(data)]);
}

/** Header + content padded to 512 bytes. */
export function rawEntry(h: RawHeader, data: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return concat([ustarHeader({ size: bytes.length, ...h }), padBlock(bytes)]);
}

/** Concatenates parts; with `end` (default) appends the two zero blocks that close a tar. */
export function rawTar(parts: readonly Uint8Array[], end = true): Uint8Array {
  return concat(end ? [...parts, new Uint8Array(1024)] : [...parts]);
}

export function padBlock(data: Uint8Array): Uint8Array {
  const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
  padded.set(data);
  return padded;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** A web stream over bytes, in chunks of `chunkSize` (to exercise entries split across chunks). */
export function streamOf(bytes: Uint8Array, chunkSize = 65536): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (off >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(off, off + chunkSize));
      off += chunkSize;
    },
  });
}
