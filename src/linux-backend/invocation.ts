/**
 * A validated Plan as one command line: bubblewrap's argv, behind a short `unshare … sh -c` prelude
 * when the root needs an overlay mount (bubblewrap 0.8 has no overlay options) or the process must
 * join cgroups before it runs. Pure: the tools' paths arrive in `tools`.
 */
import type { Plan } from './plan.ts';
import { compileSeccomp, encodeSeccomp } from './seccomp.ts';

export interface Tools {
  bwrap: string; unshare: string; sh: string; mount: string; umount: string;
  /** The host's busybox, when installed: its mount starts and mounts an overlay ~3x faster than util-linux's. */
  busybox?: string;
}

/** A command run to completion before (or after) the container. */
export interface Step { command: string; args: string[] }

export interface Invocation {
  command: string;
  args: string[];
  /** Bytes for fd 3: the seccomp program bwrap loads just before exec. */
  seccomp: Uint8Array;
  /** bwrap writes its JSON status (child pid, exit code) to fd 4. */
  statusFd: 4;
  /** As root: the overlay root is mounted (private) in the host's mount namespace before bwrap starts... */
  before?: Step;
  /**
   * ...and detached from the host's namespace as soon as bwrap reports its child (whose new mount
   * namespace holds its own copy), so nothing stays mounted on the host while the container runs.
   */
  after?: Step;
}

export const SECCOMP_FD = 3;
export const STATUS_FD = 4;

export function bwrapArgs(plan: Plan): string[] {
  const a: string[] = [];
  const ns = plan.namespaces;
  if (ns.user) a.push('--unshare-user', '--disable-userns');
  if (ns.pid) a.push('--unshare-pid');
  if (ns.net) a.push('--unshare-net');
  if (ns.uts) a.push('--unshare-uts', '--hostname', plan.hostname);
  if (ns.ipc) a.push('--unshare-ipc');
  if (ns.cgroup) a.push('--unshare-cgroup-try');
  a.push('--die-with-parent', '--new-session');
  a.push('--uid', String(plan.uid), '--gid', String(plan.gid));
  if (plan.root.writable) a.push('--bind', plan.root.merged!, '/');
  else a.push('--ro-bind', plan.root.lower, '/');
  for (const m of plan.mounts) {
    switch (m.kind) {
      case 'proc': a.push('--proc', m.dest); break;
      case 'dev': a.push('--dev', m.dest); break;
      case 'mqueue': a.push('--mqueue', m.dest); break;
      case 'tmpfs':
        if (m.sizeBytes !== undefined) a.push('--size', String(m.sizeBytes));
        a.push('--tmpfs', m.dest);
        break;
      case 'bind': a.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.dest); break;
    }
  }
  for (const d of plan.createDirs ?? []) a.push('--dir', d);
  a.push('--chdir', plan.cwd, '--clearenv');
  for (const e of plan.env) {
    const i = e.indexOf('=');
    a.push('--setenv', e.slice(0, i), e.slice(i + 1));
  }
  a.push('--cap-drop', 'ALL');
  for (const c of plan.capabilities) a.push('--cap-add', c);
  a.push('--seccomp', String(SECCOMP_FD), '--json-status-fd', String(STATUS_FD));
  a.push('--', ...plan.argv);
  return a;
}

/** Single-quotes a word for sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Host paths that end up in mount options must not carry the option syntax. */
export function overlayOptionSafe(p: string): boolean {
  return !/[,:\\\n]/.test(p);
}

export function overlayOptions(plan: Pick<Plan, 'root'>, privileged: boolean): string {
  const { lower, upper, work } = plan.root;
  return `lowerdir=${lower},upperdir=${upper},workdir=${work}${privileged ? '' : ',userxattr'}`;
}

/** As root: the commands that mount the overlay root in the host's namespace and detach it again. */
export function overlayMountSteps(root: Plan['root'], tools: Tools, sharedMounts: boolean): { before: Step; after: Step } {
  const merged = root.merged!;
  const opts = overlayOptions({ root }, true);
  // Under a shared mount the overlay would be shared too, and its early detach would propagate into
  // bwrap's namespace: it is made private (util-linux's mount does that in the same call).
  return tools.busybox && !sharedMounts
    ? {
      before: { command: tools.busybox, args: ['mount', '-t', 'overlay', '-o', opts, 'wasmbox', merged] },
      after: { command: tools.busybox, args: ['umount', '-l', merged] },
    }
    : {
      before: { command: tools.mount, args: ['-n', ...(sharedMounts ? ['--make-private'] : []), '-t', 'overlay', '-o', opts, 'wasmbox', merged] },
      after: { command: tools.umount, args: ['-n', '-l', merged] },
    };
}

/**
 * As root the overlay is mounted in the host's mount namespace by `mount` itself and detached
 * again (umount -l) once bwrap's namespace holds its copy: one process fewer on the start path
 * than a private-namespace prelude, and no second mount namespace to tear down. Unprivileged, it must be mounted inside a user
 * namespace, so a short `unshare -Urm sh -c 'mount … && exec bwrap'` prelude does it.
 */
export function buildInvocation(
  plan: Plan,
  tools: Tools,
  o: { privileged: boolean; cgroupProcs: string[]; sharedMounts?: boolean },
): Invocation {
  const seccomp = encodeSeccomp(compileSeccomp(plan.seccomp));
  const bwrap = bwrapArgs(plan);
  if (o.privileged && plan.root.writable) {
    const steps = overlayMountSteps(plan.root, tools, o.sharedMounts ?? true);
    if (!o.cgroupProcs.length) return { command: tools.bwrap, args: bwrap, seccomp, statusFd: STATUS_FD, ...steps };
    const script = [...o.cgroupProcs.map((p) => `echo $$ > ${shellQuote(p)}`), `exec ${shellQuote(tools.bwrap)} "$@"`].join(' && ');
    return { command: tools.sh, args: ['-c', script, 'wasmbox', ...bwrap], seccomp, statusFd: STATUS_FD, ...steps };
  }
  const needsPrelude = plan.root.writable || o.cgroupProcs.length > 0;
  if (!needsPrelude) return { command: tools.bwrap, args: bwrap, seccomp, statusFd: STATUS_FD };

  const lines: string[] = [];
  // Joining the cgroups first: everything the container will ever fork is then counted.
  for (const procs of o.cgroupProcs) lines.push(`echo $$ > ${shellQuote(procs)}`);
  if (plan.root.writable) {
    lines.push(`${shellQuote(tools.mount)} -t overlay -o ${shellQuote(overlayOptions(plan, o.privileged))} wasmbox ${shellQuote(plan.root.merged!)}`);
  }
  lines.push(`exec ${shellQuote(tools.bwrap)} "$@"`);
  const script = lines.join(' && ');
  if (!plan.root.writable) {
    return { command: tools.sh, args: ['-c', script, 'wasmbox', ...bwrap], seccomp, statusFd: STATUS_FD };
  }
  // Unprivileged: the overlay is mounted in a user + mount namespace of its own, so it disappears
  // with the container.
  return {
    command: tools.unshare,
    args: ['--user', '--map-root-user', '--mount', '--propagation', 'private', tools.sh, '-c', script, 'wasmbox', ...bwrap],
    seccomp,
    statusFd: STATUS_FD,
  };
}
