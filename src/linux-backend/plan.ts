/**
 * A container as data: namespaces, mounts in order, process, capabilities, seccomp and limits.
 * `planContainer` builds it from an image and a merged ContainerSpec, `validatePlan` rejects it whole
 * before anything runs, and `execute` (run.ts) turns it into a bubblewrap invocation. Nothing here
 * touches the host: what the host can do arrives in `PlanHost`, so plans are unit-tested without root.
 */
import { SandboxError } from '../errors.ts';
import type { Image } from '../loader/source.ts';
import type { ContainerSpec } from '../runtime/types.ts';
import { defaultSeccompPolicy, type SeccompPolicy } from './seccomp.ts';
import type { SeccompArch } from './syscalls.ts';

/** Docker's default capability set for a root process in a container. */
export const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** Every capability Linux has (as of 5.9); --cap-add/--cap-drop take these, with or without CAP_, any case. */
export const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/**
 * docker's capability set with --cap-drop then --cap-add applied (`ALL` names every one). They bound what
 * a root process of the container holds, in its own user namespace; the seccomp filter still applies.
 */
export function containerCapabilities(add: string[] = [], drop: string[] = []): string[] {
  const names = (list: string[], flag: string): string[] => list.flatMap((raw) => {
    const upper = raw.trim().toUpperCase();
    if (upper === 'ALL') return [...ALL_CAPS];
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    if (!(ALL_CAPS as readonly string[]).includes(name)) throw new SandboxError('INVALID_ARGUMENT', `${flag}: unknown capability ${JSON.stringify(raw)}`);
    return [name];
  });
  const dropped = new Set(names(drop, '--cap-drop'));
  const caps: string[] = DOCKER_DEFAULT_CAPS.filter((c) => !dropped.has(c));
  for (const c of names(add, '--cap-add')) if (!caps.includes(c)) caps.push(c);
  return caps;
}

export type PlanMount =
  | { kind: 'bind'; source: string; dest: string; readOnly: boolean }
  /** A path of the container's /proc made read-only, or hidden (under an empty dir or /dev/null), as docker does. */
  | { kind: 'proc-readonly'; dest: string }
  | { kind: 'proc-mask'; dest: string; source: string }
  | { kind: 'proc'; dest: string }
  | { kind: 'dev'; dest: string }
  | { kind: 'tmpfs'; dest: string; sizeBytes?: number; mode?: number }
  | { kind: 'mqueue'; dest: string };

export interface Namespaces { user: boolean; mount: boolean; pid: boolean; net: boolean; uts: boolean; ipc: boolean; cgroup: boolean }

export type CgroupController = 'memory' | 'pids' | 'cpu';

/** How this host can enforce each cgroup controller, found by probing (see cgroups.ts). */
export interface CgroupSupport {
  memory?: 'v1' | 'v2';
  pids?: 'v1' | 'v2';
  cpu?: 'v1' | 'v2';
  /** Why a controller is missing, for the error message. */
  missingReason?: string;
}

/**
 * /proc paths docker makes read-only (global kernel knobs: with the host's root mapped to the
 * container's root, /proc/sys would otherwise write the host's sysctls) and the ones it hides.
 */
export const PROC_READ_ONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
export const PROC_MASKED_FILES = ['/proc/kcore', '/proc/keys', '/proc/kmsg', '/proc/latency_stats', '/proc/sched_debug', '/proc/timer_list', '/proc/timer_stats'];
export const PROC_MASKED_DIRS = ['/proc/acpi', '/proc/asound', '/proc/scsi'];
/**
 * The host's device nodes bwrap's --dev binds into the container's /dev. When the caller is root,
 * root is mapped in the container's user namespace, so a container root with CAP_FOWNER/CAP_CHOWN
 * could chmod, chown or touch the host's own /dev/null (found by trying `chmod 666 /dev/null`: it
 * succeeded; `chmod 000` would break the host). So bwrap must take them from a mount namespace where
 * /dev is a read-only bind mount: reading and writing the devices still work, metadata changes fail
 * with EROFS, and bwrap's binds inherit the read-only flag (and mount() is refused in the container).
 */
