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
  /** Inodes created or cloned by this layer: the only ones it may still change. */
  private readonly fresh = new Set<Inode>();
  /** Paths named by an entry of this layer (whiteouts never hide them). */
  private readonly explicit = new Set<string>();
  private readonly links: Map<number, readonly string[]>;
  private readonly dirtyLinks = new Set<number>();

  constructor(parent: LayerTree | undefined) {
    this.nextIno = parent?.nextIno ?? 1;
    this.root = parent ? cloneInode(parent.root) : newDir(this.nextIno++, IMPLICIT_DIR);
    this.fresh.add(this.root);
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
    const path = comps.join('/');
    const old = dir.entries.get(name);
    if (old?.kind === 'dir') {
      const d = this.own(dir, name, old);
      setMeta(d, meta);
    } else {
      if (old) this.detach(dir, name, old, path);
      const d = newDir(this.nextIno++, meta);
      this.fresh.add(d);
      dir.entries.set(name, d);
      dir.nlink++;
    }
    this.explicit.add(path);
  }

  /** Any non-directory node (already built with an ino from allocIno) replaces what is at the path. */
  putNode(comps: readonly string[], node: Exclude<Inode, DirInode>): void {
    if (comps.length === 0) throw unsafe('', 'a layer cannot replace the root directory with a non-directory');
    const dir = this.parentDir(comps, true)!;
    const name = comps[comps.length - 1]!;
    const path = comps.join('/');
    const old = dir.entries.get(name);
    if (old) this.detach(dir, name, old, path);
    this.fresh.add(node);
    dir.entries.set(name, node);
    this.explicit.add(path);
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
    this.explicit.add(path);
    if (old === target) return;
    if (old) this.detach(dir, name, old, path);
    dir.entries.set(name, target);
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
    let dir: DirInode;
    if (dirComps.length === 0) {
      dir = this.root;
    } else {
      this.putImplicitDir(dirComps);
      const holder = this.parentDir(dirComps, false)!;
      dir = holder.entries.get(dirComps[dirComps.length - 1]!) as DirInode;
    }
    const prefix = dirComps.length === 0 ? '' : dirComps.join('/') + '/';
    for (const name of [...dir.entries.keys()]) this.hideLower(dir, name, prefix + name);
  }

  /** Fixes nlink of inodes whose names changed, freezes what this layer made, returns the tree. */
  finish(info: { chainId: Digest; diffId: Digest; parent: LayerTree | undefined; files: number; bytes: number }): LayerTree {
    for (const ino of this.dirtyLinks) this.fixLinkCount(ino);
    for (const n of this.fresh) Object.freeze(n);
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

  private putImplicitDir(comps: readonly string[]): void {
    const dir = this.parentDir(comps, true)!;
    const name = comps[comps.length - 1]!;
    const old = dir.entries.get(name);
    if (old?.kind === 'dir') {
      this.own(dir, name, old);
      return;
    }
    if (old) throw notDir(comps.join('/'), comps.join('/'), old);
    const d = newDir(this.nextIno++, IMPLICIT_DIR);
    this.fresh.add(d);
    dir.entries.set(name, d);
    dir.nlink++;
  }

  /**
   * The directory that holds the last component, owned by this layer (cloned on the way down).
   * Missing directories are created when `create`, else the result is undefined.
   */
  private parentDir(comps: readonly string[], create: boolean, forPath?: string): DirInode | undefined {
    let dir = this.root;
    for (let i = 0; i < comps.length - 1; i++) {
      const name = comps[i]!;
      const child = dir.entries.get(name);
      if (child === undefined) {
        if (!create) return undefined;
        const d = newDir(this.nextIno++, IMPLICIT_DIR);
        this.fresh.add(d);
        dir.entries.set(name, d);
        dir.nlink++;
        dir = d;
      } else if (child.kind === 'dir') {
        dir = this.own(dir, name, child);
      } else {
        throw notDir(forPath ?? comps.join('/'), comps.slice(0, i + 1).join('/'), child);
      }
    }
    return dir;
  }

  /** The child directory, cloned into this layer if it still belongs to the parent. */
  private own(holder: DirInode, name: string, d: DirInode): DirInode {
    if (this.fresh.has(d)) return d;
    const c = cloneInode(d);
    this.fresh.add(c);
    holder.entries.set(name, c);
    return c;
  }

  /** Hides what lower layers hold at `path`, keeping what this layer itself wrote there. */
  private hideLower(holder: DirInode, name: string, path: string): void {
    const node = holder.entries.get(name);
    if (node === undefined) return;
    const ownDir = node.kind === 'dir' && this.fresh.has(node);
    if (!ownDir) {
      if (!this.explicit.has(path)) this.detach(holder, name, node, path);
      return;
    }
    const dir = node as DirInode;
    for (const child of [...dir.entries.keys()]) this.hideLower(dir, child, path + '/' + child);
  }

  /** Removes an entry, keeping directory nlink and the hard-link index right. */
  private detach(holder: DirInode, name: string, old: Inode, path: string): void {
    holder.entries.delete(name);
    if (old.kind === 'dir') {
      holder.nlink--;
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

  private fixLinkCount(ino: number): void {
    const paths = this.links.get(ino);
    if (paths === undefined) return;
    if (paths.length <= 1) this.links.delete(ino);
    if (paths.length === 0) return;
    const first = paths[0]!.split('/');
    const node = this.parentDir(first, false)!.entries.get(first[first.length - 1]!)!;
    if (node.nlink === paths.length) return;
    if (this.fresh.has(node)) {
      node.nlink = paths.length;
      return;
    }
    const copy = cloneInode(node);
    copy.nlink = paths.length;
    this.fresh.add(copy);
    for (const p of paths) {
      const comps = p.split('/');
      this.parentDir(comps, false)!.entries.set(comps[comps.length - 1]!, copy);
    }
  }
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
