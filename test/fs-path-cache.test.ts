// PathCache (resolve.ts): a path resolved through the cache of its start directory gives exactly what
// the uncached walk gives, whatever was renamed, removed or replaced in between; and the cache is used.
import { describe, expect, it } from 'vitest';
import { Overlay, type OverlayHandle } from '../src/fs/overlay.ts';
import { packTree } from '../src/fs/packed-tree.ts';
import { packedVfs } from '../src/fs/packed-vfs.ts';
import { PathCache, resolvePath, type ResolveOptions } from '../src/fs/resolve.ts';
import { FsError, type Vfs } from '../src/fs/vfs.ts';
import { rng } from './helpers/rng.ts';

type H = OverlayHandle<unknown>;

const NAMES = ['a', 'b', 'c', 'l1', 'l2', 'f'];
const TARGETS = ['a', 'b/c', '../a', '../../b', '/a', '/a/b', 'a/', '.', '..', 'l1', 'l2/c', '/', 'f', 'nope/x'];

const ids = new Map<unknown, number>();
const idOf = (h: unknown): number | undefined => {
  if (h === undefined) return undefined;
  if (!ids.has(h)) ids.set(h, ids.size);
  return ids.get(h);
};

/** A resolution as comparable data: nodes by identity. */
function outcome(fn: () => { parent: H; name: string; node: H | undefined; trailingSlash: boolean }) {
  try {
    const r = fn();
    return { ok: { parent: idOf(r.parent), name: r.name, node: idOf(r.node), trailingSlash: r.trailingSlash } };
  } catch (e) {
    if (e instanceof FsError) return { errno: e.errno };
    throw e;
  }
}