export const DEV_NODES = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];

/**
 * How the container's user namespace maps ids:
 * - 'single': bwrap's own user namespace maps the container's one uid/gid to the caller's (other
 *   uids show as 65534); what an unprivileged caller without /etc/subuid ranges can have.
 * - 'identity': a user namespace made by a root caller maps every id to itself, so the image's owners
 *   are what the container sees and `chown` works; bwrap joins it (`--userns`) instead of making one.
 */
export type IdMapMode = 'single' | 'identity';

export interface PlanHost {
  arch: SeccompArch;
  idMap?: IdMapMode;
  /**
   * A static busybox on the host. With an identity map, bwrap 0.8 cannot switch to a non-root uid
   * itself (`--userns` with `--uid` drops its capabilities before it mounts anything), so the
   * container's first exec is this binary's `nsenter -S uid -G gid --` (setgroups, setgid, setuid,
   * exec), bound read-only at SWITCH_PATH. It cannot set supplementary groups: see `setid`.
   */
  switcher?: string;
  /**
   * This package's static set-ids-and-exec program for the host's arch (native/setid.c): with it the
   * switch also sets the supplementary groups (bound read-only at SETID_PATH). Without it, `switcher`.
   */
  setid?: string;
  /** This package's terminal program for the host's arch (native/pty.c), for a container with a tty. */
  pty?: string;
  /** This package's port relay for the host's arch (native/publish.c), for a container with published ports. */
  publish?: string;
  /** The host's /etc/resolv.conf, when it has one: bound read-only into a container on the host's network. */
  resolvConf?: string;
  /** Which of the PROC_* paths exist in a fresh /proc of a sandbox on this kernel (bwrap cannot create them). */
  procPresent: string[];
  /** An empty, read-only host directory (to hide /proc directories under). */
  emptyDir: string;
  /** The image's merged layers on disk (read-only lower). */
  rootfsDir: string;
  /** Private directory of this container (overlay upper and work dirs). */
  containerDir: string;
  /** The caller's root is mapped in the container's user namespace (a root caller): host inodes need protecting. */
  rootMapped?: boolean;
  cgroups: CgroupSupport;
  /** argv[0] without a slash, looked up through PATH inside the root filesystem; undefined when absent. */
  resolveCommand(name: string, path: string): { path: string; executable: boolean } | undefined;
  /** What a path names in the image (symlinks followed inside it); undefined when absent. */
  statGuest(path: string): { kind: string; executable: boolean } | undefined;
  /** A name or number from `user[:group]` to ids, through the image's /etc/passwd and /etc/group. */
  resolveUser(user: string): { uid: number; gid: number; home?: string };
  /**
   * The supplementary gids docker gives `user` (undefined: the image's default, root) besides its
   * primary gid: the /etc/group entries that list its passwd name (only when `user` names no group),
   * then `groupAdd` (names or gids). Throws NOT_FOUND for a group name the image does not know.
   */
  supplementaryGroups?(user: string | undefined, groupAdd: string[]): number[];
  /** The guest path with symlinks resolved inside the root filesystem (mount points may not leave it). */
  canonicalGuestPath(path: string): string;
}

/** Host paths that are never a bind mount's source: the host's devices and kernel interfaces. */
export const RESERVED_HOST_SOURCES = ['/dev', '/sys'];

/** The reserved host directory `source` is in (see RESERVED_HOST_SOURCES), if any. */
export function reservedHostSource(source: string): string | undefined {
  return RESERVED_HOST_SOURCES.find((r) => source === r || source.startsWith(`${r}/`));
}

