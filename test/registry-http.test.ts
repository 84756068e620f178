// The registry client's Node transport: plain-HTTP GETs over a bare socket (raw-http.ts), everything else
// over node:http. A TCP server here writes exact bytes, split and timed as a test needs.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hostTransport } from '../src/host/node/http.ts';
import type { HttpRequest } from '../src/loader/registry/transport.ts';

let server: Server | undefined;
const sockets = new Set<Socket>();

/** A server that answers each connection with `respond(socket, requestText)`. */
async function serve(respond: (s: Socket, request: string) => void): Promise<string> {
  server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let text = '';
    s.on('data', (b) => {
      text += b.toString('latin1');
      if (text.includes('\r\n\r\n')) respond(s, text);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as { port: number }).port}`;
}

afterEach(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

const req = (o: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'GET', headers: {}, timeoutMs: 2000, timeoutError: () => Object.assign(new Error('timed out'), { code: 'TEST_TIMEOUT' }), ...o,
});

async function bodyOf(stream: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  return Buffer.from(await new Response(stream).arrayBuffer());
}

describe('Node registry transport (plain-HTTP GET on a bare socket)', () => {
  it('reads a Content-Length body sent in pieces, with the headers split across reads', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    let seen = '';
    const base = await serve((s, request) => {
      seen = request;
      s.write('HTTP/1.1 200 OK\r\nContent-Le');
      setTimeout(() => {
        s.write(`ngth: ${data.length}\r\nDocker-Content-Digest: x\r\n\r\n`);
        s.write(data.subarray(0, 1000));
        setTimeout(() => s.end(data.subarray(1000)), 20);
      }, 20);
    });
    const t = hostTransport()!;
    const res = await t.request(`${base}/v2/a/blobs/x?y=1`, req({ headers: { accept: 'application/json', range: 'bytes=0-' } }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(data.length));
    expect(res.headers.get('Docker-Content-Digest')).toBe('x');
    expect((await bodyOf(res.body)).equals(data)).toBe(true);
    expect(seen).toMatch(/^GET \/v2\/a\/blobs\/x\?y=1 HTTP\/1\.1\r\n/);
    expect(seen).toMatch(/\r\nrange: bytes=0-\r\n/);
    t.close();
  });

  it('decodes a chunked body (with extensions and trailers) after an interim 100 response', async () => {
    const base = await serve((s) => {
      s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n');
      s.write('5;ext=1\r\nhello\r\n');
      setTimeout(() => s.end('1\r\n \r\n6\r\nworld!\r\n0\r\nx-trailer: 1\r\n\r\n'), 10);
    });
    const res = await hostTransport()!.request(`${base}/`, req());
    expect(res.status).toBe(404);
    expect((await bodyOf(res.body)).toString()).toBe('hello world!');
  });

  it('a body cut short fails with ECONNRESET after delivering what arrived (so Range can resume)', async () => {
    const base = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
      s.end(Buffer.alloc(3000, 7));
    });
    const res = await hostTransport()!.request(`${base}/`, req());
    const reader = res.body!.getReader();
    let got = 0;
    let error: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        got += value.byteLength;
      }
    } catch (e) {
      error = e;
    }
    expect(got).toBe(3000);
    expect((error as { code?: string }).code).toBe('ECONNRESET');
  });

  it('times out waiting for headers, and while waiting for body bytes', async () => {
    const silent = await serve(() => {});
    const e1 = await hostTransport()!.request(`${silent}/`, req({ timeoutMs: 100 })).catch((e: unknown) => e);
    expect((e1 as { code?: string }).code).toBe('TEST_TIMEOUT');
    await new Promise<void>((r) => server!.close(() => r()));
    for (const s of sockets) s.destroy();
    const stalls = await serve((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'));
    const res = await hostTransport()!.request(`${stalls}/`, req({ timeoutMs: 100 }));
    const e2 = await bodyOf(res.body).catch((e: unknown) => e);
    expect((e2 as { code?: string }).code).toBe('TEST_TIMEOUT');
  });

  it('bad responses are errors, not hangs: garbage status line, bad chunk size, bad content-length', async () => {
    for (const reply of ['SSH-2.0-OpenSSH\r\n\r\n', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', 'HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n']) {
      const base = await serve((s) => s.end(reply));
      const e = await hostTransport()!.request(`${base}/`, req()).then((r) => bodyOf(r.body)).catch((x: unknown) => x);
      expect((e as { code?: string }).code, reply).toBe('HPE_INVALID');
      await new Promise<void>((r) => server!.close(() => r()));
    }
    server = undefined;
  });

  it('refuses header values with line breaks (no request splitting)', async () => {
    const base = await serve((s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    await expect(hostTransport()!.request(`${base}/`, req({ headers: { authorization: 'Bearer x\r\nX-Evil: 1' } }))).rejects.toThrow(/line break/);
  });

  it('a reader slower than the network (read-ahead bounded, the socket paused and resumed): nothing is lost, the digest matches', async () => {
    const data = randomBytes(12 * 1024 * 1024);
    const base = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${data.length}\r\n\r\n`);
      s.end(data);
    });
    const res = await hostTransport()!.request(`${base}/`, req());
    const reader = res.body!.getReader();
    const h = createHash('sha256');
    let chunks = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      h.update(value);
      if (chunks++ < 4) await new Promise((r) => setTimeout(r, 50));
    }
    expect(h.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('other methods go through node:http with a request body', async () => {
    let request = '';
    const base = await serve((s, text) => {
      request = text;
      if (text.length >= text.indexOf('\r\n\r\n') + 4 + 5) s.end('HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n');
    });
    const t = hostTransport()!;
    const res = await t.request(`${base}/upload?digest=x`, req({ method: 'PUT', body: new TextEncoder().encode('hello') }));
    expect(res.status).toBe(201);
    expect(request).toMatch(/^PUT \/upload\?digest=x HTTP\/1\.1\r\n/);
    expect(request.toLowerCase()).toContain('content-length: 5');
    expect(request.endsWith('hello')).toBe(true);
    t.close();
  });
});
