import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { Overlay } from '../src/fs/overlay.ts';
import { packTree, packedSize, type PackedTree } from '../src/fs/packed-tree.ts';
import { packedVfs } from '../src/fs/packed-vfs.ts';
import { SandboxError } from '../src/errors.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { runVfsSuite } from './vfs-suite.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function sample(): Overlay {
  const o = Overlay.prepare(undefined, { nextIno: 100 });
  const root = o.root();
  const etc = o.mkdir(root, 'etc', 0o755);
  const hosts = o.createFile(etc, 'hosts', 0o644);
  o.write(hosts, enc.encode('127.0.0.1 localhost\n'), 0);
  o.link(root, 'hosts-link', hosts);
  o.symlink(root, 'sym', '/etc/hosts');
  const bin = o.mkdir(o.mkdir(root, 'usr', 0o755), 'bin', 0o755);
  for (const name of ['zz', 'a', 'M', 'ü', 'b-longer-name', 'b']) {
    const f = o.createFile(bin, name, 0o4755);
    o.write(f, enc.encode(`#!${name}`), 0);
  }
  o.createFile(root, 'empty', 0o600);
  o.setTimes(hosts, 1_234_567_890_123_456_789n, 1_600_000_000_987_654_321n);
  return o;
}

/** Walks two Vfs side by side and returns the differences (empty when they show the same tree). */
function treeDiff<A, B>(a: Vfs<A>, b: Vfs<B>): string[] {
  const out: string[] = [];
  const walk = (x: A, y: B, path: string): void => {
    const sx = a.stat(x);
    const sy = b.stat(y);
    for (const k of ['kind', 'mode', 'uid', 'gid', 'nlink', 'size', 'rdev', 'ino', 'atimeNs', 'mtimeNs', 'ctimeNs'] as const) {
      if (sx[k] !== sy[k]) out.push(`${path}: ${k} ${sx[k]} != ${sy[k]}`);
    }
    if (sx.kind === 'symlink' && a.readlink(x) !== b.readlink(y)) out.push(`${path}: target`);
    if (sx.kind === 'file') {
      const bx = new Uint8Array(sx.size);
      const by = new Uint8Array(sy.size);
      a.read(x, bx, 0);
      b.read(y, by, 0);
      if (dec.decode(bx) !== dec.decode(by)) out.push(`${path}: content`);
    }
    if (sx.kind === 'dir') {
      const ex = a.readdir(x).map((e) => e.name);
      const ey = b.readdir(y).map((e) => e.name);
      if (ex.join('/') !== ey.join('/')) out.push(`${path}: entries ${ex} != ${ey}`);
      for (const name of ex) {
        const cy = b.lookup(y, name);
        if (cy !== undefined) walk(a.lookup(x, name)!, cy, `${path}/${name}`);
      }
    }
  };
  walk(a.root(), b.root(), '');
  return out;
}

runVfsSuite('packedVfs (read-only)', () => ({ vfs: packedVfs(packTree(sample())) }));
runVfsSuite('Overlay.prepare over packedVfs', () => ({ vfs: Overlay.prepare(packedVfs(packTree(sample()))) }));
runVfsSuite('Overlay.view over packedVfs', () => ({ vfs: Overlay.view(packedVfs(packTree(sample()))) }));