/** Where the uid switcher appears in the container (bwrap's /dev is a tmpfs of its own). */
export const SWITCH_PATH = '/dev/.wasmbox/busybox';
/** Where the set-ids program (PlanHost.setid) appears in the container. */
export const SETID_PATH = '/dev/.wasmbox/setid';
/** Where the terminal program (PlanHost.pty) appears in the container. */
export const PTY_PATH = '/dev/.wasmbox/pty';
/** Where the port relay (PlanHost.publish) appears in the container. */
export const PUBLISH_PATH = '/dev/.wasmbox/publish';
/** Where the container's relay directory (Plan.publish.hostDir) appears in it, and the relay's socket there. */
export const PUBLISH_DIR = '/dev/.wasmbox/ports';
export const PUBLISH_SOCKET = `${PUBLISH_DIR}/relay`;
/** The socket's name in the relay directory (on the host: `${hostDir}/${PUBLISH_SOCKET_NAME}`). */
export const PUBLISH_SOCKET_NAME = 'relay';
/** A container's terminal size when none is given (docker's). */
export const DEFAULT_TTY_SIZE = { cols: 80, rows: 24 };
/** The most supplementary groups a process may have (the kernel's NGROUPS_MAX). */
export const MAX_GROUPS = 65536;

/**
 * The exec that sets the container's ids before its program runs (identity map only):
 * - with `groups`: our setid (PlanHost.setid): setgroups(groups), setresgid, setresuid, exec;
 * - without: busybox `nsenter -S uid -G gid --`, which clears the supplementary groups.
 */
export interface UserSwitch { binary: string; uid: number; gid: number; groups?: number[] }

export interface Plan {
  id: string;
  hostname: string;
  namespaces: Namespaces;
  idMap: IdMapMode;
  /** 'read-only': bwrap must run where DEV_NODES are read-only bind mounts (see DEV_NODES). */
  hostDevNodes: 'read-only' | 'as-is';
  /**
   * With an identity map and a non-root user (or root with supplementary groups, when setid is there):
   * the exec that drops to uid/gid (and sets the groups) before the program runs.
   */
  userSwitch?: UserSwitch;
  root: { lower: string; writable: boolean; upper?: string; work?: string; merged?: string };
  mounts: PlanMount[];
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  noNewPrivileges: true;
  /** Kept after dropping all others (empty for a non-root user, as docker does). */
  capabilities: string[];
  seccomp: SeccompPolicy;
  limits: { memoryBytes?: number; pids?: number; cpus?: number; timeoutMs?: number; outputBytes?: number };
  cgroup?: { memory?: 'v1' | 'v2'; pids?: 'v1' | 'v2'; cpu?: 'v1' | 'v2' };
  stdin: boolean;
  /**
   * A terminal (docker -t): the program runs under PTY_PATH (the host's `binary`), on a pseudo-terminal
   * of the container's own devpts, of this initial size; stdin carries its frames (native/pty.c).
   */
  tty?: { binary: string; cols: number; rows: number };
  /**
   * Published ports (docker -p): the host listens on each hostIp:hostPort and joins every connection to
   * the container through a Unix socket in `hostDir` (private to the container, bound at PUBLISH_DIR),
   * where the relay (PUBLISH_PATH, the host's `binary`, run before the program) connects it to
   * 127.0.0.1:containerPort in the container's network namespace (native/publish.c).
   */
  publish?: { binary: string; hostDir: string; ports: Array<{ hostIp: string; hostPort: number; containerPort: number }> };
  /** Directories created in the (writable) root before the process starts, e.g. a missing working directory. */
  createDirs?: string[];
}

/** Where a published port listens when no address is given: every IPv4 address, as docker's default. */
export const DEFAULT_PUBLISH_IP = '0.0.0.0';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const invalid = (message: string, data?: Record<string, unknown>): SandboxError =>
  new SandboxError('INVALID_ARGUMENT', message, data ? { data } : {});

