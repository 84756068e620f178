import { describe, expect, test } from 'vitest';
import { applyTar, type TarLimits } from '../src/fs/apply-tar.ts';
import type { DirInode } from '../src/fs/inode.ts';
import type { LayerTree } from '../src/fs/layer-tree.ts';
import { SandboxError, type ErrorCode } from '../src/errors.ts';
import { sha256Text } from '../src/loader/digest.ts';
import {
  concat,
  gzip,
  makeTar,
  paxBlocks,
  rawEntry,
  rawTar,
  streamOf,
  ustarHeader,
  type FixtureEntry,
} from './helpers/tar-fixtures.ts';

function gunzip(): ReadableWritablePair<Uint8Array, Uint8Array> {
  return new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}

const ID = { chainId: sha256Text('safety chain'), diffId: sha256Text('safety diff') };

interface Tracked {
  stream: ReadableStream<Uint8Array>;
  pulls: () => number;
  finished: () => boolean;
  cancelled: () => boolean;
}

/** A stream over `bytes` that records how far it was read. */
function tracked(bytes: Uint8Array, chunk = 4096, failAtEnd?: unknown): Tracked {
  let off = 0;
  let pulls = 0;
  let finished = false;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      pulls++;
      if (off >= bytes.length) {
        finished = true;
        if (failAtEnd !== undefined) c.error(failAtEnd);
        else c.close();
        return;
      }
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, pulls: () => pulls, finished: () => finished, cancelled: () => cancelled };
}

async function failure(p: Promise<unknown>): Promise<SandboxError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SandboxError) return e;
    throw new Error(`not a SandboxError: ${String(e)}`);
  }
  throw new Error('expected a failure');
}

async function rejects(
  tar: Uint8Array,
  code: ErrorCode,
  match?: RegExp,
  parent?: LayerTree,
  limits?: TarLimits,
): Promise<SandboxError> {
  const e = await failure(applyTar(parent, streamOf(tar, 1000), { ...ID, ...(limits ? { limits } : {}) }));
  expect(e.code, e.message).toBe(code);
  if (match) expect(e.message).toMatch(match);
  return e;
}

async function tree(entries: FixtureEntry[]): Promise<LayerTree> {
  return applyTar(undefined, streamOf(await makeTar(entries)), ID);
}

function snapshot(t: LayerTree): string {
  const lines: string[] = [];
  const walk = (d: DirInode, p: string): void => {
    for (const [name, n] of d.entries) {
      lines.push(`${p}/${name} ${n.kind} ${n.ino} ${n.nlink} ${n.mode}`);
      if (n.kind === 'dir') walk(n, `${p}/${name}`);
    }
  };
  walk(t.root, '');
  return lines.join('\n');
}

