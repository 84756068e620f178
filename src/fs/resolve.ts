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
 *
 * With a `cache` (one per start directory, see PathCache), a path whose directory part was resolved
 * last time skips straight to its last component, as long as the Vfs's layoutVersion() says no
 * directory or symlink entry was removed or replaced since.
 */
export function resolvePath<H>(vfs: Vfs<H>, start: H, path: string, opts: ResolveOptions, cache?: PathCache<H>): Resolved<H> {
  if (path.length === 0) throw new FsError('ENOENT', 'empty path');
  if (path.includes('\0')) throw new FsError('EINVAL', 'path contains NUL');
  if (cache !== undefined) {
    const hit = cache.resolveLast(vfs, start, path, opts);
    if (hit !== undefined) return hit;
  }
  return walk(vfs, start, path, opts, cache);
}

/**
 * The directory part of the last path resolved from one start directory, and where it led. Owned by
 * whoever owns the start (a preview1 directory descriptor); used only through resolvePath. Valid while
 * the Vfs, start, escape mode and the Vfs's layoutVersion() are those it was taken with; a Vfs without
 * layoutVersion() is never cached.
 */
export class PathCache<H> {
  #vfs: Vfs<H> | undefined = undefined;
  #start: H | undefined = undefined;
  #escape: ResolveOptions['escape'] = 'error';
  #version = Number.NaN;
  /** The path up to and including the slash(es) before its last component. */
  #prefix = '';
  /** #prefix when it is all ASCII (so a UTF-8 path can be compared with it byte for byte), else ''. */
  #asciiPrefix = '';
  #dir: H | undefined = undefined;

  /**
   * The directory part last resolved when it is ASCII, else ''. A caller holding the path as UTF-8
   * bytes may compare them with it and, when they are this prefix and one plain name, call resolveName.
   */
  get asciiPrefix(): string {
    return this.#asciiPrefix;
  }

  /** Called by the walk when it reaches the last component of `path` (at `nameStart`) in `dir`. */
  record(vfs: Vfs<H>, start: H, escape: ResolveOptions['escape'], path: string, nameStart: number, dir: H): void {
    if (vfs.layoutVersion === undefined) return;
    this.#vfs = vfs;
    this.#start = start;
    this.#escape = escape;
    this.#version = vfs.layoutVersion();
    this.#prefix = nameStart === path.length ? path : path.slice(0, nameStart);
    this.#asciiPrefix = isAscii(this.#prefix) ? this.#prefix : '';
    this.#dir = dir;
  }

  /**
   * resolvePath(vfs, start, asciiPrefix + name, opts, this) for a `name` without '/' or NUL, answered
   * from the cache; undefined when the cache cannot answer (then resolve the whole path).
   */
  resolveName(vfs: Vfs<H>, start: H, name: string, opts: ResolveOptions): Resolved<H> | undefined {
    if (this.#asciiPrefix.length === 0 || !this.#valid(vfs, start, opts)) return undefined;
    return this.#last(vfs, name, opts);
  }

  #valid(vfs: Vfs<H>, start: H, opts: ResolveOptions): boolean {
    return this.#vfs === vfs && this.#start === start && this.#escape === opts.escape &&
      vfs.layoutVersion !== undefined && vfs.layoutVersion() === this.#version;
  }

  /** The last component `name` (no '/') in the cached directory; undefined for '.', '..' and a symlink to follow. */
  #last(vfs: Vfs<H>, name: string, opts: ResolveOptions): Resolved<H> | undefined {
    const n = name.length;
    if (n === 0 || (name.charCodeAt(0) === 0x2e && (n === 1 || (n === 2 && name.charCodeAt(1) === 0x2e)))) return undefined;
    if (n * 3 > MAX_NAME_BYTES && utf8.encode(name).length > MAX_NAME_BYTES) throw new FsError('ENAMETOOLONG', name);
    const dir = this.#dir as H;
    const node = vfs.lookup(dir, name);
    if (node === undefined) return { parent: dir, name, node: undefined, trailingSlash: false };
    // A symlink to follow is resolved by the full walk (its target may climb with `..`).
    if (opts.followFinal && vfs.kind(node) === 'symlink') return undefined;
    return { parent: dir, name, node, trailingSlash: false };
  }

  /** The resolution of `path` when its directory part is the cached one and its last component is plain. */
  resolveLast(vfs: Vfs<H>, start: H, path: string, opts: ResolveOptions): Resolved<H> | undefined {
    const prefix = this.#prefix;
    const p = prefix.length;
    if (p === 0 || path.length <= p || !path.startsWith(prefix) || path.indexOf('/', p) !== -1) return undefined;
    if (!this.#valid(vfs, start, opts)) return undefined;
    return this.#last(vfs, path.slice(p), opts);
  }
}

