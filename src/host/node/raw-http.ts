// Plain-HTTP GET over a bare TCP socket: what the registry client uses on Node for `http://` URLs (loopback
// registries, --insecure). The socket reads into one reused buffer (net's `onread`); body bytes are copied
// once into 1 MiB batches that the reader takes whole. node:http's IncomingMessage costs about 4x the CPU
// per byte on a loopback pull; HTTPS and every other method stay on node:http.
import * as net from 'node:net';
import type { HttpHeaders, HttpRequest, HttpResponse } from '../../loader/registry/transport.ts';

const SOCKET_BUFFER_BYTES = 256 * 1024;
const BATCH_BYTES = 1024 * 1024;
/** Body bytes buffered before the socket is paused until the reader takes them. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;

class ResponseHeaders implements HttpHeaders {
  readonly #map = new Map<string, string>();
  add(name: string, value: string): void {
    const k = name.toLowerCase();
    const had = this.#map.get(k);
    this.#map.set(k, had === undefined ? value : `${had}, ${value}`);
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
}

function protocolError(message: string): Error {
  return Object.assign(new Error(`bad HTTP response: ${message}`), { code: 'HPE_INVALID' });
}

function cut(): Error {
  return Object.assign(new Error('connection closed before the body ended'), { code: 'ECONNRESET' });
}

/** One GET on its own connection (`Connection: close`); resolves at the response headers. */
export function rawGet(url: URL, r: HttpRequest): Promise<HttpResponse> {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`, 'connection: close'];
  for (const [k, v] of Object.entries(r.headers)) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) return Promise.reject(new TypeError(`header ${JSON.stringify(k)} has a line break`));
    if (k.toLowerCase() !== 'host' && k.toLowerCase() !== 'connection') lines.push(`${k}: ${v}`);
  }
  const request = `${lines.join('\r\n')}\r\n\r\n`;

  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    // ---- response head ----
    let head = '';
    // ---- body framing and delivery ----
    let framing: 'length' | 'chunked' | 'close' | 'none' = 'none';
    let remaining = 0; // 'length': bytes left; 'chunked': bytes left in this chunk
    let chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
    let line = '';
    let ended = false;
    let failure: unknown;
    const queue: Uint8Array[] = [];
    let queued = 0;
    /** Set when the read callback paused the socket (socket.isPaused() does not show it). */
    let paused = false;
    let batch: Buffer | undefined;
    let batchFill = 0;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };

    const push = (src: Buffer, start: number, end: number) => {
      while (start < end) {
        batch ??= Buffer.allocUnsafe(BATCH_BYTES);
        const n = Math.min(end - start, BATCH_BYTES - batchFill);
        src.copy(batch, batchFill, start, start + n);
        batchFill += n;
        start += n;
        if (batchFill === BATCH_BYTES) flush();
      }
    };
    const flush = () => {
      if (!batch || batchFill === 0) return;
      queue.push(new Uint8Array(batch.buffer, batch.byteOffset, batchFill));
      queued += batchFill;
      batch = undefined;
      batchFill = 0;
    };
    const finish = () => {
      ended = true;
      flush();
      socket.destroy();
      notify();
    };
    const fail = (e: unknown) => {
      if (!settled) {
        settled = true;
        socket.destroy();
        reject(e);
        return;
      }
      failure ??= e;
      flush();
      socket.destroy();
      notify();
    };

    /** Feeds body bytes through the framing; returns false once the body is complete. */
    const body = (buf: Buffer, at: number, end: number): void => {
      if (framing === 'length' || framing === 'close') {
        const n = framing === 'length' ? Math.min(remaining, end - at) : end - at;
        push(buf, at, at + n);
        if (framing === 'length') {
          remaining -= n;
          if (remaining === 0) finish();
        }
        return;
      }
      while (at < end && !ended) {
        if (chunkState === 'data') {
          const n = Math.min(remaining, end - at);
          push(buf, at, at + n);
          at += n;
          remaining -= n;
          if (remaining === 0) chunkState = 'data-end';
          continue;
        }
        // size, data-end and trailer lines: read up to LF
        const lf = buf.indexOf(10, at);
        const stop = lf < 0 || lf >= end ? end : lf;
        line += buf.toString('latin1', at, stop);
        if (line.length > 4096) return fail(protocolError('chunk line too long'));
        if (stop === end) return;
        at = stop + 1;
        const text = line.replace(/\r$/, '');
        line = '';
        if (chunkState === 'data-end') {
          if (text !== '') return fail(protocolError('chunk not followed by CRLF'));
          chunkState = 'size';
        } else if (chunkState === 'size') {
          const size = Number.parseInt(text.split(';')[0]!.trim(), 16);
          if (!Number.isSafeInteger(size) || size < 0 || !/^[0-9a-fA-F]+/.test(text.trim())) return fail(protocolError(`bad chunk size ${JSON.stringify(text.slice(0, 20))}`));
          if (size === 0) chunkState = 'trailer';
          else {
            remaining = size;
            chunkState = 'data';
          }
        } else if (text === '') {
          finish();
        }
      }
    };

    const onHead = (buf: Buffer, at: number, end: number): void => {
      head += buf.toString('latin1', at, end);
      for (;;) {
        const stop = head.indexOf('\r\n\r\n');
        if (stop < 0) {
          if (head.length > MAX_HEAD_BYTES) fail(protocolError('response head too large'));
          return;
        }
        const rest = head.length - (stop + 4);
        const text = head.slice(0, stop);
        head = head.slice(stop + 4);
        const [statusLine, ...fields] = text.split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine!);
        if (!m) return fail(protocolError(`status line ${JSON.stringify(statusLine!.slice(0, 40))}`));
        const status = Number(m[1]);
        if (status >= 100 && status < 200) continue; // interim response
        const headers = new ResponseHeaders();
        for (const f of fields) {
          const colon = f.indexOf(':');
          if (colon <= 0) return fail(protocolError(`header line ${JSON.stringify(f.slice(0, 40))}`));
          headers.add(f.slice(0, colon).trim(), f.slice(colon + 1).trim());
        }
        const te = headers.get('transfer-encoding');
        const length = headers.get('content-length');
        if (status === 204 || status === 304) framing = 'none';
        else if (te !== null) {
          if (!/(^|,)\s*chunked\s*$/i.test(te)) return fail(protocolError(`transfer-encoding ${te}`));
          framing = 'chunked';
        } else if (length !== null) {
          if (!/^\d+$/.test(length)) return fail(protocolError(`content-length ${JSON.stringify(length)}`));
          framing = 'length';
          remaining = Number(length);
        } else framing = 'close';
        settled = true;
        socket.setTimeout(0);
        resolve({ status, headers, url: url.toString(), body: stream() });
        if (framing === 'none' || (framing === 'length' && remaining === 0)) finish();
        else if (rest > 0) {
          const tail = Buffer.from(head, 'latin1');
          head = '';
          body(tail, 0, tail.length);
        }
        return;
      }
    };

    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: {
        buffer: Buffer.allocUnsafe(SOCKET_BUFFER_BYTES),
        callback: (n: number, buf: Uint8Array): boolean => {
          const b = buf as Buffer;
          if (!settled) onHead(b, 0, n);
          else if (!ended && failure === undefined) body(b, 0, n);
          if (queued >= READ_AHEAD_BYTES) {
            notify();
            paused = true;
            return false; // stops reading until the reader catches up
          }
          notify();
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(r.timeoutMs, () => fail(r.timeoutError()));
    socket.once('connect', () => socket.write(request));
    socket.on('error', (e) => fail(e));
    socket.once('end', () => {
      if (!settled) fail(cut());
      else if (framing === 'close') finish();
      else if (!ended) fail(cut());
    });
    socket.once('close', () => {
      if (!settled) fail(cut());
      else if (!ended) fail(failure ?? cut());
    });

    function stream(): ReadableStream<Uint8Array> {
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          while (queue.length === 0 && !ended && failure === undefined) {
            // A partly filled batch is handed over rather than waiting for more.
            if (batchFill > 0) {
              flush();
              break;
            }
            let timer: ReturnType<typeof setTimeout> | undefined;
            await new Promise<void>((done) => {
              wake = done;
              timer = setTimeout(() => fail(r.timeoutError()), r.timeoutMs);
            });
            clearTimeout(timer);
          }
          // Bytes that arrived before a failure are delivered first: a resume with Range starts after them.
          if (queue.length > 0) {
            const chunk = queue.shift()!;
            queued -= chunk.byteLength;
            if (paused && queued < READ_AHEAD_BYTES) {
              paused = false;
              socket.resume();
            }
            c.enqueue(chunk);
            return;
          }
          if (failure !== undefined) throw failure;
          c.close();
        },
        cancel() {
          queue.length = 0;
          queued = 0;
          ended = true;
          socket.destroy();
        },
      }, { highWaterMark: 0 });
    }
  });
}
