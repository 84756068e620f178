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
 *
 * With an unprivileged caller's subordinate ids (subids), the container's users own their files as
 * host ids the caller cannot act as: what the caller may not open is read as root of the namespace
 * helper's user namespace (UserNsAccess), and every owner is reported as the container saw it.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { SandboxError } from '../errors.ts';
import { FsError, type DirEntry, type NodeKind, type Stat, type Vfs } from '../fs/vfs.ts';
import { shellQuote, type Tools } from './invocation.ts';
import type { IdMap, SubIdMapping } from './subids.ts';

export interface FinalFsHandle { readonly path: string; readonly layer: 'upper' | 'lower' }

/** Names per upper directory ('' is the root), in the merged view's order. */
export type MergedListing = Map<string, string[]>;

const HOST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

function kindOf(s: fs.BigIntStats | fs.Stats): NodeKind {
  return s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file'
    : s.isCharacterDevice() ? 'chardev' : s.isBlockDevice() ? 'blockdev' : s.isFIFO() ? 'fifo' : 'socket';
}

function toStat(s: fs.BigIntStats, uid = Number(s.uid), gid = Number(s.gid)): Stat {
  return {
    dev: Number(s.dev), ino: Number(s.ino), kind: kindOf(s), mode: Number(s.mode) & 0o7777, uid, gid,
    nlink: Number(s.nlink), size: Number(s.size), rdev: Number(s.rdev), atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  };
}

const isWhiteout = (s: Stat): boolean => s.kind === 'chardev' && s.rdev === 0;
const errnoOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/** How FinalFs reaches the host's files (absolute paths); lstat gives undefined for a path that is not there. */
export interface HostAccess {
  lstat(p: string): Stat | undefined;
  readdir(p: string): string[];
  readlink(p: string): string;
  /** A regular file's bytes at position (never through a symlink). */
  read(p: string, into: Uint8Array, position: number): number;
}

/** The caller's own access (root, or the single-uid map): host owners as they are. */
export const callerAccess: HostAccess = {
  lstat(p) {
    try {
      return toStat(fs.lstatSync(p, { bigint: true }));
    } catch {
      return undefined;
    }
  },
  readdir: (p) => fs.readdirSync(p),
  readlink: (p) => fs.readlinkSync(p),
  read(p, into, position) {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try { return fs.readSync(fd, into, 0, into.length, position); } finally { fs.closeSync(fd); }
  },
};

/** The container id a host id stands for through one map; ids the map does not cover show as the overflow id, as the kernel shows them. */
export function containerIdOf(map: IdMap, hostId: number): number {
  for (const e of map.extents) if (hostId >= e.outside && hostId < e.outside + e.count) return e.inside + (hostId - e.outside);
  return 65534;
}

/** `stat --printf` fields, one record per entry: dev ino raw-mode(hex) uid gid nlink size major(hex) minor(hex) atime mtime ctime path NUL. */
const STAT_FORMAT = '%d %i %f %u %g %h %s %t %T %.9X %.9Y %.9Z %n\\0';
const STAT_FIELDS = 12;
const READ_WINDOW = 1 << 20;
const NS_TIMEOUT_MS = 30_000;

function kindOfMode(mode: number): NodeKind {
  switch (mode & 0o170000) {
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o100000: return 'file';
    case 0o020000: return 'chardev';
    case 0o060000: return 'blockdev';
    case 0o010000: return 'fifo';
    default: return 'socket';
  }
}

function nsOfTime(t: string): bigint {
  const m = /^(-?)(\d+)\.(\d{9})$/.exec(t);
  if (!m) throw new Error(`unexpected time ${JSON.stringify(t)}`);
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(m[3]!);
  return m[1] ? -ns : ns;
}