/** Counts lookups, to see that the cache is what answers (and can hide layoutVersion). */
function countingLookups<T>(vfs: Vfs<T>, withVersion = true): { vfs: Vfs<T>; count: () => number } {
  let n = 0;
  const wrapped = new Proxy(vfs, {
    get(target, key) {
      if (key === 'lookup') {
        return (dir: T, name: string) => {
          n++;
          return target.lookup(dir, name);
        };
      }
      if (key === 'layoutVersion' && !withVersion) return undefined;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { vfs: wrapped, count: () => n };
}

function lowerWithDirs(): Vfs<number> {
  const o = Overlay.prepare();
  const a = o.mkdir(o.root(), 'a', 0o755);
  o.mkdir(a, 'b', 0o755);
  o.symlink(o.root(), 'l1', 'a/b');
  o.createFile(a, 'f', 0o644);
  return packedVfs(packTree(o, { shared: false }));
}

describe('PathCache', () => {
  it('answers a repeated directory part with one lookup, and a plain Vfs without layoutVersion uncached', () => {
    const o = Overlay.prepare();
    const d = o.mkdir(o.mkdir(o.root(), 'tmp', 0o755), 'work', 0o755);
    o.createFile(d, 'x', 0o644);
    const { vfs, count } = countingLookups(o as Vfs<H>);
    const cache = new PathCache<H>();
    const opts: ResolveOptions = { followFinal: true, escape: 'error' };
    resolvePath(vfs, o.root(), 'tmp/work/x', opts, cache);
    const before = count();
    const r = resolvePath(vfs, o.root(), 'tmp/work/y', opts, cache);
    expect(count() - before).toBe(1);
    expect(r.node).toBeUndefined();
    expect(r.parent).toBe(d);
    expect(r.name).toBe('y');

    const noVersion = countingLookups(o as Vfs<H>, false);
    const c2 = new PathCache<H>();
    resolvePath(noVersion.vfs, o.root(), 'tmp/work/x', opts, c2);
    const b2 = noVersion.count();
    resolvePath(noVersion.vfs, o.root(), 'tmp/work/y', opts, c2);
    expect(noVersion.count() - b2).toBe(3);
  });

  it('sees a renamed or removed directory, a replaced symlink, and a directory renamed over another', () => {
    const o = Overlay.prepare();
    const opts: ResolveOptions = { followFinal: true, escape: 'clamp' };
    const cache = new PathCache<H>();
    const a = o.mkdir(o.root(), 'a', 0o755);
    const b = o.mkdir(o.root(), 'b', 0o755);
    o.createFile(a, 'x', 0o644);
    o.symlink(o.root(), 'l', 'a');
    expect(resolvePath(o, o.root(), 'l/x', opts, cache).parent).toBe(a);
    o.unlink(o.root(), 'l');
    o.symlink(o.root(), 'l', 'b');
    expect(resolvePath(o, o.root(), 'l/x', opts, cache)).toMatchObject({ parent: b, node: undefined });
    o.rename(o.root(), 'a', o.root(), 'z');
    expect(() => resolvePath(o, o.root(), 'a/x', opts, cache)).toThrow(FsError);
    expect(resolvePath(o, o.root(), 'z/x', opts, cache).parent).toBe(a);
    o.rename(o.root(), 'b', o.root(), 'y');
    const y2 = o.mkdir(o.root(), 'b', 0o755);
    expect(resolvePath(o, o.root(), 'b/q', opts, cache).parent).toBe(y2);
    o.rename(o.root(), 'y', o.root(), 'b'); // an empty directory renamed over 'b'
    expect(resolvePath(o, o.root(), 'b/q', opts, cache).parent).toBe(b);
    o.rmdir(o.root(), 'b');
    expect(() => resolvePath(o, o.root(), 'b/q', opts, cache)).toThrow(FsError);
  });

  it('never caches the directory a final symlink led to', () => {
    const o = Overlay.prepare();
    const opts: ResolveOptions = { followFinal: true, escape: 'error' };
    const cache = new PathCache<H>();
    const d = o.mkdir(o.root(), 'd', 0o755);
    const e = o.mkdir(d, 'e', 0o755);
    o.symlink(d, 's', 'e/');
    o.symlink(o.root(), 'up', 'd/s');
    expect(resolvePath(o, o.root(), 'up', opts, cache)).toMatchObject({ node: e, trailingSlash: true });
    // 'up' resolved through 'd/s': the cache must not claim that 'd/' is the root or that '' is 'd'.
    expect(resolvePath(o, o.root(), 'd/e', opts, cache)).toMatchObject({ parent: d, node: e });
    expect(() => resolvePath(o, e, 'q/../../..', opts, cache)).toThrow(FsError);
  });

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`matches the uncached walk over random changes and paths (seed ${seed})`, () => {
      const rand = rng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const o = Overlay.prepare(lowerWithDirs() as Vfs<unknown>);
      const dirs = (): H[] => {
        const out: H[] = [o.root()];
        for (let i = 0; i < out.length && out.length < 40; i++) {
          for (const e of o.readdir(out[i]!)) if (e.kind === 'dir') out.push(o.lookup(out[i]!, e.name)!);
        }
        return out;
      };
      const caches = new Map<string, PathCache<H>>();
      const randomPath = (): string => {
        const parts: string[] = [];
        const n = 1 + Math.floor(rand() * 4);
        for (let i = 0; i < n; i++) parts.push(pick([...NAMES, ...NAMES, '.', '..', 'new']));
        let p = parts.join(pick(['/', '/', '/', '//']));
        if (rand() < 0.15) p = '/' + p;
        if (rand() < 0.1) p += '/';
        return p;
      };
      let hits = 0;
      for (let step = 0; step < 800; step++) {
        const all = dirs();
        const dir = pick(all);
        const op = rand();
        try {
          if (op < 0.12) o.mkdir(dir, pick(NAMES), 0o755);
          else if (op < 0.2) o.symlink(dir, pick(NAMES), pick(TARGETS));
          else if (op < 0.26) o.createFile(dir, pick(NAMES), 0o644);
          else if (op < 0.32) o.rename(dir, pick(NAMES), pick(all), pick(NAMES));
          else if (op < 0.38) o.rename(pick(all.slice(0, 3)), pick(['a', 'b', 'l1']), pick(all.slice(0, 3)), pick(['a', 'b', 'l1']));
          else if (op < 0.42) o.unlink(dir, pick(NAMES));
          else if (op < 0.46) o.rmdir(dir, pick(NAMES));
        } catch (e) {
          if (!(e instanceof FsError)) throw e;
        }
        for (let k = 0; k < 6; k++) {
          const startIdx = Math.floor(rand() * Math.min(all.length, 3));
          const start = all[startIdx]!;
          const opts: ResolveOptions = { followFinal: rand() < 0.5, escape: rand() < 0.5 ? 'clamp' : 'error' };
          const key = `${startIdx}`;
          let cache = caches.get(key);
          if (cache === undefined) caches.set(key, (cache = new PathCache<H>()));
          // Sometimes the same directory part again (what the cache is for), sometimes a fresh path.
          const path = rand() < 0.25 ? randomPath() : `${pick(['a', 'a/b', 'l1', 'a/../a/b', '/a', 'b'])}/${pick([...NAMES, '..', '.'])}`;
          const want = outcome(() => resolvePath(o, start, path, opts));
          const got = outcome(() => resolvePath(o, start, path, opts, cache));
          expect(got, `${path} from #${startIdx} ${JSON.stringify(opts)} at step ${step}`).toEqual(want);
          if ('ok' in got) hits++;
        }
      }
      expect(hits).toBeGreaterThan(50);
    });
  }
});
