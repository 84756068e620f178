// Host file access for the on-disk image store and archive writers (Node).
// Core code reaches this through `#host/files`; the browser variant denies the capability.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SandboxError } from '../../errors.ts';
import { lazyBuiltin } from './builtin.ts';

const streamModule = lazyBuiltin<typeof import('node:stream')>('node:stream');

export const filesAvailable = true;

export interface FileInfo { size: number; isFile: boolean; isDirectory: boolean; mtimeMs: number }

export const joinPath = (...parts: string[]): string => path.join(...parts);
export const dirnameOf = (p: string): string => path.dirname(p);
export const basenameOf = (p: string): string => path.basename(p);
export const resolvePath = (p: string): string => path.resolve(p);

/** `$XDG_DATA_HOME/wasmbox`, or `~/.local/share/wasmbox`. */
export function defaultDataDir(): string {
  const xdg = process.env.XDG_DATA_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'wasmbox');
  return path.join(os.homedir(), '.local', 'share', 'wasmbox');
}

export function envVar(name: string): string | undefined {
  return process.env[name];
}

/** A temp-file suffix: unique, not secret (files are created with O_EXCL), so no crypto to load. */
export function uniqueSuffix(): string {
  return `${process.pid}-${Math.floor(Math.random() * 2 ** 48).toString(16).padStart(12, '0')}`;
}

export const currentPid = (): number => process.pid;

/** True when a process with this id exists on this host (EPERM means it exists but is not ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fileError(e: unknown, what: string): SandboxError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return new SandboxError('NOT_FOUND', `${what}: no such file or directory`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new SandboxError('CAPABILITY_DENIED', `${what}: permission denied`, { cause: e });
  }
  if (code === 'ENOSPC') return new SandboxError('LIMIT_EXCEEDED', `${what}: no space left on device`, { cause: e });
  return new SandboxError('INTERNAL', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

// Metadata calls (stat, mkdir, readdir) and reads of small files are made synchronously: each takes
// microseconds on a local disk, while a trip through libuv's thread pool costs two context switches,
// which on a busy machine were most of a CLI start's wait. Large reads and all writes stay asynchronous.
const SMALL_FILE = 1 << 20;

export async function statPath(p: string): Promise<FileInfo | undefined> {
  try {
    const s = fs.statSync(p);
    return { size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw fileError(e, p);
  }
}

export function statPathSync(p: string): FileInfo | undefined {
  try {
    const s = fs.statSync(p);
    return { size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory(), mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}

export async function mkdirp(p: string): Promise<void> {
  try {
    fs.mkdirSync(p, { recursive: true });
  } catch (e) {
    throw fileError(e, p);
  }
}

export async function readFileBytes(p: string): Promise<Uint8Array> {
  try {
    const b = await readWhole(p);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw fileError(e, p);
  }
}

/** A whole file: read at once when small, else through the thread pool. */
async function readWhole(p: string): Promise<Buffer> {
  const fd = fs.openSync(p, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > SMALL_FILE) return await fsp.readFile(p);
    const b = Buffer.allocUnsafeSlow(size);
    let at = 0;
    while (at < size) {
      const n = fs.readSync(fd, b, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return at === size ? b : b.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a file, or undefined when it does not exist. */
export async function readFileIfExists(p: string): Promise<Uint8Array | undefined> {
  try {
    const b = await readWhole(p);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(e, p);
  }
}

/** A web stream over a file; opening fails (NOT_FOUND) before the stream is returned. */
export async function openReadStream(p: string): Promise<ReadableStream<Uint8Array>> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(p, 'r');
  } catch (e) {
    throw fileError(e, p);
  }
  const nodeStream = handle.createReadStream({ highWaterMark: 256 * 1024 });
  return streamModule().Readable.toWeb(nodeStream) as unknown as ReadableStream<Uint8Array>;
}

/** A file being written: chunks appended, then `commit` (fsync + rename) or `abort` (unlink). */
export interface FileWriter {
  readonly path: string;
  write(chunk: Uint8Array): Promise<void>;
  /** fsync, close and rename onto `target` (atomic replace). */
  commit(target: string): Promise<void>;
  /** fsync and close without renaming; the caller moves it. */
  close(): Promise<void>;
  abort(): Promise<void>;
}

// Every 2 MiB (was 8): a pull's transfer phase measured 222-227 ms against 254 (CLI, 20 interleaved rounds) and
// 189 against 203 in-process: less is left for the fsync after the last byte.
const WRITEBACK_BYTES = 2 << 20;

/** Creates a new, exclusive temp file in `dir`. */
export async function createTempFile(dir: string, prefix = 'tmp-'): Promise<FileWriter> {
  const p = path.join(dir, `${prefix}${uniqueSuffix()}`);
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(p, 'wx', 0o644);
  } catch (e) {
    throw fileError(e, p);
  }
  let closed = false;
  // Writeback starts while the data still arrives, so the fsync before publishing has little left to wait for.
  let unsynced = 0;
  let writeback: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await writeback;
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  return {
    path: p,
    async write(chunk) {
      let off = 0;
      try {
        while (off < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off);
          off += bytesWritten;
        }
        unsynced += off;
        if (unsynced >= WRITEBACK_BYTES && !writeback) {
          unsynced = 0;
          writeback = handle.datasync().then(() => { writeback = undefined; }, () => { writeback = undefined; });
        }
      } catch (e) {
        throw fileError(e, p);
      }
    },
    async commit(target) {
      try {
        await close();
        await fsp.rename(p, target);
      } catch (e) {
        await fsp.rm(p, { force: true }).catch(() => {});
        throw fileError(e, target);
      }
    },
    async close() {
      try {
        await close();
      } catch (e) {
        throw fileError(e, p);
      }
    },
    async abort() {
      if (!closed) {
        closed = true;
        await writeback;
        await handle.close().catch(() => {});
      }
      await fsp.rm(p, { force: true }).catch(() => {});
    },
  };
}

/** Writes a whole file atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(target: string, data: Uint8Array): Promise<void> {
  const w = await createTempFile(path.dirname(target), `.${path.basename(target)}.tmp-`);
  try {
    await w.write(data);
    await w.commit(target);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await syncDir(path.dirname(target));
}

/** fsync a directory so renames into it survive a crash (best effort where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  let h: fsp.FileHandle | undefined;
  try {
    h = await fsp.open(dir, 'r');
    await h.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await h?.close().catch(() => {});
  }
}

export async function renamePath(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (e) {
    throw fileError(e, to);
  }
}

/** Hard link `existing` at `link`; false when the filesystem cannot (then callers copy). */
export async function linkPath(existing: string, link: string): Promise<'linked' | 'missing' | 'unsupported'> {
  try {
    await fsp.link(existing, link);
    return 'linked';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'EEXIST') return 'linked';
    return 'unsupported';
  }
}

export async function copyPath(from: string, to: string): Promise<void> {
  try {
    await fsp.copyFile(from, to);
  } catch (e) {
    throw fileError(e, to);
  }
}

export async function removePath(p: string): Promise<void> {
  try {
    await fsp.rm(p, { recursive: true, force: true });
  } catch (e) {
    throw fileError(e, p);
  }
}

export async function listDir(p: string): Promise<string[]> {
  try {
    return fs.readdirSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fileError(e, p);
  }
}

/** Creates `p` only when absent (O_EXCL); false when it already exists. */
export async function createExclusive(p: string, content: string): Promise<boolean> {
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(p, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw fileError(e, p);
  }
  try {
    await h.writeFile(content);
    await h.sync();
  } finally {
    await h.close();
  }
  return true;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
