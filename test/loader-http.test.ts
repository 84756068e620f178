import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpByteSource } from '../src/loader/byte-source.ts';
import { openImage } from '../src/loader/open-image.ts';
import { sourceFromBytes } from '../src/loader/sources/detect.ts';
import { collect, Layout, sha, tagged } from './helpers/image-fixtures.ts';

let archive: Uint8Array;
let layerDiff: string;
let server: Server;
let base: string;
const served = { requests: 0, bytes: 0 };

beforeAll(async () => {
  const layout = new Layout();
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff);
  const img = await layout.image({ layers: [{ entries: [{ path: 'big.bin', data: big }], compression: 'none' }] });
  layerDiff = img.layers[0]!.diffId;
  layout.finish([tagged(img.manifest, 'v1')]);
  archive = await layout.toTar();
  server = createServer((req, res) => {
    served.requests++;
    const ranged = req.url === '/ranged.tar';
    if (req.url !== '/ranged.tar' && req.url !== '/plain.tar') { res.writeHead(404).end(); return; }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (ranged && m) {
      const [start, end] = [Number(m[1]), Math.min(Number(m[2]), archive.length - 1)];
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${archive.length}`, 'accept-ranges': 'bytes' });
      served.bytes += end - start + 1;
      res.end(req.method === 'HEAD' ? undefined : archive.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-length': archive.length, ...(ranged ? { 'accept-ranges': 'bytes' } : {}) });
    if (req.method !== 'HEAD') served.bytes += archive.length;
    res.end(req.method === 'HEAD' ? undefined : archive);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => { await new Promise((r) => server.close(r)); });

describe('archives over HTTP', () => {
  it('indexes and opens an OCI archive by Range requests without downloading it whole', async () => {
    served.requests = 0;
    served.bytes = 0;
    const core = await sourceFromBytes(await httpByteSource(`${base}/ranged.tar`), 'remote');
    const image = await openImage(core, { transport: 'oci-archive', path: 'remote', tag: 'v1' });
    expect(served.bytes).toBeLessThan(archive.length / 4);
    expect(sha(await collect(await image.layers[0]!.open()))).toBe(layerDiff);
  });

  it('falls back to one download when the server has no byte ranges; 404 is NOT_FOUND', async () => {
    const core = await sourceFromBytes(await httpByteSource(`${base}/plain.tar`), 'remote');
    const image = await openImage(core, { transport: 'oci-archive', path: 'remote' });
    expect(sha(await collect(await image.layers[0]!.open()))).toBe(layerDiff);
    await expect(httpByteSource(`${base}/missing.tar`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
