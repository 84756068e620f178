import type { Digest } from '../loader/digest.ts';
import type { DirInode } from './inode.ts';

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