export function planContainer(image: Image, spec: ContainerSpec, host: PlanHost, id: string): Plan {
  if (image.platform.os !== 'linux') {
    throw new SandboxError('PLATFORM_MISMATCH', `the linux backend runs linux images, not ${image.platform.os}`);
  }
  if (spec.argv.length === 0) throw new SandboxError('NOT_RUNNABLE', 'no command: the image has no Entrypoint or Cmd and none was given');
  const env = withDefaultPath(spec.env);
  const argv = [...spec.argv];
  const argv0 = argv[0]!;
  const data = { entrypoint: argv0 };
  if (!argv0.includes('/')) {
    const found = host.resolveCommand(argv0, envValue(env, 'PATH') ?? DEFAULT_PATH);
    if (!found) throw new SandboxError('NOT_FOUND', `exec: "${argv0}": executable file not found in $PATH`, { data });
    if (!found.executable) throw new SandboxError('NOT_RUNNABLE', `exec: "${found.path}": permission denied`, { data });
    argv[0] = found.path;
  } else if (argv0.startsWith('/') && !spec.mounts.some((m) => argv0.startsWith(`${m.guest.replace(/\/+$/, '')}/`))) {
    // (a program inside a bind mount is the host's business: bwrap's exec reports it)
    const st = host.statGuest(argv0);
    if (!st) throw new SandboxError('NOT_FOUND', `exec: "${argv0}": no such file or directory`, { data });
    if (st.kind !== 'file') throw new SandboxError('NOT_RUNNABLE', `exec: "${argv0}": is a ${st.kind === 'dir' ? 'directory' : st.kind}, not a program`, { data });
    if (!st.executable) throw new SandboxError('NOT_RUNNABLE', `exec: "${argv0}": permission denied`, { data });
  }
  const { uid, gid, home } = spec.user ? host.resolveUser(spec.user) : { uid: 0, gid: 0, home: undefined };
  // docker: a user other than root whose HOME nothing set gets the home /etc/passwd gives it, else /
  if (spec.defaultHome && uid !== 0) {
    const i = env.findIndex((e) => e.startsWith('HOME='));
    if (i >= 0) env[i] = `HOME=${home ?? '/'}`;
  }
  // (on the host's network the container's ports are the host's: docker discards -p there, and so do we)
  const published = spec.network === 'host' ? [] : spec.publish ?? [];
  if (published.length && !host.publish) {
    throw new SandboxError('CAPABILITY_DENIED', `published ports (-p/--publish) need wasmbox's port relay for ${host.arch} (native/bin/publish-${host.arch}), which this installation lacks: run without -p, or with --network host`);
  }
  if (spec.tty && !host.pty) {
    throw new SandboxError('CAPABILITY_DENIED', `a terminal (-t/--tty) needs wasmbox's pty program for ${host.arch} (native/bin/pty-${host.arch}), which this installation lacks: run without -t`);
  }
  // docker: the primary gid, then the user's member groups and --group-add (a bwrap single-uid map
  // cannot set groups: there the container's process has none)
  const groups = [...new Set([gid, ...(host.supplementaryGroups?.(spec.user, spec.groupAdd ?? []) ?? [])])];
  const idMap: IdMapMode = host.idMap === 'identity' && (uid === 0 && gid === 0 || host.switcher || host.setid) ? 'identity' : 'single';
  const capabilities = containerCapabilities(spec.capAdd, spec.capDrop);
  // (root's groups come through setid, which holds CAP_SETUID/CAP_SETGID until it drops to a user: root
  // that gave them up keeps them given up, without its member groups)
  const canSwitchRoot = capabilities.includes('CAP_SETUID') && capabilities.includes('CAP_SETGID');
  const userSwitch = idMap === 'identity' ? switchFor(host, uid, gid, uid === 0 && !canSwitchRoot ? [] : groups) : undefined;

  const present = new Set(host.procPresent);
  const mounts: PlanMount[] = [
    { kind: 'proc', dest: '/proc' },
    ...PROC_READ_ONLY.filter((p) => present.has(p)).map((dest): PlanMount => ({ kind: 'proc-readonly', dest })),
    ...PROC_MASKED_FILES.filter((p) => present.has(p)).map((dest): PlanMount => ({ kind: 'proc-mask', dest, source: '/dev/null' })),
    ...PROC_MASKED_DIRS.filter((p) => present.has(p)).map((dest): PlanMount => ({ kind: 'proc-mask', dest, source: host.emptyDir })),
    { kind: 'dev', dest: '/dev' },
    { kind: 'tmpfs', dest: '/dev/shm', mode: 0o1777 },
  ];
  const userMounts = spec.mounts.map((m) => {
    if (m.source.type !== 'host') {
      throw new SandboxError('CAPABILITY_DENIED', `the linux backend mounts host directories only; ${m.guest} is a ${m.source.type} mount`);
    }
    if (!isAbsoluteNormal(m.guest)) throw invalid(`mount point must be an absolute path without '.' or '..': ${m.guest}`);
    return { kind: 'bind' as const, source: m.source.path, dest: host.canonicalGuestPath(m.guest), readOnly: m.mode === 'ro' };
  });
  if (!userMounts.some((m) => m.dest === '/tmp')) mounts.push({ kind: 'tmpfs', dest: '/tmp', mode: 0o1777 });
  // On the host's network, the host's resolver as docker gives it (a read-only root takes it only over a
  // file of its own: bwrap cannot create one there).
  const resolv = '/etc/resolv.conf';
  if (spec.network === 'host' && host.resolvConf && !userMounts.some((m) => m.dest === resolv)
    && (!spec.readOnlyRoot || host.statGuest(resolv)?.kind === 'file')) {
    mounts.push({ kind: 'bind', source: host.resolvConf, dest: resolv, readOnly: true });
  }
  mounts.push(...userMounts.sort((a, b) => depth(a.dest) - depth(b.dest)));

  const writable = !spec.readOnlyRoot;
  const root: Plan['root'] = writable
    ? { lower: host.rootfsDir, writable, upper: `${host.containerDir}/upper`, work: `${host.containerDir}/work`, merged: `${host.containerDir}/merged` }
    : { lower: host.rootfsDir, writable };

  if (spec.limits.storageBytes !== undefined) {
    // Refused rather than ignored: the writable layer of a Linux container is a directory on disk.
    throw new SandboxError('INVALID_ARGUMENT', 'a storage size (--storage-opt size=) is not supported for Linux images yet');
  }
  const limits: Plan['limits'] = {};
  for (const key of ['memoryBytes', 'pids', 'cpus', 'timeoutMs', 'outputBytes'] as const) {
    const v = spec.limits[key];
    if (v !== undefined) limits[key] = v;
  }
  let cgroup: Plan['cgroup'];
  const want: Array<[CgroupController, boolean]> = [['memory', limits.memoryBytes !== undefined], ['pids', limits.pids !== undefined], ['cpu', limits.cpus !== undefined]];
  for (const [controller, wanted] of want) {
    if (!wanted) continue;
    cgroup ??= {};
    const version = host.cgroups[controller];
    if (version) cgroup[controller] = version;
  }

  return {
    id,
    hostname: spec.hostname ?? id.slice(0, 12),
    namespaces: { user: true, mount: true, pid: true, net: spec.network !== 'host', uts: true, ipc: true, cgroup: true },
    idMap,
    hostDevNodes: host.rootMapped ? 'read-only' : 'as-is',
    ...(userSwitch ? { userSwitch } : {}),
    root,
    mounts,
    argv,
    env,
    cwd: spec.cwd || '/',
    uid,
    gid,
    noNewPrivileges: true,
    capabilities: uid === 0 ? capabilities : [],
    seccomp: defaultSeccompPolicy(host.arch),
    limits,
    ...(cgroup ? { cgroup } : {}),
    stdin: spec.stdin,
    ...(spec.tty ? { tty: { binary: host.pty!, ...(spec.ttySize ?? DEFAULT_TTY_SIZE) } } : {}),
    ...(published.length ? {
      publish: {
        binary: host.publish!,
        hostDir: `${host.containerDir}/ports`,
        ports: published.map((p) => ({ hostIp: p.hostIp ?? DEFAULT_PUBLISH_IP, hostPort: p.hostPort, containerPort: p.containerPort })),
      },
    } : {}),
  };
}

