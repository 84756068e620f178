/**
 * The filesystem contract the sandbox and the backends are written against. Two kinds implement it:
 * the in-memory overlay (src/fs/overlay.ts) and, in Node only, a confined host directory (#host/host-vfs).
 * Every call is synchronous; failures are FsError with a POSIX errno name, converted to WASI errno
 * numbers in one place (src/sandbox/errno.ts).
 */

export type Errno =
  | 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'ELOOP' | 'EACCES' | 'EPERM'
  | 'EROFS' | 'EINVAL' | 'EXDEV' | 'ENAMETOOLONG' | 'EBADF' | 'EFBIG' | 'ENOSPC' | 'ENOTCAPABLE'
  | 'EIO' | 'EBUSY' | 'EMLINK' | 'ENOTSUP' | 'ENXIO' | 'ESPIPE' | 'EOVERFLOW' | 'EDQUOT' | 'ETXTBSY';

export class FsError extends Error {
  override readonly name = 'FsError';
  constructor(readonly errno: Errno, message?: string) {
    super(message ? `${errno}: ${message}` : errno);
  }
}

export type NodeKind = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export interface Stat {
  dev: number;
  ino: number;
  kind: NodeKind;
  /** Permission bits including setuid/setgid/sticky (0o7777); no file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  /** Device number for chardev/blockdev (major << 8 | minor, as tar records them). */
  rdev: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface DirEntry {
  name: string;
  ino: number;
  kind: NodeKind;
}

/** Handles are opaque, belong to the Vfs that made them, and stay valid across copy-up. */
export interface Vfs<H = unknown> {
  /** True when every mutating call fails with EROFS. */
  readonly readOnly: boolean;
  root(): H;
  /** One path component (never '', '.', '..' or containing '/'): the child, or undefined. */
  lookup(dir: H, name: string): H | undefined;
  stat(h: H): Stat;
  /** The node's kind alone: what path walking asks at every component, without building a Stat. */
  kind(h: H): NodeKind;
  /** Entries in a stable order (insertion order), without '.' and '..'. */
  readdir(dir: H): DirEntry[];
  readlink(h: H): string;
  /** Reads at `position` into `into`; returns the byte count (0 at EOF). */
  read(h: H, into: Uint8Array, position: number): number;
  /** Writes at `position` (filling any gap with zeros); returns the byte count. */
  write(h: H, data: Uint8Array, position: number): number;
  setSize(h: H, size: number): void;
  setTimes(h: H, atimeNs: bigint | undefined, mtimeNs: bigint | undefined): void;
  mkdir(dir: H, name: string, mode: number): H;
  createFile(dir: H, name: string, mode: number): H;
  symlink(dir: H, name: string, target: string): H;
  /** Makes `name` in `dir` a new hard link to the (non-directory) `target`. */
  link(dir: H, name: string, target: H): void;
  /** Removes a non-directory entry. */
  unlink(dir: H, name: string): void;
  /** Removes an empty directory entry. */
  rmdir(dir: H, name: string): void;
  /** POSIX rename semantics: replaces a compatible target atomically. */
  rename(fromDir: H, fromName: string, toDir: H, toName: string): void;
  /**
   * Optional: a number that changes whenever an entry naming a directory or a symlink is removed or
   * replaced (unlink, rmdir, rename), so that a path resolved to a directory earlier resolves there
   * still while it is unchanged (adding entries changes no resolved path). NaN: never the same.
   * Path resolution caches directory look-ups with it (resolve.ts PathCache); without it, nothing is cached.
   */
  layoutVersion?(): number;
}
