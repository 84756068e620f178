/**
 * A validated Plan as one command line: bubblewrap's argv, started directly, through `nsenter` into
 * the namespace helper's mount namespace (where the container's overlay root is mounted), or behind
 * the legacy `unshare … sh -c` prelude that mounts the overlay itself when no helper can run here.
 * Pure: the tools' paths and the helper's namespaces arrive as arguments.
 */
import { DEV_NODES, PTY_PATH, PUBLISH_DIR, PUBLISH_PATH, PUBLISH_SOCKET, SETID_PATH, SWITCH_PATH, type Plan } from './plan.ts';
import { compileSeccomp, encodeSeccomp } from './seccomp.ts';

export interface Tools {
  bwrap: string; unshare: string; sh: string; mount: string;
  /** The host's busybox, when installed and statically linked: the namespace helper and uid switch use it. */
  busybox?: string;
}

export interface Invocation {
  command: string;
  args: string[];
  /** Bytes for fd 3: the seccomp program bwrap loads just before exec. */
  seccomp: Uint8Array;
  /** bwrap writes its JSON status (child pid, exit code) to fd 4. */
  statusFd: 4;
  /** The spawner passes the identity-mapped user namespace as fd 5 (USERNS_FD) and runs as uid 0, gid 0 with no supplementary groups. */
  userns: boolean;
  /**
   * The same container as a launch (see Launch), when the process is bwrap itself (directly or behind
   * nsenter) and a static busybox can be its trampoline; the legacy prelude has none.
   */
  launch?: Launch;
}

/**
 * A container in two halves, so that the process can be started before the container is known (a
 * launcher, see launcher.ts): `argv` is the same for every container of a backend with the same
 * namespaces (`[nsenter …] bwrap --args 6 -- <trampoline>`): bwrap waits reading its options from
 * ARGS_FD, and the spawner writes `options` (NUL-separated) there once the container is planned, after
 * it has put the process in the container's cgroups (`cgroupProcs`). bwrap takes no command from an
 * --args file, so the command is a fixed trampoline (the host's static busybox, bound at SWITCH_PATH,
 * running TRAMPOLINE) that execs the container's argv, passed in environment variables it removes. The
 * last option sets LAUNCH_END, without which the trampoline runs nothing: options cut short (this process
 * died while writing them) never run a command.
 */
export interface Launch {
  argv: string[];
  options: string[];
  cgroupProcs: string[];
}

export const SECCOMP_FD = 3;
export const STATUS_FD = 4;
export const USERNS_FD = 5;
export const ARGS_FD = 6;
/** Environment variables that carry the container's environment and argv to the trampoline: __WASMBOX_ARGC, __WASMBOX_ARG<i>. */
export const TRAMPOLINE_ENV = '__WASMBOX_ARG';
const ARGC = `${TRAMPOLINE_ENV}C`;
/** The last of a launch's options: bwrap's options were read whole (see Launcher.launch). */
export const LAUNCH_END = '__WASMBOX_END';
/**
 * The trampoline, run by the host's static busybox sh at SWITCH_PATH with only its own variables:
 * "$@" from __WASMBOX_ARG0..N-1 (eval sees variable names made from $#, never their values), then
 * `busybox env -i K=V… ARGV…`, so the container's process gets exactly its environment (sh would add
 * SHLVL, PWD and PATH), with the same pid. (The environment and argv pass through it twice: a command
 * line near the kernel's limit for one exec fails with E2BIG here.)
 */
export const TRAMPOLINE = `[ "$${LAUNCH_END}" = 1 ] && [ -n "$${ARGC}" ] || exit 127; set --; while [ "$#" -lt "$${ARGC}" ]; do ` +
  `eval "set -- \\"\\$@\\" \\"\\$${TRAMPOLINE_ENV}$#\\""; done; exec ${SWITCH_PATH} env -i "$@"`;

/**
 * `joined`: how bwrap gets into an identity-mapped user namespace: 'fd' (root) joins it through
 * USERNS_FD; 'entered' (an unprivileged caller with /etc/subuid ranges) already runs in it, as its
 * root, through nsenter -U (bwrap cannot join a namespace it is in, and the caller cannot enter the
 * helper's mount namespace without entering its user namespace first).
 */
