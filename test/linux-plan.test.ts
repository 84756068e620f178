// Container plans as data: built, validated and turned into a bwrap invocation without root or a kernel.
import { describe, expect, it } from 'vitest';
import { bwrapArgs, buildInvocation, planContainer, validatePlan, DOCKER_DEFAULT_CAPS, type PlanHost } from '../src/linux-backend/index.ts';
import { helperInvocation, helperLine, overlayOptionSafe, TRIMMED_MOUNTS, USERNS_FD } from '../src/linux-backend/invocation.ts';
import { DEV_NODES, PTY_PATH, SWITCH_PATH } from '../src/linux-backend/plan.ts';
import { isSandboxError } from '../src/errors.ts';
import type { ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';

const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
const ID = 'abcdef0123456789'.repeat(4);

function host(o: Partial<PlanHost> = {}): PlanHost {
  return {
    arch: 'x86_64',
    procPresent: ['/proc/sys', '/proc/keys', '/proc/acpi', '/proc/irq'],
    emptyDir: '/var/lib/wb/linux/empty',
    rootfsDir: '/var/lib/wb/linux/layers/aa',
    containerDir: '/var/lib/wb/linux/containers/c1',
    cgroups: { memory: 'v1', pids: 'v1', cpu: 'v1' },
    resolveCommand: (name, path) => (name === 'sh' && path.includes('/bin') ? { path: '/bin/sh', executable: true } : name === 'noexec' ? { path: '/bin/noexec', executable: false } : undefined),
    resolveUser: (u) => (u === 'app' ? { uid: 1000, gid: 1000, home: '/home/app' } : { uid: Number(u.split(':')[0]), gid: Number(u.split(':')[1] ?? 0) }),
    canonicalGuestPath: (p) => p.replace(/^\/var\/run/, '/run'),
    statGuest: (p) => ({ '/bin/sh': { kind: 'file', executable: true }, '/etc': { kind: 'dir', executable: true }, '/etc/passwd': { kind: 'file', executable: false } } as Record<string, { kind: string; executable: boolean }>)[p],
    ...o,
  };
}

function spec(o: Partial<ContainerSpec> = {}): ContainerSpec {
  return { argv: ['sh', '-c', 'true'], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o };
}

const plan = (s: Partial<ContainerSpec> = {}, h = host()) => validatePlan(planContainer(image, spec(s), h, ID), h);
const fails = (f: () => unknown, code: string, re: RegExp) => {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(isSandboxError(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  expect((err as Error).message).toMatch(re);
};

describe('planContainer', () => {
  it('isolates by default: all namespaces, own /proc, minimal /dev, tmpfs /tmp, docker caps, seccomp, no new privileges', () => {
    const p = plan();
    expect(p.namespaces).toEqual({ user: true, mount: true, pid: true, net: true, uts: true, ipc: true, cgroup: true });
    expect(p.mounts).toEqual([
      { kind: 'proc', dest: '/proc' },
      // docker's read-only and masked /proc paths, those this kernel's sandbox /proc has
      { kind: 'proc-readonly', dest: '/proc/irq' },
      { kind: 'proc-readonly', dest: '/proc/sys' },
      { kind: 'proc-mask', dest: '/proc/keys', source: '/dev/null' },
      { kind: 'proc-mask', dest: '/proc/acpi', source: '/var/lib/wb/linux/empty' },
      { kind: 'dev', dest: '/dev' },
      { kind: 'tmpfs', dest: '/dev/shm', mode: 0o1777 },
      { kind: 'tmpfs', dest: '/tmp', mode: 0o1777 },
    ]);
    expect(p.hostname).toBe(ID.slice(0, 12));
    expect(p.capabilities).toEqual([...DOCKER_DEFAULT_CAPS]);
    expect(p.capabilities).not.toContain('CAP_SYS_ADMIN');
    expect(p.noNewPrivileges).toBe(true);
    expect(p.seccomp.deny.map((d) => d.name)).toEqual(expect.arrayContaining(['ptrace', 'keyctl', 'bpf', 'mount', 'unshare', 'kexec_load', 'init_module']));
    expect(p.argv).toEqual(['/bin/sh', '-c', 'true']);
    expect(p.root).toEqual({ lower: '/var/lib/wb/linux/layers/aa', writable: true, upper: '/var/lib/wb/linux/containers/c1/upper', work: '/var/lib/wb/linux/containers/c1/work', merged: '/var/lib/wb/linux/containers/c1/merged' });
  });

  it('a non-root user gets no capabilities; names resolve through the image', () => {
    const p = plan({ user: 'app' });
    expect([p.uid, p.gid, p.capabilities]).toEqual([1000, 1000, []]);
  });

  it('a user\'s default HOME is its /etc/passwd home (/ without an entry), as docker gives it; a HOME that was set stays', () => {
    const home = (o: Partial<ContainerSpec>) => plan({ env: ['PATH=/bin', 'HOME=/root'], defaultHome: true, ...o }).env.filter((e) => e.startsWith('HOME='));
    expect(home({ user: 'app' })).toEqual(['HOME=/home/app']);
    expect(home({ user: '4242' })).toEqual(['HOME=/']);
    expect(home({})).toEqual(['HOME=/root']);
    expect(home({ user: 'app', defaultHome: false })).toEqual(['HOME=/root']);
  });

  it('adds PATH when the spec has none and resolves argv[0] through it', () => {
    const p = plan({ env: ['A=1'] });
    expect(p.env[0]).toMatch(/^PATH=.*\/bin/);
    expect(p.argv[0]).toBe('/bin/sh');
    fails(() => plan({ argv: ['nope'] }), 'NOT_FOUND', /exec: "nope": executable file not found in \$PATH/);
    fails(() => plan({ argv: ['noexec'] }), 'NOT_RUNNABLE', /permission denied/);
    fails(() => plan({ argv: ['/bin/nope'] }), 'NOT_FOUND', /exec: "\/bin\/nope": no such file or directory/);
    fails(() => plan({ argv: ['/etc'] }), 'NOT_RUNNABLE', /is a directory/);
    fails(() => plan({ argv: ['/etc/passwd'] }), 'NOT_RUNNABLE', /permission denied/);
    expect(plan({ argv: ['/bin/sh'] }).argv[0]).toBe('/bin/sh');
    // a program inside a bind mount is not looked for in the image
    expect(plan({ argv: ['/tools/run'], mounts: [{ guest: '/tools', source: { type: 'host', path: '/h' }, mode: 'ro' }] }).argv[0]).toBe('/tools/run');
    let err: unknown;
    try { plan({ argv: ['nope'] }); } catch (e) { err = e; }
    expect((err as { data: { entrypoint: string } }).data.entrypoint).toBe('nope'); // the CLI maps it to 127
    fails(() => plan({ argv: [] }), 'NOT_RUNNABLE', /no command/);
  });

  it('orders binds by depth after the tmpfs, canonicalising mount points in the image', () => {
    const p = plan({
      mounts: [
        { guest: '/data/sub', source: { type: 'host', path: '/h/b' }, mode: 'ro' },
        { guest: '/data', source: { type: 'host', path: '/h/a' }, mode: 'rw' },
        { guest: '/var/run/x', source: { type: 'host', path: '/h/c' }, mode: 'rw' },
      ],
    });
    expect(p.mounts.slice(8)).toEqual([
      { kind: 'bind', source: '/h/a', dest: '/data', readOnly: false },
      { kind: 'bind', source: '/h/b', dest: '/data/sub', readOnly: true },
      { kind: 'bind', source: '/h/c', dest: '/run/x', readOnly: false },
    ]);
  });

  it('a mount on /tmp replaces the tmpfs', () => {
    const p = plan({ mounts: [{ guest: '/tmp', source: { type: 'host', path: '/h' }, mode: 'rw' }] });
    expect(p.mounts.filter((m) => m.dest === '/tmp')).toEqual([{ kind: 'bind', source: '/h', dest: '/tmp', readOnly: false }]);
  });

  it('refuses foreign images and non-host mounts', () => {
    fails(() => validatePlan(planContainer({ platform: { os: 'wasi', architecture: 'wasm' } } as Image, spec(), host(), ID), host()), 'PLATFORM_MISMATCH', /linux/);
    fails(() => plan({ mounts: [{ guest: '/v', source: { type: 'volume', name: 'v' }, mode: 'rw' }] }), 'CAPABILITY_DENIED', /host directories/);
  });
});

describe('validatePlan', () => {
  const mount = (guest: string, path = '/h') => ({ guest, source: { type: 'host' as const, path }, mode: 'rw' as const });
  it('rejects relative, dotted and duplicate mount points and mounts over /proc, /dev, /sys or /', () => {
    fails(() => plan({ mounts: [mount('data')] }), 'INVALID_ARGUMENT', /absolute/);
    fails(() => plan({ mounts: [mount('/a/../etc')] }), 'INVALID_ARGUMENT', /absolute/);
    fails(() => plan({ mounts: [mount('/d'), mount('/d', '/other')] }), 'INVALID_ARGUMENT', /two mounts on \/d/);
    fails(() => plan({ mounts: [mount('/proc')] }), 'INVALID_ARGUMENT', /two mounts on \/proc|cover the container's \/proc/);
    fails(() => plan({ mounts: [mount('/proc/sys')] }), 'INVALID_ARGUMENT', /\/proc/);
    fails(() => plan({ mounts: [mount('/dev/sda')] }), 'INVALID_ARGUMENT', /\/dev/);
    fails(() => plan({ mounts: [mount('/sys')] }), 'INVALID_ARGUMENT', /\/sys/);
    fails(() => plan({ mounts: [mount('/')] }), 'INVALID_ARGUMENT', /over \//);
    fails(() => plan({ mounts: [mount('/x', 'relative/dir')] }), 'INVALID_ARGUMENT', /host path of a mount must be absolute/);
    // nor the host's devices or kernel interfaces as a source
    fails(() => plan({ mounts: [mount('/x', '/sys/fs/cgroup')] }), 'INVALID_ARGUMENT', /host \/sys is not bound/);
    fails(() => plan({ mounts: [mount('/x', '/dev/shm')] }), 'INVALID_ARGUMENT', /host \/dev is not bound/);
    expect(plan({ mounts: [mount('/x', '/devices')] }).mounts.some((m) => m.kind === 'bind' && m.source === '/devices')).toBe(true);
  });

  it('rejects a relative working directory, bad env entries, bad hostnames, bad ids', () => {
    fails(() => plan({ cwd: 'work' }), 'INVALID_ARGUMENT', /working directory/);
    fails(() => plan({ env: ['PATH=/bin', 'NOEQUALS'] }), 'INVALID_ARGUMENT', /NAME=value/);
    fails(() => plan({ hostname: 'bad host!' }), 'INVALID_ARGUMENT', /hostname/);
    fails(() => plan({ user: '-5' }), 'INVALID_ARGUMENT', /uid/);
  });

  it('rejects limits out of range', () => {
    fails(() => plan({ limits: { memoryBytes: 1000 } }), 'INVALID_ARGUMENT', /memory limit/);
    fails(() => plan({ limits: { pids: 0 } }), 'INVALID_ARGUMENT', /pids/);
    fails(() => plan({ limits: { cpus: 0 } }), 'INVALID_ARGUMENT', /cpus/);
  });

  it('refuses a limit the host cannot enforce instead of running without it', () => {
    const noCgroups = host({ cgroups: { missingReason: 'not root, so cgroup v1 is not writable' } });
    fails(() => plan({ limits: { memoryBytes: 64 << 20 } }, noCgroups), 'BACKEND_UNAVAILABLE', /memory \(-m\).*not root/);
    fails(() => plan({ limits: { pids: 10, cpus: 1 } }, noCgroups), 'BACKEND_UNAVAILABLE', /pids.*cpu/);
    expect(plan({ limits: { timeoutMs: 100 } }, noCgroups).limits.timeoutMs).toBe(100); // a timeout needs no cgroup
    expect(plan({ limits: { memoryBytes: 64 << 20 } }).cgroup).toEqual({ memory: 'v1' });
  });
});

describe('bwrap invocation', () => {
  const tools = { bwrap: '/usr/bin/bwrap', unshare: '/usr/bin/unshare', sh: '/bin/sh', mount: '/bin/mount' };

  it('turns the plan into bwrap options in order', () => {
    const p = plan({ mounts: [{ guest: '/data', source: { type: 'host', path: '/h/a' }, mode: 'ro' }], env: ['PATH=/bin', 'X=a=b'], cwd: '/data', hostname: 'box' });
    const a = bwrapArgs(p);
    const at = (s: string) => a.indexOf(s);
    for (const o of ['--unshare-user', '--disable-userns', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-ipc', '--die-with-parent', '--new-session']) expect(a).toContain(o);
    expect(a.slice(at('--hostname'), at('--hostname') + 2)).toEqual(['--hostname', 'box']);
    expect(a.slice(at('--bind'), at('--bind') + 3)).toEqual(['--bind', '/var/lib/wb/linux/containers/c1/merged', '/']);
    expect(at('--proc')).toBeLessThan(at('--dev'));
    expect(a.slice(at('--proc'), at('--proc') + 5)).toEqual(['--proc', '/proc', '--ro-bind-try', '/proc/irq', '/proc/irq']);
    expect(a.join(' ')).toContain('--ro-bind-try /proc/sys /proc/sys --ro-bind-try /dev/null /proc/keys --ro-bind-try /var/lib/wb/linux/empty /proc/acpi --dev /dev');
    expect(at('--tmpfs')).toBeLessThan(at('--ro-bind'));
    expect(a.join(' ')).toContain('--dev /dev --perms 1777 --tmpfs /dev/shm --perms 1777 --tmpfs /tmp');
    expect(a.slice(at('--ro-bind'), at('--ro-bind') + 3)).toEqual(['--ro-bind', '/h/a', '/data']);
    expect(a.slice(at('--chdir'), at('--chdir') + 3)).toEqual(['--chdir', '/data', '--clearenv']);
    expect(a.join(' ')).toContain('--setenv X a=b');
    expect(a.filter((x) => x === '--cap-add').length).toBe(DOCKER_DEFAULT_CAPS.length);
    expect(at('--cap-drop')).toBeLessThan(at('--cap-add'));
    expect(a.slice(at('--seccomp'), at('--seccomp') + 2)).toEqual(['--seccomp', '3']);
    expect(a.slice(at('--'))).toEqual(['--', '/bin/sh', '-c', 'true']);
  });

  it('a read-only root without limits is bwrap alone', () => {
    const inv = buildInvocation(plan({ readOnlyRoot: true }), tools, { privileged: true, cgroupProcs: [] });
    expect(inv.command).toBe('/usr/bin/bwrap');
    expect(inv.args).toContain('--ro-bind');
    expect(inv.args.slice(inv.args.indexOf('--ro-bind'), inv.args.indexOf('--ro-bind') + 3)).toEqual(['--ro-bind', '/var/lib/wb/linux/layers/aa', '/']);
    expect(inv.seccomp.length % 8).toBe(0);
  });

  it('a writable root is an overlay mounted by a prelude in its own mount namespace (a user namespace too when not root)', () => {
    const p = plan();
    const overlay = 'lowerdir=/var/lib/wb/linux/layers/aa,upperdir=/var/lib/wb/linux/containers/c1/upper,workdir=/var/lib/wb/linux/containers/c1/work';
    const merged = "'/var/lib/wb/linux/containers/c1/merged'";
    const root = buildInvocation(p, tools, { privileged: true, cgroupProcs: [] });
    expect(root.command).toBe('/usr/bin/unshare');
    expect(root.args.slice(0, 5)).toEqual(['--mount', '--propagation', 'private', '/bin/sh', '-c']);
    expect(root.args[5]).toBe(`'/bin/mount' -t overlay -o '${overlay}' wasmbox ${merged} && exec '/usr/bin/bwrap' "$@"`);
    expect(root.args.slice(6, 8)).toEqual(['wasmbox', '--unshare-user']);
    // the host's busybox mounts when there is one
    const bb = buildInvocation(p, { ...tools, busybox: '/bin/busybox' }, { privileged: true, cgroupProcs: [] });
    expect(bb.args[5]).toBe(`'/bin/busybox' mount -t overlay -o '${overlay}' wasmbox ${merged} && exec '/usr/bin/bwrap' "$@"`);
    const user = buildInvocation(p, tools, { privileged: false, cgroupProcs: [] });
    expect(user.command).toBe('/usr/bin/unshare');
    expect(user.args.slice(0, 5)).toEqual(['--user', '--map-root-user', '--mount', '--propagation', 'private']);
    expect(user.args[user.args.indexOf('-c') + 1]).toBe(`'/bin/mount' -t overlay -o '${overlay},userxattr' wasmbox ${merged} && exec '/usr/bin/bwrap' "$@"`);
    // cgroups are joined before the mount
    const limited = buildInvocation(p, tools, { privileged: true, cgroupProcs: ['/cg/pids/x/cgroup.procs'] });
    expect(limited.args[5]).toMatch(/^echo \$\$ > '\/cg\/pids\/x\/cgroup.procs' && '\/bin\/mount' -t overlay/);
  });

  it('joins the cgroups before anything else runs', () => {
    const p = plan({ readOnlyRoot: true, limits: { pids: 5 } });
    const inv = buildInvocation(p, tools, { privileged: true, cgroupProcs: ["/sys/fs/cgroup/pids/wasmbox/it's/cgroup.procs"] });
    expect(inv.command).toBe('/bin/sh');
    expect(inv.args.slice(0, 3)).toEqual(['-c', `echo $$ > '/sys/fs/cgroup/pids/wasmbox/it'\\''s/cgroup.procs' && exec "$0" "$@"`, '/usr/bin/bwrap']);
    expect(inv.args.slice(3)).toEqual(bwrapArgs(p));
  });

  it('with the namespace helper, a writable root is entered with nsenter (the helper mounted it), cgroups joined first', () => {
    const p = plan();
    const bb = { ...tools, busybox: '/bin/busybox' };
    const root = buildInvocation(p, bb, { privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/42/ns/mnt' } });
    expect(root.command).toBe('/bin/busybox');
    expect(root.args.slice(0, 3)).toEqual(['nsenter', '-m/proc/42/ns/mnt', '/usr/bin/bwrap']);
    expect(root.args.slice(3)).toEqual(bwrapArgs(p));
    const user = buildInvocation(p, bb, { privileged: false, cgroupProcs: [], helper: { mountNs: '/proc/42/ns/mnt', userNs: '/proc/42/ns/user' } });
    expect(user.args.slice(0, 5)).toEqual(['nsenter', '-U/proc/42/ns/user', '--preserve-credentials', '-m/proc/42/ns/mnt', '/usr/bin/bwrap']);
    const limited = buildInvocation(p, bb, { privileged: true, cgroupProcs: ['/cg/pids/x/cgroup.procs'], helper: { mountNs: '/proc/42/ns/mnt' } });
    // (joined before entering: the helper's mount namespace has no /sys)
    expect(limited.command).toBe('/bin/busybox');
    expect(limited.args.slice(0, 7)).toEqual(['sh', '-c', `echo $$ > '/cg/pids/x/cgroup.procs' && exec "$0" "$@"`, '/bin/busybox', 'nsenter', '-m/proc/42/ns/mnt', '/usr/bin/bwrap']);
    // a read-only root needs no mount namespace of the helper's
    expect(buildInvocation(plan({ readOnlyRoot: true }), bb, { privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/42/ns/mnt' } }).command).toBe('/usr/bin/bwrap');
  });

  it('the helper reads fields, never code: its script is fixed and request lines cannot carry a second line or field', () => {
    const root = helperInvocation('/bin/busybox', true);
    expect(root.writeMaps).toBe(true);
    // a mount namespace of its own as the host's root: /dev read-only in place, /sys and /dev's submounts detached
    expect(root.args.slice(0, 7)).toEqual(['unshare', '-m', '--propagation', 'private', '/bin/busybox', 'sh', '-c']);
    expect(root.args[7]).toContain(`'/bin/busybox' mount -o remount,bind,ro /dev && exec '/bin/busybox' unshare -U -m --propagation private '/bin/busybox' sh -c "$0" "$1"`);
    for (const m of TRIMMED_MOUNTS) expect(root.args[7]).toContain(`${m}|${m}/*`);
    expect(root.args.at(-1)).toMatch(/^echo 0 > \/proc\/sys\/user\/max_user_namespaces && echo ok && trap '' PIPE; while /);
    // untrimmed (a process with one container): the user namespace at once, /dev read-only through a bind mount
    const once = helperInvocation('/bin/busybox', true, false, false);
    expect(once.args.slice(0, 7)).toEqual(['unshare', '-U', '-m', '--propagation', 'private', '/bin/busybox', 'sh']);
    expect(once.args.at(-1)).toMatch(/^echo 0 > \/proc\/sys\/user\/max_user_namespaces && '\/bin\/busybox' mount --rbind \/dev \/dev && '\/bin\/busybox' mount -o remount,bind,ro \/dev && echo ok && trap '' PIPE; while /);
    for (const d of DEV_NODES) expect(d.startsWith('/dev/')).toBe(true);
    expect(root.args.join(' ')).not.toContain('eval');
    const user = helperInvocation('/bin/busybox', false);
    expect(user.writeMaps).toBe(false);
    expect(user.args.slice(0, 4)).toEqual(['unshare', '-U', '-r', '-m']);
    expect(helperLine('m', 'lowerdir=/a,upperdir=/b,workdir=/c,userxattr', '/m')).toBe('m|lowerdir=/a,upperdir=/b,workdir=/c,userxattr|/m\n');
    expect(helperLine('u', '', '/m')).toBe('u||/m\n');
    expect(helperLine('r', '', '/k')).toBe('r||/k\n');
    expect(root.args.at(-1)).toContain(`r) '/bin/busybox' rm -rf -- "$b";;`);
    for (const bad of ['/m|u', '/m\nu||/etc', '/m\0']) expect(helperLine('u', '', bad)).toBeUndefined();
    expect(overlayOptionSafe('/var/lib/wb/x')).toBe(true);
    for (const bad of ['/a,b', '/a:b', '/a|b', '/a\nb']) expect(overlayOptionSafe(bad)).toBe(false);
  });
});

describe('identity-mapped user namespace (root)', () => {
  const idHost = (o: Partial<PlanHost> = {}) => host({ idMap: 'identity', switcher: '/usr/bin/busybox', ...o });

  it('a root container joins the namespace: no --unshare-user, no --uid, no switch', () => {
    const p = plan({}, idHost());
    expect(p.idMap).toBe('identity');
    expect(p.userSwitch).toBeUndefined();
    const a = bwrapArgs(p);
    expect(a.slice(0, 3)).toEqual(['--userns', String(USERNS_FD), '--assert-userns-disabled']);
    expect(a).not.toContain('--unshare-user');
    expect(a).not.toContain('--uid');
    expect(a.slice(a.indexOf('--'))).toEqual(['--', '/bin/sh', '-c', 'true']);
    expect(buildInvocation(p, { bwrap: '/usr/bin/bwrap', unshare: '/u', sh: '/bin/sh', mount: '/m', busybox: '/usr/bin/busybox' }, { privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/1/ns/mnt' } }).userns).toBe(true);
  });

  it('a non-root user starts through the read-only switcher, which drops to its uid and gid; the guest keeps no capability', () => {
    const p = plan({ user: 'app' }, idHost());
    expect(p.userSwitch).toEqual({ binary: '/usr/bin/busybox', uid: 1000, gid: 1000 });
    expect(p.capabilities).toEqual([]);
    const a = bwrapArgs(p);
    const at = (s: string) => a.indexOf(s);
    expect(a.join(' ')).toContain(`--ro-bind /usr/bin/busybox ${SWITCH_PATH}`);
    expect(at('--dev')).toBeLessThan(a.indexOf(SWITCH_PATH)); // on bwrap's /dev tmpfs, not in the image
    const caps = a.flatMap((x, i) => (x === '--cap-add' ? [a[i + 1]] : []));
    expect(caps.sort()).toEqual(['CAP_SETGID', 'CAP_SETUID']); // for the one setuid(), which clears them
    expect(a.slice(at('--'))).toEqual(['--', SWITCH_PATH, 'nsenter', '-S', '1000', '-G', '1000', '--', '/bin/sh', '-c', 'true']);
    expect(plan({ user: '0:50' }, idHost()).userSwitch).toEqual({ binary: '/usr/bin/busybox', uid: 0, gid: 50 });
    expect(bwrapArgs(plan({ user: '0:50' }, idHost())).join(' ')).toContain(`${SWITCH_PATH} nsenter -G 50 -- /bin/sh`);
  });

  it('without a static busybox a non-root user keeps the single-uid map', () => {
    const p = plan({ user: 'app' }, idHost({ switcher: undefined }));
    expect(p.idMap).toBe('single');
    expect(bwrapArgs(p).join(' ')).toContain('--unshare-user --disable-userns');
    expect(bwrapArgs(p).join(' ')).toContain('--uid 1000 --gid 1000');
  });

  it('rejects a plan whose switch does not match its user', () => {
    const h = idHost();
    const p = planContainer(image, spec({ user: 'app' }), h, ID);
    fails(() => validatePlan({ ...p, userSwitch: { ...p.userSwitch!, uid: 0 } }, h), 'INVALID_ARGUMENT', /uid switch must drop/);
    fails(() => validatePlan({ ...p, userSwitch: undefined }, h), 'INVALID_ARGUMENT', /needs a uid switch/);
    fails(() => validatePlan({ ...p, idMap: 'single' }, h), 'INVALID_ARGUMENT', /only for an identity-mapped/);
  });
});

describe('the host\'s device nodes with root mapped (a root caller)', () => {
  const tools = { bwrap: '/usr/bin/bwrap', unshare: '/usr/bin/unshare', sh: '/bin/sh', mount: '/bin/mount' };

  it('are planned read-only and the plan is refused otherwise', () => {
    expect(plan({}, host({ rootMapped: true })).hostDevNodes).toBe('read-only');
    expect(plan({}, host()).hostDevNodes).toBe('as-is');
    const h = host({ rootMapped: true });
    fails(() => validatePlan({ ...planContainer(image, spec(), h, ID), hostDevNodes: 'as-is' }, h), 'INVALID_ARGUMENT', /device nodes must be read-only/);
  });

  it('so even a read-only root runs in the helper\'s mount namespace, or behind a prelude that binds them read-only', () => {
    const h = host({ rootMapped: true });
    const p = plan({ readOnlyRoot: true }, h);
    const viaHelper = buildInvocation(p, { ...tools, busybox: '/bin/busybox' }, { privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/9/ns/mnt' } });
    expect([viaHelper.command, ...viaHelper.args.slice(0, 3)]).toEqual(['/bin/busybox', 'nsenter', '-m/proc/9/ns/mnt', '/usr/bin/bwrap']);
    const legacy = buildInvocation(p, tools, { privileged: true, cgroupProcs: [] });
    expect(legacy.command).toBe('/usr/bin/unshare');
    expect(legacy.args.slice(0, 5)).toEqual(['--mount', '--propagation', 'private', '/bin/sh', '-c']);
    expect(legacy.args[5]).toBe(`'/bin/mount' --rbind /dev /dev && '/bin/mount' -o remount,bind,ro /dev && exec '/usr/bin/bwrap' "$@"`);
    // unprivileged, root is not mapped: a read-only root stays bwrap alone
    expect(buildInvocation(plan({ readOnlyRoot: true }), tools, { privileged: false, cgroupProcs: [] }).command).toBe('/usr/bin/bwrap');
  });
});

describe('terminal', () => {
  const withPty = (o: Partial<PlanHost> = {}) => host({ pty: '/opt/wb/native/bin/pty-x86_64', ...o });

  it('refuses -t when this installation has no terminal program for the arch, rather than ignoring it', () => {
    fails(() => plan({ tty: true }), 'CAPABILITY_DENIED', /terminal \(-t\/--tty\) needs wasmbox's pty program for x86_64/);
  });

  it('runs the program under the terminal program, after the user switch, at the size asked (80 x 24 by default)', () => {
    const p = plan({ tty: true }, withPty());
    expect(p.tty).toEqual({ binary: '/opt/wb/native/bin/pty-x86_64', cols: 80, rows: 24 });
    const a = bwrapArgs(p);
    expect(a.slice(a.indexOf('--'))).toEqual(['--', PTY_PATH, '80', '24', '--', '/bin/sh', '-c', 'true']);
    const dir = PTY_PATH.slice(0, PTY_PATH.lastIndexOf('/'));
    expect(a.join(' ')).toContain(`--perms 0711 --dir ${dir} --ro-bind /opt/wb/native/bin/pty-x86_64 ${PTY_PATH}`);
    const user = plan({ tty: true, ttySize: { cols: 132, rows: 50 }, user: 'app' }, withPty({ idMap: 'identity', switcher: '/bin/busybox' }));
    const u = bwrapArgs(user);
    expect(u.slice(u.indexOf('--'))).toEqual(['--', SWITCH_PATH, 'nsenter', '-S', '1000', '-G', '1000', '--', PTY_PATH, '132', '50', '--', '/bin/sh', '-c', 'true']);
    expect(bwrapArgs(plan()).join(' ')).not.toContain(PTY_PATH);
  });

  it('validates the terminal as data: an absolute program, sizes from 0 to 65535', () => {
    const h = withPty();
    const p = plan({ tty: true }, h);
    fails(() => validatePlan({ ...p, tty: { ...p.tty!, cols: 70000 } }, h), 'INVALID_ARGUMENT', /invalid terminal size 70000 x 24/);
    fails(() => validatePlan({ ...p, tty: { ...p.tty!, rows: 1.5 } }, h), 'INVALID_ARGUMENT', /invalid terminal size/);
    fails(() => validatePlan({ ...p, tty: { ...p.tty!, binary: 'pty' } }, h), 'INVALID_ARGUMENT', /terminal program must be an absolute host path/);
  });
});
