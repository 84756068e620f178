// Launchers: a container's process started before the container is planned (bwrap waits for its
// options), its fixed trampoline, and spare launchers taken by the next container of the same shape.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInvocation, planContainer, validatePlan, type PlanHost } from '../src/linux-backend/index.ts';
import { ARGS_FD, LAUNCH_END, TRAMPOLINE, TRAMPOLINE_ENV } from '../src/linux-backend/invocation.ts';
import { SWITCH_PATH } from '../src/linux-backend/plan.ts';
import type { ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { BUSYBOX, bundleRunner, linuxTestBed, runnerPrelude, runToEnd } from './helpers/linux-images.ts';

const bed = linuxTestBed('wasmbox-launcher-', { beforeAll, afterAll });

function spec(argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec {
  return { argv, env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o };
}

/** Runs the trampoline with exactly these variables (as bwrap would set them) on the host's busybox. */
function trampoline(vars: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const script = TRAMPOLINE.replace(`exec ${SWITCH_PATH} `, `exec ${BUSYBOX} `);
  return spawnSync(BUSYBOX, ['sh', '-c', script], { env: vars, encoding: 'utf8' });
}

const words = (list: string[]): Record<string, string> => Object.fromEntries([[`${TRAMPOLINE_ENV}C`, String(list.length)], ...list.map((w, i) => [`${TRAMPOLINE_ENV}${i}`, w])]);

describe('the trampoline', () => {
  it('execs exactly the environment and argv it is given, whatever their bytes, and nothing of its own', (ctx) => {
    if (!fs.existsSync(BUSYBOX)) return ctx.skip('busybox is not installed');
    const env = ['A=1', 'my.var=dots are fine', 'QUOTE=it\'s "$(not run)" `nor this` $HOME \\ ;|&', 'NL=two\nlines', 'EMPTY=', 'IFS=0123456789'];
    const r = trampoline({ ...words([...env, '/usr/bin/env', '-0']), [LAUNCH_END]: '1' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\0').filter(Boolean)).toEqual(env);
    const args = ['a b', '', '--', '$1', '*', 'line\nbreak'];
    const echo = trampoline({ ...words(['/usr/bin/printf', '<%s>', ...args]), [LAUNCH_END]: '1' });
    expect(echo.stdout).toBe(args.map((a) => `<${a}>`).join(''));
  });

  it('runs nothing unless the options were read whole (their last word is LAUNCH_END)', (ctx) => {
    if (!fs.existsSync(BUSYBOX)) return ctx.skip('busybox is not installed');
    expect(trampoline(words(['/usr/bin/printf', 'ran'])).stdout).toBe('');
    expect(trampoline(words(['/usr/bin/printf', 'ran'])).status).toBe(127);
    expect(trampoline({ [LAUNCH_END]: '1' }).status).toBe(127);
    expect(trampoline({ ...words(['/usr/bin/printf', 'ran']), [LAUNCH_END]: '' }).status).toBe(127);
  });
});

describe('a launch as data', () => {
  const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
  const host: PlanHost = {
    arch: 'x86_64', idMap: 'identity', switcher: '/bin/busybox', procPresent: ['/proc/sys'], emptyDir: '/wb/empty', rootfsDir: '/wb/layers/aa',
    containerDir: '/wb/containers/c1', rootMapped: true, cgroups: { memory: 'v1', pids: 'v1', cpu: 'v1' },
    resolveCommand: (name) => ({ path: `/bin/${name}`, executable: true }),
    resolveUser: (u) => (u === 'app' ? { uid: 1000, gid: 1000 } : { uid: 0, gid: 0 }),
    canonicalGuestPath: (p) => p,
    statGuest: (p) => ({ kind: p.startsWith('/bin/') ? 'file' : 'dir', executable: true }),
  };
  const tools = { bwrap: '/usr/bin/bwrap', unshare: '/usr/bin/unshare', sh: '/bin/sh', mount: '/bin/mount', busybox: '/bin/busybox' };
  const invocation = (s: ContainerSpec, staticBusybox = true) => buildInvocation(validatePlan(planContainer(image, s, host, 'ab'.repeat(32)), host), tools, {
    privileged: true, cgroupProcs: ['/cg/x/cgroup.procs'], helper: { mountNs: '/proc/42/ns/mnt' }, staticBusybox,
  });

  it('one process line for every container of the same namespaces; the container is all in the options', () => {
    const a = invocation(spec(['sh', '-c', 'echo a'], { env: ['PATH=/bin', 'X=1'] }));
    const b = invocation(spec(['cat'], { user: 'app', readOnlyRoot: false }));
    expect(a.launch!.argv).toEqual(b.launch!.argv);
    expect(a.launch!.argv).toEqual(['/bin/busybox', 'nsenter', '-m/proc/42/ns/mnt', '/usr/bin/bwrap', '--args', String(ARGS_FD), '--', SWITCH_PATH, 'sh', '-c', TRAMPOLINE]);
    // cgroups are joined by the spawner (the process waits for its options meanwhile), not by a shell
    expect(a.launch!.cgroupProcs).toEqual(['/cg/x/cgroup.procs']);
    expect(a.launch!.options.slice(-3)).toEqual(['--setenv', LAUNCH_END, '1']);
    expect(a.launch!.options).toContain('--seccomp');
    expect(a.launch!.options).not.toContain('--');
    const setenv = (o: string[]) => o.flatMap((w, i) => (o[i - 1] === '--setenv' && o[i - 2] !== '--setenv' ? [`${w}=${o[i + 1]}`] : []));
    // the environment and argv reach the trampoline as words (bwrap's --chdir PWD included)
    expect(setenv(a.launch!.options)).toEqual([
      `${TRAMPOLINE_ENV}C=6`, `${TRAMPOLINE_ENV}0=PATH=/bin`, `${TRAMPOLINE_ENV}1=X=1`, `${TRAMPOLINE_ENV}2=PWD=/`,
      `${TRAMPOLINE_ENV}3=/bin/sh`, `${TRAMPOLINE_ENV}4=-c`, `${TRAMPOLINE_ENV}5=echo a`, `${LAUNCH_END}=1`,
    ]);
    // the uid switch comes first in a non-root user's argv
    expect(setenv(b.launch!.options)).toContain(`${TRAMPOLINE_ENV}2=${SWITCH_PATH}`);
  });

  it('none without a static busybox, nor for a command busybox env would take for a variable', () => {
    expect(invocation(spec(['sh']), false).launch).toBeUndefined();
    expect(invocation(spec(['/bin/a=b'])).launch).toBeUndefined();
  });
});

/** The bwrap processes that are children of this process, waiting for their options (spare launchers). */
function waitingLaunchers(): number[] {
  const children = fs.readdirSync(`/proc/${process.pid}/task`).flatMap((t) => {
    try {
      return fs.readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return children.filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--args');
    } catch {
      return false;
    }
  });
}

describe('spare launchers', () => {
  it('the next container of the same shape starts in the spare; another shape gets its own; output and exit are right', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const first = await runToEnd(bed.backend, bed.busybox, spec(['sh', '-c', 'echo one; exit 3']));
    expect(first).toMatchObject({ stdout: 'one\n', status: { code: 3 } });
    await new Promise((r) => setTimeout(r, 50));
    const spares = waitingLaunchers();
    expect(spares).toHaveLength(1);
    const second = await runToEnd(bed.backend, bed.busybox, spec(['sh', '-c', 'echo "$X" "$#" "$1"; pwd', 'zero', 'a b'], { env: ['PATH=/bin', 'X=x y'], cwd: '/etc' }));
    expect(second).toMatchObject({ stdout: 'x y 1 a b\n/etc\n', stderr: '', status: { code: 0 } });
    await new Promise((r) => setTimeout(r, 50));
    const next = waitingLaunchers();
    expect(next).toHaveLength(1);
    expect(next[0]).not.toBe(spares[0]); // the spare was taken, and a new one made
    // stdin piped (another shape), then a read-only root as another user, then the first shape again
    const c = await bed.backend.create(bed.busybox, spec(['sh', '-c', 'tr a-z A-Z'], { stdin: true }));
    await c.start();
    const w = c.stdin.getWriter();
    await w.write(new TextEncoder().encode('piped\n'));
    await w.close();
    expect(await new Response(c.stdout).text()).toBe('PIPED\n');
    expect((await c.wait()).code).toBe(0);
    const user = await runToEnd(bed.backend, bed.busybox, spec(['sh', '-c', 'id -u; touch /x 2>/dev/null || echo read-only'], { user: '1000', readOnlyRoot: true }));
    expect(user).toMatchObject({ stdout: '1000\nread-only\n', status: { code: 0 } });
    expect((await runToEnd(bed.backend, bed.busybox, spec(['true']))).status.code).toBe(0);
  });

  it('a spare left when its process exits does not outlive it', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const work = path.join(bed.work, 'spare-exit');
    fs.mkdirSync(work);
    // a child process runs one container (which leaves a spare), prints its children's pids and exits at once
    const runner = await bundleRunner(work, `${runnerPrelude(path.resolve(import.meta.dirname, '..'))}
await runToEnd(backend, image, { argv: ['true'], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {} });
await new Promise((r) => setTimeout(r, 100));
const fs = await import('node:fs');
const pids = fs.readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(/\\s+/).map(Number);
console.log(JSON.stringify(pids.map((pid) => ({ pid, spare: fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').includes('--args') }))));
process.exit(0);
`);
    const r = spawnSync(process.execPath, [runner, path.join(bed.work, 'busybox'), path.join(work, 'home')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const children = JSON.parse(r.stdout) as Array<{ pid: number; spare: boolean }>;
    const pids = children.map((c) => c.pid);
    // (an orphan that ended may stay a zombie until whoever adopted it reaps it)
    const running = (pid: number) => { try { return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };
    // (they end once they see the runner's pipes close: bounded by a deadline a loaded machine meets, not a count of polls)
    for (const deadline = Date.now() + 15_000; pids.some(running) && Date.now() < deadline;) await new Promise((res) => setTimeout(res, 20));
    const cmdline = (pid: number) => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 200); } catch { return ''; } };
    expect(children.filter((c) => c.spare)).toHaveLength(1); // and the namespace helper
    for (const pid of pids) expect(running(pid), `process ${pid} outlived its owner: ${cmdline(pid)}`).toBe(false);
  });

  it('bwrap given options cut short (no LAUNCH_END) or none at all runs nothing', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const out = path.join(bed.work, 'cut-out');
    fs.mkdirSync(out);
    const rootfs = path.join(bed.home, 'linux', 'layers', fs.readdirSync(path.join(bed.home, 'linux', 'layers')).find((n) => !n.startsWith('.'))!);
    const launch = (options: string[]) => new Promise<number | null>((resolve) => {
      const c = spawn('bwrap', ['--args', String(ARGS_FD), '--', SWITCH_PATH, 'sh', '-c', TRAMPOLINE], { stdio: ['ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'pipe'] });
      (c.stdio as unknown as NodeJS.WritableStream[])[ARGS_FD]!.end(options.map((w) => `${w}\0`).join(''));
      c.on('close', resolve);
    });
    const base = ['--unshare-user', '--unshare-pid', '--ro-bind', rootfs, '/', '--dev', '/dev', '--ro-bind', BUSYBOX, SWITCH_PATH, '--bind', out, '/tmp', '--clearenv'];
    const vars = Object.entries(words(['/bin/touch', '/tmp/ran'])).flatMap(([k, v]) => ['--setenv', k, v]);
    expect(await launch([])).not.toBe(0);
    expect(await launch([...base, ...vars])).toBe(127);
    expect(await launch([...base, ...vars, '--setenv', LAUNCH_END])).not.toBe(0);
    expect(fs.readdirSync(out)).toEqual([]);
    expect(await launch([...base, ...vars, '--setenv', LAUNCH_END, '1'])).toBe(0);
    expect(fs.readdirSync(out)).toEqual(['ran']);
  });
});
