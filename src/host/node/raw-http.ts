// Plain-HTTP GET over a bare TCP socket: what the registry client uses on Node for `http://` URLs (loopback
// registries, --insecure). The socket reads straight into 1 MiB batches (net's `onread` with a buffer per
// read), and the reader gets views of them: no copy after the kernel's, no Buffer per socket read.
// node:http's IncomingMessage costs about 4x the CPU per byte on a loopback pull; HTTPS and every other
// method stay on node:http.
import * as net from 'node:net';
import type { HttpHeaders, HttpRequest, HttpResponse } from '../../loader/registry/transport.ts';

const BATCH_BYTES = 1024 * 1024;
/** A batch with less room than this left is retired; the next read goes into a fresh one. */
const MIN_READ_BYTES = 64 * 1024;
/** Body bytes buffered before the socket is paused until the reader takes them. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/**
 * Body pieces smaller than this that do not continue the last queued view (tiny chunks) are copied
 * together into SMALL_BATCH_BYTES buffers: a view per piece would cost ~50x its bytes in heap and make
 * the queue O(n^2) to drain (2 MiB of 1-byte chunks took minutes).
 */
const SMALL_PIECE_BYTES = 4096;
const SMALL_BATCH_BYTES = 64 * 1024;
/** Bytes of response heads (interim 1xx ones included), and of chunked trailers, a response may have. */
const MAX_HEAD_BYTES = 64 * 1024;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Control characters other than HT: never valid in a field value (RFC 9110 5.5); CR and LF would split it. */
const FIELD_CONTROL = /[\0-\x08\x0a-\x1f\x7f]/;
/** A chunk size (13 hex digits reach 2^52) and the whitespace allowed before its extensions. */
const CHUNK_SIZE = /^0*[0-9a-fA-F]{1,13}[ \t]*$/;

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
    /** Bytes of this response's heads read so far, interim ones included. */
    let headBytes = 0;
    let trailerBytes = 0;
    // ---- body framing and delivery ----
    let framing: 'length' | 'chunked' | 'close' | 'none' = 'none';
    let remaining = 0; // 'length': bytes left; 'chunked': bytes left in this chunk
    let chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
    let line = '';
    let ended = false;
    let cancelled = false;
    let failure: unknown;
    const queue: Uint8Array[] = [];
    let queued = 0;
    /** Set when the read callback paused the socket (socket.isPaused() does not show it). */
    let paused = false;
    let batch: Buffer | undefined;
    /** Bytes of `batch` already handed to the socket for reads. */
    let batchUsed = 0;
    let small: Buffer | undefined;
    let smallUsed = 0;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };

    /** Queues body bytes (a view of a batch); a view that continues the last one is merged into it. */
    const push = (src: Uint8Array, start: number, end: number) => {
      if (end <= start) return;
      const n = end - start;
      const last = queue[queue.length - 1];
      if (last && last.buffer === src.buffer && last.byteOffset + last.byteLength === src.byteOffset + start) {
        queue[queue.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.byteLength + n);
      } else if (n >= SMALL_PIECE_BYTES) {
        queue.push(src.subarray(start, end));
      } else {
        if (!small || smallUsed + n > small.byteLength) {
          small = Buffer.allocUnsafeSlow(SMALL_BATCH_BYTES);
          smallUsed = 0;
        }
        small.set(src.subarray(start, end), smallUsed);
        if (last && last.buffer === small.buffer && last.byteOffset + last.byteLength === small.byteOffset + smallUsed) {
          queue[queue.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.byteLength + n);
        } else {
          queue.push(small.subarray(smallUsed, smallUsed + n));
        }
        smallUsed += n;
      }
      queued += n;
    };
    const finish = () => {
      ended = true;
      socket.destroy();
      notify();
    };
    const fail = (e: unknown) => {
      if (!settled) {
        settled = true;
        clearTimeout(headTimer);
        socket.destroy();
        reject(e);
        return;
      }
      failure ??= e;
      socket.destroy();
      notify();
    };

    /** Feeds body bytes through the framing; returns false once the body is complete. */
    const body = (buf: Uint8Array, at: number, end: number): void => {
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
        line += Buffer.from(buf.buffer, buf.byteOffset + at, stop - at).toString('latin1');
        if (line.length > 4096) return fail(protocolError('chunk line too long'));
        if (stop === end) return;
        at = stop + 1;
        const text = line.replace(/\r$/, '');
        line = '';
        if (chunkState === 'data-end') {
          if (text !== '') return fail(protocolError('chunk not followed by CRLF'));
          chunkState = 'size';
        } else if (chunkState === 'size') {
          const semi = text.indexOf(';');
          const sizeText = semi < 0 ? text : text.slice(0, semi);
          if (!CHUNK_SIZE.test(sizeText)) return fail(protocolError(`bad chunk size ${JSON.stringify(text.slice(0, 20))}`));
          const size = Number.parseInt(sizeText, 16);
          if (size === 0) chunkState = 'trailer';
          else {
            remaining = size;
            chunkState = 'data';
          }
        } else if (text === '') {
          finish();
        } else {
          trailerBytes += text.length + 2;
          if (trailerBytes > MAX_HEAD_BYTES) return fail(protocolError('trailers too large'));
        }
      }
    };

    const onHead = (buf: Uint8Array, at: number, end: number): void => {
      // Bytes of earlier reads still in `head`; the head's end maps back to an offset in this read.
      // Only the head's allowance is decoded; bytes past it are body bytes, or the head is too large.
      const prior = head.length;
      const take = Math.min(end - at, MAX_HEAD_BYTES - headBytes);
      head += Buffer.from(buf.buffer, buf.byteOffset + at, take).toString('latin1');
      headBytes += take;
      let from = 0;
      for (;;) {
        // The bytes kept from earlier reads were searched already: a head sent in tiny writes costs no quadratic scan.
        const stop = head.indexOf('\r\n\r\n', Math.max(from, prior - 3));
        if (stop < 0) {
          if (take < end - at) return fail(protocolError('response head too large'));
          head = head.slice(from);
          return;
        }
        const text = head.slice(from, stop);
        from = stop + 4;
        const [statusLine, ...fields] = text.split('\r\n');
        const m = /^HTTP\/1\.[01] ([1-9]\d\d)(?: |$)/.exec(statusLine!);
        if (!m) return fail(protocolError(`status line ${JSON.stringify(statusLine!.slice(0, 40))}`));
        const status = Number(m[1]);
        if (status >= 100 && status < 200) continue; // interim response
        const headers = new ResponseHeaders();
        for (const f of fields) {
          // A name that is no token (obs-fold's leading whitespace included) or a control character: refused.
          const colon = f.indexOf(':');
          const name = f.slice(0, colon);
          const value = f.slice(colon + 1);
          if (colon <= 0 || !FIELD_NAME.test(name) || FIELD_CONTROL.test(value)) return fail(protocolError(`header line ${JSON.stringify(f.slice(0, 40))}`));
          headers.add(name, value.trim());
        }
        const te = headers.get('transfer-encoding');
        const length = headers.get('content-length');
        if (status === 204 || status === 304) framing = 'none';
        else if (te !== null) {
          // Only chunked alone: another coding under it would reach the reader still coded.
          if (!/^[ \t]*chunked[ \t]*$/i.test(te)) return fail(protocolError(`transfer-encoding ${te}`));
          framing = 'chunked';
        } else if (length !== null) {
          if (!/^\d+$/.test(length) || !Number.isSafeInteger(Number(length))) return fail(protocolError(`content-length ${JSON.stringify(length)}`));
          framing = 'length';
          remaining = Number(length);
        } else framing = 'close';
        head = '';
        settled = true;
        clearTimeout(headTimer);
        resolve({ status, headers, url: url.toString(), body: stream() });
        if (framing === 'none' || (framing === 'length' && remaining === 0)) finish();
        else body(buf, at + from - prior, end);
        return;
      }
    };

    const socket = net.connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 80),
      onread: {
        // Each read lands in the free part of the current batch.
        buffer: () => {
          if (!batch || BATCH_BYTES - batchUsed < MIN_READ_BYTES) {
            batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
            batchUsed = 0;
          }
          return batch.subarray(batchUsed);
        },
        callback: (n: number, buf: Uint8Array): boolean => {
          batchUsed += n;
          if (!settled) onHead(buf, 0, n);
          else if (!ended && failure === undefined) body(buf, 0, n);
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
    // A deadline for the whole head (connect included), as fetch has: an idle timeout would let a head
    // sent a byte at a time hold the request for 64 Ki timeouts.
    const headTimer = setTimeout(() => fail(r.timeoutError()), r.timeoutMs);
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
          // One deadline per wait for body bytes: reads that bring none (chunk lines, trailers) do not restart it.
          if (queue.length === 0 && !ended && failure === undefined) {
            const timer = setTimeout(() => fail(r.timeoutError()), r.timeoutMs);
            while (queue.length === 0 && !ended && failure === undefined) await new Promise<void>((done) => (wake = done));
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
          if (!cancelled) c.close();
        },
        cancel() {
          cancelled = true;
          queue.length = 0;
          queued = 0;
          ended = true;
          socket.destroy();
          notify(); // a pull still waiting for bytes returns, its timer cleared
        },
      }, { highWaterMark: 0 });
    }
  });
}