/** Entries of STAT_FORMAT output by name (the part of the path after its last '/'). */
export function parseStatRecords(out: Buffer): Map<string, Stat> {
  const entries = new Map<string, Stat>();
  let start = 0;
  for (let end = out.indexOf(0, start); end >= 0; start = end + 1, end = out.indexOf(0, start)) {
    const record = out.subarray(start, end);
    let at = 0;
    const fields: string[] = [];
    for (let i = 0; i < STAT_FIELDS; i++) {
      const space = record.indexOf(0x20, at);
      if (space < 0) throw new Error('a truncated stat record');
      fields.push(record.subarray(at, space).toString('latin1'));
      at = space + 1;
    }
    const p = record.subarray(at).toString('utf8');
    const [dev, ino, rawMode, uid, gid, nlink, size, major, minor, atime, mtime, ctime] = fields as [string, ...string[]];
    const mode = parseInt(rawMode, 16);
    const maj = parseInt(major!, 16);
    const min = parseInt(minor!, 16);
    entries.set(p.slice(p.lastIndexOf('/') + 1), {
      dev: Number(dev), ino: Number(ino), kind: kindOfMode(mode), mode: mode & 0o7777, uid: Number(uid), gid: Number(gid), nlink: Number(nlink),
      size: Number(size), rdev: (maj & 0xfff) * 256 + (min & 0xff) + (min >>> 8) * 0x100000, atimeNs: nsOfTime(atime!), mtimeNs: nsOfTime(mtime!), ctimeNs: nsOfTime(ctime!),
    });
  }
  return entries;
}

function hostTool(name: string): string {
  for (const dir of HOST_ENV.PATH.split(':')) {
    try {
      fs.accessSync(`${dir}/${name}`, fs.constants.X_OK);
      return `${dir}/${name}`;
    } catch { /* next */ }
  }
  throw new SandboxError('BACKEND_UNAVAILABLE', `${name} is not installed (coreutils, findutils)`);
}

/**
 * An unprivileged caller with subordinate ids: the caller's access where it has it (owners mapped back
 * to the container's ids), and where it has not (a directory only a container user may open, a file
 * of mode 0600 of one), the same request as root of the namespace helper's user namespace, whose
 * view shows the container's ids already. One process per such directory (all its entries' metadata,
 * kept) and per MiB read of such a file. Host tools are named by absolute path: busybox runs its own
 * applets before those of PATH.
 */
export class UserNsAccess implements HostAccess {
  readonly #busybox: string;
  readonly #userNs: () => string | undefined;
  readonly #ids: SubIdMapping;
  readonly #dirs = new Map<string, Map<string, Stat> | undefined>();
  readonly #tools = new Map<string, string>();
  #window: { path: string; start: number; data: Buffer } | undefined;

  /** userNs: the live helper's /proc/<pid>/ns/user (undefined once it has exited). */
  constructor(o: { busybox: string; userNs: () => string | undefined; ids: SubIdMapping }) {
    this.#busybox = o.busybox;
    this.#userNs = o.userNs;
    this.#ids = o.ids;
  }

