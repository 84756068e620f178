/**
 * The Linux backend: native linux/<host arch> images as sandboxed processes, through bubblewrap.
 * create() = materialise the image's merged tree once (by chainID) -> plan -> validate -> invocation.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { SandboxError } from '../errors.ts';
import type { DirInode } from '../fs/inode.ts';
import type { LayerTree } from '../fs/layer-tree.ts';
import type { Image } from '../loader/source.ts';
import { newContainerId } from '../runtime/ids.ts';
import type { Backend, Container, ContainerSpec, ProbeResult } from '../runtime/types.ts';
import { createCgroups, probeCgroups } from './cgroups.ts';
import { LinuxContainer, stdioInheritable } from './container.ts';
import { buildInvocation, overlayOptions, overlayOptionSafe, type Tools } from './invocation.ts';
import { NamespaceHelper, type SubIdTools } from './helper.ts';
import { Launcher, launcherKey, SpareLaunchers, type LaunchShape } from './launcher.ts';
import { makeRootDirs, SpareRoots, type RootDirs } from './spare-roots.ts';
import { FinalFs, KeptDirs, listMerged, UserNsAccess } from './final-fs.ts';
import { applyOwnersInUserNs, ensureMaterialised, removeTree, type MaterialiseOptions } from './materialise.ts';
import { describeMapping, subIdMapping, type SubIdMapping } from './subids.ts';
import {
  planContainer, reservedHostSource, validatePlan, PROC_MASKED_DIRS, PUBLISH_SOCKET_NAME, PROC_MASKED_FILES, PROC_READ_ONLY, type CgroupSupport, type Plan, type PlanHost,
} from './plan.ts';
import { rootfsLookup } from './rootfs-lookup.ts';
import { PortRelay } from './port-relay.ts';
import { findNativeBinary, type NativeProgram } from './native-binary.ts';
import { pruneMaterialised } from './prune.ts';
import { EMPTY_ROOTFS_CHAIN_ID } from '../loader/store/rootfs-ids.ts';
import { withEtcHosts } from './etc-hosts.ts';
import type { SeccompArch } from './syscalls.ts';

export interface LinuxBackendOptions {
  /** $WASMBOX_HOME: layers are materialised under <home>/linux/layers, containers get <home>/linux/containers/<id>. */
  home: string;
  /** The image's merged layer tree (default: buildRootfs with a fresh layer cache). */
  rootfsTree?: (image: Image) => Promise<DirInode | LayerTree>;
  /** Paths of the tools (default: looked up in PATH). */
  tools?: Partial<Tools>;
  /**
   * false: no namespace helper; every writable root is mounted by a per-container prelude and bwrap
   * maps a single uid (what happens anyway without busybox). Default true.
   */
  namespaceHelper?: boolean;
  /**
   * Mount the next writable root of an image while a container of it runs (default true). A process that
   * runs one container (the CLI) turns it off: the spare would only be unmounted again at exit.
   */
  spareRoots?: boolean;
  /**
   * Start the next container's process while one runs, as a launcher (see launcher.ts; needs a static
   * busybox). Default: as spareRoots. A container without a spare that fits spawns its process whole.
   */
  spareLaunchers?: boolean;
  /**
   * Containers without an output limit get this process's stdout and stderr as their own (and its stdin
   * when interactive); their streams end empty. For a CLI (see RuntimeOptions.inheritStdio).
   */
  inheritStdio?: boolean;
}

interface HostCheck {
  ok: boolean;
  reason?: string;
  tools?: Tools;
  arch?: SeccompArch;
  ociArch?: string;
  privileged?: boolean;
  cgroups?: CgroupSupport;
  procPresent?: string[];
  /** tools.busybox is statically linked, so it can run inside any container's root (the uid switch). */
  staticBusybox?: boolean;
  /** Not root: the caller's /etc/subuid ranges and newuidmap/newgidmap, or why they are not used. */
  subIds?: SubIdTools;
  noSubIds?: string;
}

/** Which ids a container sees (see IdMapMode): for people, and tests. */
export interface IdMapping {
  /** 'identity': root caller; 'subids': an unprivileged caller's /etc/subuid ranges; 'single': only the caller's uid (others show as 65534). */
  mode: 'identity' | 'subids' | 'single';
  detail: string;
}


