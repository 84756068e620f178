/**
 * A validated Plan as one command line: bubblewrap's argv, behind a short `unshare … sh -c` prelude
 * when the root needs an overlay mount (bubblewrap 0.8 has no overlay options) or the process must
 * join cgroups before it runs. Pure: the tools' paths arrive in `tools`.
 */
import type { Plan } from './plan.ts';
import { compileSeccomp, encodeSeccomp } from './seccomp.ts';

export interface Tools {
  bwrap: string; unshare: string; sh: string; mount: string;
  /** The host's busybox, when installed: its mount starts and mounts an overlay ~3x faster than util-linux's. */
  busybox?: string;
}

export interface Invocation {
  command: string;
  args: string[];
  /** Bytes for fd 3: the seccomp program bwrap loads just before exec. */
  seccomp: Uint8Array;
  /** bwrap writes its JSON status (child pid, exit code) to fd 4. */
  statusFd: 4;
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
        if (m.mode !== undefined) a.push('--perms', m.mode.toString(8).padStart(4, '0'));
        a.push('--tmpfs', m.dest);
        break;
      case 'bind': a.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.dest); break;
      // The host's /proc/X read-only over the container's: sysctls are global (net ones follow the
      // reader's network namespace), so the view is the same, minus writing.
      case 'proc-readonly': a.push('--ro-bind-try', m.dest, m.dest); break;
      case 'proc-mask': a.push('--ro-bind-try', m.source, m.dest); break;
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

/**
 * The plan as one process. A writable root needs an overlay mount, which bwrap 0.8 cannot make: a
 * short prelude does it in a mount namespace of its own (plus a user namespace when not root) and
 * execs bwrap, so the mount never exists on the host and goes away with the container:
 *   unshare [--user --map-root-user] --mount --propagation private sh -c 'mount … && exec bwrap "$@"'
 * The host's busybox mounts when installed (it starts and mounts an overlay ~3x faster than
 * util-linux's libmount). Limits add `echo $$ > cgroup.procs` first, so the process joins its
 * cgroups before anything else runs.
 */
export function buildInvocation(
  plan: Plan,
  tools: Tools,
  o: { privileged: boolean; cgroupProcs: string[] },
): Invocation {
  const seccomp = encodeSeccomp(compileSeccomp(plan.seccomp));
  const bwrap = bwrapArgs(plan);
  const needsPrelude = plan.root.writable || o.cgroupProcs.length > 0;
  if (!needsPrelude) return { command: tools.bwrap, args: bwrap, seccomp, statusFd: STATUS_FD };

  const lines: string[] = [];
  for (const procs of o.cgroupProcs) lines.push(`echo $$ > ${shellQuote(procs)}`);
  if (plan.root.writable) {
    const mount = tools.busybox ? `${shellQuote(tools.busybox)} mount` : shellQuote(tools.mount);
    lines.push(`${mount} -t overlay -o ${shellQuote(overlayOptions(plan, o.privileged))} wasmbox ${shellQuote(plan.root.merged!)}`);
  }
  lines.push(`exec ${shellQuote(tools.bwrap)} "$@"`);
  const script = lines.join(' && ');
  if (!plan.root.writable) {
    return { command: tools.sh, args: ['-c', script, 'wasmbox', ...bwrap], seccomp, statusFd: STATUS_FD };
  }
  const namespaces = o.privileged
    ? ['--mount', '--propagation', 'private']
    : ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
  return {
    command: tools.unshare,
    args: [...namespaces, tools.sh, '-c', script, 'wasmbox', ...bwrap],
    seccomp,
    statusFd: STATUS_FD,
  };
}
