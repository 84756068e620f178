import type { NodeKind, Stat } from './vfs.ts';

/**
 * Inodes of the immutable layer trees: plain objects, one shape per kind (the field order below is
 * the same in every constructor so V8 keeps one hidden class per kind).
 *
 * Contract: an inode reachable from a LayerTree is never mutated again (layer trees are shared by every
 * container of an image); they are frozen when their layer is finished. The overlay copies up instead.
 * Within one tree each ino has exactly one object, so the object is the canonical identity.
 */
export interface InodeBase {
  readonly ino: number;
  /** Permission bits with setuid/setgid/sticky (0o7777); no file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Nanoseconds since the epoch. atime and ctime usually share the mtime's bigint. */
  mtimeNs: bigint;
  atimeNs: bigint;
  ctimeNs: bigint;
}

export interface FileInode extends InodeBase {
  readonly kind: 'file';
  /** Logical size; bytes in [data.length, size) read as zeros. In layer trees size === data.length. */
  size: number;
  /** Content. May be a view into a larger buffer: never read past data.length. */
  data: Uint8Array;
}

export interface DirInode extends InodeBase {
  readonly kind: 'dir';
  /** Children by name, in insertion order. */
  entries: Map<string, Inode>;
}

export interface SymlinkInode extends InodeBase {
  readonly kind: 'symlink';
  target: string;
}

export interface DeviceInode extends InodeBase {
  readonly kind: 'chardev' | 'blockdev';
  /** Linux encoding: minor & 0xff | major << 8 | (minor & ~0xff) << 12 (major << 8 | minor for small numbers). */
  rdev: number;
}

export interface SpecialInode extends InodeBase {
  readonly kind: 'fifo' | 'socket';
}

export type Inode = FileInode | DirInode | SymlinkInode | DeviceInode | SpecialInode;

/** Metadata every constructor takes. atime/ctime default to the mtime (same bigint, no extra memory). */
export interface InodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  atimeNs?: bigint;
  ctimeNs?: bigint;
}

export const EMPTY_DATA: Uint8Array = new Uint8Array(0);

/** A directory's reported size (what ext4 shows for a small directory). */
export const DIR_SIZE = 4096;

const encoder = new TextEncoder();

export function newFile(ino: number, meta: InodeMeta, data: Uint8Array = EMPTY_DATA): FileInode {
  return {
    kind: 'file',
    ino,
    mode: meta.mode & 0o7777,
    uid: meta.uid,
    gid: meta.gid,
    nlink: 1,
    mtimeNs: meta.mtimeNs,
    atimeNs: meta.atimeNs ?? meta.mtimeNs,
    ctimeNs: meta.ctimeNs ?? meta.mtimeNs,
    size: data.length,
    data,
  };
}

/**
 * A file whose bytes sit in a buffer shared with other files (layer trees pack small files into
 * slabs): it keeps the slab and an offset, and `data` makes an exact view on each access. A view
 * object per file would cost ~96 bytes; this costs 16.
 */
class SlabFileInode implements FileInode {
  readonly kind = 'file' as const;
  readonly ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtimeNs: bigint;
  atimeNs: bigint;
  ctimeNs: bigint;
  size: number;
  readonly #slab: Uint8Array;
  readonly #offset: number;

  constructor(ino: number, meta: InodeMeta, slab: Uint8Array, offset: number, size: number) {
    this.ino = ino;
    this.mode = meta.mode & 0o7777;
    this.uid = meta.uid;
    this.gid = meta.gid;
    this.nlink = 1;
    this.mtimeNs = meta.mtimeNs;
    this.atimeNs = meta.atimeNs ?? meta.mtimeNs;
    this.ctimeNs = meta.ctimeNs ?? meta.mtimeNs;
    this.size = size;
    this.#slab = slab;
    this.#offset = offset;
  }

  get data(): Uint8Array {
    return this.#slab.subarray(this.#offset, this.#offset + this.size);
  }
}

