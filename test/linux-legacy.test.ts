// The Linux backend without its namespace helper (what runs where busybox is not installed): a
// per-container prelude mounts the writable root, bwrap maps a single uid. The same isolation holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import type { Backend, ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { buildOwnersImage, linuxTestBed, openOciDir, runToEnd } from './helpers/linux-images.ts';

const bed = linuxTestBed('wasmbox-linux-legacy-', { beforeAll, afterAll });
let legacy: Backend;
let busybox: Image;
let owners: Image;
let skipReason: string | undefined;
beforeAll(async () => {
  ({ busybox, skipReason } = bed);
  if (skipReason) return;
  legacy = createLinuxBackend({ home: path.join(bed.work, 'legacy-home'), namespaceHelper: false });
  owners = await openOciDir(await buildOwnersImage(path.join(bed.work, 'owners')));
});

const sh = (script: string, o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false,
  mounts: [], network: 'none', limits: {}, ...o,
});

const run = (image: Image, s: ContainerSpec) => runToEnd(legacy, image, s);

describe('linux backend without the namespace helper', () => {
  it('runs with a private writable root and with a read-only one', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const rw = await run(busybox, sh('echo hi > /etc/new && cat /etc/new; hostname; set -- /proc/[0-9]*; echo $#'));
    expect(rw.status, rw.stderr).toEqual({ code: 0, reason: 'exit' });
    expect(rw.stdout.split('\n')[0]).toBe('hi');
    expect(Number(rw.stdout.split('\n')[2])).toBeLessThanOrEqual(3);
    const ro = await run(busybox, sh('touch /etc/x 2>/dev/null || echo read-only', { readOnlyRoot: true }));
    expect(ro.stdout).toBe('read-only\n');
    expect(fs.readdirSync(path.join(bed.work, 'legacy-home', 'linux', 'containers'))).toEqual([]);
  });

  it('keeps the host\'s device nodes unchangeable when the caller is root, with either root', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    if (process.getuid?.() !== 0) return ctx.skip('only a root caller maps root');
    const before = fs.statSync('/dev/null');
    for (const readOnlyRoot of [false, true]) {
      const r = await run(busybox, sh('echo x > /dev/null && echo write=ok; chmod 666 /dev/null 2>/dev/null && echo chmod; touch -c /dev/zero 2>/dev/null && echo touch; echo done', { readOnlyRoot }));
      expect(r.stdout, r.stderr).toBe('write=ok\ndone\n');
    }
    const after = fs.statSync('/dev/null');
    expect([after.mode, after.ctimeMs]).toEqual([before.mode, before.ctimeMs]);
  });

  it('maps a single uid: other owners show as 65534 (the documented limit of this path)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    if (process.getuid?.() !== 0) return ctx.skip('as root, the layer cache keeps the image\'s owners');
    const r = await run(owners, sh('id -u; ls -ln /data/app-file /data/root-file', { user: 'app' }));
    expect(r.status, r.stderr).toEqual({ code: 0, reason: 'exit' });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('1000');
    // bwrap maps the container's uid to the caller's (root): root's files show as the container user's,
    // everyone else's (here app's own 1000) as the overflow uid
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/)[2])).toEqual(['65534', '1000']);
  });
});
