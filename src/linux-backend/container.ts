/**
 * A running Linux container: the Invocation as one child process (bwrap, or the prelude that execs
 * into it), stdio as web streams, exit status docker-style, timeout and kill over the whole pid
 * namespace (bwrap --die-with-parent: when the outer bwrap dies, the namespace's pid 1 and with it
 * every process of the container get SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { SandboxError } from '../errors.ts';
import type { Container, ExitStatus, PortBinding } from '../runtime/types.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { ContainerCgroups } from './cgroups.ts';
import { ARGS_FD, USERNS_FD, type Invocation } from './invocation.ts';
import type { Launcher, LaunchShape } from './launcher.ts';
import type { Plan } from './plan.ts';
import type { PortRelay } from './port-relay.ts';

export const TIMEOUT_EXIT_CODE = 124;
/** How long start() and kill() wait for bwrap to report its child (it does within milliseconds). */
const INIT_REPORT_WAIT_MS = 2000;
const HOST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface ContainerParts {
  plan: Plan;
  invocation: Invocation;
  /**
   * The process's stdio and user namespace. Output 'inherit': the container writes to this process's
   * fds 1 and 2 (and reads fd 0 when interactive); its streams end empty.
   */
  shape: LaunchShape;
  cgroups?: ContainerCgroups;
  /** The host's side of the published ports (Plan.publish): listening from start() until the container ends. */
  relay?: PortRelay;
  /**
   * A spare launcher for invocation.launch (started ahead, with the stdio and user namespace this container
   * needs), when there is one; otherwise the invocation is spawned whole.
   */
  launcher?: () => Launcher | undefined;
  /**
   * Runs at exit: moves what fs() needs out of the running containers' directory at once, and returns
   * the rest of the work (unmounting the root, removing overlay's work dir) as a promise that wait()
   * does not wait for; fs() and remove() do.
   */
  cleanup(): void | Promise<void>;
  /** Frees the container's kept directories (its filesystem) now. */
  release(): void;
  /** The final root filesystem (called only after exit). */
  fs(): Promise<Vfs>;
}

export class LinuxContainer implements Container {
  readonly id: string;
  #parts: ContainerParts;
  // The streams are made on first use: a CLI whose container inherits its stdio never makes them (the
  // first web stream of a process costs it several milliseconds).
  #stdin?: WritableStream<Uint8Array>;
  #stdout?: ReadableStream<Uint8Array>;
  #stderr?: ReadableStream<Uint8Array>;
  #child?: ChildProcess;
  #started?: Promise<void>;
  #exit: Promise<ExitStatus>;
  #resolveExit!: (s: ExitStatus) => void;
  #stopReason?: { reason: ExitStatus['reason']; code: number; detail: string };
  #initPid?: number;
  /** Resolves once bwrap reported the host pid of the namespace's init, or exited without one. */
  #initKnown: Promise<void>;
  #resolveInitKnown!: () => void;
  #exited = false;
  #removed = false;
  /** The part of the teardown that runs after wait() resolved. */
  #settled: Promise<void> = Promise.resolve();
  #outputBytes = 0;
  #timer?: ReturnType<typeof setTimeout>;
  /** Output streams made before the process started wait for it here. */
  #attachOut: Array<(child: ChildProcess) => void> = [];
  #stdinReady: Promise<Writable | undefined>;
  #resolveStdin!: (w: Writable | undefined) => void;

  constructor(parts: ContainerParts) {
    this.#parts = parts;
    this.id = parts.plan.id;
    this.#exit = new Promise((r) => (this.#resolveExit = r));
    this.#initKnown = new Promise((r) => (this.#resolveInitKnown = r));
    this.#stdinReady = new Promise((r) => (this.#resolveStdin = r));
  }

  get inheritedStdio(): boolean {
    return this.#parts.shape.output === 'inherit';
  }

  /** Where the published ports listen on the host (see Container.ports). */
  get ports(): readonly PortBinding[] {
    return this.#parts.relay?.bindings ?? [];
  }