export function hostArch(): { oci: string; seccomp: SeccompArch } | undefined {
  if (process.arch === 'x64') return { oci: 'amd64', seccomp: 'x86_64' };
  if (process.arch === 'arm64') return { oci: 'arm64', seccomp: 'aarch64' };
  return undefined;
}

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

/** Checks, once per backend, that this host can run Linux containers; the reason names what is missing. */
function checkHost(home: string, override: Partial<Tools>): HostCheck {
  if (process.platform !== 'linux') return { ok: false, reason: `native Linux images need a Linux host (this is ${process.platform})` };
  const arch = hostArch();
  if (!arch) return { ok: false, reason: `the Linux backend supports x86_64 and aarch64 hosts, not ${process.arch}` };
  const tools: Partial<Tools> = {
    bwrap: override.bwrap ?? which('bwrap'),
    unshare: override.unshare ?? which('unshare'),
    sh: override.sh ?? which('sh'),
    mount: override.mount ?? which('mount'),
  };
  const busybox = override.busybox ?? which('busybox');
  if (busybox) tools.busybox = busybox;
  if (!tools.bwrap) return { ok: false, reason: 'bubblewrap (bwrap) is not installed: apt-get install bubblewrap (or dnf install bubblewrap)' };
  if (!tools.unshare || !tools.mount || !tools.sh) return { ok: false, reason: 'util-linux (unshare, mount) and sh are needed: apt-get install util-linux' };
  const privileged = process.getuid?.() === 0;
  const staticBusybox = tools.busybox !== undefined && isStaticElf(tools.busybox);
  // The namespace checks cost two process starts: their verdict is kept per boot, user and tool versions.
  const cacheKey = probeCacheKey(tools as Tools);
  const cacheFile = path.join(home, 'linux', 'host-probe.json');
  const cached = cacheKey ? readProbeCache(cacheFile) : undefined;
  if (cached && cached.key === cacheKey) {
    return { ok: true, tools: tools as Tools, arch: arch.seccomp, ociArch: arch.oci, privileged, cgroups: probeCgroups(), procPresent: cached.procPresent, staticBusybox };
  }
  // Can bwrap make user namespaces, and which /proc paths to protect does a sandbox's /proc have?
  const candidates = [...PROC_READ_ONLY, ...PROC_MASKED_FILES, ...PROC_MASKED_DIRS];
  const userns = spawnSync(tools.bwrap, ['--unshare-user', '--unshare-pid', '--unshare-net', '--ro-bind', '/', '/', '--proc', '/proc', '--',
    tools.sh, '-c', 'for p in "$@"; do [ -e "$p" ] && echo "$p"; done; exit 0', 'sh', ...candidates], { encoding: 'utf8', timeout: 10_000 });
  if (userns.status !== 0) {
    const why = (userns.stderr || userns.error?.message || '').trim();
    return {
      ok: false,
      reason: `bubblewrap cannot create user namespaces here (${why || `exit ${userns.status}`}): enable them ` +
        '(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)',
    };
  }
  // Overlay in a private mount namespace (a user namespace too when not root): the writable root.
  const scratch = path.join(home, 'linux', `.probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) fs.mkdirSync(path.join(scratch, d), { recursive: true });
    if (!overlayOptionSafe(scratch)) return { ok: false, reason: `WASMBOX_HOME ${home} contains ',', ':' or '\\', which overlay mount options cannot carry` };
    const opts = `lowerdir=${scratch}/lower,upperdir=${scratch}/upper,workdir=${scratch}/work${privileged ? '' : ',userxattr'}`;
    const ns = privileged ? ['--mount', '--propagation', 'private'] : ['--user', '--map-root-user', '--mount', '--propagation', 'private'];
    const r = spawnSync(tools.unshare, [...ns, tools.mount, '-t', 'overlay', '-o', opts, 'wasmbox', `${scratch}/merged`], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) {
      return { ok: false, reason: `overlayfs cannot be mounted in a ${privileged ? 'mount' : 'user'} namespace here (${(r.stderr || '').trim()}): a Linux kernel >= 5.11 with overlayfs is needed` };
    }
  } finally {
    removeTree(scratch);
  }
  const procPresent = userns.stdout.split('\n').filter((p) => candidates.includes(p));
  if (cacheKey) writeProbeCache(cacheFile, { key: cacheKey, procPresent });
  return { ok: true, tools: tools as Tools, arch: arch.seccomp, ociArch: arch.oci, privileged, cgroups: probeCgroups(), procPresent, staticBusybox };
}

/** An ELF file without a PT_INTERP program header: it needs no dynamic loader or libraries. */
function isStaticElf(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(64);
      if (fs.readSync(fd, head, 0, 64, 0) < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) return false;
      const phoff = Number(head.readBigUInt64LE(32));
      const phentsize = head.readUInt16LE(54);
      const phnum = head.readUInt16LE(56);
      if (phentsize < 4 || phnum > 256) return false;
      const table = Buffer.alloc(phentsize * phnum);
      fs.readSync(fd, table, 0, table.length, phoff);
      for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
      return true;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

function probeCacheKey(tools: Tools): string | undefined {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stamps = Object.values(tools).map((t) => {
      const st = fs.statSync(t);
      return `${t}:${st.size}:${st.mtimeMs}`;
    });
    return JSON.stringify([boot, process.getuid?.(), process.getgid?.(), ...stamps]);
  } catch {
    return undefined;
  }
}

interface ProbeCache { key: string; procPresent: string[] }

function readProbeCache(file: string): ProbeCache | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ProbeCache>;
    return typeof c.key === 'string' && Array.isArray(c.procPresent) && c.procPresent.every((p) => typeof p === 'string')
      ? { key: c.key, procPresent: c.procPresent } : undefined;
  } catch {
    return undefined;
  }
}

function writeProbeCache(file: string, value: ProbeCache): void {
  try {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(value));
    fs.renameSync(tmp, file);
  } catch { /* only a cache */ }
}

/** The Linux backend, plus what a runtime may call ahead of the first container, and which ids its containers see. */
export type LinuxBackend = Backend & { prewarm(): void; idMapping(): Promise<IdMapping>; pruneRootfs(live: Set<string>): Promise<string[]> };

export function createLinuxBackend(opts: LinuxBackendOptions): LinuxBackend {
  const home = path.resolve(opts.home);
  let host: HostCheck | undefined;
  // (at exit, the namespace helper, which outlives this process by a moment, removes what is left)
  let liveHelper: NamespaceHelper | undefined;
  const kept = new KeptDirs((dir) => removeMapped(dir), (dirs) => liveHelper?.removeAfterExit(dirs) ?? false);
  // One namespace helper per backend (when busybox is installed): it holds the identity-mapped user
  // namespace (root) and the mount namespace the writable roots are mounted in. Without it, the
  // legacy per-container prelude mounts the overlay and bwrap maps a single uid.
  let helper: Promise<NamespaceHelper | undefined> | undefined;
  const spares = new SpareRoots(home);
  const launchers = new SpareLaunchers();
  const spareLaunchers = opts.spareLaunchers ?? opts.spareRoots !== false;
  /**
   * The spare launcher when one fits (else the container spawns its process whole: a launcher started
   * on the spot only adds its trampoline); then a spare for the next container of this shape.
   */
  const takeLauncher = (argv: string[], shape: LaunchShape): Launcher | undefined => {
    const launcher = launchers.take(launcherKey(argv, shape));
    launchers.prepare(() => Launcher.start(argv, shape));
    return launcher;
  };
  // (our own static programs for the host's arch, looked up once: native/setid, pty and publish)
  const nativePaths = new Map<NativeProgram, string | undefined>();
  const native = (program: NativeProgram, arch: SeccompArch): string | undefined => {
    if (!nativePaths.has(program)) nativePaths.set(program, findNativeBinary(program, arch));
    return nativePaths.get(program);
  };
  let placeholder: number | undefined;
  const placeholderFd = (): number | undefined => (placeholder ??= openPlaceholder(home));
  // (a helper that could not start stays undefined: this backend keeps the legacy path; one that died is restarted)
  // (not root with /etc/subuid ranges: a helper whose map newuidmap refused falls back to the caller's uid alone)
  let mapped: NamespaceHelper | undefined;
  // (a process that runs one container does not trim the helper's mount table: it is ready sooner, and
  // the saving is per container)
  const trimHelper = opts.spareRoots !== false;
  const startHelper = (h: HostCheck) => NamespaceHelper.start(h.tools!.busybox!, h.privileged!, h.subIds, trimHelper)
    .catch((e: Error) => {
      if (!h.subIds) throw e;
      h.noSubIds = `the subordinate id map failed (${e.message})`;
      return NamespaceHelper.start(h.tools!.busybox!, h.privileged!, undefined, trimHelper);
    })
    .then((x) => {
      if (!x.subIds) return x;
      // (what a crashed process's container users left, the first reaping could not remove; before any spare exists)
      if (!mapped) {
        mapped = x;
        reapStaleContainers(home, removeMapped);
      }
      mapped = x;
      return x;
    })
    .then((x) => (liveHelper = x), () => undefined);
  const getHelper = (h: HostCheck): Promise<NamespaceHelper | undefined> => {
    if (!h.tools?.busybox || opts.namespaceHelper === false) return Promise.resolve(undefined);
    const p = (helper ??= startHelper(h));
    return p.then((x) => {
      if (!x || x.alive) return x;
      if (helper === p) helper = startHelper(h);
      return helper;
    });
  };
  const getHost = (): HostCheck => {
    if (!host) {
      host = checkHost(home, opts.tools ?? {});
      if (host.ok && !host.privileged) Object.assign(host, findSubIds(host, opts.namespaceHelper !== false));
      if (host.ok) reapStaleContainers(home);
    }
    return host;
  };
  // Default: a cache per build, so the in-memory trees are dropped once the image is on disk. Loaded
  // only when an image is materialised for the first time (tar parsing is not on the run path).
  const rootfsTree = opts.rootfsTree ?? (async (image: Image) => {
    const [{ buildRootfs }, { LayerCache }] = await Promise.all([import('../fs/rootfs.ts'), import('../fs/layer-cache.ts')]);
    return (await buildRootfs(image, new LayerCache())) ?? emptyDir();
  });

  async function probe(image: Image): Promise<ProbeResult> {
    if (image.kind !== 'linux' || image.platform.os !== 'linux') return { ok: false, reason: `not a Linux image (${image.kind})` };
    const h = getHost();
    if (!h.ok) return { ok: false, reason: h.reason! };
    if (image.platform.architecture !== h.ociArch) {
      return { ok: false, reason: `the image is linux/${image.platform.architecture}; this host runs linux/${h.ociArch} natively (no emulation)` };
    }
    // A Linux image will run: the helper starts now, alongside whatever comes before create().
    void getHelper(h);
    return { ok: true };
  }

  async function create(image: Image, spec: ContainerSpec): Promise<Container> {
    const verdict = await probe(image);
    if (!verdict.ok) throw new SandboxError('BACKEND_UNAVAILABLE', verdict.reason);
    const h = getHost();
    const top = image.layers.length ? image.layers[image.layers.length - 1]!.chainId : EMPTY_ROOTFS_CHAIN_ID;
    // Not root with /etc/subuid ranges: the image's owners are set inside the helper's user namespace.
    const subIds = h.subIds ? (await getHelper(h))?.subIds : undefined;
    const { dir: rootfsDir } = await ensureMaterialised(home, top, async () => {
      const t = await rootfsTree(image);
      return withEtcHosts('root' in t ? t.root : t);
    }, subIds ? ownersInUserNs(h, subIds) : {});
    const needHelper = h.privileged || subIds || !spec.readOnlyRoot;
    // Without spare roots (one container, the CLI), the container is planned while the helper starts.
    if (needHelper && opts.spareRoots === false) return createContainer(h, getHelper(h), undefined, image, spec, rootfsDir);
    const ns = needHelper ? await getHelper(h) : undefined;
    // A writable root the helper mounted ahead of time for this image, when there is one.
    const spare: RootDirs | undefined = ns && !spec.readOnlyRoot ? await spares.take(ns, rootfsDir) : undefined;
    try {
      return await createContainer(h, ns, spare, image, spec, rootfsDir);
    } catch (e) {
      if (spare) {
        await ns!.unmount(path.join(spare.dir, 'merged')).catch(() => {});
        removeTree(spare.dir);
      }
      throw e;
    }
  }

  async function createContainer(
    h: HostCheck, helperSource: NamespaceHelper | undefined | Promise<NamespaceHelper | undefined>, spare: RootDirs | undefined,
    image: Image, spec: ContainerSpec, rootfsDir: string,
  ): Promise<Container> {
    const id = spare?.id ?? newContainerId(64);
    const containerDir = spare?.dir ?? path.join(home, 'linux', 'containers', id);
    const lookup = rootfsLookup(rootfsDir);
    const identityOf = (x: NamespaceHelper | undefined) => x?.userNsFd !== undefined || x?.subIds !== undefined;
    const makePlan = (identity: boolean): Plan => {
      const planHost: PlanHost = {
        arch: h.arch!,
        idMap: identity ? 'identity' : 'single',
        ...(h.staticBusybox ? { switcher: h.tools!.busybox! } : {}),
        ...(native('setid', h.arch!) ? { setid: native('setid', h.arch!)! } : {}),
        ...(spec.tty && native('pty', h.arch!) ? { pty: native('pty', h.arch!)! } : {}),
        ...(spec.publish?.length && native('publish', h.arch!) ? { publish: native('publish', h.arch!)! } : {}),
        ...(spec.network === 'host' && fs.existsSync('/etc/resolv.conf') ? { resolvConf: '/etc/resolv.conf' } : {}),
        procPresent: h.procPresent ?? [...PROC_READ_ONLY, ...PROC_MASKED_FILES, ...PROC_MASKED_DIRS],
        emptyDir: emptyHostDir(home),
        rootfsDir,
        containerDir,
        rootMapped: h.privileged!,
        cgroups: h.cgroups!,
        resolveCommand: lookup.resolveCommand,
        statGuest: lookup.statGuest,
        resolveUser: lookup.resolveUser,
        supplementaryGroups: lookup.supplementaryGroups,
        canonicalGuestPath: lookup.canonicalGuestPath,
      };
      const p = validatePlan(planContainer(image, spec, planHost, id), planHost);
      for (const m of p.mounts) {
        if (m.kind !== 'bind') continue;
        try {
          m.source = fs.realpathSync(m.source);
          fs.statSync(m.source);
        } catch {
          throw new SandboxError('NOT_FOUND', `mount source ${m.source} does not exist on the host`);
        }
        // (again once links are resolved: a link to /sys is /sys)
        const reserved = reservedHostSource(m.source);
        if (reserved) throw new SandboxError('INVALID_ARGUMENT', `host ${reserved} is not bound into containers (${m.source}): they get a /dev of their own and no /sys`);
      }
      if (!lookup.exists(p.cwd)) {
        if (!p.root.writable) throw new SandboxError('INVALID_ARGUMENT', `working directory ${p.cwd} does not exist in the read-only image`);
        p.createDirs = [p.cwd];
      }
      if (p.root.writable && ![p.root.lower, containerDir].every(overlayOptionSafe)) {
        throw new SandboxError('INVALID_ARGUMENT', `WASMBOX_HOME ${home} contains ',', ':' or '\\', which overlay mount options cannot carry`);
      }
      return p;
    };
    let helper: NamespaceHelper | undefined;
    let plan: Plan;
    if (helperSource instanceof Promise) {
      // (a root caller's helper holds the identity map; planned again in the rare case it could not start)
      const expected = h.privileged === true;
      plan = makePlan(expected);
      if (plan.root.writable) makeRootDirs(home, id);
      helper = await helperSource;
      if (identityOf(helper) !== expected) {
        try {
          plan = makePlan(identityOf(helper));
        } catch (e) {
          removeTree(containerDir);
          throw e;
        }
      }
    } else {
      helper = helperSource;
      plan = makePlan(identityOf(helper));
      if (plan.root.writable && !spare) makeRootDirs(home, id);
    }
    const ns = helper;
    // Overlays mounted in a user namespace (the helper's, or the legacy prelude's when not root) keep
    // their whiteout and opaque markers in user.* xattrs.
    const userxattr = ns !== undefined || !h.privileged;
    const mountedByHelper = plan.root.writable && ns !== undefined;
    if (mountedByHelper && !spare) {
      try {
        await ns.mount(overlayOptions(plan, true), plan.root.merged!);
      } catch (e) {
        removeTree(containerDir);
        throw e;
      }
    }
    // the next container of this image finds its root mounted (the helper mounts it while this one runs)
    if (mountedByHelper && opts.spareRoots !== false) spares.prepare(ns, rootfsDir);
    let cgroups;
    try {
      cgroups = createCgroups(plan);
    } catch (e) {
      if (mountedByHelper) await ns.unmount(plan.root.merged!).catch(() => {});
      removeTree(containerDir);
      throw new SandboxError('BACKEND_UNAVAILABLE', `cannot set up the container's cgroups: ${(e as Error).message}`, { cause: e });
    }
    const invocation = buildInvocation(plan, h.tools!, {
      privileged: h.privileged!,
      cgroupProcs: cgroups?.procs ?? [],
      staticBusybox: h.staticBusybox === true && spareLaunchers,
      ...(mountedByHelper || (ns && plan.hostDevNodes === 'read-only') || (ns?.subIds && plan.idMap === 'identity') ? { helper: { mountNs: ns!.mountNs, ...(h.privileged ? {} : { userNs: ns!.userNs }) } } : {}),
    });
    // What the guest wrote outlives its process so fs() can show it: at exit the container's directory
    // (minus overlay's work dir) moves from containers/ (running) to kept/ (exited), which is removed
    // when the container and every Vfs read from it are garbage-collected, on remove(), or when this
    // process exits.
    const keptDir = path.join(home, 'linux', 'kept', id);
    if (plan.publish) {
      try {
        makeRelayDir(plan, containerDir, h.privileged === true);
      } catch (e) {
        if (mountedByHelper) await ns.unmount(plan.root.merged!).catch(() => {});
        cgroups?.remove();
        removeTree(containerDir);
        throw new SandboxError('BACKEND_UNAVAILABLE', `cannot make the directory of the container's port relay: ${(e as Error).message}`, { cause: e });
      }
    }
    const relay = plan.publish ? new PortRelay({ ports: plan.publish.ports, hostDir: plan.publish.hostDir, socketName: PUBLISH_SOCKET_NAME }) : undefined;
    const keeper = {};
    if (plan.root.writable) kept.keep(id, [containerDir, keptDir], keeper);
    // (a terminal is relayed: its frames come through a pipe, and the caller's own stdio stays its own)
    const inheritStdio = opts.inheritStdio === true && !plan.tty && plan.limits.outputBytes === undefined && stdioInheritable(plan.stdin ? [0, 1, 2] : [1, 2]);
    const launch = invocation.launch;
    const shape: LaunchShape = {
      stdin: plan.stdin || plan.tty ? (inheritStdio ? 'inherit' : 'pipe') : 'ignore',
      output: inheritStdio ? 'inherit' : 'pipe',
      ...(invocation.userns && ns?.userNsFd !== undefined ? { usernsFd: ns.userNsFd } : {}),
      ...(placeholderFd() !== undefined ? { placeholderFd: placeholderFd()! } : {}),
    };
    return new LinuxContainer({
      plan,
      invocation,
      shape,
      ...(launch ? { launcher: () => takeLauncher(launch.argv, shape) } : {}),
      ...(cgroups ? { cgroups } : {}),
      ...(relay ? { relay } : {}),
      cleanup: () => {
        // (the relay's directory is the container's to write in: removed as its other files are)
        if (plan.publish) removeMapped(plan.publish.hostDir);
        if (!plan.root.writable) {
          if (plan.publish) removeTree(containerDir);
          return undefined;
        }
        let dir = keptDir;
        try {
          // (allowed while the overlay is still mounted in the helper's namespace: the mount moves along)
          fs.renameSync(containerDir, keptDir);
        } catch {
          try {
            fs.mkdirSync(path.dirname(keptDir), { recursive: true, mode: 0o700 });
            fs.renameSync(containerDir, keptDir);
          } catch {
            dir = containerDir;
          }
        }
        return (async () => {
          if (mountedByHelper) await ns.unmount(path.join(dir, 'merged')).catch(() => { /* the helper is gone, and its mounts with it */ });
          // (sync: overlay's work dir holds one empty directory; a trip through the thread pool per entry costs more)
          removeTree(path.join(dir, 'work'));
          if (dir === containerDir) kept.release(id);
        })();
      },
      release: () => kept.release(id),
      fs: async () => {
        // (subordinate ids: what the caller may not open is read as root of the helper's user namespace, owners as the container saw them)
        const idNs = ns?.subIds ? await getHelper(h) : undefined;
        if (ns?.subIds && !idNs?.subIds) throw new SandboxError('BACKEND_UNAVAILABLE', 'the namespace helper that maps the subordinate ids is gone: the container\'s files cannot be read');
        const busybox = h.tools!.busybox!;
        const access = idNs ? { access: new UserNsAccess({ busybox, userNs: () => (idNs.alive ? idNs.userNs : undefined), ids: ns!.subIds! }) } : {};
        if (!plan.root.writable) return new FinalFs({ lower: rootfsDir, ...access });
        const upper = path.join(keptDir, 'upper');
        if (!fs.existsSync(upper)) throw new SandboxError('INVALID_STATE', 'the container was removed: its filesystem is gone');
        const listing = await listMerged({
          lower: rootfsDir, upper, mountPoint: path.join(keptDir, 'merged'), tools: h.tools!, privileged: h.privileged!, userxattr,
          ...(idNs ? { userNs: { busybox, path: idNs.userNs } } : {}),
        });
        return new FinalFs({ lower: rootfsDir, upper, listing, keepAlive: keeper, ...access });
      },
    });
  }

  /**
   * Materialised with the owners the image gives, inside the helper's user namespace: the files of image
   * uid k belong to host uid start+k-1, which the container sees as k. A folder of layers per map.
   */
  function ownersInUserNs(h: HostCheck, m: SubIdMapping): MaterialiseOptions {
    const what = `${userName() ?? `uid ${process.getuid?.()}`}`;
    return {
      layers: `layers-${createHash('sha256').update(JSON.stringify(m)).digest('hex').slice(0, 16)}`,
      applyOwners: async (dir, owners) => {
        const ns = mapped;
        if (!ns?.alive) throw new SandboxError('BACKEND_UNAVAILABLE', 'the namespace helper that maps the subordinate ids has exited');
        await applyOwnersInUserNs({ busybox: h.tools!.busybox!, userNs: ns.userNs, maxUid: m.uid.max, maxGid: m.gid.max, what }, dir, owners);
      },
      remove: removeMapped,
    };
  }

  /** removeTree, then what is left (files of the container's non-root users) as root of the helper's user namespace. */
  function removeMapped(dir: string): void {
    removeTree(dir);
    const ns = mapped;
    if (!ns?.alive || !fs.existsSync(dir)) return;
    spawnSync(host!.tools!.busybox!, ['nsenter', `-U${ns.userNs}`, '--preserve-credentials', '--', host!.tools!.busybox!, 'rm', '-rf', '--', dir], { stdio: 'ignore', timeout: 30_000 });
  }

  /** Runs the host checks (and the stale-container reaping) ahead of the first container. */
  function prewarm(): void {
    const h = getHost();
    if (h.ok) void getHelper(h);
  }

  /** Which ids this backend's containers see, and why (starts the namespace helper). */
  async function idMapping(): Promise<IdMapping> {
    const h = getHost();
    if (!h.ok) return { mode: 'single', detail: h.reason! };
    const ns = await getHelper(h);
    if (h.privileged) {
      return ns?.userNsFd !== undefined
        ? { mode: 'identity', detail: 'root: every uid and gid maps to itself' }
        : { mode: 'single', detail: 'root without the namespace helper (no busybox): bwrap maps one uid' };
    }
    if (ns?.subIds) return { mode: 'subids', detail: `/etc/subuid, /etc/subgid: ${describeMapping(ns.subIds)}` };
    return { mode: 'single', detail: `only the caller's uid is mapped (other owners show as 65534): ${h.noSubIds ?? 'the namespace helper could not start'}` };
  }

  /** Removes materialised root filesystems no stored image names (`live`: top chainIDs) and no container uses. */
  async function pruneRootfs(live: Set<string>): Promise<string[]> {
    const h = getHost();
    // (not root, with /etc/subuid ranges: files of the image's other users are removed in the helper's user namespace)
    if (h.ok && h.subIds) await getHelper(h);
    return pruneMaterialised(home, live, (dir) => (host?.ok ? removeMapped(dir) : removeTree(dir)));
  }

  const backend: LinuxBackend = { name: 'linux', probe, create, prewarm, idMapping, pruneRootfs };
  // The helper exits with its owner process; a backend dropped before that takes its helper along.
  helperOwners.register(backend, () => {
    launchers.close();
    void helper?.then((x) => x?.close());
  });
  return backend;
}

