import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from './vfs.ts';
import { statInode, type DirInode, type Inode } from './inode.ts';
import type { LayerTree } from './layer-tree.ts';
import { ReadOnlyVfs } from './read-only-vfs.ts';

export interface TreeVfsOptions {
  /** st_dev reported by stat (default 0). */
  dev?: number;
}

/**
 * A read-only Vfs over an immutable layer tree (or any directory inode). Handles are the Inode objects
 * themselves; every mutating call fails with EROFS.
 */
export function treeVfs(tree: LayerTree | DirInode, opts: TreeVfsOptions = {}): Vfs<Inode> {
  const root = 'kind' in tree ? tree : tree.root;
  return new TreeVfs(root, opts.dev ?? 0);
}

class TreeVfs extends ReadOnlyVfs<Inode> {
  constructor(
    private readonly rootDir: DirInode,
    private readonly dev: number,
  ) {
    super('layer trees');
  }

  root(): Inode {
    return this.rootDir;
  }

  lookup(dir: Inode, name: string): Inode | undefined {
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR');
    return dir.entries.get(name);
  }

  stat(h: Inode): Stat {
    return statInode(h, this.dev);
  }

  kind(h: Inode): NodeKind {
    return h.kind;
  }

  readdir(dir: Inode): DirEntry[] {
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR');
    const out: DirEntry[] = [];
    for (const [name, n] of dir.entries) out.push({ name, ino: n.ino, kind: n.kind });
    return out;
  }

  readlink(h: Inode): string {
    if (h.kind !== 'symlink') throw new FsError('EINVAL', 'not a symlink');
    return h.target;
  }

  read(h: Inode, into: Uint8Array, position: number): number {
    if (h.kind === 'dir') throw new FsError('EISDIR');
    if (h.kind !== 'file') throw new FsError('EINVAL', `cannot read a ${h.kind}`);
    if (!Number.isSafeInteger(position) || position < 0) throw new FsError('EINVAL', 'bad position');
    if (position >= h.size) return 0;
    const n = Math.min(into.length, h.size - position);
    const data = h.data;
    const avail = Math.max(0, Math.min(n, data.length - position));
    if (avail > 0) into.set(data.subarray(position, position + avail));
    if (avail < n) into.fill(0, avail, n);
    return n;
  }

}