describe('unsafe paths: UNSAFE_LAYER', () => {
  test.each([
    ['/etc/passwd', /absolute/],
    ['../escape', /\.\./],
    ['a/../../escape', /\.\./],
    ['a/../b', /\.\./],
    ['./..', /\.\./],
  ])('entry name %s', async (name, re) => {
    await rejects(rawTar([rawEntry({ name }, 'x')]), 'UNSAFE_LAYER', re);
  });

  test('absolute and escaping names in PAX path records', async () => {
    await rejects(rawTar([paxBlocks({ path: '/abs/olute' }), rawEntry({ name: 'ok' }, 'x')]), 'UNSAFE_LAYER', /absolute/);
    await rejects(rawTar([paxBlocks({ path: 'x/../../../etc/shadow' }), rawEntry({ name: 'ok' }, 'x')]), 'UNSAFE_LAYER', /\.\./);
    await rejects(rawTar([paxBlocks({ path: 'nul\0byte' }), rawEntry({ name: 'ok' }, 'x')]), 'UNSAFE_LAYER', /NUL/);
  });

  test('a symlink followed by a write through it, in one layer', async () => {
    const tar = await makeTar([
      { path: 'etc', type: 'symlink', linkname: '/' },
      { path: 'etc/passwd', data: 'pwned' },
    ]);
    await rejects(tar, 'UNSAFE_LAYER', /symlink/);
  });

  test('a write through a symlink from a lower layer, and a directory under a file', async () => {
    const base = await tree([{ path: 'lib', type: 'symlink', linkname: 'usr/lib' }, { path: 'file', data: 'f' }]);
    const before = snapshot(base);
    await rejects(await makeTar([{ path: 'lib/x.so', data: 'x' }]), 'UNSAFE_LAYER', /lib is a symlink/, base);
    await rejects(await makeTar([{ path: 'lib/sub/', type: 'directory' }]), 'UNSAFE_LAYER', /symlink/, base);
    await rejects(await makeTar([{ path: 'file/x', data: 'x' }]), 'UNSAFE_LAYER', /not a directory/, base);
    await rejects(await makeTar([{ path: 'lib/.wh.x', data: '' }]), 'UNSAFE_LAYER', /symlink/, base);
    expect(snapshot(base)).toBe(before);
  });

  test('replacing the symlink itself is fine (it is never followed)', async () => {
    const base = await tree([{ path: 'lib', type: 'symlink', linkname: '/etc' }]);
    const t = await applyTar(base, streamOf(await makeTar([{ path: 'lib/', type: 'directory' }, { path: 'lib/x', data: 'x' }])), ID);
    expect(t.root.entries.get('lib')!.kind).toBe('dir');
  });

  test('hard links: missing target, directory target, escaping or absolute target, through a symlink', async () => {
    await rejects(await makeTar([{ path: 'l', type: 'link', linkname: 'missing' }]), 'UNSAFE_LAYER', /does not exist/);
    await rejects(await makeTar([{ path: 'd/', type: 'directory' }, { path: 'l', type: 'link', linkname: 'd' }]), 'UNSAFE_LAYER', /directory/);
    await rejects(await makeTar([{ path: 'l', type: 'link', linkname: '../../etc/passwd' }]), 'UNSAFE_LAYER', /\.\./);
    await rejects(await makeTar([{ path: 'l', type: 'link', linkname: '/etc/passwd' }]), 'UNSAFE_LAYER', /absolute/);
    await rejects(await makeTar([{ path: 'l', type: 'link', linkname: '.' }]), 'UNSAFE_LAYER', /directory/);
    await rejects(
      await makeTar([
        { path: 'real/f', data: 'f' },
        { path: 's', type: 'symlink', linkname: 'real' },
        { path: 'l', type: 'link', linkname: 's/f' },
      ]),
      'UNSAFE_LAYER',
      /symlink/,
    );
  });

  test('whiteouts of invalid names', async () => {
    for (const name of ['.wh.', 'd/.wh..', 'd/.wh...']) {
      await rejects(rawTar([rawEntry({ name })]), 'UNSAFE_LAYER', /whiteout/);
    }
  });

  test('over-long names and replacing the root with a file', async () => {
    await rejects(rawTar([paxBlocks({ path: 'n'.repeat(256) }), rawEntry({ name: 'x' })]), 'UNSAFE_LAYER', /255/);
    await rejects(rawTar([paxBlocks({ path: 'a/'.repeat(2100) + 'f' }), rawEntry({ name: 'x' })]), 'UNSAFE_LAYER', /4096/);
    await rejects(rawTar([rawEntry({ name: './' , typeflag: '0' })]), 'UNSAFE_LAYER', /root/);
  });
});

describe('malformed tars: MALFORMED', () => {
  test('truncated inside a file, inside a header, and garbage', async () => {
    const good = await makeTar([{ path: 'a', data: 'x'.repeat(3000) }, { path: 'b', data: 'b' }]);
    await rejects(good.subarray(0, 512 + 1000), 'MALFORMED', /end of data|truncated/i);
    await rejects(good.subarray(0, 512 + 3072 + 100), 'MALFORMED');
    const garbage = new Uint8Array(4096).map((_, i) => (i * 7919 + 13) % 256);
    await rejects(garbage, 'MALFORMED');
  });

  test('a header with a bad checksum', async () => {
    await rejects(rawTar([rawEntry({ name: 'a', checksumDelta: 1 }, 'x')]), 'MALFORMED', /header/i);
  });

  test('unsupported entry types, a directory with data, an empty symlink, bad PAX time', async () => {
    await rejects(rawTar([rawEntry({ name: 'sparse', typeflag: 'S' }, 'x')]), 'MALFORMED', /unsupported/);
    await rejects(rawTar([ustarHeader({ name: 'dir/', typeflag: '5', size: 10 }), new Uint8Array(512)]), 'MALFORMED', /directory/);
    await rejects(rawTar([rawEntry({ name: 'empty', typeflag: '2' })]), 'MALFORMED', /empty target/);
    await rejects(rawTar([paxBlocks({ mtime: 'yesterday' }), rawEntry({ name: 'f' })]), 'MALFORMED', /PAX time/);
  });

  test('a gzip stream that is cut short fails in decompression, before any tree exists', async () => {
    const gz = gzip(await makeTar([{ path: 'a', data: 'x'.repeat(100_000) }]));
    const cut = streamOf(gz.subarray(0, gz.length >> 1)).pipeThrough(gunzip());
    const e = await failure(applyTar(undefined, cut, ID));
    expect(e.code).toBe('MALFORMED');
  });
});