const helperOwners = new FinalizationRegistry<() => void>((close) => close());

function userName(): string | undefined {
  try {
    return os.userInfo().username || undefined;
  } catch {
    return undefined; // a uid without a passwd entry
  }
}

/** An unprivileged caller's subordinate ids and the tools that map them; otherwise why there are none. */
function findSubIds(h: HostCheck, helperAllowed: boolean): Pick<HostCheck, 'subIds' | 'noSubIds'> {
  if (!helperAllowed) return { noSubIds: 'the namespace helper is turned off' };
  if (!h.tools?.busybox || !h.staticBusybox) return { noSubIds: 'a static busybox is needed (apt-get install busybox-static)' };
  const newuidmap = which('newuidmap');
  const newgidmap = which('newgidmap');
  if (!newuidmap || !newgidmap) return { noSubIds: 'newuidmap/newgidmap are not installed (apt-get install uidmap)' };
  const name = userName();
  const read = (f: string): string => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
  const mapping = subIdMapping({ ...(name ? { name } : {}), uid: process.getuid!(), gid: process.getgid!() }, read('/etc/subuid'), read('/etc/subgid'));
  if (!mapping) return { noSubIds: `/etc/subuid and /etc/subgid give ${name ?? `uid ${process.getuid!()}`} no range` };
  return { subIds: { mapping, newuidmap, newgidmap } };
}

