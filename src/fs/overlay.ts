import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from './vfs.ts';
import { wallClockNs } from '#host/clock';
import { MAX_NAME_BYTES } from './resolve.ts';
import { DIR_SIZE, type Inode } from './inode.ts';
import type { LayerTree } from './layer-tree.ts';
import { treeVfs } from './tree-vfs.ts';
import { overlayDiff } from './overlay-diff.ts';

/**
 * A node that lives in an overlay's private upper: either a copy of a lower node (copy-up) or a
 * node created in the overlay. Belongs to exactly one overlay.
 */
export class UpperNode<L> {
  /** Directory entries; values are raw handles, mapped through the overlay's copy table on use. */
  entries: Map<string, OverlayHandle<L>> | undefined;
  /** File bytes [0, size); bytes past `size` are kept zero. Undefined while the content is the lower's. */
  bytes: Uint8Array | undefined;
  /** Lower file whose content this copy still shares (copy-up of metadata only, data on first write). */
  dataFrom: L | undefined;
  size = 0;
  target = '';

  constructor(
    readonly owner: object,
    readonly ino: number,
    readonly kind: NodeKind,
    public mode: number,
    public uid: number,
    public gid: number,
    public nlink: number,
    public rdev: number,
    public atimeNs: bigint,
    public mtimeNs: bigint,
    public ctimeNs: bigint,
    /** The lower node this is a copy of; undefined for nodes created in the overlay. */
    readonly origin: L | undefined,
  ) {}
}

export type OverlayHandle<L> = L | UpperNode<L>;

export interface OverlayOptions {
  /** Every mutating call fails with EROFS. */
  readOnly?: boolean;
  /** Nanoseconds since the epoch for mtime/ctime/atime of changes. */
  clock?: () => bigint;
  /**
   * First ino for nodes created in the overlay; must be above every ino of the lower. Default: the
   * lower's own `nextIno` when it has one (an Overlay, a packedVfs), else 2^32.
   */
  nextIno?: number;
  /** Owner of nodes the overlay creates (default 0:0). */
  uid?: number;
  gid?: number;
  /** st_dev reported for upper nodes (default: the lower root's dev, else 0). */
  dev?: number;
  /** Bound on the bytes of file content the upper holds; writes beyond fail with ENOSPC. */
  quotaBytes?: number;
}

/** An overlay's upper as plain data (see Overlay.exportUpper). */
export interface OverlayUpper {
  readonly format: typeof UPPER_FORMAT;
  /** References: n >= 0 is the lower's handle n, -1 - i is nodes[i]. */
  readonly root: number;
  readonly nextIno: number;
  readonly usedBytes: number;
  /** Pairs: a lower handle, the reference of its copy. */
  readonly copies: number[];
  readonly nodes: UpperNodeData[];
}

interface UpperNodeData {
  ino: number; kind: NodeKind; mode: number; uid: number; gid: number; nlink: number; rdev: number;
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint; size: number; target: string;
  /** -1: none */
  origin: number;
  dataFrom: number;
  entries?: Array<[string, number]>;
  bytes?: Uint8Array;
}

const UPPER_FORMAT = 'wasmbox-overlay-upper/1';
const KINDS = new Set<NodeKind>(['file', 'dir', 'symlink', 'chardev', 'blockdev', 'fifo', 'socket']);

/** Largest file the overlay holds (a Uint8Array bound). */
export const MAX_FILE_SIZE = 2 ** 32 - 1;

const encoder = new TextEncoder();
const NO_BYTES = new Uint8Array(0);

/**
 * Nanoseconds since the epoch, from the host's clock (#host/clock): preview1's realtime clock counts the
 * same way, so a guest sees file times and clock_time_get agree.
 */
export { wallClockNs };

/** Throws EINVAL/ENAMETOOLONG unless `name` is one valid path component. */
export function checkEntryName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FsError('EINVAL', `invalid name ${JSON.stringify(name)}`);
  }
  if (name.length > MAX_NAME_BYTES / 3 && encoder.encode(name).length > MAX_NAME_BYTES) {
    throw new FsError('ENAMETOOLONG', name);
  }
}

