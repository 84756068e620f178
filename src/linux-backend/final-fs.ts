/**
 * A Linux container's final root filesystem as a read-only Vfs: the materialised image (lower) plus
 * what the guest wrote (overlayfs's upper directory, kept after exit).
 *
 * Which names a directory holds is the kernel's answer, not ours: overlayfs marks opaque directories
 * with xattrs Node cannot read, so one short helper mounts upper:lower as a read-only, lower-only
 * overlay in a private mount namespace and lists the entries of every directory the upper has
 * (`find -files0-from`, NUL-separated). Contents and metadata are then read from the upper when the
 * name is there (and not a whiteout), from the lower otherwise. Every host path is built from
 * components checked with lstat to be real directories, so no symlink is ever followed on the host;
 * symlinks inside the view are resolved by `resolvePath` over this Vfs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { SandboxError } from '../errors.ts';
import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from '../fs/vfs.ts';
import { shellQuote, type Tools } from './invocation.ts';

export interface FinalFsHandle { readonly path: string; readonly layer: 'upper' | 'lower' }

/** Names per upper directory ('' is the root), in the merged view's order. */
export type MergedListing = Map<string, string[]>;

const HOST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

function kindOf(s: fs.BigIntStats | fs.Stats): NodeKind {
  return s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file'
    : s.isCharacterDevice() ? 'chardev' : s.isBlockDevice() ? 'blockdev' : s.isFIFO() ? 'fifo' : 'socket';
}

function lstatOrUndefined(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch {
    return undefined;
  }
}

const isWhiteout = (s: fs.BigIntStats): boolean => s.isCharacterDevice() && s.rdev === 0n;

export class FinalFs implements Vfs<FinalFsHandle> {
  readonly readOnly = true;
  readonly #lower: string;
  readonly #upper: string | undefined;
  readonly #listing: Map<string, { order: string[]; names: Set<string> }> = new Map();
  readonly #lowerDirOk = new Map<string, boolean>([['', true]]);
  readonly #root: FinalFsHandle;
  /** Whatever must stay alive while this view is in use (the owner of the upper directory). */
  readonly keepAlive: unknown;

  constructor(o: { lower: string; upper?: string; listing?: MergedListing; keepAlive?: unknown }) {
    this.#lower = o.lower;
    this.#upper = o.upper;
    this.keepAlive = o.keepAlive;
    for (const [dir, order] of o.listing ?? []) this.#listing.set(dir, { order, names: new Set(order) });
    this.#root = { path: '', layer: o.upper !== undefined ? 'upper' : 'lower' };
  }