  lstat(p: string): Stat | undefined {
    try {
      const s = fs.lstatSync(p, { bigint: true });
      return toStat(s, containerIdOf(this.#ids.uid, Number(s.uid)), containerIdOf(this.#ids.gid, Number(s.gid)));
    } catch (e) {
      if (errnoOf(e) !== 'EACCES') return undefined;
      const slash = p.lastIndexOf('/');
      return this.#entries(p.slice(0, slash))?.get(p.slice(slash + 1));
    }
  }

  readdir(p: string): string[] {
    try {
      return fs.readdirSync(p);
    } catch (e) {
      if (errnoOf(e) !== 'EACCES') throw e;
      const entries = this.#entries(p);
      if (!entries) throw new FsError('EACCES', p);
      return [...entries.keys()];
    }
  }

  readlink(p: string): string {
    try {
      return fs.readlinkSync(p);
    } catch (e) {
      if (errnoOf(e) !== 'EACCES') throw e;
      const out = this.#run([this.#tool('readlink'), '-z', '--', p], 1 << 16);
      if (!out || out[out.length - 1] !== 0) throw new FsError('EACCES', p);
      return out.subarray(0, out.length - 1).toString('utf8');
    }
  }

  read(p: string, into: Uint8Array, position: number): number {
    try {
      return callerAccess.read(p, into, position);
    } catch (e) {
      if (errnoOf(e) !== 'EACCES') throw e;
    }
    let w = this.#window;
    if (!w || w.path !== p || position < w.start || position + into.length > w.start + w.data.length) {
      const length = Math.max(into.length, READ_WINDOW);
      const data = this.#run([this.#tool('dd'), `if=${p}`, 'iflag=skip_bytes,count_bytes,nofollow,nonblock', `skip=${position}`, `count=${length}`, `bs=${READ_WINDOW}`, 'status=none'], length + 1);
      if (!data) throw new FsError('EACCES', p);
      this.#window = w = { path: p, start: position, data };
    }
    const from = position - w.start;
    const n = Math.max(0, Math.min(into.length, w.data.length - from));
    into.set(w.data.subarray(from, from + n));
    return n;
  }

  /** Every entry of dir with its metadata, read in the user namespace; undefined when dir is not there. */
  #entries(dir: string): Map<string, Stat> | undefined {
    if (this.#dirs.has(dir)) return this.#dirs.get(dir);
    const out = this.#run([this.#tool('find'), dir, '-mindepth', '1', '-maxdepth', '1', '-exec', this.#tool('stat'), '--printf', STAT_FORMAT, '--', '{}', '+'], 64 << 20);
    const entries = out ? parseStatRecords(out) : undefined;
    this.#dirs.set(dir, entries);
    return entries;
  }

  #tool(name: string): string {
    let t = this.#tools.get(name);
    if (!t) this.#tools.set(name, (t = hostTool(name)));
    return t;
  }

  /** stdout of argv run as root of the helper's user namespace; undefined when it failed. */
  #run(argv: string[], maxBuffer: number): Buffer | undefined {
    const userNs = this.#userNs();
    if (!userNs) throw new SandboxError('BACKEND_UNAVAILABLE', 'the namespace helper that maps the subordinate ids has exited: the container\'s files of other users cannot be read');
    const r = spawnSync(this.#busybox, ['nsenter', `-U${userNs}`, '--preserve-credentials', '--', ...argv], { env: HOST_ENV, maxBuffer, timeout: NS_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] });
    return r.status === 0 ? r.stdout : undefined;
  }
}

export class FinalFs implements Vfs<FinalFsHandle> {
  readonly readOnly = true;
  readonly #lower: string;
  readonly #upper: string | undefined;
  readonly #access: HostAccess;
  readonly #listing: Map<string, { order: string[]; names: Set<string> }> = new Map();
  readonly #lowerDirOk = new Map<string, boolean>([['', true]]);
  readonly #root: FinalFsHandle;
  /** Whatever must stay alive while this view is in use (the owner of the upper directory). */
  readonly keepAlive: unknown;

  /** access: how host files are reached (default: as the caller, owners as on the host). */
  constructor(o: { lower: string; upper?: string; listing?: MergedListing; keepAlive?: unknown; access?: HostAccess }) {
    this.#lower = o.lower;
    this.#upper = o.upper;
    this.#access = o.access ?? callerAccess;
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
    const ok = this.#lowerIsDir(slash < 0 ? '' : rel.slice(0, slash)) && this.#access.lstat(`${this.#lower}/${rel}`)?.kind === 'dir';
    this.#lowerDirOk.set(rel, ok);
    return ok;
  }

  #lstat(h: FinalFsHandle): Stat {
    const s = this.#access.lstat(this.#host(h));
    if (!s) throw new FsError('ENOENT', h.path);
    return s;
  }