  get stdout(): ReadableStream<Uint8Array> {
    return (this.#stdout ??= this.#outputStream(1));
  }

  get stderr(): ReadableStream<Uint8Array> {
    return (this.#stderr ??= this.#outputStream(2));
  }

  get stdin(): WritableStream<Uint8Array> {
    return (this.#stdin ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (this.#parts.plan.tty) {
          // (a terminal without -i has no input, as under docker; its pipe carries window sizes only)
          if (!this.#parts.plan.stdin) return;
          for (const frame of inputFrames(chunk)) await this.#writeStdin(frame);
        } else {
          await this.#writeStdin(chunk);
        }
      },
      close: async () => {
        const w = await this.#stdinReady;
        w?.end();
      },
      abort: async () => {
        const w = await this.#stdinReady;
        w?.destroy();
      },
    }));
  }

  #outputStream(fd: 1 | 2): ReadableStream<Uint8Array> {
    let source: Readable | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        const attach = (child: ChildProcess) => {
          source = (fd === 1 ? child.stdout : child.stderr) ?? undefined;
          if (!source) { controller.close(); return; }
          source.on('data', (chunk: Buffer) => {
            this.#countOutput(chunk.length);
            controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
            if ((controller.desiredSize ?? 1) <= 0) source!.pause();
          });
          source.on('end', () => { try { controller.close(); } catch { /* cancelled */ } });
          source.on('error', (e) => { try { controller.error(e); } catch { /* cancelled */ } });
        };
        if (this.#child) attach(this.#child);
        else this.#attachOut.push(attach);
      },
      pull: () => { source?.resume(); },
      cancel: () => { source?.destroy(); },
    }, { highWaterMark: 16 });
  }

  /** Written in order, once the process took the previous chunk (or its stdin closed). */
  async #writeStdin(chunk: Uint8Array): Promise<void> {
    const w = await this.#stdinReady;
    if (!w || w.destroyed) return; // the guest has no stdin or stopped reading it: like a closed pipe, data is dropped
    await new Promise<void>((resolve) => {
      if (w.write(chunk)) resolve();
      else {
        const done = () => { w.off('drain', done); w.off('close', done); resolve(); };
        w.on('drain', done);
        w.on('close', done);
      }
    });
  }

  /**
   * The terminal's new size (containers run with a tty; others ignore it): the program gets SIGWINCH.
   * Sizes are whole numbers from 0 to 65535.
   */
  resize(cols: number, rows: number): void {
    if (!this.#parts.plan.tty) return;
    for (const v of [cols, rows]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new SandboxError('INVALID_ARGUMENT', `a terminal size is a whole number from 0 to 65535, not ${v}`);
    }
    void this.#writeStdin(Uint8Array.of(0x77, cols >> 8, cols & 0xff, rows >> 8, rows & 0xff));
  }

  #countOutput(n: number): void {
    const limit = this.#parts.plan.limits.outputBytes;
    this.#outputBytes += n;
    if (limit !== undefined && this.#outputBytes > limit && !this.#stopReason) {
      this.#stop('output-limit', 137, `output passed the limit of ${limit} bytes`);
    }
  }

  start(): Promise<void> {
    this.#started ??= this.#spawn();
    return this.#started;
  }

  async #spawn(): Promise<void> {
    const { plan, invocation } = this.#parts;
    let child: ChildProcess;
    let spawned: Promise<void>;
    // (the host's ports first, as docker binds them before the container starts: a port in use fails the start)
    if (this.#parts.relay) {
      try {
        await this.#parts.relay.open();
      } catch (e) {
        this.#teardown();
        throw e;
      }
      if (this.#exited) return; // killed while its ports were being bound: it never starts
    }
    try {
      if (invocation.userns && this.#parts.shape.usernsFd === undefined) throw new Error('no user namespace to join');
      const launcher = invocation.launch ? this.#parts.launcher?.() : undefined;
      if (launcher) {
        launcher.launch(invocation.launch!, invocation.seccomp);
        child = launcher.child;
        spawned = launcher.spawned;
      } else {
        child = this.#spawnWhole();
        spawned = new Promise<void>((resolve, reject) => {
          child.once('spawn', resolve);
          child.once('error', reject);
        });
        const seccompPipe = child.stdio[3] as Writable;
        seccompPipe.on('error', () => { /* bwrap exited before reading it: its exit status says why */ });
        seccompPipe.end(invocation.seccomp);
      }
    } catch (e) {
      this.#teardown();
      if (e instanceof SandboxError) throw e;
      throw new SandboxError('BACKEND_UNAVAILABLE', `cannot start ${invocation.command}: ${(e as Error).message}`, { cause: e });
    }
    this.#child = child;
    this.#readStatus(child.stdio[4] as Readable);
    // Piped output is read from the start (as it arrives, into the streams), so that a caller who never
    // reads it does not stall the guest or its exit; inherited output has no pipe to read.
    if (!this.inheritedStdio) void [this.stdout, this.stderr];
    for (const attach of this.#attachOut) attach(child);
    if (child.stdin) child.stdin.on('error', () => { /* the guest closed its stdin */ });
    this.#resolveStdin(child.stdin ?? undefined);

    child.on('close', (code, signal) => void this.#finish(code, signal));
    try {
      await spawned;
    } catch (e) {
      throw new SandboxError('BACKEND_UNAVAILABLE', `cannot start ${invocation.command}: ${(e as Error).message}`, { cause: e });
    }
    const timeout = plan.limits.timeoutMs;
    if (timeout !== undefined) {
      this.#timer = setTimeout(() => this.#stop('timeout', TIMEOUT_EXIT_CODE, `killed after the ${timeout} ms timeout`), timeout);
    }
    // bwrap arms --die-with-parent just before it reports its child: from then on the container cannot
    // outlive this process. A caller that reports "started" and is then killed (run -d's supervisor)
    // leaves nothing running.
    await this.#initReported();
  }

  /** The invocation as one new process (no launcher). */
  #spawnWhole(): ChildProcess {
    const { invocation, shape } = this.#parts;
    return spawnContainerProcess([invocation.command, ...invocation.args], shape, false);
  }

  #readStatus(pipe: Readable): void {
    let text = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (s: string) => {
      text += s;
      const m = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (m && this.#initPid === undefined) {
        this.#initPid = Number(m[1]);
        this.#resolveInitKnown();
      }
    });
    pipe.on('error', () => {});
    pipe.on('close', () => this.#resolveInitKnown());
  }

  /** Resolves once bwrap reported the namespace's init (or exited without one), or after INIT_REPORT_WAIT_MS. */
  #initReported(): Promise<void> {
    return Promise.race([this.#initKnown, new Promise<void>((r) => setTimeout(r, INIT_REPORT_WAIT_MS).unref())]);
  }

  /** Kills the whole container: the outer bwrap dies, so the namespace's pid 1 and every other process get SIGKILL. */
  #stop(reason: ExitStatus['reason'], code: number, detail: string): void {
    if (this.#stopReason) return;
    this.#stopReason = { reason, code, detail };
    this.#killAll();
  }

  /**
   * SIGKILL to the namespace's init ends every process of the container (the kernel kills a pid
   * namespace with its init); the outer bwrap then exits by itself. Killing the outer bwrap first
   * could orphan an init that has not yet armed its parent-death signal, so it is only the fallback
   * when bwrap never reported an init.
   */
  #killAll(): void {
    // (bwrap reports its child within milliseconds of starting; a bwrap stuck before that is killed itself)
    const known = this.#initReported();
    void known.then(() => {
      const child = this.#child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      if (this.#initPid !== undefined) {
        try { process.kill(this.#initPid, 'SIGKILL'); return; } catch { /* already gone */ }
      }
      try { child.kill('SIGKILL'); } catch { /* already gone */ }
    });
  }

  /** Removes the container's cgroups and directories (the slow part in the background, see cleanup). */
  #teardown(): void {
    this.#parts.relay?.close();
    this.#parts.cgroups?.remove();
    try {
      this.#settled = Promise.resolve(this.#parts.cleanup()).catch(() => { /* best effort */ });
    } catch { /* best effort */ }
  }

  async #finish(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    const cg = this.#parts.cgroups;
    const oom = cg ? cg.oomKills() : 0;
    this.#teardown();
    let status: ExitStatus;
    const exitCode = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 9) : 9);
    if (this.#stopReason) {
      status = { code: this.#stopReason.code, reason: this.#stopReason.reason, detail: this.#stopReason.detail };
      if (this.#stopReason.reason === 'killed' && exitCode > 128) status.signal = signalName(exitCode - 128);
    } else if (oom > 0 && exitCode === 137) {
      status = { code: 137, reason: 'oom', detail: `killed by the OOM killer at the ${this.#parts.plan.limits.memoryBytes} byte memory limit`, signal: 'SIGKILL' };
    } else if (exitCode > 128 && exitCode < 128 + 65) {
      status = { code: exitCode, reason: 'signal', signal: signalName(exitCode - 128) };
    } else {
      status = { code: exitCode, reason: 'exit' };
    }
    this.#exited = true;
    this.#resolveExit(status);
  }

  wait(): Promise<ExitStatus> {
    return this.#exit;
  }

  async kill(signal: string = 'SIGKILL'): Promise<void> {
    if (!this.#child) {
      // never started: nothing runs, the container just ends
      this.#stopReason = { reason: 'killed', code: 137, detail: 'killed before it started' };
      this.#teardown();
      this.#exited = true;
      this.#resolveExit({ code: 137, reason: 'killed', detail: 'killed before it started' });
      return;
    }
    const num = osConstants.signals[signal as NodeJS.Signals];
    if (num === undefined) throw new SandboxError('INVALID_ARGUMENT', `unknown signal ${signal}`);
    if (signal === 'SIGKILL') {
      if (!this.#stopReason) this.#stopReason = { reason: 'killed', code: 137, detail: 'killed' };
      this.#killAll();
      return;
    }
    // Other signals go to the container's process (pid 2 under bwrap's init, which only reaps).
    const target = this.#guestPid();
    if (target !== undefined) {
      try { process.kill(target, signal as NodeJS.Signals); } catch { /* it just exited */ }
    }
  }

  #guestPid(): number | undefined {
    const init = this.#initPid;
    if (init === undefined) return undefined;
    try {
      const children = fs.readFileSync(`/proc/${init}/task/${init}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return children.length ? Number(children[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The final root filesystem, read-only: the image plus what the guest wrote (available after exit). */
  async fs(): Promise<Vfs> {
    if (!this.#exited) throw new SandboxError('INVALID_STATE', 'a Linux container\'s filesystem is readable after it exited (await wait() first)');
    if (this.#removed) throw new SandboxError('INVALID_STATE', 'the container was removed: its filesystem is gone');
    await this.#settled;
    return this.#parts.fs();
  }

  /** Frees the container's filesystem now instead of when the container is garbage-collected or the process exits. */
  remove(): void {
    if (!this.#exited) throw new SandboxError('INVALID_STATE', 'a running container cannot be removed: kill() it and await wait() first');
    this.#removed = true;
    void this.#settled.then(() => this.#parts.release());
  }
}

/**
 * Spawns a container's process (bwrap, directly or behind nsenter or a prelude) as `shape` says: stdio
 * at 0-2, the seccomp and status pipes at 3 and 4, the user namespace at USERNS_FD when given (the
 * container keeps it open, which gives it nothing: it is its own user namespace, and setns() is refused
 * by seccomp), and for a launcher the options pipe at ARGS_FD; inherited descriptors covered.
 */
export function spawnContainerProcess(argv: string[], shape: LaunchShape, optionsPipe: boolean): ChildProcess {
  const passed: Array<'pipe' | 'ignore' | number> = [
    shape.stdin === 'inherit' ? 0 : shape.stdin,
    shape.output === 'inherit' ? 1 : 'pipe',
    shape.output === 'inherit' ? 2 : 'pipe',
    'pipe', 'pipe',
    ...(optionsPipe ? [shape.usernsFd ?? 'ignore' as const, 'pipe' as const] : shape.usernsFd !== undefined ? [shape.usernsFd] : []),
  ];
  if (optionsPipe && (passed.length !== ARGS_FD + 1 || USERNS_FD !== 5)) throw new Error('launcher descriptors out of order');
  return spawn(argv[0]!, argv.slice(1), {
    stdio: [...passed, ...coverInheritedFds(passed.length, shape.placeholderFd)],
    env: HOST_ENV,
    // uid/gid 0 given explicitly: the spawn also drops the caller's supplementary groups, which
    // would otherwise reach the container as real groups through the identity map.
    ...(shape.usernsFd !== undefined ? { uid: 0, gid: 0 } : {}),
  });
}

/** /dev/null's device number (1, 3): the only character device handed over (not /dev/mem, its neighbour). */
const DEV_NULL = { major: 1, minor: 3 };

/**
 * Whether this process's stdio may be handed to a container as its own: only pipes, sockets (Node's child
 * stdio are socket pairs; one cannot be reopened through /proc/self/fd) and /dev/null. A terminal stays
 * ours (a container could read the keys typed into it, or change its modes), and so does a regular file
 * (reopened through /proc/self/fd it could be read or rewritten whole): those are pumped through
 * streams, as docker does without -t.
 */
export function stdioInheritable(fds: number[]): boolean {
  return fds.every((fd) => {
    try {
      const st = fs.fstatSync(fd);
      if (st.isFIFO() || st.isSocket()) return true;
      const major = (st.rdev >>> 8) & 0xfff;
      const minor = (st.rdev & 0xff) | ((st.rdev >>> 12) & 0xfff00);
      return st.isCharacterDevice() && major === DEV_NULL.major && minor === DEV_NULL.minor;
    } catch {
      return false;
    }
  });
}

/**
 * stdio entries from index `from` on that cover the descriptors this process inherited from its own
 * parent without close-on-exec (Node opens everything with it): a directory among them would let the
 * container leave its root (openat(fd, "..")). The child gets `placeholder` at those numbers instead.
 */
export function coverInheritedFds(from: number, placeholder: number | undefined): Array<number | 'ignore'> {
  if (placeholder === undefined) return [];
  let leaked: number[];
  try {
    leaked = fs.readdirSync('/proc/self/fd').map(Number).filter((fd) => fd >= from && !closeOnExec(fd)).sort((a, b) => a - b);
  } catch {
    return [];
  }
  if (!leaked.length) return [];
  const out: Array<number | 'ignore'> = new Array(leaked.at(-1)! - from + 1).fill('ignore');
  for (const fd of leaked) out[fd - from] = placeholder;
  return out;
}

function closeOnExec(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    // O_CLOEXEC is 02000000 on every architecture we run on
    return flags === undefined || (parseInt(flags, 8) & 0o2000000) !== 0;
  } catch {
    return true; // closed meanwhile (the readdir's own descriptor)
  }
}

/** Input for native/pty.c: 'd', a 16-bit big-endian length, the bytes; at most 65535 bytes a frame. */
function* inputFrames(chunk: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < chunk.length; at += 0xffff) {
    const part = chunk.subarray(at, at + 0xffff);
    const frame = new Uint8Array(3 + part.length);
    frame[0] = 0x64;
    frame[1] = part.length >> 8;
    frame[2] = part.length & 0xff;
    frame.set(part, 3);
    yield frame;
  }
}

function signalName(n: number): string | undefined {
  return Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
}