/** Rejects a plan that conflicts with itself or asks for what the host cannot enforce; returns it otherwise. */
export function validatePlan(plan: Plan, host: Pick<PlanHost, 'cgroups' | 'rootMapped'>): Plan {
  const problems: string[] = [];
  if (host.rootMapped && plan.hostDevNodes !== 'read-only') problems.push('with root mapped, the host\'s device nodes must be read-only in the container');
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(plan.hostname)) problems.push(`invalid hostname ${JSON.stringify(plan.hostname)}`);
  if (!isAbsoluteNormal(plan.cwd)) problems.push(`working directory must be absolute: ${plan.cwd}`);
  if (!plan.argv[0]) problems.push('empty argv');
  for (const e of plan.env) if (!e.includes('=') || e.startsWith('=')) problems.push(`environment entry is not NAME=value: ${e}`);
  for (const v of [...plan.argv, ...plan.env, plan.cwd]) if (v.includes('\0')) problems.push('NUL byte in argv, env or cwd');
  if (!isId(plan.uid)) problems.push(`invalid uid ${plan.uid}`);
  if (!isId(plan.gid)) problems.push(`invalid gid ${plan.gid}`);
  const ns = plan.namespaces;
  if (!(ns.user && ns.mount && ns.pid)) problems.push('user, mount and pid namespaces are required');
  if (plan.idMap !== 'single' && plan.idMap !== 'identity') problems.push(`unknown id map ${String(plan.idMap)}`);
  const sw = plan.userSwitch;
  if (sw) {
    if (plan.idMap !== 'identity') problems.push('a uid switch is only for an identity-mapped user namespace');
    if (sw.uid !== plan.uid || sw.gid !== plan.gid) problems.push('the uid switch must drop to the plan\'s uid and gid');
    if (!sw.binary.startsWith('/')) problems.push(`the uid switcher must be an absolute host path: ${sw.binary}`);
    if (sw.groups !== undefined) {
      if (!Array.isArray(sw.groups) || sw.groups.length > MAX_GROUPS) problems.push(`at most ${MAX_GROUPS} supplementary groups`);
      else for (const g of sw.groups) if (!isId(g)) { problems.push(`invalid supplementary gid ${String(g)}`); break; }
    }
  } else if (plan.idMap === 'identity' && (plan.uid !== 0 || plan.gid !== 0)) {
    problems.push('an identity-mapped container with a non-root user needs a uid switch');
  }
  if (plan.tty) {
    const { binary, cols, rows } = plan.tty;
    if (!binary.startsWith('/')) problems.push(`the terminal program must be an absolute host path: ${binary}`);
    if (![cols, rows].every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff)) problems.push(`invalid terminal size ${cols} x ${rows}`);
  }
  if (plan.publish) problems.push(...publishProblems(plan));

  const seen = new Set<string>();
  for (const m of plan.mounts) {
    if (!isAbsoluteNormal(m.dest)) { problems.push(`mount point must be an absolute normalised path: ${m.dest}`); continue; }
    if (m.dest === '/') problems.push('a mount over / is not allowed (the image is the root)');
    if (seen.has(m.dest)) problems.push(`two mounts on ${m.dest}`);
    seen.add(m.dest);
    if (m.kind === 'bind') {
      if (!m.source.startsWith('/')) problems.push(`host path of a mount must be absolute: ${m.source}`);
      for (const reserved of ['/proc', '/dev', '/sys']) {
        if (m.dest === reserved || m.dest.startsWith(`${reserved}/`)) problems.push(`a mount on ${m.dest} would cover the container's ${reserved}`);
      }
      const hostReserved = reservedHostSource(m.source);
      if (hostReserved) problems.push(`host ${hostReserved} is not bound into containers (${m.source}): they get a /dev of their own and no /sys`);
    }
  }
  if (plan.mounts.some((m) => m.kind === 'proc' && m.dest !== '/proc')) problems.push('proc may only be mounted on /proc');
  if (plan.mounts.some((m) => (m.kind === 'proc-readonly' || m.kind === 'proc-mask') && !m.dest.startsWith('/proc/'))) problems.push('proc masks must be under /proc');

  const l = plan.limits;
  if (l.memoryBytes !== undefined && !(Number.isSafeInteger(l.memoryBytes) && l.memoryBytes >= 4 * 1024 * 1024)) problems.push(`memory limit must be at least 4 MiB, got ${l.memoryBytes}`);
  if (l.pids !== undefined && !(Number.isSafeInteger(l.pids) && l.pids >= 1)) problems.push(`pids limit must be a positive integer, got ${l.pids}`);
  if (l.cpus !== undefined && !(Number.isFinite(l.cpus) && l.cpus >= 0.01)) problems.push(`cpus must be at least 0.01, got ${l.cpus}`);
  if (l.timeoutMs !== undefined && !(Number.isFinite(l.timeoutMs) && l.timeoutMs > 0)) problems.push(`timeout must be positive, got ${l.timeoutMs}`);
  if (problems.length) throw invalid(`invalid container plan: ${problems.join('; ')}`, { problems });

  const unenforceable: string[] = [];
  if (l.memoryBytes !== undefined && !host.cgroups.memory) unenforceable.push('memory (-m)');
  if (l.pids !== undefined && !host.cgroups.pids) unenforceable.push('pids (--pids-limit)');
  if (l.cpus !== undefined && !host.cgroups.cpu) unenforceable.push('cpu (--cpus)');
  if (unenforceable.length) {
    throw new SandboxError(
      'BACKEND_UNAVAILABLE',
      `cannot enforce the ${unenforceable.join(', ')} limit on this host: ${host.cgroups.missingReason ?? 'no usable cgroup controller'}` +
        ' (run as root with cgroups v1, or delegate a cgroup v2 subtree with those controllers to this user)',
      { data: { unenforceable } },
    );
  }
  return plan;
}