/**
 * The walk: components are read in place from the path (and from symlink targets, whose rest of the
 * outer path waits in `saved`), so nothing is allocated per component but the name itself.
 */
function walk<H>(vfs: Vfs<H>, start: H, path: string, opts: ResolveOptions, cache: PathCache<H> | undefined): Resolved<H> {
  let follows = 0;
  // The stack of directories from the start (or root) down: `..` pops it.
  let stack: H[] = [start];
  if (path.charCodeAt(0) === 0x2f) {
    if (opts.escape === 'error') throw new FsError('ENOTCAPABLE', `absolute path ${path}`);
    stack = [vfs.root()];
  }
  let trailingSlash = endsInDirectorySlash(path);
  // The string being walked and the position in it; strings interrupted by a symlink wait in `saved`
  // as (string, position, 1 when it is `path`) triples.
  let s = path;
  let i = 0;
  let saved: (string | number)[] | undefined;
  /** `s` is `path` itself (not a symlink target). */
  let inPath = true;

  for (;;) {
    const dir = stack[stack.length - 1]!;
    while (i < s.length && s.charCodeAt(i) === 0x2f) i++;
    if (i === s.length) {
      if (saved !== undefined && saved.length > 0) {
        inPath = saved.pop() === 1;
        i = saved.pop() as number;
        s = saved.pop() as string;
        continue;
      }
      return { parent: stack.length > 1 ? stack[stack.length - 2]! : dir, name: '.', node: dir, trailingSlash };
    }
    const a = i;
    let b = s.indexOf('/', a);
    if (b === -1) b = s.length;
    i = b;
    const last = restIsSlashes(s, b) && (saved === undefined || savedIsEmpty(saved));
    const len = b - a;
    if (len === 1 && s.charCodeAt(a) === 0x2e) {
      if (last) return { parent: dir, name: '.', node: dir, trailingSlash };
      continue;
    }
    if (len === 2 && s.charCodeAt(a) === 0x2e && s.charCodeAt(a + 1) === 0x2e) {
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
    const name = len === s.length ? s : s.slice(a, b);
    // A UTF-16 unit is at most 3 UTF-8 bytes: only long names need encoding (an encoder per call cost ~2 µs).
    if (len * 3 > MAX_NAME_BYTES && utf8.encode(name).length > MAX_NAME_BYTES) {
      throw new FsError('ENAMETOOLONG', name);
    }
    if (vfs.kind(dir) !== 'dir') throw new FsError('ENOTDIR', path);
    if (last && inPath && cache !== undefined && b === path.length && !trailingSlash) {
      cache.record(vfs, start, opts.escape, path, a, dir);
    }
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
      if (target.charCodeAt(0) === 0x2f) {
        if (opts.escape === 'error') throw new FsError('ENOTCAPABLE', `absolute symlink ${target} in ${path}`);
        stack = [vfs.root()];
      }
      if (last && target.charCodeAt(target.length - 1) === 0x2f) trailingSlash = true;
      if (!restIsSlashes(s, i)) {
        saved ??= [];
        saved.push(s, i, inPath ? 1 : 0);
      }
      s = target;
      i = 0;
      inPath = false;
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

/** The path ends in `/`, `/.` or `/..`: its last component must be a directory. */
function endsInDirectorySlash(p: string): boolean {
  const n = p.length;
  if (p.charCodeAt(n - 1) === 0x2f) return true;
  if (n >= 2 && p.charCodeAt(n - 1) === 0x2e && p.charCodeAt(n - 2) === 0x2f) return true;
  return n >= 3 && p.charCodeAt(n - 1) === 0x2e && p.charCodeAt(n - 2) === 0x2e && p.charCodeAt(n - 3) === 0x2f;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function restIsSlashes(s: string, from: number): boolean {
  for (let k = from; k < s.length; k++) if (s.charCodeAt(k) !== 0x2f) return false;
  return true;
}

/** No component is left in any of the saved (string, position, flag) triples. */
function savedIsEmpty(saved: (string | number)[]): boolean {
  for (let k = 0; k < saved.length; k += 3) if (!restIsSlashes(saved[k] as string, saved[k + 1] as number)) return false;
  return true;
}