export function bwrapArgs(plan: Plan, joined: 'fd' | 'entered' = 'fd'): string[] {
  return [...bwrapOptions(plan, joined, plan.env), '--', ...guestArgv(plan)];
}

/** bwrap's options for the plan (everything before `--`), with `env` (K=V) as the process's environment. */
function bwrapOptions(plan: Plan, joined: 'fd' | 'entered', env: string[], trampoline?: string): string[] {
  const a: string[] = [];
  const ns = plan.namespaces;
  // With an identity map the user namespace exists already (the helper's, user.max_user_namespaces=0
  // inside): bwrap joins it and checks that no further one can be made.
  if (plan.idMap === 'identity') a.push(...(joined === 'fd' ? ['--userns', String(USERNS_FD)] : []), '--assert-userns-disabled');
  else if (ns.user) a.push('--unshare-user', '--disable-userns');
  if (ns.pid) a.push('--unshare-pid');
  if (ns.net) a.push('--unshare-net');
  if (ns.uts) a.push('--unshare-uts', '--hostname', plan.hostname);
  if (ns.ipc) a.push('--unshare-ipc');
  if (ns.cgroup) a.push('--unshare-cgroup-try');
  a.push('--die-with-parent', '--new-session');
  if (plan.idMap === 'single') a.push('--uid', String(plan.uid), '--gid', String(plan.gid));
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
  const sw = plan.userSwitch;
  // (the terminal program and the port relay run as the container's user, after the switch: they must
  // reach the directory, which bwrap would otherwise make for root alone)
  if (plan.tty || plan.publish) a.push('--perms', '0711', '--dir', PTY_PATH.slice(0, PTY_PATH.lastIndexOf('/')));
  if (sw?.groups) a.push('--ro-bind', sw.binary, SETID_PATH);
  if (plan.tty) a.push('--ro-bind', plan.tty.binary, PTY_PATH);
  if (plan.publish) a.push('--ro-bind', plan.publish.binary, PUBLISH_PATH, '--bind', plan.publish.hostDir, PUBLISH_DIR);
  if (sw && !sw.groups) a.push('--ro-bind', sw.binary, SWITCH_PATH);
  else if (trampoline) a.push('--ro-bind', trampoline, SWITCH_PATH);
  for (const d of plan.createDirs ?? []) a.push('--dir', d);
  a.push('--chdir', plan.cwd, '--clearenv');
  for (const e of env) {
    const i = e.indexOf('=');
    a.push('--setenv', e.slice(0, i), e.slice(i + 1));
  }
  a.push('--cap-drop', 'ALL');
  // The switch needs CAP_SETUID/CAP_SETGID for setgroups, setgid and setuid (a uid other than 0 then clears every capability).
  const caps = plan.userSwitch ? [...new Set([...plan.capabilities, 'CAP_SETUID', 'CAP_SETGID'])] : plan.capabilities;
  for (const c of caps) a.push('--cap-add', c);
  a.push('--seccomp', String(SECCOMP_FD), '--json-status-fd', String(STATUS_FD));
  return a;
}

/** The trampoline's variables: the container's environment, then its argv (see TRAMPOLINE). */
function trampolineEnv(plan: Plan): string[] {
  // (bwrap --chdir sets PWD to the working directory, over any the environment has)
  const env = [...plan.env.filter((e) => !e.startsWith('PWD=')), `PWD=${plan.cwd}`];
  const words = [...env, ...guestArgv(plan)];
  return [`${ARGC}=${words.length}`, ...words.map((w, i) => `${TRAMPOLINE_ENV}${i}=${w}`)];
}

/** Gids per argument of setid's: one argument of the kernel's is at most 128 KiB (11 bytes a gid at most). */
const GIDS_PER_ARG = 8192;

/**
 * `setid uid gid g1,g2… --` (setgroups, setresgid, setresuid, exec: native/setid.c), or without groups
 * `nsenter -S uid -G gid --`: setgroups(0), setgid, setuid, then exec the program (no namespace is entered).
 */