/**
 * A container's private copy-on-write filesystem over a read-only lower Vfs whose handles are
 * canonical (one node, one handle value). Copy-up goes through a per-overlay table from lower handle
 * to upper node, so a node is copied once and every path and every handle given out before sees the
 * copy; hard links stay linked. Removing a lower entry only edits the (copied) upper directory.
 */
export class Overlay<L = unknown> implements Vfs<OverlayHandle<L>> {
  readonly readOnly: boolean;
  readonly #lower: Vfs<L> | undefined;
  readonly #copies = new Map<L, UpperNode<L>>();
  #root: OverlayHandle<L>;
  readonly #clock: () => bigint;
  readonly #uid: number;
  readonly #gid: number;
  readonly #dev: number;
  readonly #quota: number;
  #nextIno: number;
  #usedBytes = 0;
  /**
   * Bumped when an entry naming a directory or a symlink is removed or replaced, and when a lower
   * directory is copied up (see layoutVersion).
   */
  #layout = 0;

  /** A writable overlay; without a lower, an empty root directory. */
  static prepare<L = unknown>(lower?: Vfs<L>, opts: OverlayOptions = {}): Overlay<L> {
    return new Overlay<L>(lower, opts);
  }

  /** A read-only view of `lower`: every mutation fails with EROFS. */
  static view<L = unknown>(lower: Vfs<L>, opts: Omit<OverlayOptions, 'readOnly'> = {}): Overlay<L> {
    return new Overlay<L>(lower, { ...opts, readOnly: true });
  }

  /** An overlay over a layer tree, numbering new nodes from the tree's nextIno (readOnly: a view). */
  static overLayerTree(tree: LayerTree, opts: OverlayOptions = {}): Overlay<Inode> {
    return new Overlay<Inode>(treeVfs(tree), { nextIno: tree.nextIno, ...opts });
  }

  constructor(lower: Vfs<L> | undefined, opts: OverlayOptions = {}) {
    this.#lower = lower;
    this.readOnly = opts.readOnly ?? false;
    this.#clock = opts.clock ?? wallClockNs;
    this.#uid = opts.uid ?? 0;
    this.#gid = opts.gid ?? 0;
    this.#quota = opts.quotaBytes ?? Number.POSITIVE_INFINITY;
    if (lower) {
      const lowerRoot = lower.root();
      this.#root = lowerRoot;
      this.#dev = opts.dev ?? lower.stat(lowerRoot).dev;
      const hint = (lower as { nextIno?: unknown }).nextIno;
      this.#nextIno = opts.nextIno ?? (typeof hint === 'number' && Number.isSafeInteger(hint) ? hint : 2 ** 32);
    } else {
      this.#dev = opts.dev ?? 0;
      this.#nextIno = opts.nextIno ?? 1;
      const now = this.#clock();
      const root = this.#newNode('dir', 0o755, now, 2);
      root.uid = 0;
      root.gid = 0;
      this.#root = root;
    }
  }

