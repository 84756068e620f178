import { SandboxError } from '../errors.ts';

/**
 * Random-access bytes: a file (Node), a Blob / ArrayBuffer / Uint8Array (browsers), or a member of a tar.
 * Streams read ranges on demand, so a multi-GB archive is never held in memory.
 */
export interface ByteSource {
  readonly size: number;
  /** Names the bytes in error messages (a path, "blob", "archive.tar:index.json"). */
  readonly name: string;
  /** `length` bytes from `offset` (default: to the end). */
  stream(offset?: number, length?: number): ReadableStream<Uint8Array>;
  /** Up to `length` bytes from `offset` (fewer at the end of the source). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Named files of an image layout: a directory, a tar archive's members, or files held in memory. */
export interface FileTree {
  readonly name: string;
  /** The file at `path` (relative, '/'-separated), or undefined when there is none. */
  open(path: string): Promise<ByteSource | undefined>;
}

const CHUNK = 256 * 1024;

export function clampRange(size: number, offset = 0, length?: number): [start: number, end: number] {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new SandboxError('INVALID_ARGUMENT', `bad offset ${offset}`);
  const start = Math.min(offset, size);
  const end = length === undefined ? size : Math.min(size, start + Math.max(0, length));
  return [start, end];
}

export function bytesSource(data: Uint8Array, name = 'bytes'): ByteSource {
  return {
    size: data.byteLength,
    name,
    stream(offset, length) {
      const [start, end] = clampRange(data.byteLength, offset, length);
      let pos = start;
      return new ReadableStream<Uint8Array>({
        pull(ctrl) {
          if (pos >= end) { ctrl.close(); return; }
          const n = Math.min(CHUNK, end - pos);
          ctrl.enqueue(data.subarray(pos, pos + n));
          pos += n;
        },
      });
    },
    async read(offset, length) {
      const [start, end] = clampRange(data.byteLength, offset, length);
      return data.subarray(start, end);
    },
  };
}

export function blobSource(blob: Blob, name = 'blob'): ByteSource {
  return {
    size: blob.size,
    name,
    stream(offset, length) {
      const [start, end] = clampRange(blob.size, offset, length);
      return blob.slice(start, end).stream() as ReadableStream<Uint8Array>;
    },
    async read(offset, length) {
      const [start, end] = clampRange(blob.size, offset, length);
      return new Uint8Array(await blob.slice(start, end).arrayBuffer());
    },
  };
}

/** Any of the in-memory forms browsers hand us. */
export function toByteSource(data: ByteSource | Blob | ArrayBuffer | Uint8Array, name?: string): ByteSource {
  if (data instanceof Uint8Array) return bytesSource(data, name);
  if (data instanceof ArrayBuffer) return bytesSource(new Uint8Array(data), name);
  if (typeof Blob !== 'undefined' && data instanceof Blob) return blobSource(data, name);
  return data as ByteSource;
}

/** `size` bytes of `src` from `offset`, as a source of its own. */
export function sliceSource(src: ByteSource, offset: number, size: number, name: string): ByteSource {
  return {
    size,
    name,
    stream(o, length) {
      const [start, end] = clampRange(size, o, length);
      return src.stream(offset + start, end - start);
    },
    async read(o, length) {
      const [start, end] = clampRange(size, o, length);
      return src.read(offset + start, end - start);
    },
  };
}

/** Files held in memory, e.g. a directory picked in a browser. */
export function memoryTree(files: Map<string, Uint8Array | Blob> | Record<string, Uint8Array | Blob>, name = 'memory'): FileTree {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  return {
    name,
    async open(path) {
      const f = map.get(path);
      return f === undefined ? undefined : toByteSource(f, `${name}/${path}`);
    },
  };
}

/** Reads a whole stream into memory, refusing more than `limit` bytes. */
export async function readAll(stream: ReadableStream<Uint8Array>, limit = Number.MAX_SAFE_INTEGER, what = 'stream'): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw new SandboxError('LIMIT_EXCEEDED', `${what} is larger than ${limit} bytes`, { data: { limit } });
      }
      parts.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.byteLength; }
  return out;
}

/** Checks a '/'-separated relative path taken from image metadata: no `..`, not absolute. */
export function safeRelativePath(path: string, what: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (path.startsWith('/') || parts.includes('..') || parts.length === 0 || path.includes('\0')) {
    throw new SandboxError('MALFORMED', `${what}: unsafe path ${JSON.stringify(path.slice(0, 200))}`);
  }
  return parts.join('/');
}
