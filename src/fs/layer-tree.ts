import { SandboxError } from '../errors.ts';
import type { Digest } from '../loader/digest.ts';
import { cloneInode, newDir, type DirInode, type Inode, type InodeMeta } from './inode.ts';

/**
 * One layer applied on top of its parent: `root` is the fully merged view of every layer up to this
 * one. Immutable once returned; shares every directory and inode it did not change with its parent.
 */
export interface LayerTree {
  readonly chainId: Digest;
  readonly diffId: Digest;
  readonly parent?: LayerTree;
  readonly root: DirInode;
  /** Next free ino: every ino in this tree is below it; a child tree continues from here. */
  readonly nextIno: number;
  /** Entries in this layer's tar (this layer only, not the merged view). */
  readonly files: number;
  /** Bytes of file content this layer added (this layer only: the chain's sum is what the trees hold). */
  readonly bytes: number;
  /** Inodes with more than one name in the merged view: ino -> paths (relative, no leading '/'). */
  readonly hardLinks: ReadonlyMap<number, readonly string[]>;
}

/** Metadata of directories a layer implies but does not list (docker's MkdirAll: 0755, root). */
const IMPLICIT_DIR: InodeMeta = { mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n };

/**
 * Builds one layer on top of a parent by path copying: a directory the layer touches is cloned once
 * (its entries Map copied, children shared); everything else stays shared with the parent, which is
 * never mutated. Paths are arrays of validated components (no '', '.', '..', '/').
 *
 * OCI semantics: whiteouts (`.wh.NAME`, `.wh..wh..opq`) hide only what lower layers hold, whatever
 * their order in the tar; later entries replace earlier ones; a directory entry over an existing
 * directory updates its metadata and keeps its children; a layer never writes through a symlink.
 */
export class LayerBuilder {
  private readonly root: DirInode;
  private nextIno: number;
  /** Inos from here on were made by this layer (every such node came from one of its entries). */
  private readonly firstIno: number;
  /** Directories created or cloned by this layer: the only ones it may still change. */
  private readonly ownDirs = new Set<DirInode>();
  /** Paths where this layer put a hard link to an older inode (whiteouts never hide them). */
  private readonly linkPaths = new Set<string>();
  private readonly links: Map<number, readonly string[]>;
  private readonly dirtyLinks = new Set<number>();
  /** The last directory an entry went into (entries come grouped by directory). */
  private lastDirComps: readonly string[] = [];
  private lastDir: DirInode | undefined;

  constructor(parent: LayerTree | undefined) {
    this.nextIno = parent?.nextIno ?? 1;
    this.firstIno = this.nextIno;
    this.root = parent ? cloneInode(parent.root) : newDir(this.nextIno++, IMPLICIT_DIR);
    this.ownDirs.add(this.root);
    this.links = new Map(parent?.hardLinks);
  }

  allocIno(): number {
    return this.nextIno++;
  }

  /** A directory entry: creates it, or updates the metadata of the directory already there. */
  putDir(comps: readonly string[], meta: InodeMeta): void {
    if (comps.length === 0) {
      setMeta(this.root, meta);
      return;
    }
    const dir = this.parentDir(comps, true)!;
    const name = comps[comps.length - 1]!;
    const old = dir.entries.get(name);
    if (old?.kind === 'dir') {
      setMeta(this.own(dir, name, old), meta);
      return;
    }
    if (old) this.detach(dir, name, old, comps.join('/'));
    this.addDir(dir, name, meta);
  }

  /**
   * Any non-directory node (with an ino from allocIno) replaces what is at the path. The node is
   * frozen here: nothing changes it after it is placed.
   */
  putNode(comps: readonly string[], node: Exclude<Inode, DirInode>): void {
    if (comps.length === 0) throw unsafe('', 'a layer cannot replace the root directory with a non-directory');
    const dir = this.parentDir(comps, true)!;
    const name = comps[comps.length - 1]!;
    const old = dir.entries.get(name);
    if (old) this.detach(dir, name, old, comps.join('/'));
    dir.entries.set(ownName(name), Object.freeze(node));
  }

