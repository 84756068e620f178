// What FinalFs's user-namespace access parses and maps (no root needed): `stat --printf` records of
// names with any byte but '/' and NUL, and host ids mapped back to the container's through a subid map.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { containerIdOf, parseStatRecords } from '../src/linux-backend/final-fs.ts';
import { buildIdMap } from '../src/linux-backend/subids.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmbox-final-fs-unit-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parseStatRecords', () => {
  it('reads every entry of GNU stat\'s records as lstat sees it, whatever bytes the names hold', (ctx) => {
    const stat = ['/usr/bin/stat', '/bin/stat'].find((p) => fs.existsSync(p));
    if (!stat || !/GNU coreutils/.test(spawnSync(stat, ['--version'], { encoding: 'utf8' }).stdout ?? '')) return ctx.skip('GNU stat is not installed');
    const names = ['plain', 'with space', 'new\nline', 'tab\tand 12 34 56', 'é ünï', '-dash', 'sp '];
    for (const [i, n] of names.entries()) fs.writeFileSync(path.join(dir, n), 'x'.repeat(i));
    fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o710 });
    fs.symlinkSync('plain', path.join(dir, 'link'));
    fs.chmodSync(path.join(dir, 'plain'), 0o4751);
    const all = [...names, 'sub', 'link'];
    const r = spawnSync(stat, ['--printf', '%d %i %f %u %g %h %s %t %T %.9X %.9Y %.9Z %n\\0', '--', ...all.map((n) => path.join(dir, n))]);
    expect(r.status).toBe(0);
    const parsed = parseStatRecords(r.stdout);
    expect([...parsed.keys()].sort()).toEqual([...all].sort());
    for (const n of all) {
      const s = fs.lstatSync(path.join(dir, n), { bigint: true });
      const p = parsed.get(n)!;
      const kind = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'file';
      expect(p, n).toEqual({
        dev: Number(s.dev), ino: Number(s.ino), kind, mode: Number(s.mode) & 0o7777, uid: Number(s.uid), gid: Number(s.gid),
        nlink: Number(s.nlink), size: Number(s.size), rdev: 0, atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
      });
    }
    expect(parsed.get('plain')!.mode).toBe(0o4751);
    expect(parsed.get('sub')!.mode).toBe(0o710);
  });

  it('rejects a truncated record', () => {
    expect(() => parseStatRecords(Buffer.from('1 2 81a4 0\0'))).toThrow(/truncated/);
  });
});

describe('containerIdOf', () => {
  it('maps host ids back through each extent; ids outside the map are the overflow id', () => {
    const map = buildIdMap(1001, [{ start: 200_000, count: 10 }, { start: 500_000, count: 5 }])!;
    expect(containerIdOf(map, 1001)).toBe(0);
    expect(containerIdOf(map, 200_000)).toBe(1);
    expect(containerIdOf(map, 200_009)).toBe(10);
    expect(containerIdOf(map, 500_000)).toBe(11);
    expect(containerIdOf(map, 500_004)).toBe(15);
    for (const outside of [0, 1000, 1002, 200_010, 499_999, 500_005]) expect(containerIdOf(map, outside)).toBe(65534);
  });
});