  #host(h: FinalFsHandle): string {
    const base = h.layer === 'upper' ? this.#upper! : this.#lower;
    return h.path === '' ? base : `${base}/${h.path}`;
  }

  /** The lower's `rel` is a directory reached through directories only (no symlink on the way). */
  #lowerIsDir(rel: string): boolean {
    const known = this.#lowerDirOk.get(rel);
    if (known !== undefined) return known;
    const slash = rel.lastIndexOf('/');
    const ok = this.#lowerIsDir(slash < 0 ? '' : rel.slice(0, slash)) && (lstatOrUndefined(`${this.#lower}/${rel}`)?.isDirectory() ?? false);
    this.#lowerDirOk.set(rel, ok);
    return ok;
  }

  #lstat(h: FinalFsHandle): fs.BigIntStats {
    const s = lstatOrUndefined(this.#host(h));
    if (!s) throw new FsError('ENOENT', h.path);
    return s;
  }

  root(): FinalFsHandle { return this.#root; }

  lookup(dir: FinalFsHandle, name: string): FinalFsHandle | undefined {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError('EINVAL', name);
    if (this.kind(dir) !== 'dir') throw new FsError('ENOTDIR', dir.path);
    const child = dir.path === '' ? name : `${dir.path}/${name}`;
    if (dir.layer === 'lower') return lstatOrUndefined(`${this.#lower}/${child}`) ? { path: child, layer: 'lower' } : undefined;
    if (!this.#listing.get(dir.path)?.names.has(name)) return undefined;
    const up = lstatOrUndefined(`${this.#upper}/${child}`);
    if (up && !isWhiteout(up)) return { path: child, layer: 'upper' };
    if (this.#lowerIsDir(dir.path) && lstatOrUndefined(`${this.#lower}/${child}`)) return { path: child, layer: 'lower' };
    return undefined;
  }

  kind(h: FinalFsHandle): NodeKind {
    return kindOf(this.#lstat(h));
  }

  stat(h: FinalFsHandle): Stat {
    const s = this.#lstat(h);
    return {
      dev: Number(s.dev), ino: Number(s.ino), kind: kindOf(s), mode: Number(s.mode) & 0o7777, uid: Number(s.uid), gid: Number(s.gid),
      nlink: Number(s.nlink), size: Number(s.size), rdev: Number(s.rdev), atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
    };
  }

  readdir(dir: FinalFsHandle): DirEntry[] {
    if (this.kind(dir) !== 'dir') throw new FsError('ENOTDIR', dir.path);
    const names = dir.layer === 'upper' ? (this.#listing.get(dir.path)?.order ?? []) : fs.readdirSync(this.#host(dir));
    const out: DirEntry[] = [];
    for (const name of names) {
      const h = this.lookup(dir, name);
      if (!h) continue;
      const st = this.stat(h);
      out.push({ name, ino: st.ino, kind: st.kind });
    }
    return out;
  }

  readlink(h: FinalFsHandle): string {
    if (this.kind(h) !== 'symlink') throw new FsError('EINVAL', h.path);
    return fs.readlinkSync(this.#host(h));
  }

  read(h: FinalFsHandle, into: Uint8Array, position: number): number {
    const kind = this.kind(h);
    if (kind === 'dir') throw new FsError('EISDIR', h.path);
    if (kind !== 'file') throw new FsError('EINVAL', h.path);
    const fd = fs.openSync(this.#host(h), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try { return fs.readSync(fd, into, 0, into.length, position); } finally { fs.closeSync(fd); }
  }

  write(): number { throw new FsError('EROFS'); }
  setSize(): void { throw new FsError('EROFS'); }
  setTimes(): void { throw new FsError('EROFS'); }
  mkdir(): FinalFsHandle { throw new FsError('EROFS'); }
  createFile(): FinalFsHandle { throw new FsError('EROFS'); }
  symlink(): FinalFsHandle { throw new FsError('EROFS'); }
  link(): void { throw new FsError('EROFS'); }
  unlink(): void { throw new FsError('EROFS'); }
  rmdir(): void { throw new FsError('EROFS'); }
  rename(): void { throw new FsError('EROFS'); }
}

/** Every directory of the upper, relative ('' for the root), found without following symlinks. */
export function upperDirs(upper: string): string[] {
  const out = [''];
  for (let i = 0; i < out.length; i++) {
    const rel = out[i]!;
    for (const e of fs.readdirSync(rel === '' ? upper : `${upper}/${rel}`, { withFileTypes: true })) {
      if (e.isDirectory()) out.push(rel === '' ? e.name : `${rel}/${e.name}`);
    }
  }
  return out;
}

/**
 * Lists, as the kernel merges them, the entries of each upper directory: upper:lower mounted as a
 * read-only overlay (no upper, no work dir: nothing is written) on `mountPoint` in a private mount
 * namespace that ends with the listing.
 */
export async function listMerged(
  o: { lower: string; upper: string; mountPoint: string; tools: Tools; privileged: boolean; userxattr?: boolean },
): Promise<MergedListing> {
  const dirs = upperDirs(o.upper);
  const options = `lowerdir=${o.upper}:${o.lower}${o.userxattr ?? !o.privileged ? ',userxattr' : ''}`;
  const mount = o.tools.busybox ? `${shellQuote(o.tools.busybox)} mount` : shellQuote(o.tools.mount);
  const script = `${mount} -t overlay -o ${shellQuote(options)} wasmbox ${shellQuote(o.mountPoint)} && cd ${shellQuote(o.mountPoint)} && exec find -files0-from - -mindepth 1 -maxdepth 1 -print0`;
  const ns = o.privileged ? ['--mount', '--propagation', 'private'] : ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
  const child = spawn(o.tools.unshare, [...ns, o.tools.sh, '-c', script], { stdio: ['pipe', 'pipe', 'pipe'], env: HOST_ENV });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.setEncoding('utf8').on('data', (s: string) => { if (err.length < 4096) err += s; });
  child.stdin.on('error', () => { /* it failed before reading: the exit status says why */ });
  child.stdin.end(dirs.map((d) => (d === '' ? '.' : `./${d}`)).join('\0') + '\0');
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).catch((e: Error) => { throw new SandboxError('BACKEND_UNAVAILABLE', `cannot read the container's filesystem: ${e.message}`, { cause: e }); });
  if (code !== 0) throw new SandboxError('INTERNAL', `cannot read the container's filesystem (exit ${code}): ${err.trim()}`);
  const listing: MergedListing = new Map(dirs.map((d) => [d, []]));
  for (const p of Buffer.concat(out).toString('utf8').split('\0')) {
    if (!p.startsWith('./')) continue;
    const rel = p.slice(2);
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    listing.get(dir)?.push(slash < 0 ? rel : rel.slice(slash + 1));
  }
  return listing;
}

/**
 * Directories that outlive a container's process, so fs() can read what the guest wrote. Each is
 * removed when its owner object is garbage-collected (the container and every Vfs read from it hold
 * it), on `release`, or when this process exits; a crashed process's leftovers are reaped by the
 * next backend (they carry the owner's pid).
 */
export class KeptDirs {
  readonly #live = new Map<string, string[]>();
  readonly #registry = new FinalizationRegistry<string>((key) => this.release(key));
  readonly #onExit = (): void => { for (const key of [...this.#live.keys()]) this.release(key); };
  constructor(private readonly removeTree: (dir: string) => void) {}

  keep(key: string, dirs: string[], owner: object): void {
    if (this.#live.size === 0) process.on('exit', this.#onExit);
    this.#live.set(key, dirs);
    this.#registry.register(owner, key);
  }

  release(key: string): void {
    const dirs = this.#live.get(key);
    if (!dirs) return;
    this.#live.delete(key);
    for (const d of dirs) {
      try { this.removeTree(d); } catch { /* best effort: the next backend reaps it */ }
    }
    if (this.#live.size === 0) process.off('exit', this.#onExit);
  }
}