  /** A hard link: the path names the same inode as the (existing, non-directory) target. */
  putHardLink(comps: readonly string[], targetComps: readonly string[]): void {
    const path = comps.join('/');
    const targetPath = targetComps.join('/');
    if (comps.length === 0) throw unsafe(path, 'a hard link cannot replace the root directory');
    const targetDir = this.parentDir(targetComps, false, path);
    const target = targetComps.length === 0 ? this.root : targetDir?.entries.get(targetComps[targetComps.length - 1]!);
    if (target === undefined) throw unsafe(path, `hard link target ${targetPath} does not exist`);
    if (target.kind === 'dir') throw unsafe(path, `hard link target ${targetPath} is a directory`);
    const dir = this.parentDir(comps, true)!;
    const name = comps[comps.length - 1]!;
    const old = dir.entries.get(name);
    this.linkPaths.add(path);
    if (old === target) return;
    if (old) this.detach(dir, name, old, path);
    dir.entries.set(ownName(name), target);
    const paths = this.links.get(target.ino) ?? [targetPath];
    this.links.set(target.ino, [...paths, path]);
    this.dirtyLinks.add(target.ino);
  }

  /** `.wh.NAME` in the directory `dirComps`: hides NAME as the lower layers hold it. */
  whiteout(dirComps: readonly string[], name: string): void {
    const holder = this.parentDir([...dirComps, name], false);
    if (holder === undefined) return;
    this.hideLower(holder, name, [...dirComps, name].join('/'));
  }

  /** `.wh..wh..opq` in `dirComps`: the directory hides everything the lower layers hold in it. */
  opaque(dirComps: readonly string[]): void {
    let dir = this.root;
    if (dirComps.length > 0) {
      const holder = this.parentDir(dirComps, true)!;
      const name = dirComps[dirComps.length - 1]!;
      const old = holder.entries.get(name);
      if (old === undefined) dir = this.addDir(holder, name, IMPLICIT_DIR);
      else if (old.kind === 'dir') dir = this.own(holder, name, old);
      else throw notDir(dirComps.join('/'), dirComps.join('/'), old);
    }
    const prefix = dirComps.length === 0 ? '' : dirComps.join('/') + '/';
    for (const name of [...dir.entries.keys()]) this.hideLower(dir, name, prefix + name);
  }

  /** Fixes nlink of inodes whose names changed, freezes what this layer made, returns the tree. */
  finish(info: { chainId: Digest; diffId: Digest; parent: LayerTree | undefined; files: number; bytes: number }): LayerTree {
    for (const ino of this.dirtyLinks) this.fixLinkCount(ino);
    for (const d of this.ownDirs) Object.freeze(d);
    const tree: LayerTree = {
      chainId: info.chainId,
      diffId: info.diffId,
      root: this.root,
      nextIno: this.nextIno,
      files: info.files,
      bytes: info.bytes,
      hardLinks: this.links,
      ...(info.parent ? { parent: info.parent } : {}),
    };
    return Object.freeze(tree);
  }

  private addDir(holder: DirInode, name: string, meta: InodeMeta): DirInode {
    const d = newDir(this.nextIno++, meta);
    this.ownDirs.add(d);
    holder.entries.set(ownName(name), d);
    holder.nlink++;
    return d;
  }

  /**
   * The directory that holds the last component, owned by this layer (cloned on the way down).
   * Missing directories are created when `create`, else the result is undefined.
   */
  private parentDir(comps: readonly string[], create: boolean, forPath?: string): DirInode | undefined {
    const depth = comps.length - 1;
    if (this.lastDir !== undefined && depth === this.lastDirComps.length && sameStart(comps, this.lastDirComps, depth)) {
      return this.lastDir;
    }
    let dir = this.root;
    for (let i = 0; i < depth; i++) {
      const name = comps[i]!;
      const child = dir.entries.get(name);
      if (child === undefined) {
        if (!create) return undefined;
        dir = this.addDir(dir, name, IMPLICIT_DIR);
      } else if (child.kind === 'dir') {
        dir = this.own(dir, name, child);
      } else {
        throw notDir(forPath ?? comps.join('/'), comps.slice(0, i + 1).join('/'), child);
      }
    }
    this.lastDirComps = comps.slice(0, depth);
    this.lastDir = dir;
    return dir;
  }

