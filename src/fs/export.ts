import type { DirInode } from './inode.ts';
import type { LayerTree } from './layer-tree.ts';
import { vfsTarEntries, writeTar } from './tar-writer.ts';
import { treeVfs } from './tree-vfs.ts';

/**
 * The flattened filesystem of a layer tree (every layer merged, no whiteouts) as a tar:
 * what `wasmbox export` writes. Undefined (an image without tar layers) gives an empty tar.
 */
export function exportFlattened(tree: LayerTree | DirInode | undefined): ReadableStream<Uint8Array> {
  if (tree === undefined) return writeTar([]);
  return writeTar(vfsTarEntries(treeVfs(tree)));
}