  /**
   * The upper as plain data, for postMessage: its nodes, and its handles into the lower as the lower's
   * own values, which must be non-negative integers (a packed tree's). `Overlay.fromUpper` over the same
   * lower shows the same tree. File bytes are copied to their size; `transfer` lists their buffers.
   * Undefined when the lower's handles are not integers.
   */
  exportUpper(): { upper: OverlayUpper; transfer: ArrayBuffer[] } | undefined {
    const index = new Map<UpperNode<L>, number>();
    const order: UpperNode<L>[] = [];
    const isLowerRef = (h: unknown): h is number => typeof h === 'number' && Number.isSafeInteger(h) && h >= 0;
    let plain = true;
    const ref = (h: OverlayHandle<L>): number => {
      if (!this.isUpper(h)) {
        if (!isLowerRef(h)) plain = false;
        return h as number;
      }
      let i = index.get(h);
      if (i === undefined) {
        i = order.length;
        index.set(h, i);
        order.push(h);
      }
      return -1 - i;
    };
    const root = ref(this.#root);
    const copies: number[] = [];
    for (const [h, u] of this.#copies) copies.push(ref(h as OverlayHandle<L>), ref(u));
    const nodes: UpperNodeData[] = [];
    const transfer: ArrayBuffer[] = [];
    // (order grows while entries are visited: every reachable upper node gets an index)
    for (let i = 0; i < order.length && plain; i++) {
      const n = order[i]!;
      const bytes = n.bytes === undefined ? undefined : n.bytes.slice(0, n.size);
      if (bytes) transfer.push(bytes.buffer);
      nodes.push({
        ino: n.ino, kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, nlink: n.nlink, rdev: n.rdev,
        atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs, size: n.size, target: n.target,
        origin: n.origin === undefined ? -1 : ref(n.origin),
        dataFrom: n.dataFrom === undefined ? -1 : ref(n.dataFrom),
        ...(n.entries ? { entries: [...n.entries].map(([name, h]): [string, number] => [name, ref(h)]) } : {}),
        ...(bytes ? { bytes } : {}),
      });
    }
    if (!plain) return undefined;
    return { upper: { format: UPPER_FORMAT, root, nextIno: this.#nextIno, usedBytes: this.#usedBytes, copies, nodes }, transfer };
  }

  /** The overlay `exportUpper` described, over the same lower (read-only unless opts say otherwise). */
  static fromUpper<L>(lower: Vfs<L>, upper: OverlayUpper, opts: Omit<OverlayOptions, 'nextIno'> = { readOnly: true }): Overlay<L> {
    const bad = (why: string) => new FsError('EINVAL', `not an overlay upper: ${why}`);
    if (upper?.format !== UPPER_FORMAT || !Array.isArray(upper.nodes) || !Array.isArray(upper.copies)) throw bad('format');
    const overlay = new Overlay<L>(lower, { ...opts, nextIno: upper.nextIno });
    const nodes = upper.nodes.map((d) => {
      if (!KINDS.has(d.kind)) throw bad(`kind ${String(d.kind)}`);
      return new UpperNode<L>(overlay, d.ino, d.kind, d.mode, d.uid, d.gid, d.nlink, d.rdev, d.atimeNs, d.mtimeNs, d.ctimeNs, undefined);
    });
    const handle = (r: number): OverlayHandle<L> => {
      if (!Number.isSafeInteger(r)) throw bad('a reference is not an integer');
      if (r >= 0) return r as L;
      const n = nodes[-1 - r];
      if (n === undefined) throw bad('a reference is out of range');
      return n;
    };
    upper.nodes.forEach((d, i) => {
      const n = nodes[i]!;
      (n as { origin: L | undefined }).origin = d.origin === -1 ? undefined : (handle(d.origin) as L);
      if (d.dataFrom !== -1) n.dataFrom = handle(d.dataFrom) as L;
      if (d.entries) n.entries = new Map(d.entries.map(([name, r]) => [name, handle(r)]));
      else if (n.kind === 'dir') throw bad('a directory without entries');
      n.bytes = d.bytes;
      if (n.kind === 'file' && n.bytes === undefined && n.dataFrom === undefined) n.bytes = NO_BYTES;
      n.size = d.size;
      n.target = d.target;
    });
    for (let i = 0; i + 1 < upper.copies.length; i += 2) {
      const copy = handle(upper.copies[i + 1]!);
      if (!overlay.isUpper(copy)) throw bad('a copy that is not an upper node');
      overlay.#copies.set(handle(upper.copies[i]!) as L, copy);
    }
    overlay.#root = handle(upper.root);
    overlay.#usedBytes = upper.usedBytes;
    return overlay;
  }

  /** The ino the next created node gets (every ino this overlay shows is below it). */
  get nextIno(): number {
    return this.#nextIno;
  }

  /** The lower this overlay reads through (undefined for an overlay over nothing). */
  get lower(): Vfs<L> | undefined {
    return this.#lower;
  }

  /** True when `h` is a node of this overlay's upper (a copy or a new node). */
  isUpper(h: OverlayHandle<L>): h is UpperNode<L> {
    return h instanceof UpperNode && h.owner === this;
  }

  /** The node `h` stands for now: its upper copy if it was copied up. */
  current(h: OverlayHandle<L>): OverlayHandle<L> {
    if (this.isUpper(h)) return h;
    if (this.#lower === undefined) throw new FsError('EBADF', 'not a handle of this overlay');
    return this.#copies.get(h as L) ?? h;
  }

  /** The upper copy of lower node `h`, if any. */
  copyOf(h: L): UpperNode<L> | undefined {
    return this.#copies.get(h);
  }

  /** Number of lower nodes copied up so far. */
  get copiedUp(): number {
    return this.#copies.size;
  }

  /**
   * The upper as an OCI layer tar (changed and new nodes, `.wh.` whiteouts, `.wh..wh..opq` opaque
   * directories); applied on the lower it gives what this overlay shows. See overlay-diff.ts.
   */
  diff(): ReadableStream<Uint8Array> {
    return overlayDiff(this);
  }

  now(): bigint {
    return this.#clock();
  }

  /**
   * Changes when a directory or symlink entry of this overlay (or of its lower) is removed or replaced,
   * or a lower directory is copied up (its handle changes).
   */
  layoutVersion(): number {
    const lower = this.#lower;
    if (lower === undefined) return this.#layout;
    // Both counters only grow, so their sum changes whenever either does; a lower without one: NaN.
    const below = lower.layoutVersion === undefined ? Number.NaN : lower.layoutVersion();
    return this.#layout + below;
  }

  root(): OverlayHandle<L> {
    return this.current(this.#root);
  }

  lookup(dir: OverlayHandle<L>, name: string): OverlayHandle<L> | undefined {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) {
      throw new FsError('EINVAL', `invalid name ${JSON.stringify(name)}`);
    }
    const d = this.current(dir);
    if (this.isUpper(d)) {
      if (d.entries === undefined) throw new FsError('ENOTDIR');
      const child = d.entries.get(name);
      return child === undefined ? undefined : this.current(child);
    }
    const child = this.#lower!.lookup(d as L, name);
    return child === undefined ? undefined : this.current(child);
  }

  kind(h: OverlayHandle<L>): NodeKind {
    const n = this.current(h);
    return this.isUpper(n) ? n.kind : this.#lower!.kind(n as L);
  }

  stat(h: OverlayHandle<L>): Stat {
    const n = this.current(h);
    if (!this.isUpper(n)) return this.#lower!.stat(n as L);
    return {
      dev: this.#dev,
      ino: n.ino,
      kind: n.kind,
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      nlink: n.nlink,
      size: n.size,
      rdev: n.rdev,
      atimeNs: n.atimeNs,
      mtimeNs: n.mtimeNs,
      ctimeNs: n.ctimeNs,
    };
  }

  readdir(dir: OverlayHandle<L>): DirEntry[] {
    const d = this.current(dir);
    if (!this.isUpper(d)) return this.#lower!.readdir(d as L);
    if (d.entries === undefined) throw new FsError('ENOTDIR');
    const out: DirEntry[] = [];
    for (const [name, child] of d.entries) {
      const c = this.current(child);
      if (this.isUpper(c)) {
        out.push({ name, ino: c.ino, kind: c.kind });
      } else {
        const st = this.#lower!.stat(c as L);
        out.push({ name, ino: st.ino, kind: st.kind });
      }
    }
    return out;
  }

  readlink(h: OverlayHandle<L>): string {
    const n = this.current(h);
    if (!this.isUpper(n)) return this.#lower!.readlink(n as L);
    if (n.kind !== 'symlink') throw new FsError('EINVAL', 'not a symlink');
    return n.target;
  }

  read(h: OverlayHandle<L>, into: Uint8Array, position: number): number {
    checkPosition(position);
    const n = this.current(h);
    if (!this.isUpper(n)) return this.#lower!.read(n as L, into, position);
    if (n.kind === 'dir') throw new FsError('EISDIR');
    if (n.kind !== 'file') throw new FsError('EINVAL', `cannot read a ${n.kind}`);
    if (n.dataFrom !== undefined) return this.#lower!.read(n.dataFrom, into, position);
    if (position >= n.size) return 0;
    const count = Math.min(into.length, n.size - position);
    const bytes = n.bytes!;
    // Small reads by hand: a subarray view per call costs more than the copy.
    if (count <= 64) for (let i = 0; i < count; i++) into[i] = bytes[position + i]!;
    else into.set(bytes.subarray(position, position + count));
    return count;
  }

  write(h: OverlayHandle<L>, data: Uint8Array, position: number): number {
    this.#checkWritable();
    checkPosition(position);
    const n = this.#fileForWrite(h);
    if (data.length === 0) return 0;
    const end = position + data.length;
    if (end > MAX_FILE_SIZE) throw new FsError('EFBIG');
    this.#materialize(n);
    if (end > n.size) this.#resize(n, end);
    n.bytes!.set(data, position);
    n.mtimeNs = n.ctimeNs = this.#clock();
    return data.length;
  }

  setSize(h: OverlayHandle<L>, size: number): void {
    this.#checkWritable();
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', `bad size ${size}`);
    if (size > MAX_FILE_SIZE) throw new FsError('EFBIG');
    const n = this.#fileForWrite(h);
    this.#materialize(n);
    if (size !== n.size) this.#resize(n, size);
    n.mtimeNs = n.ctimeNs = this.#clock();
  }

  setTimes(h: OverlayHandle<L>, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    this.#checkWritable();
    const n = this.#copyUp(this.current(h));
    if (atimeNs !== undefined) n.atimeNs = atimeNs;
    if (mtimeNs !== undefined) n.mtimeNs = mtimeNs;
    n.ctimeNs = this.#clock();
  }

  mkdir(dir: OverlayHandle<L>, name: string, mode: number): OverlayHandle<L> {
    const d = this.#dirForInsert(dir, name);
    const now = this.#clock();
    const node = this.#newNode('dir', mode, now, 2);
    d.entries!.set(name, node);
    d.nlink++;
    d.mtimeNs = d.ctimeNs = now;
    return node;
  }

  createFile(dir: OverlayHandle<L>, name: string, mode: number): OverlayHandle<L> {
    const d = this.#dirForInsert(dir, name);
    const now = this.#clock();
    const node = this.#newNode('file', mode, now, 1);
    d.entries!.set(name, node);
    d.mtimeNs = d.ctimeNs = now;
    return node;
  }

  symlink(dir: OverlayHandle<L>, name: string, target: string): OverlayHandle<L> {
    if (target.includes('\0')) throw new FsError('EINVAL', 'symlink target contains NUL');
    const d = this.#dirForInsert(dir, name);
    const now = this.#clock();
    const node = this.#newNode('symlink', 0o777, now, 1);
    node.target = target;
    node.size = encoder.encode(target).length;
    d.entries!.set(name, node);
    d.mtimeNs = d.ctimeNs = now;
    return node;
  }

  link(dir: OverlayHandle<L>, name: string, target: OverlayHandle<L>): void {
    this.#checkWritable();
    checkEntryName(name);
    const d = this.#requireDir(dir);
    if (this.#isRemoved(d)) throw new FsError('ENOENT', 'directory was removed');
    // Linux order: an existing name (EEXIST) before a directory target (EPERM).
    if (this.lookup(d, name) !== undefined) throw new FsError('EEXIST', name);
    const t = this.current(target);
    if (this.#kind(t) === 'dir') throw new FsError('EPERM', 'hard link to a directory');
    if (this.#isRemoved(t)) throw new FsError('ENOENT', 'link to a removed file');
    const du = this.#copyUp(d);
    const tu = this.#copyUp(t);
    const now = this.#clock();
    tu.nlink++;
    tu.ctimeNs = now;
    du.entries!.set(name, tu);
    du.mtimeNs = du.ctimeNs = now;
  }

  unlink(dir: OverlayHandle<L>, name: string): void {
    this.#checkWritable();
    checkEntryName(name);
    const d = this.#requireDir(dir);
    const child = this.lookup(d, name);
    if (child === undefined) throw new FsError('ENOENT', name);
    const childKind = this.#kind(child);
    if (childKind === 'dir') throw new FsError('EISDIR', name);
    const du = this.#copyUp(d);
    if (childKind === 'symlink') this.#layout++;
    du.entries!.delete(name);
    const now = this.#clock();
    this.#dropLink(child, now);
    du.mtimeNs = du.ctimeNs = now;
  }

  rmdir(dir: OverlayHandle<L>, name: string): void {
    this.#checkWritable();
    checkEntryName(name);
    const d = this.#requireDir(dir);
    const child = this.lookup(d, name);
    if (child === undefined) throw new FsError('ENOENT', name);
    if (this.#kind(child) !== 'dir') throw new FsError('ENOTDIR', name);
    if (!this.#isEmptyDir(child)) throw new FsError('ENOTEMPTY', name);
    const du = this.#copyUp(d);
    this.#layout++;
    du.entries!.delete(name);
    const now = this.#clock();
    this.#dropLink(child, now);
    du.nlink--;
    du.mtimeNs = du.ctimeNs = now;
  }

  rename(fromDir: OverlayHandle<L>, fromName: string, toDir: OverlayHandle<L>, toName: string): void {
    this.#checkWritable();
    checkEntryName(fromName);
    checkEntryName(toName);
    const fd = this.#requireDir(fromDir);
    const td = this.#requireDir(toDir);
    const src = this.lookup(fd, fromName);
    if (src === undefined) throw new FsError('ENOENT', fromName);
    if (this.#isRemoved(td)) throw new FsError('ENOENT', 'target directory was removed');
    const dst = this.lookup(td, toName);
    if (dst === src) return; // the same node (the same entry or two links to one file): nothing to do
    // Checks in Linux's order: source above the target (EINVAL), target above the source (ENOTEMPTY),
    // then the kinds, then an occupied target directory.
    const srcKind = this.#kind(src);
    if (srcKind === 'dir' && td !== fd && this.#isWithin(td, src)) {
      throw new FsError('EINVAL', 'rename of a directory into itself');
    }
    const dstIsDir = dst !== undefined && this.#kind(dst) === 'dir';
    if (dstIsDir && srcKind !== 'dir' && !this.#isEmptyDir(dst) && this.#isWithin(fd, dst)) {
      throw new FsError('ENOTEMPTY', `${toName} holds the source`);
    }
    if (srcKind === 'dir') {
      if (dst !== undefined) {
        if (!dstIsDir) throw new FsError('ENOTDIR', toName);
        if (!this.#isEmptyDir(dst)) throw new FsError('ENOTEMPTY', toName);
      }
    } else if (dstIsDir) {
      throw new FsError('EISDIR', toName);
    }
    const fu = this.#copyUp(fd);
    const tu = td === fd ? fu : this.#copyUp(td);
    const now = this.#clock();
    if (srcKind === 'dir' || srcKind === 'symlink' || dstIsDir || (dst !== undefined && this.#kind(dst) === 'symlink')) {
      this.#layout++;
    }
    if (dst !== undefined) {
      tu.entries!.delete(toName);
      this.#dropLink(dst, now);
      if (srcKind === 'dir') tu.nlink--;
    }
    fu.entries!.delete(fromName);
    tu.entries!.set(toName, src);
    if (srcKind === 'dir' && fu !== tu) {
      fu.nlink--;
      tu.nlink++;
    }
    fu.mtimeNs = fu.ctimeNs = now;
    tu.mtimeNs = tu.ctimeNs = now;
  }

  // ---- internals

  #checkWritable(): void {
    if (this.readOnly) throw new FsError('EROFS');
  }

  #newNode(kind: NodeKind, mode: number, now: bigint, nlink: number): UpperNode<L> {
    const node = new UpperNode<L>(
      this, this.#nextIno++, kind, mode & 0o7777, this.#uid, this.#gid, nlink, 0, now, now, now, undefined,
    );
    if (kind === 'dir') {
      node.entries = new Map();
      node.size = DIR_SIZE;
    }
    if (kind === 'file') node.bytes = NO_BYTES; // never written into: the first growth allocates
    return node;
  }

  #kind(n: OverlayHandle<L>): NodeKind {
    return this.isUpper(n) ? n.kind : this.#lower!.kind(n as L);
  }

  #requireDir(h: OverlayHandle<L>): OverlayHandle<L> {
    const d = this.current(h);
    if (this.#kind(d) !== 'dir') throw new FsError('ENOTDIR');
    return d;
  }

  #isRemoved(n: OverlayHandle<L>): boolean {
    return this.isUpper(n) && n.nlink === 0;
  }

  #isEmptyDir(n: OverlayHandle<L>): boolean {
    return this.isUpper(n) ? n.entries!.size === 0 : this.#lower!.readdir(n as L).length === 0;
  }

  /** Checks for inserting `name` into `dir` and returns the (copied-up) directory. */
  #dirForInsert(dir: OverlayHandle<L>, name: string): UpperNode<L> {
    this.#checkWritable();
    checkEntryName(name);
    const d = this.#requireDir(dir);
    if (this.#isRemoved(d)) throw new FsError('ENOENT', 'directory was removed');
    if (this.lookup(d, name) !== undefined) throw new FsError('EEXIST', name);
    return this.#copyUp(d);
  }

  #fileForWrite(h: OverlayHandle<L>): UpperNode<L> {
    const n = this.current(h);
    const kind = this.#kind(n);
    if (kind === 'dir') throw new FsError('EISDIR');
    if (kind !== 'file') throw new FsError('EINVAL', `cannot write a ${kind}`);
    return this.#copyUp(n);
  }

  /** The upper node for `n` (already current), copying a lower node's metadata up on first use. */
  #copyUp(n: OverlayHandle<L>): UpperNode<L> {
    if (this.isUpper(n)) return n;
    const lower = this.#lower!;
    const h = n as L;
    const st = lower.stat(h);
    const u = new UpperNode<L>(
      this, st.ino, st.kind, st.mode, st.uid, st.gid, st.nlink, st.rdev, st.atimeNs, st.mtimeNs, st.ctimeNs, h,
    );
    u.size = st.size;
    if (st.kind === 'dir') {
      const entries = new Map<string, OverlayHandle<L>>();
      for (const e of lower.readdir(h)) {
        const child = lower.lookup(h, e.name);
        if (child !== undefined) entries.set(e.name, child);
      }
      u.entries = entries;
      // Look-ups now answer with the copy: cached resolutions holding the lower handle are retired
      // (it would still work through current(), but handles are compared by identity).
      this.#layout++;
    } else if (st.kind === 'file') {
      u.dataFrom = h;
    } else if (st.kind === 'symlink') {
      u.target = lower.readlink(h);
    }
    this.#copies.set(h, u);
    return u;
  }

  /** Gives a copied-up file its own bytes (the lower content, read once). */
  #materialize(n: UpperNode<L>): void {
    if (n.dataFrom === undefined) return;
    this.#charge(n.size);
    const bytes = new Uint8Array(n.size);
    let done = 0;
    while (done < n.size) {
      const got = this.#lower!.read(n.dataFrom, bytes.subarray(done), done);
      if (got === 0) break;
      done += got;
    }
    n.bytes = bytes;
    n.dataFrom = undefined;
  }

  #charge(delta: number): void {
    if (delta > 0 && this.#usedBytes + delta > this.#quota) throw new FsError('ENOSPC', 'overlay quota exceeded');
    this.#usedBytes += delta;
  }

  #resize(n: UpperNode<L>, size: number): void {
    const old = n.size;
    const bytes = n.bytes!;
    this.#charge(size - old);
    if (size < old) {
      bytes.fill(0, size, old);
    } else if (size > bytes.length) {
      const capacity = Math.min(MAX_FILE_SIZE, Math.max(size, Math.min(bytes.length * 2, bytes.length + 64 * 2 ** 20)));
      let grown: Uint8Array;
      try {
        grown = new Uint8Array(capacity);
      } catch {
        this.#usedBytes -= size - old;
        throw new FsError('ENOSPC', 'out of memory');
      }
      if (old > 0) grown.set(bytes.subarray(0, old));
      n.bytes = grown;
    }
    n.size = size;
  }

  #dropLink(child: OverlayHandle<L>, now: bigint): void {
    const c = this.#copyUp(child);
    c.nlink = c.kind === 'dir' ? 0 : Math.max(0, c.nlink - 1);
    c.ctimeNs = now;
  }

  /** True when directory `dir` is `ancestor` or lies below it. */
  #isWithin(dir: OverlayHandle<L>, ancestor: OverlayHandle<L>): boolean {
    if (dir === ancestor) return true;
    const stack = [ancestor];
    while (stack.length > 0) {
      const d = stack.pop()!;
      for (const e of this.readdir(d)) {
        if (e.kind !== 'dir') continue;
        const child = this.lookup(d, e.name)!;
        if (child === dir) return true;
        stack.push(child);
      }
    }
    return false;
  }
}

function checkPosition(position: number): void {
  if (!Number.isSafeInteger(position) || position < 0) throw new FsError('EINVAL', `bad position ${position}`);
}