  /** The child directory, cloned into this layer if it still belongs to the parent. */
  private own(holder: DirInode, name: string, d: DirInode): DirInode {
    if (this.ownDirs.has(d)) return d;
    const c = cloneInode(d);
    this.ownDirs.add(c);
    holder.entries.set(name, c);
    return c;
  }

  /** Hides what lower layers hold at `path`, keeping what this layer itself wrote there. */
  private hideLower(holder: DirInode, name: string, path: string): void {
    const node = holder.entries.get(name);
    if (node === undefined) return;
    if (node.kind === 'dir' && this.ownDirs.has(node)) {
      for (const child of [...node.entries.keys()]) this.hideLower(node, child, path + '/' + child);
      return;
    }
    const fromThisLayer = node.ino >= this.firstIno || this.linkPaths.has(path);
    if (!fromThisLayer) this.detach(holder, name, node, path);
  }

  /** Removes an entry, keeping directory nlink and the hard-link index right. */
  private detach(holder: DirInode, name: string, old: Inode, path: string): void {
    holder.entries.delete(name);
    if (old.kind === 'dir') {
      holder.nlink--;
      this.lastDir = undefined;
      if (this.links.size > 0) this.unindexSubtree(old, path);
    } else if (this.links.has(old.ino)) {
      this.unindexPath(old.ino, path);
    }
  }

  private unindexPath(ino: number, path: string): void {
    const paths = this.links.get(ino);
    if (paths === undefined) return;
    this.links.set(ino, paths.filter((p) => p !== path));
    this.dirtyLinks.add(ino);
  }

  private unindexSubtree(dir: DirInode, path: string): void {
    const stack: [DirInode, string][] = [[dir, path]];
    while (stack.length > 0) {
      const [d, p] = stack.pop()!;
      for (const [name, child] of d.entries) {
        if (child.kind === 'dir') stack.push([child, `${p}/${name}`]);
        else if (this.links.has(child.ino)) this.unindexPath(child.ino, `${p}/${name}`);
      }
    }
  }

  /** Placed nodes are frozen, so a changed link count means a copy (same ino) at every name. */
  private fixLinkCount(ino: number): void {
    const paths = this.links.get(ino);
    if (paths === undefined) return;
    if (paths.length <= 1) this.links.delete(ino);
    if (paths.length === 0) return;
    const first = paths[0]!.split('/');
    const node = this.parentDir(first, false)!.entries.get(first[first.length - 1]!)!;
    if (node.nlink === paths.length) return;
    const copy = cloneInode(node);
    copy.nlink = paths.length;
    Object.freeze(copy);
    for (const p of paths) {
      const comps = p.split('/');
      this.parentDir(comps, false)!.entries.set(comps[comps.length - 1]!, copy);
    }
  }
}

/**
 * A name to keep as a directory key: split() returns slices (from 13 characters on) that keep the
 * whole entry path alive; a property key is internalized instead (flat, one copy per distinct name).
 */
function ownName(s: string): string {
  if (s.length < 13) return s;
  const o: Record<string, 0> = { [s]: 0 };
  for (const k in o) return k;
  return s;
}

function sameStart(a: readonly string[], b: readonly string[], n: number): boolean {
  for (let i = n - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

function setMeta(d: DirInode, meta: InodeMeta): void {
  d.mode = meta.mode & 0o7777;
  d.uid = meta.uid;
  d.gid = meta.gid;
  d.mtimeNs = meta.mtimeNs;
  d.atimeNs = meta.atimeNs ?? meta.mtimeNs;
  d.ctimeNs = meta.ctimeNs ?? meta.mtimeNs;
}

export function unsafe(path: string, why: string): SandboxError {
  return new SandboxError('UNSAFE_LAYER', `unsafe layer entry ${JSON.stringify(path)}: ${why}`, { data: { path } });
}

function notDir(path: string, at: string, node: Inode): SandboxError {
  return node.kind === 'symlink'
    ? unsafe(path, `${at} is a symlink; a layer never writes through a symlink`)
    : unsafe(path, `${at} is not a directory`);
}
