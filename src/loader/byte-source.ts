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

const HTTP_BLOCK = 64 * 1024;
const HTTP_CACHED_BLOCKS = 32;

function httpError(url: string, status: number): SandboxError {
  if (status === 404 || status === 410) return new SandboxError('NOT_FOUND', `${url}: HTTP ${status}`);
  if (status === 401) return new SandboxError('UNAUTHORIZED', `${url}: HTTP ${status}`);
  if (status === 403) return new SandboxError('DENIED', `${url}: HTTP ${status}`);
  return new SandboxError('NETWORK', `${url}: HTTP ${status}`);
}

/**
 * A file served over HTTP, read by `Range` requests, so a large archive is indexed and streamed without
 * being downloaded whole. Small reads (tar headers) go through a cache of 64 KiB blocks. Servers without
 * byte ranges fall back to one download held as a Blob.
 */
export async function httpByteSource(url: string, init: RequestInit = {}): Promise<ByteSource> {
  const get = async (headers: Record<string, string>, method = 'GET'): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, { ...init, method, headers: { ...(init.headers as Record<string, string> | undefined), ...headers } });
    } catch (e) {
      throw new SandboxError('NETWORK', `${url}: ${(e as Error).message}`, { cause: e });
    }
    if (!res.ok) throw httpError(url, res.status);
    return res;
  };
  const head = await get({}, 'HEAD');
  const size = Number(head.headers.get('content-length'));
  if (head.headers.get('accept-ranges') !== 'bytes' || !Number.isSafeInteger(size)) {
    return blobSource(await (await get({})).blob(), url);
  }
  const range = async (start: number, end: number): Promise<Response> => {
    const res = await get({ Range: `bytes=${start}-${end - 1}` });
    if (res.status !== 206) {
      await res.body?.cancel().catch(() => {});
      throw new SandboxError('NETWORK', `${url}: the server ignored the byte range ${start}-${end - 1}`);
    }
    return res;
  };
  const blocks = new Map<number, Promise<Uint8Array>>();
  const block = (i: number): Promise<Uint8Array> => {
    let b = blocks.get(i);
    if (!b) {
      b = range(i * HTTP_BLOCK, Math.min(size, (i + 1) * HTTP_BLOCK)).then(async (r) => new Uint8Array(await r.arrayBuffer()));
      b.catch(() => blocks.delete(i));
      blocks.set(i, b);
      if (blocks.size > HTTP_CACHED_BLOCKS) blocks.delete(blocks.keys().next().value!);
    }
    return b;
  };
  return {
    size,
    name: url,
    stream(offset, length) {
      const [start, end] = clampRange(size, offset, length);
      if (start === end) return bytesSource(new Uint8Array(0)).stream();
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      return new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          reader ??= (await range(start, end)).body!.getReader();
          const { done, value } = await reader.read();
          if (done) ctrl.close();
          else ctrl.enqueue(value);
        },
        async cancel(reason) { await reader?.cancel(reason).catch(() => {}); },
      });
    },
    async read(offset, length) {
      const [start, end] = clampRange(size, offset, length);
      if (end - start > HTTP_BLOCK) return new Uint8Array(await (await range(start, end)).arrayBuffer());
      const out = new Uint8Array(end - start);
      for (let pos = start; pos < end;) {
        const i = Math.floor(pos / HTTP_BLOCK);
        const b = await block(i);
        const from = pos - i * HTTP_BLOCK;
        const n = Math.min(end - pos, b.length - from);
        if (n <= 0) break;
        out.set(b.subarray(from, from + n), pos - start);
        pos += n;
      }
      return out;
    },
  };
}
