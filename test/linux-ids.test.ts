// The image's uids and gids inside a Linux container: an image with files of uids 0, 1000 and 65534,
// run as its non-root USER and as root. As root the backend maps every id to itself; an unprivileged
// caller (no /etc/subuid range) keeps bwrap's single-uid map, where other owners show as 65534.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { buildOwnersImage, linuxTestBed, openOciDir, OWNERS_IMAGE_LISTING, ownersOf, runToEnd } from './helpers/linux-images.ts';

const bed = linuxTestBed('wasmbox-linux-ids-', { beforeAll, afterAll });
let backend: Backend;
let owners: Image;
let skipReason: string | undefined;
beforeAll(async () => {
  ({ backend, skipReason } = bed);
  if (!skipReason && process.getuid?.() !== 0) skipReason = 'the identity map is for a root caller (an unprivileged one keeps the single-uid map)';
  if (!skipReason) owners = await openOciDir(await buildOwnersImage(path.join(bed.work, 'owners')));
});

const sh = (script: string, o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/data', tty: false, stdin: false, readOnlyRoot: false,
  mounts: [], network: 'none', limits: {}, user: 'app', ...o,
});

const run = (s: ContainerSpec) => runToEnd(backend, owners, s);


describe('the image\'s ids inside a Linux container (root caller: identity map)', () => {
  it('a non-root USER sees every owner as the image has it and gets exactly the permissions they give', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(sh([
      'id -u; id -g; id -G',
      'ls -ln /data',
      'echo more >> app-file && echo app-file:ok',
      'echo more >> group-file && echo group-file:ok', // group write through gid 1000
      'echo more >> root-file 2>/dev/null || echo root-file:denied',
      'echo more >> nobody-file 2>/dev/null || echo nobody-file:denied',
      'cat root-private 2>/dev/null || echo root-private:denied',
      'touch app-dir/new nobody-dir/new 2>/dev/null; ls -ln app-dir; ls nobody-dir | wc -l',
      'chown 0 app-file 2>/dev/null || echo chown:denied',
      'grep CapEff /proc/self/status',
    ].join('; ')));
    expect(r.status, r.stderr).toEqual({ code: 0, reason: 'exit' });
    const out = r.stdout.split('\n');
    expect(out.slice(0, 3)).toEqual(['1000', '1000', '1000']); // no supplementary group of the caller's
    expect(ownersOf(r.stdout.split('app-file:ok')[0]!)).toEqual(OWNERS_IMAGE_LISTING);
    for (const line of ['app-file:ok', 'group-file:ok', 'root-file:denied', 'nobody-file:denied', 'root-private:denied', 'chown:denied']) {
      expect(out).toContain(line);
    }
    expect(ownersOf(r.stdout.split('group-file:ok')[1]!)).toEqual(['1000:1000 new']); // what it creates is its own
    expect(out).toContain('0'); // nothing created in nobody's directory
    expect(out.find((l) => l.startsWith('CapEff'))).toMatch(/^CapEff:\s+0+$/);
  });

  it('root sees the same owners and can chown to them and switch to them (su-style)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(sh([
      'ls -ln /data',
      'echo --',
      'chown 1000:1000 root-file && chown 65534:50 app-file && chown 4242:4242 nobody-file && ls -ln /data',
      'echo --',
      '/bin/busybox su -s /bin/sh -c "id -u; id -g; echo x >> /data/root-file || echo denied" app 2>&1',
    ].join('; '), { user: undefined }));
    expect(r.status, r.stderr).toEqual({ code: 0, reason: 'exit' });
    const [before, after, su] = r.stdout.split('--\n');
    expect(ownersOf(before!)).toEqual(OWNERS_IMAGE_LISTING);
    expect(ownersOf(after!)).toEqual([
      '1000:1000 app-dir', '65534:50 app-file', '0:1000 group-file', '65534:65534 nobody-dir', '4242:4242 nobody-file',
      '1000:1000 root-file', '0:0 root-private',
    ]);
    // root-file belongs to app now, so app may write it
    expect(su!.trim().split('\n')).toEqual(['1000', '1000']);
  });

  it('the same holds with a read-only root, where writes fail for everyone', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(sh('id -u; ls -ln /data; echo more >> app-file 2>/dev/null || echo read-only', { readOnlyRoot: true }));
    expect(r.status, r.stderr).toEqual({ code: 0, reason: 'exit' });
    expect(r.stdout.split('\n')[0]).toBe('1000');
    expect(ownersOf(r.stdout)).toEqual(OWNERS_IMAGE_LISTING);
    expect(r.stdout).toContain('read-only\n');
  });

  it('the uid switch is the host\'s busybox, bound read-only on bwrap\'s /dev: nobody can change it', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const script = 'test -x /dev/.wasmbox/busybox && echo present; (: > /dev/.wasmbox/busybox) 2>/dev/null || echo cannot-write; rm -f /dev/.wasmbox/busybox 2>/dev/null || echo cannot-remove; mount -o remount,rw /dev/.wasmbox/busybox 2>/dev/null || echo cannot-remount';
    // root with another group (USER 0:50) goes through the switch and keeps docker's capabilities
    const rootGroup = await run(sh(`id -g; ${script}`, { user: '0:50' }));
    expect(rootGroup.stdout, JSON.stringify(rootGroup)).toBe('50\npresent\ncannot-write\ncannot-remove\ncannot-remount\n');
    // (its directory is root's alone: the switch runs before the uid changes)
    const app = await run(sh(script));
    expect(app.stdout, JSON.stringify(app)).toBe('cannot-write\ncannot-remove\ncannot-remount\n');
    // plain root needs no switch; the same binary is the launch trampoline (see Launch), as unchangeable
    const root = await run(sh(script, { user: undefined }));
    expect(root.stdout, JSON.stringify(root)).toBe('present\ncannot-write\ncannot-remove\ncannot-remount\n');
  });

  it('no user namespace can be made inside, even by root (the namespace is capped at zero, seccomp refuses too)', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = await run(sh('cat /proc/sys/user/max_user_namespaces; unshare -U true 2>/dev/null; echo rc=$?', { user: undefined }));
    expect(r.stdout).toBe('0\nrc=1\n');
  });
});
