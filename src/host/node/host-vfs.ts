/**
 * A host directory as a Vfs (Node only), for `-v HOST:GUEST[:ro]`. Handles stand for paths relative to
 * the root ('' is the root) and follow renames. Nothing reaches outside the root: no handle contains '..', every directory a
 * handle passes through is checked to be a real directory (no symlink anywhere in it) before use,
 * and the last component is never followed (lstat, O_NOFOLLOW, lutimes). Symlinks inside the mount
 * are followed only by resolvePath, inside the Vfs semantics.
 *
 * Known limit: another host process changing the directory concurrently could race the checks.
 */
import * as fs from 'node:fs';
import { FsError, type DirEntry, type Errno, type NodeKind, type Stat, type Vfs } from '../../fs/vfs.ts';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const NOFOLLOW = O_NOFOLLOW ?? 0;

/** Host descriptors kept open for removed files at most (per Vfs). */
const MAX_KEPT_FDS = 64;

const KNOWN: ReadonlySet<string> = new Set<Errno>([
  'ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ELOOP', 'EACCES', 'EPERM', 'EROFS', 'EINVAL', 'EXDEV',
  'ENAMETOOLONG', 'EBADF', 'EFBIG', 'ENOSPC', 'EIO', 'EBUSY', 'EMLINK', 'ENOTSUP', 'ENXIO', 'ESPIPE',
  'EOVERFLOW', 'EDQUOT', 'ETXTBSY',
]);

/** Node's error `code` as an FsError (EIO for codes without a counterpart). */
export function fsErrorFromNode(e: unknown): FsError {
  if (e instanceof FsError) return e;
  const code = (e as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (code === 'EOPNOTSUPP') return new FsError('ENOTSUP');
    if (KNOWN.has(code)) return new FsError(code as Errno, (e as Error).message);
  }
  return new FsError('EIO', e instanceof Error ? e.message : String(e));
}

function kindOf(st: fs.BigIntStats): NodeKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Offsets and sizes are whole non-negative numbers (Node reads -1 as "the current position"). */
function checkOffset(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FsError('EINVAL', `invalid offset or size ${n}`);
}

function checkName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FsError('EINVAL', `invalid name ${JSON.stringify(name)}`);
  }
}

/** Times set by the guest with ns precision, restored on stat while the host still shows the rounded value. */
interface TimesNote { atimeNs: bigint; mtimeNs: bigint; hostAtimeNs: bigint; hostMtimeNs: bigint }

/** A host descriptor kept for a handle whose name went away (unlinked or replaced), so it still reads. */
interface FdBox { fd: number | undefined }

/**
 * A node of a host directory: its path relative to the root ('' for the root), or undefined once
 * its name is gone. One handle per path (the same object on every lookup); renames move handles.
 */
export class HostHandle {
  constructor(public path: string | undefined, readonly box: FdBox) {}
}

