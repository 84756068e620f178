import { describe, expect, it } from 'vitest';
import { bytesSource } from '../src/loader/byte-source.ts';
import { indexTar, peekTarMember, tarTree } from '../src/loader/tar-index.ts';
import { collect } from './helpers/image-fixtures.ts';
import { makeTar, paxBlocks, rawEntry, rawTar, streamOf, ustarHeader } from './helpers/tar-fixtures.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function member(tar: Uint8Array, name: string): Promise<string | undefined> {
  const f = await tarTree(bytesSource(tar), await indexTar(bytesSource(tar))).open(name);
  return f && text(await collect(f.stream()));
}

describe('tar index', () => {
  it('reads ustar prefixes, PAX paths and GNU long names', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    const gnuName = new TextEncoder().encode(`${'g'.repeat(150)}\0`);
    const tar = rawTar([
      rawEntry({ name: 'file', prefix: 'some/dir' }, 'prefixed'),
      paxBlocks({ path: long }),
      rawEntry({ name: 'ignored-by-pax' }, 'pax'),
      rawEntry({ name: '././@LongLink', typeflag: 'L' }, gnuName),
      rawEntry({ name: 'truncated-gnu' }, 'gnu'),
      rawEntry({ name: './dot/slash' }, 'dotted'),
    ]);
    expect(await member(tar, 'some/dir/file')).toBe('prefixed');
    expect(await member(tar, long)).toBe('pax');
    expect(await member(tar, 'ignored-by-pax')).toBeUndefined();
    expect(await member(tar, 'g'.repeat(150))).toBe('gnu');
    expect(await member(tar, 'dot/slash')).toBe('dotted');
  });

  it('reads GNU base-256 sizes', async () => {
    const h = ustarHeader({ name: 'big', size: 5 });
    // rewrite the size field as base-256 (high bit set) holding 5
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h[135] = 5;
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of h) sum += x;
    h.set(new TextEncoder().encode(sum.toString(8).padStart(6, '0') + '\0 '), 148);
    const data = new Uint8Array(512);
    data.set(new TextEncoder().encode('hello'));
    expect(await member(rawTar([h, data]), 'big')).toBe('hello');
  });

  it('follows hard links and relative symlinks within the archive, and nothing outside it', async () => {
    const tar = await makeTar([
      { path: 'a/real', data: 'content' },
      { path: 'b/hard', type: 'link', linkname: 'a/real' },
      { path: 'b/soft', type: 'symlink', linkname: '../a/real' },
      { path: 'b/out', type: 'symlink', linkname: '../../../etc/passwd' },
      { path: 'loop', type: 'symlink', linkname: 'loop' },
    ]);
    expect(await member(tar, 'b/hard')).toBe('content');
    expect(await member(tar, 'b/soft')).toBe('content');
    expect(await member(tar, 'b/out')).toBeUndefined();
    expect(await member(tar, 'loop')).toBeUndefined();
  });

  it('peeks at one member of a tar stream, across chunk boundaries', async () => {
    const tar = await makeTar([
      { path: 'x', data: new Uint8Array(70_000) },
      { path: 'app/main.wasm', data: 'ABCDEFGHIJ' },
    ]);
    for (const chunk of [7, 512, 100_000]) {
      expect(text((await peekTarMember(streamOf(tar, chunk), '/app/main.wasm', 8, 't'))!)).toBe('ABCDEFGH');
      expect(await peekTarMember(streamOf(tar, chunk), 'nope', 8, 't')).toBeUndefined();
    }
  });

  it('a tar that ends without zero blocks at a member boundary is accepted', async () => {
    const tar = rawTar([rawEntry({ name: 'only' }, 'x')], false);
    expect(await member(tar, 'only')).toBe('x');
  });
});