/** Containers whose owning process died (a crash, SIGKILL) leave their directory behind: remove those. */
function reapStaleContainers(home: string, remove = removeTree): void {
  for (const kind of ['containers', 'kept', 'spares']) reapStale(path.join(home, 'linux', kind), remove);
}

function reapStale(dir: string, remove: (dir: string) => void): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const cdir = path.join(dir, name);
    let owner = NaN;
    try {
      owner = Number(fs.readFileSync(path.join(cdir, 'owner'), 'utf8'));
    } catch { /* half-made */ }
    if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) continue;
    remove(cdir);
  }
}

/**
 * The relay's directory (Plan.publish.hostDir), where the container's relay, running as the container's
 * user, makes its socket: that user's alone (a root caller's identity map gives it the same ids on the
 * host; otherwise it is the caller's own uid, or a subordinate uid the caller cannot chown to, which gets
 * a directory all may write in, inside the container's directory, which only the caller can reach).
 * A read-only root's container directory is made here (with its owner file, see reapStaleContainers).
 */
function makeRelayDir(plan: Plan, containerDir: string, privileged: boolean): void {
  if (!fs.existsSync(containerDir)) {
    fs.mkdirSync(containerDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(containerDir, 'owner'), String(process.pid));
  }
  const dir = plan.publish!.hostDir;
  fs.mkdirSync(dir, { mode: 0o700 });
  if (plan.idMap === 'identity' && privileged) fs.chownSync(dir, plan.uid, plan.gid);
  else if (plan.idMap === 'identity' && plan.uid !== 0) fs.chmodSync(dir, 0o777);
}

/** An empty read-only file of ours, opened for the numbers of inherited descriptors (see coverInheritedFds). */
function openPlaceholder(home: string): number | undefined {
  const file = path.join(home, 'linux', 'fd-placeholder');
  try {
    if (!fs.existsSync(file)) fs.writeFileSync(file, '', { mode: 0o444 });
    return fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
}

/** <home>/linux/empty: an empty read-only directory to hide /proc directories under. */
function emptyHostDir(home: string): string {
  const dir = path.join(home, 'linux', 'empty');
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, 0o555);
  }
  return dir;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function emptyDir(): DirInode {
  return { kind: 'dir', ino: 1, mode: 0o755, uid: 0, gid: 0, nlink: 2, mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, entries: new Map() };
}