function switchArgv(plan: Plan): string[] {
  const sw = plan.userSwitch;
  if (!sw) return [];
  if (sw.groups) {
    const lists: string[] = [];
    for (let i = 0; i === 0 || i < sw.groups.length; i += GIDS_PER_ARG) lists.push(sw.groups.slice(i, i + GIDS_PER_ARG).join(','));
    return [SETID_PATH, String(sw.uid), String(sw.gid), ...lists, '--'];
  }
  return [SWITCH_PATH, 'nsenter', ...(sw.uid !== 0 ? ['-S', String(sw.uid)] : []), '-G', String(sw.gid), '--'];
}

/**
 * What runs in the container: the user switch, then (with published ports) the port relay, then (with a
 * tty) the terminal program, which starts the program on a terminal of its own, then the program. The
 * relay and the terminal program run as the container's user.
 */
function guestArgv(plan: Plan): string[] {
  const ports = plan.publish ? [...new Set(plan.publish.ports.map((p) => p.containerPort))].join(',') : '';
  const publish = plan.publish ? [PUBLISH_PATH, PUBLISH_SOCKET, ports, '--'] : [];
  const tty = plan.tty ? [PTY_PATH, String(plan.tty.cols), String(plan.tty.rows), '--'] : [];
  return [...switchArgv(plan), ...publish, ...tty, ...plan.argv];
}

/** Single-quotes a word for sh. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Host paths that end up in mount options must not carry the option syntax. */
export function overlayOptionSafe(p: string): boolean {
  return !/[,:\\|\n\r\0]/.test(p);
}

export function overlayOptions(plan: Pick<Plan, 'root'>, userxattr: boolean): string {
  const { lower, upper, work } = plan.root;
  return `lowerdir=${lower},upperdir=${upper},workdir=${work}${userxattr ? ',userxattr' : ''}`;
}

export interface InvocationHost {
  privileged: boolean;
  /** cgroup.procs files the process writes its pid to before anything else runs. */
  cgroupProcs: string[];
  /** tools.busybox is statically linked: it can be the trampoline of a launch (see Launch). */
  staticBusybox?: boolean;
  /**
   * The namespace helper, when one runs: the writable root is already mounted in its mount namespace,
   * which the container enters with nsenter (its user namespace too when not root). As root, the host's
   * device nodes are read-only there (see DEV_NODES), so every container enters it. Not root, with an
   * identity plan (the helper's namespace maps /etc/subuid ranges), every container enters it too.
   */
  helper?: { mountNs: string; userNs?: string };
}

/**
 * The plan as one process:
 * - with the namespace helper: `busybox nsenter [-U<its user ns>] -m<its mount ns> bwrap …` for a
 *   writable root (the helper mounted the overlay there beforehand) and, as root, for every container
 *   (the host's device nodes are read-only there); unprivileged, a read-only root is plain `bwrap`;
 * - without it (no static busybox): a prelude in a mount namespace of its own (plus a user namespace
 *   when not root) mounts the writable root and, as root, makes /dev read-only, then execs bwrap:
 *   `unshare [--user --map-root-user] --mount --propagation private sh -c '… && exec bwrap "$@"'`.
 * In both cases the overlay never exists in the host's mount namespace.
 * Limits add `echo $$ > cgroup.procs` first, so the process joins its cgroups before anything else runs.
 */