function publishProblems(plan: Plan): string[] {
  const { binary, hostDir, ports } = plan.publish!;
  const problems: string[] = [];
  if (!binary.startsWith('/')) problems.push(`the port relay must be an absolute host path: ${binary}`);
  if (!isAbsoluteNormal(hostDir)) problems.push(`the relay directory must be an absolute host path: ${hostDir}`);
  if (!plan.namespaces.net) problems.push('published ports need a network namespace of the container\'s own');
  if (!ports.length) problems.push('no published port');
  const bound = new Set<string>();
  for (const p of ports) {
    const where = `${p.hostIp}:${p.hostPort}`;
    if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 0xffff) problems.push(`invalid container port ${p.containerPort}`);
    if (!Number.isInteger(p.hostPort) || p.hostPort < 0 || p.hostPort > 0xffff) problems.push(`invalid host port ${p.hostPort}`);
    if (typeof p.hostIp !== 'string' || !/^[0-9A-Fa-f.:]{2,45}$/.test(p.hostIp)) problems.push(`invalid host address ${JSON.stringify(p.hostIp)}`);
    if (p.hostPort !== 0 && bound.has(where)) problems.push(`host port ${where} is published twice`);
    bound.add(where);
  }
  return problems;
}

/** A uid or gid the kernel takes ((uid_t)-1 means "unchanged"). */
const isId = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xfffffffe;

/**
 * The switch to uid/gid/groups, none when the process already is that (bwrap starts it as uid 0, gid 0,
 * no supplementary groups): setid when the host has it, else busybox nsenter without the groups.
 */
function switchFor(host: PlanHost, uid: number, gid: number, groups: number[]): UserSwitch | undefined {
  const extraGroups = groups.some((g) => g !== 0);
  if (host.setid && (uid !== 0 || gid !== 0 || extraGroups)) return { binary: host.setid, uid, gid, groups };
  if (host.switcher && (uid !== 0 || gid !== 0)) return { binary: host.switcher, uid, gid };
  return undefined;
}

function withDefaultPath(env: string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [`PATH=${DEFAULT_PATH}`, ...env];
}

function envValue(env: string[], name: string): string | undefined {
  const hit = [...env].reverse().find((e) => e.startsWith(`${name}=`));
  return hit?.slice(name.length + 1);
}

export function isAbsoluteNormal(p: string): boolean {
  if (!p.startsWith('/')) return false;
  if (p === '/') return true;
  if (p.endsWith('/')) return false;
  return p.slice(1).split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

const depth = (p: string): number => p.split('/').length;