class HostDirVfs implements Vfs<HostHandle> {
  readonly #root: string;
  readonly #times = new Map<string, TimesNote>();
  readonly #handles = new Map<string, WeakRef<HostHandle>>();
  readonly #orphans = new FinalizationRegistry<FdBox>((box) => {
    if (box.fd === undefined) return;
    const fd = box.fd;
    box.fd = undefined;
    fs.closeSync(fd);
  });
  readonly #rootHandle: HostHandle;
  /** Host descriptors kept for removed files, oldest first; bounded so that removals cannot exhaust host fds. */
  readonly #kept: FdBox[] = [];

  constructor(root: string, readonly readOnly: boolean) {
    this.#root = root;
    this.#rootHandle = new HostHandle('', { fd: undefined });
  }

  #handle(path: string): HostHandle {
    if (path === '') return this.#rootHandle;
    const h = this.#handles.get(path)?.deref();
    if (h) return h;
    const made = new HostHandle(path, { fd: undefined });
    this.#handles.set(path, new WeakRef(made));
    this.#orphans.register(made, made.box);
    if (this.#handles.size > 4096 && this.#handles.size % 4096 === 0) this.#sweep();
    return made;
  }

  #sweep(): void {
    for (const [k, ref] of this.#handles) if (ref.deref() === undefined) this.#handles.delete(k);
  }

  /** The handle at `path` loses its name; a file keeps a host descriptor so that it still reads. */
  #detach(path: string): void {
    const h = this.#handles.get(path)?.deref();
    this.#handles.delete(path);
    if (!h) return;
    h.path = undefined;
    if (h.box.fd !== undefined) return;
    const abs = this.#abs(path);
    for (const flags of [fs.constants.O_RDWR, O_RDONLY]) {
      try {
        const fd = fs.openSync(abs, flags | NOFOLLOW);
        if (fs.fstatSync(fd).isFile()) {
          this.#keep(h.box, fd);
          return;
        }
        fs.closeSync(fd);
        return;
      } catch {
        // Try read-only, or keep no descriptor (a symlink or a special file).
      }
    }
  }

  #abs(h: string): string {
    if (h === '') return this.#root;
    return this.#root === '/' ? `/${h}` : `${this.#root}/${h}`;
  }

  #child(dir: string, name: string): string {
    return dir === '' ? name : `${dir}/${name}`;
  }

  #pathOf(h: HostHandle): string {
    if (h.path === undefined) throw new FsError('ENOENT', 'the file was removed');
    return h.path;
  }

  /** The host path of directory `h`, after checking that no component of it is a symlink. */
  #dir(h: HostHandle | string): string {
    const abs = this.#abs(typeof h === 'string' ? h : this.#pathOf(h));
    let real: string;
    try {
      real = fs.realpathSync.native(abs);
    } catch (e) {
      throw fsErrorFromNode(e);
    }
    if (real !== abs) throw new FsError('ENOENT', 'a directory on the path was replaced');
    return abs;
  }

  /** The host path of `h` with its directory checked; the last component itself is not followed. */
  #leaf(h: HostHandle): string {
    const path = this.#pathOf(h);
    if (path === '') return this.#dir('');
    const slash = path.lastIndexOf('/');
    this.#dir(slash < 0 ? '' : path.slice(0, slash));
    return this.#abs(path);
  }

  #mutable(): void {
    if (this.readOnly) throw new FsError('EROFS');
  }

  #run<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw fsErrorFromNode(e);
    }
  }

  root(): HostHandle {
    return this.#rootHandle;
  }

  lookup(dir: HostHandle, name: string): HostHandle | undefined {
    checkName(name);
    const d = this.#dir(dir);
    try {
      fs.lstatSync(`${d}/${name}`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOENT') return undefined;
      throw fsErrorFromNode(e);
    }
    return this.#handle(this.#child(this.#pathOf(dir), name));
  }

  kind(h: HostHandle): NodeKind {
    return this.stat(h).kind;
  }

  stat(h: HostHandle): Stat {
    const st = this.#run(() =>
      h.path === undefined && h.box.fd !== undefined ? fs.fstatSync(h.box.fd, { bigint: true }) : fs.lstatSync(this.#leaf(h), { bigint: true }));
    let atimeNs = st.atimeNs;
    let mtimeNs = st.mtimeNs;
    const note = this.#times.get(`${st.dev}:${st.ino}`);
    if (note) {
      if (note.hostAtimeNs === atimeNs) atimeNs = note.atimeNs;
      if (note.hostMtimeNs === mtimeNs) mtimeNs = note.mtimeNs;
    }
    return {
      dev: Number(st.dev), ino: Number(st.ino), kind: kindOf(st), mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid), gid: Number(st.gid), nlink: Number(st.nlink), size: Number(st.size),
      rdev: Number(st.rdev), atimeNs, mtimeNs, ctimeNs: st.ctimeNs,
    };
  }

  readdir(dir: HostHandle): DirEntry[] {
    const d = this.#dir(dir);
    return this.#run(() => {
      const out: DirEntry[] = [];
      for (const name of fs.readdirSync(d)) {
        try {
          const st = fs.lstatSync(`${d}/${name}`, { bigint: true });
          out.push({ name, ino: Number(st.ino), kind: kindOf(st) });
        } catch {
          // Removed meanwhile.
        }
      }
      return out;
    });
  }

  readlink(h: HostHandle): string {
    return this.#run(() => fs.readlinkSync(this.#leaf(h), 'utf8'));
  }

  #withFd<T>(h: HostHandle, flags: number, f: (fd: number) => T): T {
    if (h.path === undefined && h.box.fd !== undefined) {
      const fd = h.box.fd;
      return this.#run(() => f(fd));
    }
    const p = this.#leaf(h);
    return this.#run(() => {
      const fd = fs.openSync(p, flags | NOFOLLOW);
      try {
        return f(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  read(h: HostHandle, into: Uint8Array, position: number): number {
    checkOffset(position);
    if (into.length === 0) return 0;
    return this.#withFd(h, O_RDONLY, (fd) => {
      if (fs.fstatSync(fd).isDirectory()) throw new FsError('EISDIR');
      let done = 0;
      while (done < into.length) {
        const n = fs.readSync(fd, into, done, into.length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    });
  }

  write(h: HostHandle, data: Uint8Array, position: number): number {
    this.#mutable();
    checkOffset(position);
    if (data.length === 0) return 0;
    return this.#withFd(h, O_WRONLY, (fd) => {
      let done = 0;
      while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
      return done;
    });
  }

  setSize(h: HostHandle, size: number): void {
    this.#mutable();
    checkOffset(size);
    this.#withFd(h, O_WRONLY, (fd) => fs.ftruncateSync(fd, size));
  }

  setTimes(h: HostHandle, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void {
    this.#mutable();
    const cur = this.stat(h);
    const a = atimeNs ?? cur.atimeNs;
    const m = mtimeNs ?? cur.mtimeNs;
    const orphanFd = h.path === undefined ? h.box.fd : undefined;
    const p = orphanFd === undefined ? this.#leaf(h) : '';
    this.#run(() => {
      // Node passes seconds as a double: keep the exact values the guest set for stat to report.
      if (orphanFd !== undefined) fs.futimesSync(orphanFd, Number(a) / 1e9, Number(m) / 1e9);
      else fs.lutimesSync(p, Number(a) / 1e9, Number(m) / 1e9);
      const after = orphanFd !== undefined ? fs.fstatSync(orphanFd, { bigint: true }) : fs.lstatSync(p, { bigint: true });
      this.#times.set(`${after.dev}:${after.ino}`, { atimeNs: a, mtimeNs: m, hostAtimeNs: after.atimeNs, hostMtimeNs: after.mtimeNs });
    });
  }

  mkdir(dir: HostHandle, name: string, mode: number): HostHandle {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    this.#run(() => {
      fs.mkdirSync(`${d}/${name}`, { mode: mode & 0o777 });
      // mkdir applies the umask and drops setgid/sticky: set the mode asked for.
      fs.chmodSync(`${d}/${name}`, mode & 0o7777);
    });
    return this.#handle(this.#child(this.#pathOf(dir), name));
  }

  createFile(dir: HostHandle, name: string, mode: number): HostHandle {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    this.#run(() => {
      const fd = fs.openSync(`${d}/${name}`, O_CREAT | O_EXCL | O_WRONLY | NOFOLLOW, mode & 0o777);
      try {
        fs.fchmodSync(fd, mode & 0o7777);
      } finally {
        fs.closeSync(fd);
      }
    });
    return this.#handle(this.#child(this.#pathOf(dir), name));
  }

  symlink(dir: HostHandle, name: string, target: string): HostHandle {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    this.#run(() => fs.symlinkSync(target, `${d}/${name}`));
    return this.#handle(this.#child(this.#pathOf(dir), name));
  }

  link(dir: HostHandle, name: string, target: HostHandle): void {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    const t = this.#leaf(target);
    this.#run(() => fs.linkSync(t, `${d}/${name}`));
  }

  unlink(dir: HostHandle, name: string): void {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    const path = this.#child(this.#pathOf(dir), name);
    this.#run(() => {
      if (fs.lstatSync(`${d}/${name}`).isDirectory()) throw new FsError('EISDIR');
      this.#detach(path);
      fs.unlinkSync(`${d}/${name}`);
    });
  }

  rmdir(dir: HostHandle, name: string): void {
    this.#mutable();
    checkName(name);
    const d = this.#dir(dir);
    const path = this.#child(this.#pathOf(dir), name);
    this.#run(() => {
      fs.rmdirSync(`${d}/${name}`);
      this.#detach(path);
    });
  }

  rename(fromDir: HostHandle, fromName: string, toDir: HostHandle, toName: string): void {
    this.#mutable();
    checkName(fromName);
    checkName(toName);
    const f = this.#dir(fromDir);
    const t = this.#dir(toDir);
    const fromPath = this.#child(this.#pathOf(fromDir), fromName);
    const toPath = this.#child(this.#pathOf(toDir), toName);
    this.#run(() => {
      const src = fs.lstatSync(`${f}/${fromName}`, { bigint: true });
      let dst: fs.BigIntStats | undefined;
      try {
        dst = fs.lstatSync(`${t}/${toName}`, { bigint: true });
      } catch {
        dst = undefined;
      }
      // POSIX: renaming onto another link to the same file does nothing.
      if (dst && dst.dev === src.dev && dst.ino === src.ino) return;
      if (src.isDirectory() && (toPath === fromPath || toPath.startsWith(`${fromPath}/`))) {
        throw new FsError('EINVAL', 'cannot move a directory into itself');
      }
      const replacedFd = dst && dst.isFile() ? this.#detachable(toPath) : undefined;
      fs.renameSync(`${f}/${fromName}`, `${t}/${toName}`);
      if (replacedFd) replacedFd();
      this.#move(fromPath, toPath);
    });
  }

  /** Opens a descriptor for a handle about to be replaced; returns the function that detaches it. */
  #detachable(path: string): (() => void) | undefined {
    const h = this.#handles.get(path)?.deref();
    if (!h) return undefined;
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.#abs(path), fs.constants.O_RDWR | NOFOLLOW);
    } catch {
      fd = undefined;
    }
    return () => {
      this.#handles.delete(path);
      h.path = undefined;
      if (h.box.fd === undefined && fd !== undefined) this.#keep(h.box, fd);
      else if (fd !== undefined) fs.closeSync(fd);
    };
  }

  #keep(box: FdBox, fd: number): void {
    box.fd = fd;
    this.#kept.push(box);
    // A removed file stays readable through handles taken before; the oldest such descriptors are
    // given up first (their handles then report ENOENT), so the host never runs out of descriptors.
    while (this.#kept.length > MAX_KEPT_FDS) {
      const old = this.#kept.shift()!;
      if (old.fd !== undefined) {
        fs.closeSync(old.fd);
        old.fd = undefined;
      }
    }
  }

  /** Handles at `from` and below it now live at `to`. */
  #move(from: string, to: string): void {
    const moved: [string, HostHandle][] = [];
    for (const [path, ref] of this.#handles) {
      if (path !== from && !path.startsWith(`${from}/`)) continue;
      this.#handles.delete(path);
      const h = ref.deref();
      if (h) moved.push([to + path.slice(from.length), h]);
    }
    for (const [path, h] of moved) {
      h.path = path;
      this.#handles.set(path, new WeakRef(h));
    }
  }
}

/** A Vfs over the host directory `dir`, confined to it. */
export function hostDirVfs(dir: string, opts: { readOnly: boolean }): Vfs<HostHandle> {
  let root: string;
  try {
    root = fs.realpathSync.native(dir);
  } catch (e) {
    throw fsErrorFromNode(e);
  }
  if (!fs.statSync(root).isDirectory()) throw new FsError('ENOTDIR', dir);
  return new HostDirVfs(root, opts.readOnly);
}
