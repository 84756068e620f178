// The registry client's HTTP on Node: plain-HTTP GETs through raw-http.ts, the rest over node:http/https
// with a keep-alive agent per client, loaded on first use (node:https costs ~15 ms to load, and a loopback
// pull needs neither). Response bodies arrive as the socket delivers them and are handed on in batches
// (what came in while the consumer wrote the previous batch to disk); request bodies stream from their
// source with back-pressure. Core code reaches this through `#host/http`.
import type * as http from 'node:http';
import type { HttpBody, HttpRequest, HttpResponse, HttpTransport } from '../../loader/registry/transport.ts';
import { rawGet } from './raw-http.ts';

/** Bytes buffered from the socket before it is paused until the reader takes them. */
const READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** A body this small is drained on cancel, so its kept-alive connection can be reused. */
const DRAIN_ON_CANCEL_BYTES = 64 * 1024;

interface Client {
  agent: http.Agent;
  request: typeof http.request;
}

export function hostTransport(): HttpTransport | undefined {
  const clients = new Map<string, Promise<Client>>();
  const clientFor = (protocol: string): Promise<Client> => {
    let c = clients.get(protocol);
    if (!c) {
      c = (protocol === 'https:' ? import('node:https') : import('node:http')).then((m) => ({ agent: new m.Agent({ keepAlive: true }), request: m.request }));
      clients.set(protocol, c);
    }
    return c;
  };
  return {
    streamsBodies: true,
    close() {
      for (const c of clients.values()) void c.then((x) => x.agent.destroy());
    },
    async request(url, r) {
      const u = new URL(url);
      // Plain-HTTP GETs (loopback registries, blobs above all) take the lean path; see raw-http.ts.
      if (u.protocol === 'http:' && r.method === 'GET' && !r.body) return rawGet(u, r);
      const { agent, request: send } = await clientFor(u.protocol);
      return new Promise<HttpResponse>((resolve, reject) => {
        const headers: Record<string, string> = { ...r.headers };
        if (r.body) headers['content-length'] = String(r.body instanceof Uint8Array ? r.body.byteLength : r.body.size);
        const req = send(u, { method: r.method, headers, agent });
        // Until the response headers: no socket activity (sending included) for timeoutMs is a timeout.
        req.setTimeout(r.timeoutMs, () => req.destroy(r.timeoutError()));
        req.once('error', reject);
        req.once('response', (res) => {
          req.setTimeout(0);
          resolve({
            status: res.statusCode ?? 0,
            headers: { get: (name) => headerValue(res.headers[name.toLowerCase()]) },
            url,
            body: r.method === 'HEAD' ? drained(res) : bodyStream(req, res, r),
          });
        });
        writeBody(req, r.body).catch((e: unknown) => req.destroy(e as Error));
      });
    },
  };
}

function headerValue(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

async function writeBody(req: http.ClientRequest, body: HttpBody | undefined): Promise<void> {
  if (!body) return void req.end();
  if (body instanceof Uint8Array) return void req.end(body);
  const reader = (await body.open()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (req.destroyed) throw new Error('request closed');
      if (!req.write(value)) await drainOrClose(req);
    }
    req.end();
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    throw e;
  }
}

/** Resolves when the request can take more (or has closed); the listeners go either way. */
function drainOrClose(req: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

function drained(res: http.IncomingMessage): null {
  res.resume();
  return null;
}

/** The response body as a web stream: each read takes everything buffered so far (at least one socket chunk). */
function bodyStream(req: http.ClientRequest, res: http.IncomingMessage, r: HttpRequest): ReadableStream<Uint8Array> {
  const queue: Buffer[] = [];
  let queued = 0;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  res.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.byteLength;
    if (queued >= READ_AHEAD_BYTES) res.pause();
    notify();
  });
  res.once('end', () => {
    ended = true;
    notify();
  });
  res.once('error', (e) => {
    failure ??= e;
    notify();
  });
  res.once('close', () => {
    if (!res.complete) failure ??= Object.assign(new Error('connection closed before the body ended'), { code: 'ECONNRESET' });
    notify();
  });
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      while (queue.length === 0 && !ended && failure === undefined) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(() => {
            failure ??= r.timeoutError();
            req.destroy();
            notify();
          }, r.timeoutMs);
        });
        clearTimeout(timer);
      }
      // Bytes that arrived before a failure are delivered first: a resume with Range starts after them.
      if (queue.length > 0) {
        const chunk = queue.length === 1 ? queue[0]! : Buffer.concat(queue, queued);
        queue.length = 0;
        queued = 0;
        if (res.isPaused() && !ended) res.resume();
        c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        return;
      }
      if (failure !== undefined) throw failure;
      c.close();
    },
    cancel() {
      queue.length = 0;
      if (res.complete) return;
      const length = Number(res.headers['content-length']);
      if (Number.isFinite(length) && length <= DRAIN_ON_CANCEL_BYTES) res.resume();
      else req.destroy();
    },
  }, { highWaterMark: 0 });
}