describe('limits: LIMIT_EXCEEDED, and the rest is not read', () => {
  test('total bytes (a gzip bomb through DecompressionStream)', async () => {
    // One gzip member (DecompressionStream in Node 24 and in browsers stops at the end of the first
    // member): a header for a 3 MiB file, then 64 MiB of zeros, from ~70 KB of gzip.
    const bomb = gzip(concat([ustarHeader({ name: 'big', size: 3 << 20 }), new Uint8Array(64 << 20)]));
    expect(bomb.length).toBeLessThan(100_000);
    let inflated = 0;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        inflated += chunk.byteLength;
        c.enqueue(chunk);
      },
    });
    const stream = streamOf(bomb, 1024).pipeThrough(gunzip()).pipeThrough(counter);
    const e = await failure(applyTar(undefined, stream, { ...ID, limits: { maxBytes: 8 << 20 } }));
    expect(e.code).toBe('LIMIT_EXCEEDED');
    expect(e.message).toMatch(/larger than the limit/);
    // Node's DecompressionStream takes all its (small) input at once but inflates only what is read.
    expect(inflated).toBeLessThan(32 << 20);
  });

  test('an endless stream of entries stops at the byte limit', async () => {
    const one = rawEntry({ name: 'f' }, 'x');
    let pulls = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulls++;
        c.enqueue(concat(Array.from({ length: 64 }, () => one)));
      },
      cancel() {
        cancelled = true;
      },
    });
    const e = await failure(applyTar(undefined, endless, { ...ID, limits: { maxBytes: 1 << 20 } }));
    expect(e.code).toBe('LIMIT_EXCEEDED');
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThan(100);
  });

  test('a file that claims more than the limit fails at its header', async () => {
    const header = ustarHeader({ name: 'huge', size: 2 ** 32 });
    const e = await rejects(rawTar([header], false), 'LIMIT_EXCEEDED', /huge/, undefined, { maxBytes: 1 << 30 });
    expect(e.message).toMatch(/limit/);
  });

  test('entry count', async () => {
    const tar = await makeTar(Array.from({ length: 20 }, (_, i) => ({ path: `f${i}`, data: '' })));
    await rejects(tar, 'LIMIT_EXCEEDED', /entries/, undefined, { maxEntries: 10 });
    await expect(applyTar(undefined, streamOf(tar), { ...ID, limits: { maxEntries: 20 } })).resolves.toBeDefined();
  });
});

describe('failures leave nothing behind and drain the input', () => {
  test('an unsafe entry after good ones: no tree, parent unchanged, input read to the end', async () => {
    const base = await tree([{ path: 'etc/hosts', data: 'h' }]);
    const before = snapshot(base);
    const tar = await makeTar([
      { path: 'etc/new', data: 'n' },
      { path: 'etc/.wh.hosts', data: '' },
      { path: '../escape', data: 'x' },
      { path: 'etc/after', data: 'x'.repeat(50_000) },
    ]);
    const src = tracked(tar, 512);
    const e = await failure(applyTar(base, src.stream, ID));
    expect(e.code).toBe('UNSAFE_LAYER');
    expect(src.finished()).toBe(true);
    expect(snapshot(base)).toBe(before);
  });

  test('a malformed tar is still read to the end', async () => {
    const garbage = new Uint8Array(64 * 1024).fill(0x41);
    const src = tracked(garbage, 1024);
    const e = await failure(applyTar(undefined, src.stream, ID));
    expect(e.code).toBe('MALFORMED');
    expect(src.finished()).toBe(true);
  });

  test("the source's own error (a digest mismatch at EOF) wins over the layer's", async () => {
    const tar = await makeTar([{ path: '/abs', data: 'x' }]);
    const src = tracked(tar, 512, new SandboxError('DIGEST_MISMATCH', 'diff_id mismatch'));
    const e = await failure(applyTar(undefined, src.stream, ID));
    expect(e.code).toBe('DIGEST_MISMATCH');
    const ok = tracked(await makeTar([{ path: 'fine', data: 'x' }]), 512, new SandboxError('DIGEST_MISMATCH', 'diff_id mismatch'));
    expect((await failure(applyTar(undefined, ok.stream, ID))).code).toBe('DIGEST_MISMATCH');
  });
});