describe('packed tree', () => {
  it('shows exactly the tree it was packed from', () => {
    const src = sample();
    const p = packedVfs(packTree(src));
    expect(treeDiff(src, p)).toEqual([]);
    expect(treeDiff(p, src)).toEqual([]);
  });

  it('keeps hard links as one node and stores their content once', () => {
    const src = sample();
    const packed = packTree(src);
    const p = packedVfs(packed);
    const viaEtc = p.lookup(p.lookup(p.root(), 'etc')!, 'hosts')!;
    expect(p.lookup(p.root(), 'hosts-link')).toBe(viaEtc);
    expect(p.stat(viaEtc).nlink).toBe(2);
    const contentBytes = 20 + 6 * 0 + ['zz', 'a', 'M', 'ü', 'b-longer-name', 'b'].reduce((s, n) => s + enc.encode('#!' + n).length, 0);
    expect(packedSize(packed).data).toBe(contentBytes);
  });

  it('finds every name by binary search, including non-ASCII and prefixes', () => {
    const p = packedVfs(packTree(sample()));
    const bin = p.lookup(p.lookup(p.root(), 'usr')!, 'bin')!;
    expect(p.readdir(bin).map((e) => e.name)).toEqual(['zz', 'a', 'M', 'ü', 'b-longer-name', 'b']);
    for (const name of ['zz', 'a', 'M', 'ü', 'b-longer-name', 'b']) {
      const h = p.lookup(bin, name);
      expect(h, name).toBeDefined();
      const buf = new Uint8Array(64);
      expect(dec.decode(buf.subarray(0, p.read(h!, buf, 0)))).toBe(`#!${name}`);
    }
    for (const missing of ['', 'c', 'b-', 'zzz', 'u', 'A', 'x'.repeat(2000)].filter((s) => s !== '')) {
      expect(p.lookup(bin, missing), missing).toBeUndefined();
    }
  });

  it('packs a large directory and looks up each of its names', () => {
    const o = Overlay.prepare();
    const names: string[] = [];
    for (let i = 0; i < 2000; i++) names.push(`f${(i * 7919) % 2000}-${i % 3 ? 'x' : 'é'}`);
    for (const n of names) o.createFile(o.root(), n, 0o644);
    const p = packedVfs(packTree(o));
    for (const n of names) expect(p.stat(p.lookup(p.root(), n)!).kind).toBe('file');
    expect(p.lookup(p.root(), 'f0-')).toBeUndefined();
  });

  it('rejects malformed packed trees with a typed error', () => {
    const good = packTree(sample());
    const bad = (patch: (p: PackedTree) => PackedTree) => () => packedVfs(patch(structuredClone(good)));
    expect(bad((p) => ({ ...p, format: 'x' as never }))).toThrow(SandboxError);
    expect(bad((p) => ({ ...p, nodeCount: p.nodeCount + 1 }))).toThrow(SandboxError);
    expect(bad((p) => ({ ...p, data: new ArrayBuffer(1) }))).toThrow(SandboxError);
    expect(bad((p) => {
      // Point the first directory entry of the root back at the root: a cycle.
      new Uint32Array(p.entries)[2] = 0;
      return p;
    })).toThrow(SandboxError);
    expect(bad((p) => {
      new Uint32Array(p.entries)[1] = 1_000_000;
      return p;
    })).toThrow(SandboxError);
    expect(() => packedVfs(null as never)).toThrow(SandboxError);
    for (const name of ['..', '.', 'a/b', 'a\0b']) {
      // Rename the root's first entry ('etc', 3 bytes at the start of the string table).
      expect(bad((p) => {
        const bytes = new TextEncoder().encode(name.padEnd(3, name === '..' || name === '.' ? '\0' : 'x'));
        const entries = new Uint32Array(p.entries);
        new Uint8Array(p.strings).set(bytes.subarray(0, 3), entries[0]!);
        entries[1] = name === '..' ? 2 : name === '.' ? 1 : 3;
        return p;
      }), name).toThrow(SandboxError);
    }
  });

  it('is structured-cloneable and, shared, crosses to a Worker without copying', async () => {
    const packed = packTree(sample(), { shared: true });
    expect(packed.shared).toBe(true);
    expect(packed.data).toBeInstanceOf(SharedArrayBuffer);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const d = new Uint8Array(workerData.data);
       const before = d[0];
       d[0] = 0x58; // 'X': visible to the parent only if the memory is shared
       parentPort.postMessage({ before, n: workerData.nodeCount });`,
      { eval: true, workerData: packed },
    );
    const msg = await new Promise<{ before: number; n: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(msg.n).toBe(packed.nodeCount);
    expect(msg.before).toBe('1'.charCodeAt(0));
    const p = packedVfs(packed);
    const hosts = p.lookup(p.lookup(p.root(), 'etc')!, 'hosts')!;
    const buf = new Uint8Array(4);
    p.read(hosts, buf, 0);
    expect(dec.decode(buf)).toBe('X27.');
    const copy = packedVfs(structuredClone(packTree(sample())));
    expect(treeDiff(copy, sample()).filter((d) => !d.includes('time'))).toEqual([]);
  });
});

describe('packedVfs on corrupted trees', () => {
  it('either refuses the tree (SandboxError) or serves it with FsErrors only, never crashing or looping', () => {
    const good = packTree(sample());
    let seed = 7;
    const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    let opened = 0;
    for (let trial = 0; trial < 600; trial++) {
      const p = structuredClone(good);
      const target = new Uint8Array([p.nodes, p.entries, p.strings][Math.floor(rand() * 3)]!);
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) target[Math.floor(rand() * target.length)] = Math.floor(rand() * 256);
      let v: Vfs<number>;
      try {
        v = packedVfs(p);
      } catch (e) {
        expect(e).toBeInstanceOf(SandboxError);
        continue;
      }
      opened++;
      let visited = 0;
      const walk = (d: number): void => {
        for (const e of v.readdir(d)) {
          expect(++visited).toBeLessThanOrEqual(p.entryCount);
          try {
            const h = v.lookup(d, e.name);
            if (h === undefined) continue;
            const st = v.stat(h);
            if (st.kind === 'dir') walk(h);
            else if (st.kind === 'file') v.read(h, new Uint8Array(Math.min(st.size, 1 << 16)), 0);
            else if (st.kind === 'symlink') v.readlink(h);
          } catch (err) {
            expect(err).toBeInstanceOf(FsError);
          }
        }
      };
      walk(v.root());
    }
    expect(opened).toBeGreaterThan(0);
  });
});
