/**
 * Path-level conveniences over any Vfs for library users and tests. Paths resolve from the Vfs root
 * with chroot semantics (`resolvePath` in 'clamp' mode): `..` and absolute symlinks never leave it.
 */
import { resolvePath, type Resolved } from './resolve.ts';
import { FsError, type Stat, type Vfs } from './vfs.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function resolve<H>(vfs: Vfs<H>, path: string, followFinal = true): Resolved<H> {
  return resolvePath(vfs, vfs.root(), path, { followFinal, escape: 'clamp' });
}

function existing<H>(vfs: Vfs<H>, path: string, followFinal = true): H {
  const r = resolve(vfs, path, followFinal);
  if (r.node === undefined) throw new FsError('ENOENT', path);
  return r.node;
}

export function readFile<H>(vfs: Vfs<H>, path: string): Uint8Array {
  const h = existing(vfs, path);
  const out = new Uint8Array(vfs.stat(h).size);
  let done = 0;
  while (done < out.length) {
    const n = vfs.read(h, out.subarray(done), done);
    if (n === 0) break;
    done += n;
  }
  return done === out.length ? out : out.subarray(0, done);
}

export function readText<H>(vfs: Vfs<H>, path: string): string {
  return decoder.decode(readFile(vfs, path));
}

/** Creates or truncates the file at `path` (following a final symlink, like open(O_CREAT|O_TRUNC)). */
export function writeFile<H>(vfs: Vfs<H>, path: string, data: Uint8Array | string, opts: { mode?: number } = {}): H {
  const r = resolve(vfs, path);
  let h = r.node;
  if (h === undefined) {
    if (r.trailingSlash) throw new FsError('EISDIR', path);
    h = vfs.createFile(r.parent, r.name, opts.mode ?? 0o644);
  } else {
    const kind = vfs.stat(h).kind;
    if (kind === 'dir') throw new FsError('EISDIR', path);
    vfs.setSize(h, 0);
  }
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  if (bytes.length > 0) vfs.write(h, bytes, 0);
  return h;
}

/** Creates `path` and any missing parents; existing directories (or symlinks to them) are fine. */
export function mkdirp<H>(vfs: Vfs<H>, path: string, mode = 0o755): H {
  const comps = path.split('/').filter((c) => c.length > 0);
  const prefix = path.startsWith('/') ? '/' : '';
  let dir = vfs.root();
  for (let i = 1; i <= comps.length; i++) {
    const r = resolve(vfs, prefix + comps.slice(0, i).join('/'));
    if (r.node === undefined) {
      dir = vfs.mkdir(r.parent, r.name, mode);
    } else {
      if (vfs.stat(r.node).kind !== 'dir') throw new FsError('ENOTDIR', comps.slice(0, i).join('/'));
      dir = r.node;
    }
  }
  return dir;
}

export function readdir<H>(vfs: Vfs<H>, path: string): string[] {
  return vfs.readdir(existing(vfs, path)).map((e) => e.name);
}

export function stat<H>(vfs: Vfs<H>, path: string): Stat {
  return vfs.stat(existing(vfs, path));
}

export function lstat<H>(vfs: Vfs<H>, path: string): Stat {
  return vfs.stat(existing(vfs, path, false));
}

/** True when `path` resolves (following symlinks) to an existing node. */
export function exists<H>(vfs: Vfs<H>, path: string): boolean {
  try {
    return resolve(vfs, path).node !== undefined;
  } catch (e) {
    if (e instanceof FsError) return false;
    throw e;
  }
}

export function symlink<H>(vfs: Vfs<H>, target: string, path: string): H {
  const r = resolve(vfs, path, false);
  if (r.node !== undefined) throw new FsError('EEXIST', path);
  return vfs.symlink(r.parent, r.name, target);
}

/**
 * Removes `path` (never following a final symlink). A directory needs `recursive`; `force` ignores a
 * missing path.
 */
export function rm<H>(vfs: Vfs<H>, path: string, opts: { recursive?: boolean; force?: boolean } = {}): void {
  let r: Resolved<H>;
  try {
    r = resolve(vfs, path, false);
  } catch (e) {
    if (opts.force && e instanceof FsError && e.errno === 'ENOENT') return;
    throw e;
  }
  if (r.node === undefined) {
    if (opts.force) return;
    throw new FsError('ENOENT', path);
  }
  if (r.name === '.') throw new FsError('EINVAL', `refusing to remove ${path}`);
  if (vfs.stat(r.node).kind !== 'dir') {
    vfs.unlink(r.parent, r.name);
    return;
  }
  if (!opts.recursive) throw new FsError('EISDIR', path);
  removeChildren(vfs, r.node);
  vfs.rmdir(r.parent, r.name);
}

function removeChildren<H>(vfs: Vfs<H>, dir: H): void {
  for (const e of vfs.readdir(dir)) {
    if (e.kind === 'dir') {
      const child = vfs.lookup(dir, e.name);
      if (child !== undefined) removeChildren(vfs, child);
      vfs.rmdir(dir, e.name);
    } else {
      vfs.unlink(dir, e.name);
    }
  }
}
