import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSha256 } from '../src/host/node/hash.ts';
import { decodePackedTree, encodePackedTree } from '../src/fs/packed-file.ts';
import { packTree } from '../src/fs/packed-tree.ts';
import { packedVfs } from '../src/fs/packed-vfs.ts';
import { readFile } from '../src/fs/paths.ts';
import { Overlay } from '../src/fs/overlay.ts';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { createRuntime } from '../src/runtime/runtime.ts';
import { repoRoot } from './helpers/cli.ts';
import { rng } from './helpers/rng.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-run-cache-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sampleTree() {
  const ov = Overlay.prepare();
  const root = ov.root();
  const dir = ov.mkdir(root, 'etc', 0o755);
  const f = ov.createFile(dir, 'motd', 0o644);
  ov.write(f, new TextEncoder().encode('welcome\n'), 0);
  ov.symlink(root, 'link', 'etc/motd');
  return ov;
}

describe('packed tree files', () => {
  it('round-trip a tree: the decoded tree serves the same names, contents and links', () => {
    const packed = packTree(sampleTree() as never);
    const back = decodePackedTree(encodePackedTree(packed));
    const vfs = packedVfs(back);
    expect(text(readFile(vfs as never, '/etc/motd'))).toBe('welcome\n');
    expect(vfs.readlink(vfs.lookup(vfs.root(), 'link')!)).toBe('etc/motd');
    expect(back.nextIno).toBe(packed.nextIno);
    expect([back.nodeCount, back.entryCount]).toEqual([packed.nodeCount, packed.entryCount]);
  });

  it('refuses a truncated, padded, foreign or damaged file with a SandboxError', () => {
    const bytes = encodePackedTree(packTree(sampleTree() as never));
    const bad: Uint8Array[] = [bytes.subarray(0, 10), bytes.subarray(0, bytes.length - 8), new Uint8Array([...bytes, 0, 0, 0, 0, 0, 0, 0, 0])];
    const foreign = bytes.slice();
    foreign[0] ^= 1;
    const version = bytes.slice();
    version[4] = 9;
    const length = bytes.slice();
    new DataView(length.buffer).setFloat64(32, -1, true);
    bad.push(foreign, version, length);
    for (const b of bad) expect(() => decodePackedTree(b)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});

describe('the node host SHA-256', () => {
  it('agrees with node:crypto below, at and above the size where it moves to node:crypto', () => {
    for (const size of [0, 1, 65_535, 65_536, 65_537, 200_000]) {
      const next = rng(size + 1);
      const data = Uint8Array.from({ length: size }, () => Math.floor(next() * 256));
      for (const chunk of [size + 1, 4096, 65_536]) {
        const h = createSha256();
        for (let at = 0; at < size; at += chunk) h.update(data.subarray(at, at + chunk));
        if (size === 0) h.update(data);
        expect(h.digestHex(), `size ${size} in chunks of ${chunk}`).toBe(createHash('sha256').update(data).digest('hex'));
      }
    }
  });
});

describe('the runtime disk cache (packed root filesystems and image kinds)', () => {
  const hello = () => join(repoRoot, 'images/hello.tar');

  it('a second runtime runs a stored image from the cache, without reading its layers', async () => {
    const home = join(tmp, 'home-a');
    const first = createRuntime({ home });
    const r1 = await first.run('toolbox', { args: ['sh', '-c', 'cat /etc/passwd | wc -l'] });
    await first.close();
    expect(r1.code).toBe(0);
    const rootfsDir = join(home, '.wasmbox/cache/rootfs');
    expect(readdirSync(rootfsDir)).toHaveLength(1);
    expect(readdirSync(join(home, '.wasmbox/cache/kind'))).toHaveLength(1);

    // Remove the layer blobs: only the caches can give the second runtime the rootfs and the kind.
    const store = await LayoutStore.open(home);
    const image = (await store.lookup('toolbox'))[0]!;
    const manifest = JSON.parse(readFileSync(store.blobPath(image.descriptor.digest), 'utf8')) as { layers: { digest: string }[] };
    for (const l of manifest.layers) rmSync(store.blobPath(l.digest as never));

    const second = createRuntime({ home });
    const r2 = await second.run('toolbox', { args: ['sh', '-c', 'cat /etc/passwd | wc -l'] });
    await second.close();
    expect([r2.code, text(r2.stdout)]).toEqual([0, text(r1.stdout)]);
  });

  it('a damaged cache file is ignored and rewritten', async () => {
    const home = join(tmp, 'home-b');
    const first = createRuntime({ home });
    expect((await first.run('toolbox', { args: ['sh', '-c', 'echo one'] })).code).toBe(0);
    await first.close();
    const rootfsDir = join(home, '.wasmbox/cache/rootfs');
    const file = join(rootfsDir, readdirSync(rootfsDir)[0]!);
    const good = readFileSync(file);
    writeFileSync(file, good.subarray(0, good.length >> 1));

    const second = createRuntime({ home });
    const r = await second.run('toolbox', { args: ['sh', '-c', 'echo two'] });
    await second.close();
    expect([r.code, text(r.stdout)]).toEqual([0, 'two\n']);
    expect(readFileSync(file).equals(good)).toBe(true);
  });

  it('rmi empties the cache', async () => {
    const home = join(tmp, 'home-c');
    const rt = createRuntime({ home });
    expect((await rt.run(hello(), {})).code).toBe(0);
    expect((await rt.run('hello', {})).code).toBe(0);
    await rt.close();
    expect(existsSync(join(home, '.wasmbox/cache/rootfs'))).toBe(true);
    const store = await LayoutStore.open(home);
    await store.remove('hello');
    expect(existsSync(join(home, '.wasmbox/cache'))).toBe(false);
  });
});

describe('container stdio streams made on first use', () => {
  it('output written before anyone asked for stdout is there when it is read after exit', async () => {
    const rt = createRuntime({ home: join(tmp, 'home-d') });
    const c = await rt.create('toolbox', { args: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    await c.start();
    await c.stdin.close();
    const status = await c.wait();
    expect(status.code).toBe(3);
    expect(text(new Uint8Array(await new Response(c.stdout).arrayBuffer()))).toBe('out\n');
    expect(text(new Uint8Array(await new Response(c.stderr).arrayBuffer()))).toBe('err\n');
    await rt.close();
  });
});