  root(): FinalFsHandle { return this.#root; }

  lookup(dir: FinalFsHandle, name: string): FinalFsHandle | undefined {
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new FsError('EINVAL', name);
    if (this.kind(dir) !== 'dir') throw new FsError('ENOTDIR', dir.path);
    const child = dir.path === '' ? name : `${dir.path}/${name}`;
    if (dir.layer === 'lower') return this.#access.lstat(`${this.#lower}/${child}`) ? { path: child, layer: 'lower' } : undefined;
    if (!this.#listing.get(dir.path)?.names.has(name)) return undefined;
    const up = this.#access.lstat(`${this.#upper}/${child}`);
    if (up && !isWhiteout(up)) return { path: child, layer: 'upper' };
    if (this.#lowerIsDir(dir.path) && this.#access.lstat(`${this.#lower}/${child}`)) return { path: child, layer: 'lower' };
    return undefined;
  }

  kind(h: FinalFsHandle): NodeKind {
    return this.#lstat(h).kind;
  }

  stat(h: FinalFsHandle): Stat {
    return { ...this.#lstat(h) };
  }

  readdir(dir: FinalFsHandle): DirEntry[] {
    if (this.kind(dir) !== 'dir') throw new FsError('ENOTDIR', dir.path);
    const names = dir.layer === 'upper' ? (this.#listing.get(dir.path)?.order ?? []) : this.#access.readdir(this.#host(dir));
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
    return this.#access.readlink(this.#host(h));
  }

  read(h: FinalFsHandle, into: Uint8Array, position: number): number {
    const kind = this.kind(h);
    if (kind === 'dir') throw new FsError('EISDIR', h.path);
    if (kind !== 'file') throw new FsError('EINVAL', h.path);
    return this.#access.read(this.#host(h), into, position);
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

/** Every directory of the upper, relative ('' for the root), listed by `find` as root of a user namespace (`inUserNs`: the nsenter argv). */
async function upperDirsInUserNs(inUserNs: string[], upper: string): Promise<string[]> {
  const r = await collect([...inUserNs, hostTool('find'), upper, '-type', 'd', '-print0']);
  if (r.code !== 0) throw new SandboxError('INTERNAL', `cannot read the container's filesystem (exit ${r.code}): ${r.err.trim()}`);
  return r.out.toString('utf8').split('\0').filter((p) => p === upper || p.startsWith(`${upper}/`)).map((p) => p.slice(upper.length + 1));
}

/**
 * Lists, as the kernel merges them, the entries of each upper directory: upper:lower mounted as a
 * read-only overlay (no upper, no work dir: nothing is written) on `mountPoint` in a private mount
 * namespace that ends with the listing. `userNs` (subordinate ids): all of it runs as root of that
 * user namespace (the namespace helper's), where every file a container user made can be opened.
 */
export async function listMerged(
  o: { lower: string; upper: string; mountPoint: string; tools: Tools; privileged: boolean; userxattr?: boolean; userNs?: { busybox: string; path: string } },
): Promise<MergedListing> {
  const inUserNs = o.userNs ? [o.userNs.busybox, 'nsenter', `-U${o.userNs.path}`, '--preserve-credentials', '--'] : [];
  const dirs = o.userNs ? await upperDirsInUserNs(inUserNs, o.upper) : upperDirs(o.upper);
  const options = `lowerdir=${o.upper}:${o.lower}${o.userxattr ?? !o.privileged ? ',userxattr' : ''}`;
  const mount = o.tools.busybox ? `${shellQuote(o.tools.busybox)} mount` : shellQuote(o.tools.mount);
  const script = `${mount} -t overlay -o ${shellQuote(options)} wasmbox ${shellQuote(o.mountPoint)} && cd ${shellQuote(o.mountPoint)} && exec find -files0-from - -mindepth 1 -maxdepth 1 -print0`;
  const ns = o.privileged || o.userNs ? ['--mount', '--propagation', 'private'] : ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
  const r = await collect([...inUserNs, o.tools.unshare, ...ns, o.tools.sh, '-c', script], dirs.map((d) => (d === '' ? '.' : `./${d}`)).join('\0') + '\0');
  if (r.code !== 0) throw new SandboxError('INTERNAL', `cannot read the container's filesystem (exit ${r.code}): ${r.err.trim()}`);
  const listing: MergedListing = new Map(dirs.map((d) => [d, []]));
  for (const p of r.out.toString('utf8').split('\0')) {
    if (!p.startsWith('./')) continue;
    const rel = p.slice(2);
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    listing.get(dir)?.push(slash < 0 ? rel : rel.slice(slash + 1));
  }
  return listing;
}

/** Runs argv (stdin: the given text, or nothing) and collects stdout, the start of stderr and the exit status. */
async function collect(argv: string[], stdin = ''): Promise<{ code: number | null; out: Buffer; err: string }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: HOST_ENV });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.setEncoding('utf8').on('data', (s: string) => { if (err.length < 4096) err += s; });
  child.stdin.on('error', () => { /* it failed before reading: the exit status says why */ });
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  }).catch((e: Error) => { throw new SandboxError('BACKEND_UNAVAILABLE', `cannot read the container's filesystem: ${e.message}`, { cause: e }); });
  return { code, out: Buffer.concat(out), err };
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
  readonly #onExit = (): void => {
    const all = [...this.#live.values()].flat();
    // (handed to a process that outlives this one when there is one: an exit need not wait for the removal)
    if (all.length > 0 && this.removeAfterExit?.(all)) {
      this.#live.clear();
      return;
    }
    for (const key of [...this.#live.keys()]) this.release(key);
  };
  constructor(
    private readonly removeTree: (dir: string) => void,
    private readonly removeAfterExit?: (dirs: string[]) => boolean,
  ) {}

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
