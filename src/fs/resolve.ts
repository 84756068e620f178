import { FsError, type Vfs } from './vfs.ts';

export const MAX_SYMLINK_FOLLOWS = 40;
export const MAX_NAME_BYTES = 255;

const utf8 = new TextEncoder();

export interface ResolveOptions {
  /** Follow a symlink in the last component (O_NOFOLLOW / AT_SYMLINK_NOFOLLOW when false). */
  followFinal: boolean;
  /**
   * What `..` above the start directory and absolute paths or symlink targets do.
   * 'clamp': chroot semantics, the root is its own parent and `/` means the Vfs root (container paths).
   * 'error': ENOTCAPABLE for `..` above the start and for absolute paths (WASI preopen semantics, as
   * wasmtime's cap-std does).
   */
  escape: 'clamp' | 'error';
}

export interface Resolved<H> {
  /** Directory that holds the last component. */
  parent: H;
  /** Last component ('.' when the path names the start directory or the root). */
  name: string;
  /** The node, or undefined when the last component does not exist. */
  node: H | undefined;
  /** The path ended in '/', so the last component must be a directory. */
  trailingSlash: boolean;
}

/**
 * Resolves `path` relative to `start` inside `vfs`, never leaving the Vfs root (and with
 * escape 'error', never leaving `start`). Symlinks in intermediate components are always followed;
 * loops end in ELOOP after MAX_SYMLINK_FOLLOWS.
 */
export function resolvePath<H>(vfs: Vfs<H>, start: H, path: string, opts: ResolveOptions): Resolved<H> {
  if (path.length === 0) throw new FsError('ENOENT', 'empty path');
  if (path.includes('\0')) throw new FsError('EINVAL', 'path contains NUL');
  let follows = 0;
  // The stack of directories from the start (or root) down: `..` pops it.
  let stack: H[] = [start];
  // Components still to walk, the next one last (pop is cheaper than shift on every component).
  const pending = componentsReversed(path);
  if (path.startsWith('/')) {
    if (opts.escape === 'error') throw new FsError('ENOTCAPABLE', `absolute path ${path}`);
    stack = [vfs.root()];
  }
  let trailingSlash = /\/\.?$/.test(path) || path.endsWith('/..');

  for (;;) {
    const dir = stack[stack.length - 1]!;
    if (pending.length === 0) {
      return { parent: stack.length > 1 ? stack[stack.length - 2]! : dir, name: '.', node: dir, trailingSlash };
    }
    const name = pending.pop()!;
    const last = pending.length === 0;
    if (name === '.') {
      if (last) return { parent: dir, name: '.', node: dir, trailingSlash };
      continue;
    }
    if (name === '..') {
      if (stack.length === 1) {
        if (opts.escape === 'error') throw new FsError('ENOTCAPABLE', `'..' leaves the directory in ${path}`);
      } else {
        stack.pop();
      }
      if (last) {
        const d = stack[stack.length - 1]!;
        return { parent: stack.length > 1 ? stack[stack.length - 2]! : d, name: '.', node: d, trailingSlash };
      }
      continue;
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: only long names need encoding (an encoder per call cost ~2 µs).
    if (name.length * 3 > MAX_NAME_BYTES && utf8.encode(name).length > MAX_NAME_BYTES) {
      throw new FsError('ENAMETOOLONG', name);
    }
    if (vfs.kind(dir) !== 'dir') throw new FsError('ENOTDIR', path);
    const node = vfs.lookup(dir, name);
    if (node === undefined) {
      if (!last) throw new FsError('ENOENT', path);
      return { parent: dir, name, node: undefined, trailingSlash };
    }
    const kind = vfs.kind(node);
    if (kind === 'symlink' && (!last || opts.followFinal || trailingSlash)) {
      if (++follows > MAX_SYMLINK_FOLLOWS) throw new FsError('ELOOP', path);
      const target = vfs.readlink(node);
      if (target.length === 0) throw new FsError('ENOENT', `empty symlink in ${path}`);
      if (target.startsWith('/')) {
        if (opts.escape === 'error') throw new FsError('ENOTCAPABLE', `absolute symlink ${target} in ${path}`);
        stack = [vfs.root()];
      }
      if (last && target.endsWith('/')) trailingSlash = true;
      for (const c of componentsReversed(target)) pending.push(c);
      if (pending.length === 0) {
        const d = stack[stack.length - 1]!;
        return { parent: stack.length > 1 ? stack[stack.length - 2]! : d, name: '.', node: d, trailingSlash };
      }
      continue;
    }
    if (last) {
      if (trailingSlash && kind !== 'dir' && kind !== 'symlink') throw new FsError('ENOTDIR', path);
      return { parent: dir, name, node, trailingSlash };
    }
    if (kind !== 'dir') throw new FsError('ENOTDIR', path);
    stack.push(node);
  }
}

/** The non-empty components of `p`, last first. */
function componentsReversed(p: string): string[] {
  const out: string[] = [];
  let end = p.length;
  for (let i = p.length - 1; i >= -1; i--) {
    if (i === -1 || p.charCodeAt(i) === 0x2f) {
      if (end - i > 1) out.push(p.slice(i + 1, end));
      end = i;
    }
  }
  return out;
}