export function buildInvocation(plan: Plan, tools: Tools, o: InvocationHost): Invocation {
  const seccomp = encodeSeccomp(compileSeccomp(plan.seccomp));
  // (an identity plan with the helper's user namespace to enter: the caller is not root, the map is its subordinate ids)
  const entered = plan.idMap === 'identity' && o.helper?.userNs !== undefined;
  const bwrap = bwrapArgs(plan, entered ? 'entered' : 'fd');
  const userns = plan.idMap === 'identity' && !entered;
  const joinCgroups = o.cgroupProcs.map((procs) => `echo $$ > ${shellQuote(procs)}`);
  const shell = tools.busybox ? [tools.busybox, 'sh'] : [tools.sh];

  const devReadOnly = plan.hostDevNodes === 'read-only';
  if (o.helper || (!plan.root.writable && !devReadOnly)) {
    let argv = [tools.bwrap, ...bwrap];
    let enter: string[] = [];
    if (plan.root.writable || devReadOnly || entered) {
      const h = o.helper!;
      if (!tools.busybox) throw new Error('the namespace helper needs busybox');
      // (--preserve-credentials: the caller is root in the helper's user namespace already, and that
      // namespace denies setgroups)
      enter = [tools.busybox, 'nsenter', ...(h.userNs ? [`-U${h.userNs}`, '--preserve-credentials'] : []), `-m${h.mountNs}`];
      argv = [...enter, ...argv];
    }
    // (before entering the helper's namespaces: its mount namespace has no /sys, see TRIMMED_MOUNTS)
    if (joinCgroups.length) argv = [...shell, '-c', [...joinCgroups, 'exec "$0" "$@"'].join(' && '), ...argv];
    // (busybox env takes a first word with '=' for a variable: such a command cannot go through it)
    const launchable = tools.busybox !== undefined && o.staticBusybox === true && (plan.userSwitch !== undefined || !plan.argv[0]!.includes('='));
    return {
      command: argv[0]!, args: argv.slice(1), seccomp, statusFd: STATUS_FD, userns,
      ...(launchable ? {
        launch: {
          argv: [...enter, tools.bwrap, '--args', String(ARGS_FD), '--', SWITCH_PATH, 'sh', '-c', TRAMPOLINE],
          options: [...bwrapOptions(plan, entered ? 'entered' : 'fd', trampolineEnv(plan), tools.busybox), '--setenv', LAUNCH_END, '1'],
          cgroupProcs: o.cgroupProcs,
        },
      } : {}),
    };
  }

  const lines = [...joinCgroups];
  const mount = tools.busybox ? `${shellQuote(tools.busybox)} mount` : shellQuote(tools.mount);
  if (devReadOnly) lines.push(readOnlyDevNodes(mount));
  if (plan.root.writable) lines.push(`${mount} -t overlay -o ${shellQuote(overlayOptions(plan, !o.privileged))} wasmbox ${shellQuote(plan.root.merged!)}`);
  lines.push(`exec ${shellQuote(tools.bwrap)} "$@"`);
  const namespaces = o.privileged
    ? ['--mount', '--propagation', 'private']
    : ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
  return { command: tools.unshare, args: [...namespaces, tools.sh, '-c', lines.join(' && '), 'wasmbox', ...bwrap], seccomp, statusFd: STATUS_FD, userns };
}

/**
 * Mounts a root caller's namespace helper detaches (with all below them): no container reaches the host's
 * /sys, and bwrap makes each container's /dev, /dev/pts and /dev/shm of its own. Host paths under them
 * cannot be bound into a container (see RESERVED_HOST_SOURCES in plan.ts).
 */
