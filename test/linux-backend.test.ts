// The Linux backend through its API: real busybox images, run as sandboxed processes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, ContainerSpec, ExitStatus } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { isSandboxError } from '../src/errors.ts';
import { linuxTestBed } from './helpers/linux-images.ts';

const bed = linuxTestBed('wasmbox-linux-', { beforeAll, afterAll });
const { work, home } = bed;
let backend: Backend;
let busybox: Image;
let layered: Image;
let skipReason: string | undefined;
beforeAll(() => { ({ backend, busybox, layered, skipReason } = bed); });

export function spec(argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    argv, env: ['PATH=/bin', 'HOME=/root'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false,
    mounts: [], network: 'none', limits: {}, ...o,
  };
}

export async function run(image: Image, s: ContainerSpec, input?: string): Promise<{ status: ExitStatus; stdout: string; stderr: string }> {
  const c = await backend.create(image, s);
  await c.start();
  const writer = c.stdin.getWriter();
  const feed = (async () => {
    if (input !== undefined) await writer.write(new TextEncoder().encode(input));
    await writer.close();
  })();
  const [stdout, stderr, status] = await Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text(), c.wait()]);
  await feed;
  return { status, stdout, stderr };
}

const sh = (script: string, o: Partial<ContainerSpec> = {}) => spec(['sh', '-c', script], o);

