import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SandboxError } from '../../errors.ts';
import { clampRange, safeRelativePath, type ByteSource, type FileTree } from '../../loader/byte-source.ts';

const CHUNK = 512 * 1024;

function ioError(e: unknown, path: string): SandboxError {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new SandboxError('NOT_FOUND', `no such file: ${path}`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new SandboxError('DENIED', `permission denied: ${path}`, { cause: e });
  if (code === 'EISDIR') return new SandboxError('INVALID_ARGUMENT', `is a directory: ${path}`, { cause: e });
  return new SandboxError('INTERNAL', `reading ${path}: ${(e as Error).message}`, { cause: e });
}

/**
 * A file on disk as a ByteSource. Each stream or read opens its own handle and closes it at the end,
 * so a source never needs closing and never leaks a descriptor.
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new SandboxError('INVALID_ARGUMENT', `not a regular file: ${path}`);
    size = st.size;
  } catch (e) {
    throw e instanceof SandboxError ? e : ioError(e, path);
  }
  return {
    size,
    name: path,
    stream(offset, length) {
      const [start, end] = clampRange(size, offset, length);
      let pos = start;
      let fh: Awaited<ReturnType<typeof open>> | undefined;
      const close = async () => { const h = fh; fh = undefined; await h?.close().catch(() => {}); };
      return new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          try {
            if (pos >= end) { await close(); ctrl.close(); return; }
            fh ??= await open(path, 'r');
            const n = Math.min(CHUNK, end - pos);
            const buf = new Uint8Array(n);
            const { bytesRead } = await fh.read(buf, 0, n, pos);
            if (bytesRead === 0) throw new SandboxError('MALFORMED', `${path}: file ended at ${pos} bytes, expected ${end}`);
            pos += bytesRead;
            ctrl.enqueue(bytesRead < n ? buf.subarray(0, bytesRead) : buf);
          } catch (e) {
            await close();
            throw e instanceof SandboxError ? e : ioError(e, path);
          }
        },
        cancel: close,
      });
    },
    async read(offset, length) {
      const [start, end] = clampRange(size, offset, length);
      let fh;
      try {
        fh = await open(path, 'r');
        const buf = new Uint8Array(end - start);
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      } catch (e) {
        throw ioError(e, path);
      } finally {
        await fh?.close().catch(() => {});
      }
    },
  };
}

/** A directory on disk as a FileTree; paths with `..` or a leading `/` are refused. */
export function directoryTree(dir: string): FileTree {
  return {
    name: dir,
    async open(path) {
      const rel = safeRelativePath(path, dir);
      try {
        return await openFileSource(join(dir, rel));
      } catch (e) {
        if (e instanceof SandboxError && e.code === 'NOT_FOUND') return undefined;
        throw e;
      }
    },
  };
}

export async function pathKind(path: string): Promise<'file' | 'directory' | 'missing'> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? 'directory' : 'file';
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw ioError(e, path);
  }
}
