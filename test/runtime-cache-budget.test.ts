import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheBudget } from '../src/runtime/cache-budget.ts';
import { createRuntime } from '../src/runtime/runtime.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const hello = join(root, 'images/hello.tar');
const toolbox = join(root, 'images/toolbox.tar');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-cache-budget-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('CacheBudget', () => {
  it('drops the least recently used entries beyond its limit, and only those', () => {
    const dropped: string[] = [];
    const b = new CacheBudget(100);
    const add = (k: string, n: number) => b.add(k, n, () => dropped.push(k));
    add('a', 40);
    add('b', 40);
    expect(b.touch('a')).toBe(true); // a is now the most recent
    add('c', 40); // 120 > 100: b goes
    expect(dropped).toEqual(['b']);
    expect(b.usage).toEqual({ bytes: 80, entries: 2, limit: 100 });
    add('a', 10); // replaced, not dropped
    expect(dropped).toEqual(['b']);
    expect(b.usage.bytes).toBe(50);
    add('big', 500); // larger than the limit: everything goes, itself included
    expect(dropped).toEqual(['b', 'c', 'a', 'big']);
    expect(b.usage).toEqual({ bytes: 0, entries: 0, limit: 100 });
    expect(b.touch('big')).toBe(false);
  });

  it('forget removes an entry without dropping it; a bad limit is refused', () => {
    const dropped: string[] = [];
    const b = new CacheBudget(10);
    b.add('x', 5, () => dropped.push('x'));
    b.forget('x');
    expect(b.usage.bytes).toBe(0);
    b.add('y', 10, () => dropped.push('y'));
    expect(dropped).toEqual([]);
    expect(() => new CacheBudget(-1)).toThrow(RangeError);
    expect(() => new CacheBudget(Number.NaN)).toThrow(RangeError);
  });
});

describe('a runtime keeps images in memory within cacheBytes', () => {
  const text = (chunks: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(chunks));
  /** A runtime running guests on this thread (no Worker), output collected per run. */
  function runtime(name: string, cacheBytes?: number) {
    let out: Uint8Array[] = [];
    const rt = createRuntime({
      // (a home each: the disk cache of packed trees would otherwise change what is built in memory)
      home: join(tmp, name),
      ...(cacheBytes !== undefined ? { cacheBytes } : {}),
      inline: { stdout: (b) => out.push(b.slice()), stderr: () => {} },
    });
    return {
      rt,
      async run(image: string, args: string[]): Promise<string> {
        out = [];
        const r = await rt.run(image, { args });
        expect(r.code).toBe(0);
        return text(out);
      },
    };
  }

  it('by default keeps both sample images; with a small budget, only what fits, and runs stay correct', async () => {
    const roomy = runtime('roomy');
    expect(await roomy.run(hello, [])).toContain('hello from wasmbox');
    const helloBytes = roomy.rt.cacheUsage().bytes;
    expect(await roomy.run(toolbox, ['echo', 'one'])).toBe('one\n');
    const both = roomy.rt.cacheUsage();
    expect(helloBytes).toBeGreaterThan(0);
    expect(both.bytes).toBeGreaterThan(helloBytes);
    expect(both.entries).toBeGreaterThanOrEqual(6); // each image: its layer tree, root filesystem, module
    // The toolbox's applets are links to one module: another applet compiles nothing new.
    expect(await roomy.run(toolbox, ['sh', '-c', 'echo x'])).toBe('x\n');
    expect(roomy.rt.cacheUsage()).toEqual(both);

    const toolboxBytes = both.bytes - helloBytes;
    const limit = Math.max(helloBytes, toolboxBytes) + 1;
    expect(limit).toBeLessThan(both.bytes);
    const tight = runtime('tight', limit);
    for (const [image, args, expected] of [
      [hello, [], 'hello from wasmbox'],
      [toolbox, ['echo', 'two'], 'two\n'],
      [hello, [], 'hello from wasmbox'],
      [toolbox, ['sh', '-c', 'echo three | wc -c'], '6\n'],
    ] as const) {
      expect(await tight.run(image, [...args])).toContain(expected);
      expect(tight.rt.cacheUsage().bytes).toBeLessThanOrEqual(limit);
    }
    // The image just run is the one kept: running it again finds everything cached (nothing added or dropped).
    const kept = tight.rt.cacheUsage();
    expect(kept.bytes).toBeGreaterThan(0);
    expect(await tight.run(toolbox, ['echo', 'again'])).toBe('again\n');
    expect(tight.rt.cacheUsage()).toEqual(kept);

    const none = runtime('none', 0);
    expect(await none.run(toolbox, ['echo', 'four'])).toBe('four\n');
    expect(await none.run(toolbox, ['echo', 'five'])).toBe('five\n');
    expect(none.rt.cacheUsage().bytes).toBe(0);
  });
});