describe('linux backend', () => {
  it('runs a command: output, exit code, stderr', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('echo hello; echo oops >&2; exit 3'));
    expect(r.stdout).toBe('hello\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.status).toEqual({ code: 3, reason: 'exit' });
  });

  it('resolves a bare argv[0] through PATH inside the image, and reports a missing one as NOT_FOUND', async (ctx) => {
    if (skipReason) return ctx.skip();
    expect((await run(busybox, spec(['echo', 'a', 'b']))).stdout).toBe('a b\n');
    const err = await backend.create(busybox, spec(['no-such-command'])).catch((e) => e);
    expect(isSandboxError(err, 'NOT_FOUND')).toBe(true);
  });

  it('passes stdin, env and workdir', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('cat; echo "$GREETING"; pwd', { stdin: true, env: ['PATH=/bin', 'GREETING=hi there'], cwd: '/etc' }), 'from stdin\n');
    expect(r.stdout).toBe('from stdin\nhi there\n/etc\n');
    const env = await run(busybox, spec(['env']));
    // exactly the spec's environment (bwrap's --chdir adds PWD, as a shell would)
    expect(env.stdout.split('\n').filter(Boolean).sort()).toEqual(['HOME=/root', 'PATH=/bin', 'PWD=/']);
  });

  it('creates a missing working directory in the writable root', async (ctx) => {
    if (skipReason) return ctx.skip();
    expect((await run(busybox, sh('pwd', { cwd: '/srv/app' }))).stdout).toBe('/srv/app\n');
  });

  it('signals map to 128+N', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('kill -TERM $$; sleep 5'));
    expect(r.status.code).toBe(143);
    expect(r.status.reason).toBe('signal');
    expect(r.status.signal).toBe('SIGTERM');
  });

  it('runs as pid 1 of its own pid namespace under a reaping init, with its own hostname', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('echo $$; hostname; ps -o pid,comm | tail -n +2', { hostname: 'box1' }));
    const [pid, hostname, ...ps] = r.stdout.trim().split('\n');
    expect(Number(pid)).toBe(2); // pid 1 is bwrap's init, which reaps orphans
    expect(hostname).toBe('box1');
    const procs = ps.map((l) => l.trim().split(/\s+/));
    expect(procs[0]).toEqual(['1', 'bwrap']);
    // nothing from the host: only the init, the shell and its pipeline (a busybox applet that ps catches
    // between fork and exec re-executes /proc/self/exe, so it may show as 'exe' for a moment)
    for (const p of procs) expect(['bwrap', 'sh', 'ps', 'tail', 'hostname', 'exe']).toContain(p[1]);
    expect(procs.length).toBeLessThanOrEqual(6);
    const c = await backend.create(busybox, sh('hostname'));
    const out = await (async () => { await c.start(); return new Response(c.stdout).text(); })();
    expect(out.trim()).toBe(c.id.slice(0, 12));
  });

  it('has only loopback networking, no host /sys, a minimal /dev, and its own /proc', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "; echo --; ls /sys | wc -l; echo --; ls /dev'));
    const [ifaces, sys, dev] = r.stdout.split('--\n');
    expect(ifaces!.trim().split('\n')).toEqual(['lo']);
    expect(sys!.trim()).toBe('0');
    const devs = dev!.trim().split('\n');
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts']) expect(devs).toContain(d);
    expect(devs).not.toContain('vda');
    expect(devs).not.toContain('sda');
  });

  it('shows the image, not the host: no host files', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('ls /; test -e /usr/bin/node && echo HOSTNODE; test -e /etc/debian_version && echo HOSTDEBIAN; test -e /root/.npm && echo HOSTNPM; cat /etc/hostname'));
    expect(r.stdout).not.toContain('HOST');
    expect(r.stdout).toContain('image-hostname');
  });

  it('gives a private writable root layer that does not leak into the image or other containers', async (ctx) => {
    if (skipReason) return ctx.skip();
    const a = await run(busybox, sh('echo changed > /etc/hostname; rm /bin/ls; cat /etc/hostname'));
    expect(a.stdout).toBe('changed\n');
    const b = await run(busybox, sh('cat /etc/hostname; test -e /bin/ls && echo ls-still-there'));
    expect(b.stdout).toBe('image-hostname\nls-still-there\n');
  });

  it('--read-only makes the root read-only; /tmp stays a writable tmpfs', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('touch /etc/x 2>&1; echo rc=$?; echo ok > /tmp/y && cat /tmp/y', { readOnlyRoot: true }));
    expect(r.stdout).toMatch(/Read-only file system/);
    expect(r.stdout).toContain('rc=1');
    expect(r.stdout).toContain('ok\n');
  });

  it('shows the flattened layer tree: whiteouts, opaque directory, symlinks, hard links, setuid', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(layered, sh([
      'pwd', 'ls /data', 'cat /data/keep.txt', 'ls -A /opaque', 'readlink /links/rel', 'cat /links/abs',
      'cat /links/escape', 'stat -c "%h %i" /links/target.txt', 'stat -c "%h %i" /links/hard', 'stat -c %a /bin/suid',
      'stat -c %F /links/fifo',
    ].join('; '), { cwd: '/data' }));
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 7)).toEqual(['/data', 'keep.txt', 'v2', 'new', 'target.txt', 'v2', 'image-hostname']);
    expect(lines[7]).toBe(lines[8]);
    expect(lines[7]!.startsWith('2 ')).toBe(true);
    expect(lines[9]).toBe('4755');
    expect(lines[10]).toBe('fifo');
  });

  it('materialises each image once by chainID', async (ctx) => {
    if (skipReason) return ctx.skip();
    const top = layered.layers[layered.layers.length - 1]!.chainId.slice(7);
    const dir = path.join(home, 'linux', 'layers', top);
    expect(fs.existsSync(dir)).toBe(true);
    const before = fs.statSync(path.join(dir, 'data', 'keep.txt')).ino;
    await run(layered, sh('true'));
    expect(fs.statSync(path.join(dir, 'data', 'keep.txt')).ino).toBe(before);
    expect(fs.readdirSync(path.join(home, 'linux', 'layers')).filter((n) => n.startsWith('.tmp'))).toEqual([]);
    // the cache holds the image's setuid files: nobody else on the host may reach them
    expect(fs.statSync(path.join(home, 'linux', 'layers')).mode & 0o077).toBe(0);
    expect(fs.statSync(path.join(home, 'linux', 'containers')).mode & 0o077).toBe(0);
    expect(fs.readdirSync(path.join(home, 'linux', 'containers'))).toEqual([]); // removed after exit
  });

  it('binds host directories read-write and read-only', async (ctx) => {
    if (skipReason) return ctx.skip();
    const rw = path.join(work, 'rw');
    const ro = path.join(work, 'ro');
    fs.mkdirSync(rw);
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(ro, 'in.txt'), 'from host\n');
    const r = await run(busybox, sh('cat /ro/in.txt; echo out > /rw/out.txt; echo x > /ro/new 2>&1; echo rc=$?', {
      mounts: [
        { guest: '/rw', source: { type: 'host', path: rw }, mode: 'rw' },
        { guest: '/ro', source: { type: 'host', path: ro }, mode: 'ro' },
      ],
    }));
    expect(r.stdout).toContain('from host\n');
    expect(r.stdout).toMatch(/rc=[12]/);
    expect(fs.readFileSync(path.join(rw, 'out.txt'), 'utf8')).toBe('out\n');
    expect(fs.existsSync(path.join(ro, 'new'))).toBe(false);
  });

  it('binds nothing of the host\'s /sys or /dev, even through a link; a root caller\'s containers start from a mount table without them', async (ctx) => {
    if (skipReason) return ctx.skip();
    const link = path.join(work, 'sys-link');
    fs.symlinkSync('/sys/fs/cgroup', link);
    const err = await backend.create(busybox, sh('true', { mounts: [{ guest: '/x', source: { type: 'host', path: link }, mode: 'ro' }] })).catch((e) => e);
    expect(isSandboxError(err, 'INVALID_ARGUMENT'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/host \/sys is not bound/);
    if (process.getuid?.() !== 0) return;
    // the namespace helper (a child of this process) holds the mount namespace containers are made from
    const mountPoints = fs.readdirSync(`/proc/${process.pid}/task`)
      .flatMap((t) => { try { return fs.readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { return []; } }) // (a thread that ended)
      .filter((pid) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('max_user_namespaces'); } catch { return false; } })
      .map((pid) => fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => l.split(' ')[4]!));
    expect(mountPoints).toHaveLength(1);
    expect(mountPoints[0]).toContain('/dev');
    expect(mountPoints[0]).toContain('/proc');
    expect(mountPoints[0]!.filter((m) => m === '/sys' || m.startsWith('/sys/') || m.startsWith('/dev/'))).toEqual([]);
  });

  it('keeps .. and symlinks inside a bind mount from reaching host files', async (ctx) => {
    if (skipReason) return ctx.skip();
    const vol = path.join(work, 'vol');
    fs.mkdirSync(vol);
    fs.symlinkSync('/etc/shadow', path.join(vol, 'shadow'));
    fs.symlinkSync('../../../../../../etc', path.join(vol, 'up'));
    const r = await run(busybox, sh('cat /vol/../../../etc/passwd | head -1; cat /vol/shadow 2>&1; ls /vol/up/ 2>&1', {
      mounts: [{ guest: '/vol', source: { type: 'host', path: vol }, mode: 'rw' }],
    }));
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('root:x:0:0:root:/root:/bin/sh'); // the image's passwd, not the host's
    expect(r.stdout).toContain("can't open '/vol/shadow'"); // the absolute symlink resolves in the container: no /etc/shadow there
    // ../../.. out of the mount lands in the image's /etc (group, hostname, passwd, and the hosts file a
    // container gets when the image has none), not the host's
    expect(lines.slice(2).filter(Boolean)).toEqual(['group', 'hostname', 'hosts', 'passwd']);
  });

  it('mount points are resolved inside the image: symlinks in the image cannot aim a mount at the host', async (ctx) => {
    if (skipReason) return ctx.skip();
    const vol = path.join(work, 'vol2');
    fs.mkdirSync(vol);
    fs.writeFileSync(path.join(vol, 'f'), 'vol2\n');
    const r = await run(layered, sh('cat /data/sub/f /etc/mnt/f /data/viaabs/f', {
      mounts: [
        { guest: '/data/sub', source: { type: 'host', path: vol }, mode: 'ro' },
        // links/updir -> ../../../../../etc (clamped at the image root: /etc); links/absdir -> /data
        { guest: '/links/updir/mnt', source: { type: 'host', path: vol }, mode: 'ro' },
        { guest: '/links/absdir/viaabs', source: { type: 'host', path: vol }, mode: 'ro' },
      ],
    }));
    expect(r.stdout).toBe('vol2\nvol2\nvol2\n');
    expect(fs.existsSync('/etc/mnt')).toBe(false); // nothing was created on the host
  });

  it('runs as the image user by name or number', async (ctx) => {
    if (skipReason) return ctx.skip();
    expect((await run(busybox, spec(['id'], { user: 'app' }))).stdout.trim()).toMatch(/^uid=1000.* gid=1000/);
    // /tmp is a sticky, world-writable tmpfs, as in any image
    expect((await run(busybox, sh('ls -ld /tmp | cut -c1-10; echo x > /tmp/mine && cat /tmp/mine; echo y > /dev/shm/s && cat /dev/shm/s', { user: 'app' }))).stdout).toBe('drwxrwxrwt\nx\ny\n');
    expect((await run(busybox, spec(['id'], { user: '1234:50' }))).stdout.trim()).toMatch(/^uid=1234.* gid=50/);
    const err = await backend.create(busybox, spec(['id'], { user: 'nosuchuser' })).catch((e) => e);
    expect(isSandboxError(err, 'NOT_FOUND')).toBe(true);
  });

  it('drops to docker default capabilities with no new privileges and a seccomp filter', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status'));
    const f = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(/:\s+/)));
    // docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap
    expect(f.CapEff).toBe('00000000a80425fb');
    expect(f.CapBnd).toBe('00000000a80425fb');
    expect(f.NoNewPrivs).toBe('1');
    expect(f.Seccomp).toBe('2');
    const user = await run(busybox, spec(['grep', 'CapEff', '/proc/self/status'], { user: 'app' }));
    expect(user.stdout.trim()).toBe('CapEff:\t0000000000000000');
  });

  it('blocks mount, unshare and nsenter inside the container', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('mount -t tmpfs x /mnt 2>&1; echo mount=$?; unshare -U true 2>&1; echo unshare=$?; unshare -n true 2>&1; echo unsharenet=$?; nsenter -t 1 -m true 2>&1; echo nsenter=$?; chroot / true; echo chroot=$?'));
    expect(r.stdout).toMatch(/mount=[1-9]/);
    expect(r.stdout).toMatch(/unshare=[1-9]/);
    expect(r.stdout).toMatch(/unsharenet=[1-9]/);
    expect(r.stdout).toMatch(/nsenter=[1-9]/);
    expect(r.stdout).toContain('chroot=0'); // CAP_SYS_CHROOT is in docker's default set
  });

  it('--timeout kills the whole container', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('sleep 30 & sleep 30 & while :; do :; done', { limits: { timeoutMs: 500 } }));
    expect(r.status.reason).toBe('timeout');
    expect(r.status.code).toBe(124);
  });

  it('kill() ends the container; SIGTERM reaches the process', async (ctx) => {
    if (skipReason) return ctx.skip();
    const c = await backend.create(busybox, sh('trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 1; done'));
    await c.start();
    const reader = c.stdout.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('ready\n');
    await c.kill('SIGTERM');
    const rest = await reader.read();
    expect(new TextDecoder().decode(rest.value)).toBe('got-term\n');
    expect(await c.wait()).toEqual({ code: 7, reason: 'exit' });
    const d = await backend.create(busybox, sh('sleep 30'));
    await d.start();
    await d.kill();
    const s = await d.wait();
    expect(s.reason).toBe('killed');
    expect(s.code).toBe(137);
  });

  it('kill() right after start() leaves no process behind (streams end, wait resolves)', async (ctx) => {
    if (skipReason) return ctx.skip();
    for (let i = 0; i < 5; i++) {
      const c = await backend.create(busybox, sh('sleep 30'));
      await c.start();
      await c.kill();
      const [out, status] = await Promise.all([new Response(c.stdout).text(), c.wait()]);
      expect(out).toBe('');
      expect(status.reason).toBe('killed');
    }
    expect(fs.readdirSync(path.join(home, 'linux', 'containers'))).toEqual([]);
  });

  it('the output limit kills a container that writes too much', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await run(busybox, sh('yes wasmbox', { limits: { outputBytes: 100_000 } }));
    expect(r.status.reason).toBe('output-limit');
    expect(r.status.code).toBe(137);
    expect(r.stdout.length).toBeGreaterThan(0);
  });

  it('reports a non-linux or foreign-architecture image in probe', async (ctx) => {
    if (skipReason) return ctx.skip();
    const foreign = { ...busybox, platform: { os: 'linux', architecture: 'riscv64' } } as Image;
    const p = await backend.probe(foreign);
    expect(p.ok).toBe(false);
    expect(!p.ok && p.reason).toMatch(/riscv64/);
  });
});
