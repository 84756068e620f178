import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bytesSource } from '../src/loader/byte-source.ts';
import { sniffCompression, zstdStream } from '../src/loader/decompress.ts';
import { decompressStream as browserDecompress } from '../src/host/browser/decompress.ts';
import { decompressStream as nodeDecompress } from '../src/host/node/decompress.ts';
import { verifyStream } from '../src/loader/verify.ts';
import { collect, sha } from './helpers/image-fixtures.ts';

const data = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
const gz = new Uint8Array(gzipSync(data));
const zst = new Uint8Array(execFileSync('zstd', ['-q', '-c'], { input: data }));
const stream = (b: Uint8Array) => bytesSource(b).stream();
const code = (c: string) => expect.objectContaining({ code: c });

describe('decompression hosts', () => {
  const gunzips = { node: nodeDecompress, browser: browserDecompress };
  for (const [name, dec] of Object.entries(gunzips)) {
    it(`${name}: gunzips, and truncated or corrupt gzip is MALFORMED`, async () => {
      expect(sha(await collect(dec(stream(gz), 'gzip', 'g')))).toBe(sha(data));
      await expect(collect(dec(stream(gz.subarray(0, gz.length - 9)), 'gzip', 'g'))).rejects.toEqual(code('MALFORMED'));
      await expect(collect(dec(stream(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])), 'gzip', 'g'))).rejects.toEqual(code('MALFORMED'));
    });
    it(`${name}: zstd, and truncated zstd is MALFORMED`, async () => {
      expect(sha(await collect(dec(stream(zst), 'zstd', 'z')))).toBe(sha(data));
      await expect(collect(dec(stream(zst.subarray(0, zst.length - 5)), 'zstd', 'z'))).rejects.toEqual(code('MALFORMED'));
    });
    it(`${name}: a typed error from the input passes through unchanged`, async () => {
      const checked = verifyStream(stream(gz), { size: gz.length - 1, what: 'blob' });
      await expect(collect(dec(checked, 'gzip', 'g'))).rejects.toEqual(code('SIZE_MISMATCH'));
    });
  }

  it('fzstd streaming decodes multi-frame input', async () => {
    const two = new Uint8Array([...zst, ...zst]);
    const out = await collect(zstdStream(stream(two), 'z'));
    expect(sha(out)).toBe(sha(new Uint8Array([...data, ...data])));
  });

  it('sniffs gzip and zstd magic bytes', () => {
    expect(sniffCompression(gz.subarray(0, 8))).toBe('gzip');
    expect(sniffCompression(zst.subarray(0, 8))).toBe('zstd');
    expect(sniffCompression(data.subarray(0, 8))).toBe('none');
  });
});
