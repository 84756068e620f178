import { pack, type Header, type Pack } from 'tar-stream';
import { SandboxError } from '../errors.ts';
import { rdevMajor, rdevMinor } from './inode.ts';
import type { NodeKind, Vfs } from './vfs.ts';

/** One member of a tar to write. Paths are relative ('usr/bin/env'), never absolute. */
export interface TarEntry {
  path: string;
  /** 'link' is a hard link to the earlier member `linkTarget`. Sockets cannot be in a tar. */
  kind: Exclude<NodeKind, 'socket'> | 'link';
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** File content (kind 'file'). */
  data?: Uint8Array;
  /** Symlink target, or the hard link's target member path. */
  linkTarget?: string;
  /** chardev/blockdev number (Linux encoding, see makeRdev). */
  rdev?: number;
  uname?: string;
  gname?: string;
}

const TAR_TYPE: Record<TarEntry['kind'], Header['type']> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  link: 'link',
  chardev: 'character-device',
  blockdev: 'block-device',
  fifo: 'fifo',
};

/** File-type bits so that a mode of 0 is not replaced by tar-stream's default (it masks them off). */
const TYPE_BITS: Record<TarEntry['kind'], number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  chardev: 0o020000,
  blockdev: 0o060000,
  fifo: 0o010000,
};

/** Largest id the 8-byte octal ustar field holds as tar-stream writes it (6 digits). */
const MAX_USTAR_ID = 0o777777;
/** tar-stream computes the header mtime with `| 0`: keep the ustar field within 31 bits, PAX carries the rest. */
const MAX_USTAR_SECS = 2 ** 31 - 1;

/**
 * Writes entries as a POSIX tar (ustar, with PAX records for long or non-ASCII names, nanosecond or
 * out-of-range mtimes and large ids). Pulls entries as the stream is read.
 */
export function writeTar(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): ReadableStream<Uint8Array> {
  const p = pack();
  let chunks: AsyncIterator<Uint8Array> | undefined;
  const produce = async (): Promise<void> => {
    try {
      for await (const e of entries) await addEntry(p, e);
      p.finalize();
    } catch (err) {
      p.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };
  return new ReadableStream<Uint8Array>({
    start() {
      chunks = (p as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
      void produce();
    },
    async pull(controller) {
      const r = await chunks!.next();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel() {
      p.destroy(new Error('tar stream cancelled'));
    },
  });
}

function addEntry(p: Pack, e: TarEntry): Promise<void> {
  const header = tarHeader(e);
  return new Promise<void>((resolve, reject) => {
    const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (e.kind === 'file') {
      // A copy: the stream's reader must not be able to reach (and change) the tree's bytes.
      const data = e.data ? e.data.slice() : new Uint8Array(0);
      p.entry({ ...header, size: data.byteLength }, data, cb);
    } else {
      (p.entry(header, cb) as unknown as { end(): void }).end();
    }
  });
}

function tarHeader(e: TarEntry): Header & { pax?: Record<string, string> } {
  if (e.path === '' || e.path.startsWith('/')) {
    throw new SandboxError('INVALID_ARGUMENT', `tar entry path must be relative: ${JSON.stringify(e.path)}`);
  }
  const pax: Record<string, string> = {};
  const secs = floorDiv(e.mtimeNs, 1_000_000_000n);
  if (secs * 1_000_000_000n !== e.mtimeNs || secs < 0n || secs > BigInt(MAX_USTAR_SECS)) pax.mtime = paxTime(e.mtimeNs);
  const headerSecs = secs < 0n ? 0 : secs > BigInt(MAX_USTAR_SECS) ? MAX_USTAR_SECS : Number(secs);
  let uid = e.uid;
  let gid = e.gid;
  if (uid > MAX_USTAR_ID) {
    pax.uid = String(uid);
    uid = 0;
  }
  if (gid > MAX_USTAR_ID) {
    pax.gid = String(gid);
    gid = 0;
  }
  const h: Header & { pax?: Record<string, string> } = {
    name: e.path,
    size: 0,
    mode: TYPE_BITS[e.kind] | (e.mode & 0o7777),
    mtime: new Date(headerSecs * 1000),
    type: TAR_TYPE[e.kind],
    linkname: e.kind === 'symlink' || e.kind === 'link' ? (e.linkTarget ?? '') : '',
    uid,
    gid,
    uname: e.uname ?? '',
    gname: e.gname ?? '',
    devmajor: e.rdev !== undefined ? rdevMajor(e.rdev) : 0,
    devminor: e.rdev !== undefined ? rdevMinor(e.rdev) : 0,
  };
  if (Object.keys(pax).length > 0) h.pax = pax;
  return h;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** PAX decimal seconds with a nine-digit fraction ("-1.500000000" for -1.5 s). */
export function paxTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/**
 * Every node under `start` (default: the root) as tar entries, depth first, each directory before
 * its children, children sorted by name (the same tree always gives the same bytes). A node seen
 * again under another name (same ino) becomes a hard link to the first name. `prefix` is prepended
 * to every path, and when non-empty `start` itself is emitted as that directory. Sockets are skipped.
 */
export function* vfsTarEntries<H>(vfs: Vfs<H>, start: H = vfs.root(), prefix = ''): Generator<TarEntry> {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  const firstName = new Map<number, string>();
  interface Frame {
    dir: H;
    path: string;
    names: string[];
    next: number;
  }
  const frame = (dir: H, path: string): Frame => ({
    dir,
    path,
    names: vfs.readdir(dir).map((d) => d.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    next: 0,
  });
  if (base !== '') yield nodeEntry(vfs, start, base);
  const frames: Frame[] = [frame(start, base)];
  while (frames.length > 0) {
    const f = frames[frames.length - 1]!;
    if (f.next >= f.names.length) {
      frames.pop();
      continue;
    }
    const name = f.names[f.next++]!;
    const h = vfs.lookup(f.dir, name);
    if (h === undefined) continue;
    const st = vfs.stat(h);
    const path = f.path === '' ? name : `${f.path}/${name}`;
    if (st.kind === 'socket') continue;
    if (st.kind === 'dir') {
      yield nodeEntry(vfs, h, path);
      frames.push(frame(h, path));
      continue;
    }
    if (st.nlink > 1) {
      const first = firstName.get(st.ino);
      if (first !== undefined) {
        yield { path, kind: 'link', mode: st.mode, uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs, linkTarget: first };
        continue;
      }
      firstName.set(st.ino, path);
    }
    yield nodeEntry(vfs, h, path);
  }
}

/** The tar entry for one node (a directory without its children). */
export function nodeEntry<H>(vfs: Vfs<H>, h: H, path: string): TarEntry {
  const st = vfs.stat(h);
  if (st.kind === 'socket') throw new SandboxError('INVALID_ARGUMENT', `a socket cannot be put in a tar: ${path}`);
  const e: TarEntry = { path, kind: st.kind, mode: st.mode, uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs };
  switch (st.kind) {
    case 'file':
      e.data = readAll(vfs, h, st.size);
      break;
    case 'symlink':
      e.linkTarget = vfs.readlink(h);
      break;
    case 'chardev':
    case 'blockdev':
      e.rdev = st.rdev;
      break;
  }
  return e;
}

function readAll<H>(vfs: Vfs<H>, h: H, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = vfs.read(h, out.subarray(off), off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? out : out.subarray(0, off);
}