export const TRIMMED_MOUNTS = ['/sys', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/hugepages'];

/**
 * The namespace helper: one long-lived process per backend that holds a mount namespace (and a user
 * namespace) for the containers' overlay roots, and mounts and unmounts them on request, one line
 * each on its stdin (`m|OPTIONS|TARGET`, `u||TARGET`), answering the exit status on stdout. It reads
 * fields, it never evaluates them. It exits when its stdin closes (its owner's exit, even a crash).
 * - As root: `busybox unshare -m` first, as the host's root, to make /dev read-only and detach
 *   TRIMMED_MOUNTS in a mount namespace of its own; then `busybox unshare -U -m` from there (`trim`
 *   false, for a process that runs one container: `busybox unshare -U -m` at once, which is ready a few
 *   milliseconds sooner, and /dev is made read-only by a bind mount of it); the
 *   spawner writes the identity uid/gid maps once it says `u`, then the helper re-execs (uid 0 in the namespace: full capabilities there), sets the namespace's
 *   user.max_user_namespaces to 0 and says `ok`. Containers join that user namespace with bwrap --userns.
 * - Unprivileged with /etc/subuid ranges (`subIds`): as root, except that the spawner maps the ids
 *   with newuidmap/newgidmap (the caller's uid is root inside, its subordinate ids 1..N) and the
 *   host's /dev stays as it is (the host's root is not mapped: its device nodes cannot be changed).
 * - Unprivileged otherwise: `busybox unshare -U -r -m` (the caller's uid as root inside), says `ok`.
 */
export function helperInvocation(busybox: string, privileged: boolean, subIds = false, trim = true): { command: string; args: string[]; writeMaps: boolean } {
  const bb = shellQuote(busybox);
  // (r: removals its owner asked for as it exited, done after it is gone: answers then go nowhere, hence no SIGPIPE)
  const loop = `trap '' PIPE; while IFS='|' read -r op a b; do case "$op" in m) ${bb} mount -t overlay -o "$a" wasmbox "$b";; u) ${bb} umount "$b";; r) ${bb} rm -rf -- "$b";; *) exit 2;; esac; echo $?; done`;
  if (privileged && !trim) {
    const main = `echo 0 > /proc/sys/user/max_user_namespaces && ${readOnlyDevNodes(`${bb} mount`)} && echo ok && ${loop}`;
    return {
      command: busybox,
      args: ['unshare', '-U', '-m', '--propagation', 'private', busybox, 'sh', '-c', `echo u && read -r go && exec ${bb} sh -c "$0"`, main],
      writeMaps: true,
    };
  }
  if (privileged) {
    // A mount namespace of its own first, still as the host's root: /dev made read-only in place and the
    // mounts no container uses detached (each one costs every container's bwrap time to copy and scan),
    // then the user namespace and the namespace the overlays go in, which starts from that table.
    const trim = `t=; while read -r _ _ _ _ p _; do case "$p" in ${TRIMMED_MOUNTS.map((m) => `${m}|${m}/*`).join('|')}) t="$p $t";; esac; done < /proc/self/mountinfo; ` +
      `if [ -n "$t" ]; then ${bb} umount -l $t 2>/dev/null; fi; ${bb} mount -o remount,bind,ro /dev`;
    const main = `echo 0 > /proc/sys/user/max_user_namespaces && echo ok && ${loop}`;
    const userNs = `exec ${bb} unshare -U -m --propagation private ${bb} sh -c "$0" "$1"`;
    return {
      command: busybox,
      args: ['unshare', '-m', '--propagation', 'private', busybox, 'sh', '-c', `${trim} && ${userNs}`, `echo u && read -r go && exec ${bb} sh -c "$0"`, main],
      writeMaps: true,
    };
  }
  if (subIds) {
    const main = `echo 0 > /proc/sys/user/max_user_namespaces && echo ok && ${loop}`;
    return {
      command: busybox,
      args: ['unshare', '-U', '-m', '--propagation', 'private', busybox, 'sh', '-c', `echo u && read -r go && exec ${bb} sh -c "$0"`, main],
      writeMaps: true,
    };
  }
  return { command: busybox, args: ['unshare', '-U', '-r', '-m', '--propagation', 'private', busybox, 'sh', '-c', `echo ok && ${loop}`], writeMaps: false };
}

/**
 * Shell: the host's /dev becomes a read-only bind mount of itself in a private mount namespace, so
 * bwrap's binds of DEV_NODES from it are read-only too. One mount for all of them: every mount there
 * is copied into each container's namespace and read by bwrap several times, so fewer is faster.
 */
export function readOnlyDevNodes(mount: string): string {
  const dev = DEV_NODES[0]!.slice(0, DEV_NODES[0]!.lastIndexOf('/'));
  // (--rbind: in a user namespace the host's /dev cannot be bound without the mounts under it, locked there)
  return `${mount} --rbind ${dev} ${dev} && ${mount} -o remount,bind,ro ${dev}`;
}

/** One request line for the helper; undefined when a field could break the line format. */
export function helperLine(op: 'm' | 'u' | 'r', options: string, target: string): string | undefined {
  if ([options, target].some((f) => /[|\n\r\0]/.test(f))) return undefined;
  return `${op}|${options}|${target}\n`;
}