/** A file whose content is `size` bytes of `slab` from `offset` (the slab is never written again). */
export function newSlabFile(ino: number, meta: InodeMeta, slab: Uint8Array, offset: number, size: number): FileInode {
  if (offset < 0 || size < 0 || offset + size > slab.length) throw new RangeError('file outside its slab');
  return new SlabFileInode(ino, meta, slab, offset, size);
}

export function newDir(ino: number, meta: InodeMeta): DirInode {
  return {
    kind: 'dir',
    ino,
    mode: meta.mode & 0o7777,
    uid: meta.uid,
    gid: meta.gid,
    nlink: 2,
    mtimeNs: meta.mtimeNs,
    atimeNs: meta.atimeNs ?? meta.mtimeNs,
    ctimeNs: meta.ctimeNs ?? meta.mtimeNs,
    entries: new Map(),
  };
}

export function newSymlink(ino: number, meta: InodeMeta, target: string): SymlinkInode {
  return {
    kind: 'symlink',
    ino,
    mode: meta.mode & 0o7777,
    uid: meta.uid,
    gid: meta.gid,
    nlink: 1,
    mtimeNs: meta.mtimeNs,
    atimeNs: meta.atimeNs ?? meta.mtimeNs,
    ctimeNs: meta.ctimeNs ?? meta.mtimeNs,
    target,
  };
}

export function newDevice(ino: number, kind: 'chardev' | 'blockdev', meta: InodeMeta, rdev: number): DeviceInode {
  return {
    kind,
    ino,
    mode: meta.mode & 0o7777,
    uid: meta.uid,
    gid: meta.gid,
    nlink: 1,
    mtimeNs: meta.mtimeNs,
    atimeNs: meta.atimeNs ?? meta.mtimeNs,
    ctimeNs: meta.ctimeNs ?? meta.mtimeNs,
    rdev,
  };
}

export function newSpecial(ino: number, kind: 'fifo' | 'socket', meta: InodeMeta): SpecialInode {
  return {
    kind,
    ino,
    mode: meta.mode & 0o7777,
    uid: meta.uid,
    gid: meta.gid,
    nlink: 1,
    mtimeNs: meta.mtimeNs,
    atimeNs: meta.atimeNs ?? meta.mtimeNs,
    ctimeNs: meta.ctimeNs ?? meta.mtimeNs,
  };
}

/**
 * A mutable copy with the same ino: a directory gets its own entries Map (children still shared),
 * a file shares its data (data is never written in place).
 */
export function cloneInode<T extends Inode>(n: T): T {
  switch (n.kind) {
    case 'dir':
      return { ...n, entries: new Map(n.entries) };
    case 'file':
      // Spelled out: a slab file keeps its bytes behind a getter that a spread would drop.
      return {
        kind: 'file',
        ino: n.ino,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        nlink: n.nlink,
        mtimeNs: n.mtimeNs,
        atimeNs: n.atimeNs,
        ctimeNs: n.ctimeNs,
        size: n.size,
        data: n.data,
      } satisfies FileInode as T;
    default:
      return { ...n };
  }
}

export function inodeSize(n: Inode): number {
  switch (n.kind) {
    case 'file':
      return n.size;
    case 'dir':
      return DIR_SIZE;
    case 'symlink':
      return encoder.encode(n.target).length;
    default:
      return 0;
  }
}

export function statInode(n: Inode, dev = 0): Stat {
  return {
    dev,
    ino: n.ino,
    kind: n.kind satisfies NodeKind,
    mode: n.mode,
    uid: n.uid,
    gid: n.gid,
    nlink: n.nlink,
    size: inodeSize(n),
    rdev: n.kind === 'chardev' || n.kind === 'blockdev' ? n.rdev : 0,
    atimeNs: n.atimeNs,
    mtimeNs: n.mtimeNs,
    ctimeNs: n.ctimeNs,
  };
}

/** Linux's new_encode_dev (what stat's st_rdev holds). */
export function makeRdev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function rdevMajor(rdev: number): number {
  return (rdev >>> 8) & 0xfff;
}

export function rdevMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);
}
