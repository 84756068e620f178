import { spawnWorker, type HostWorker } from '#host/worker';
import { SandboxError, toSandboxError } from '../errors.ts';
import { Overlay, type OverlayUpper } from '../fs/overlay.ts';
import { readFile } from '../fs/paths.ts';
import { resolvePath } from '../fs/resolve.ts';
import { FsError, type Vfs } from '../fs/vfs.ts';
import type { Image } from '../loader/source.ts';
import type { CacheBudget } from '../runtime/cache-budget.ts';
import { newContainerId } from '../runtime/ids.ts';
import { DEFAULT_PATH } from '../runtime/spec.ts';
import { DEFAULT_STORAGE_BYTES, type Backend, type Container, type ContainerSpec, type ExitStatus, type ProbeResult } from '../runtime/types.ts';
import { limitMemory, readMemories, type MemoryInfo } from './memory-limit.ts';
import {
  createOutputFlow, createStdinRing, outputConsumed, outputStop, sharedMemoryAvailable, StdinRingWriter,
} from './stdio.ts';
import type { FromWorker, StartMessage, StdinSetup, WorkerMount } from './worker-protocol.ts';

/** Where the WASI backend gets image trees from; one per runtime (the runtime owns the caches). */
export interface RootfsProvider {
  /** The image's root filesystem: a Vfs to read here, and its packed form (made once, on demand) for Workers. */
  rootfs(image: Image): Promise<{ vfs: Vfs; packed(): unknown }>;
  /** A raw wasm layer's module bytes, when the image carries its module as a layer (not in a tar). */
  wasmLayer(image: Image): Promise<Uint8Array | undefined>;
  /** A read-only Vfs over a tree a Worker packed and posted back. */
  openPacked(packed: unknown): Vfs;
  /** Named in-memory volumes: their last packed state (undefined: new, empty). */
  volumes: Map<string, unknown>;
}

export interface WasiBackendOptions {
  provider: RootfsProvider;
  /** Bounds the compiled modules kept between containers (the runtime's, shared with its image trees). */
  cacheBudget?: CacheBudget;
  /** The Worker script (default: the built sandbox worker next to this bundle). */
  workerUrl?: string | URL;
  /** Keep one Worker booted ahead, so a container's start does not wait for a Worker to boot. */
  keepWarm?: boolean;
  /**
   * Run a guest that needs no Worker (no timeout, no output cap, no interactive stdin) on the calling
   * thread, its output going straight to these sinks: no Worker to boot, but the thread is blocked
   * until the guest exits and only the process's own signals stop it. For one-shot CLIs.
   */
  inline?: { stdout(b: Uint8Array): void; stderr(b: Uint8Array): void };
}

export interface WasiBackend extends Backend {
  /** Boots a spare Worker now (it does not keep the process alive while idle). */
  prewarm(): void;
  /** Ends the idle Workers kept for reuse (running containers are not touched). */
  close(): Promise<void>;
}

/** Trap exit code: 128 + SIGABRT, what a native program that aborts gives (and wasmtime's CLI). */
export const TRAP_EXIT_CODE = 134;
export const TIMEOUT_EXIT_CODE = 124;

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGTERM: 15 };

interface CompiledModule {
  module: WebAssembly.Module;
  memories: MemoryInfo[];
}

/**
 * Runs WASI preview1 modules, each container in its own Worker. The module is compiled once per
 * (image, program, memory limit) and handed to Workers as a `WebAssembly.Module`; the image's tree
 * is packed once and shared with Workers without copying.
 */
export function createWasiBackend(opts: WasiBackendOptions): WasiBackend {
  const modules = new Map<string, Promise<CompiledModule>>();
  const pool = new WorkerPool(opts);

  async function compile(image: Image, program: Program, memoryLimit: number | undefined): Promise<CompiledModule> {
    const { path, bytes } = program;
    const key = `${image.digest}\0${program.file}\0${memoryLimit ?? ''}`;
    let p = modules.get(key);
    if (p) opts.cacheBudget?.touch(`module:${key}`);
    else {
      p = (async () => {
        const raw = bytes();
        const limited = memoryLimit === undefined ? { bytes: raw, memories: undefined } : limitMemory(raw, memoryLimit);
        let module: WebAssembly.Module;
        try {
          module = await WebAssembly.compile(limited.bytes as Uint8Array<ArrayBuffer>);
        } catch (e) {
          throw new SandboxError('NOT_RUNNABLE', `${path}: invalid WebAssembly module: ${(e as Error).message}`, { cause: e });
        }
        // Only an imported memory needs its limits read from the binary (the host creates it).
        const memories = limited.memories ?? (WebAssembly.Module.imports(module).some((i) => i.kind === 'memory') ? readMemories(raw) : []);
        checkImports(module, path, memories);
        // (counted at the size of its bytes: V8 keeps those and code of about the same size)
        opts.cacheBudget?.add(`module:${key}`, raw.byteLength, () => modules.delete(key));
        return { module, memories };
      })();
      modules.set(key, p);
      p.catch(() => modules.delete(key));
    }
    return p;
  }

  return {
    name: 'wasi',
    prewarm: () => pool.prewarm(),
    close: () => pool.close(),
    async probe(image: Image): Promise<ProbeResult> {
      if (image.kind === 'wasm-module') return { ok: true };
      if (image.kind === 'wasm-component') {
        return { ok: false, reason: 'the image is a WebAssembly component; the WASI backend runs preview1 core modules' };
      }
      return { ok: false, reason: `the image is for ${image.platform.os}/${image.platform.architecture}, not wasi/wasm` };
    },
    async create(image: Image, spec: ContainerSpec): Promise<Container> {
      if (spec.publish?.length) {
        throw new SandboxError('CAPABILITY_DENIED', 'a WASI guest has no sockets: its ports cannot be published (-p/--publish is for Linux images)');
      }
      if (spec.limits.cpus !== undefined) {
        // Refused rather than ignored: a limit that is asked for is never silently dropped.
        throw new SandboxError('INVALID_ARGUMENT', 'a CPU quota (--cpus) cannot be enforced on a WASI guest; use --timeout to bound its run time');
      }
      const rootfs = await opts.provider.rootfs(image);
      const { vfs } = rootfs;
      const program = await locateProgram(image, spec, vfs, opts.provider);
      const compiled = await compile(image, program, spec.limits.memoryBytes);
      return new WasiContainer(newContainerId(), spec, compiled, rootfs, opts, pool);
    },
  };
}

interface Program {
  /** The path it was found at (for messages). */
  path: string;
  /** Which file it is in the image's tree (what compiled modules are cached by). */
  file: string;
  bytes: () => Uint8Array;
}

/**
 * The module to run for `spec.argv[0]`: looked up in the rootfs like execvp does (a name with '/'
 * is a path, else each PATH directory); a raw wasm layer image runs its layer for its entrypoint.
 */
async function locateProgram(image: Image, spec: ContainerSpec, vfs: Vfs, provider: RootfsProvider): Promise<Program> {
  const argv0 = spec.argv[0]!;
  try {
    const found = findExecutable(vfs, argv0, spec.env, spec.cwd);
    // (the file, not its name: a multi-call binary's applets, links to one module, compile once)
    return { path: found.path, file: `ino:${vfs.stat(found.node).ino}`, bytes: () => readFile(vfs, found.path) };
  } catch (e) {
    if (!(e instanceof SandboxError) || e.code !== 'NOT_FOUND') throw e;
    const layer = await provider.wasmLayer(image);
    if (layer && (image.config.config?.Entrypoint ?? [])[0] === argv0) return { path: argv0, file: 'layer', bytes: () => layer };
    throw e;
  }
}

function findExecutable(vfs: Vfs, argv0: string, env: string[], cwd: string): { path: string; node: unknown } {
  const notFound = (message: string) => new SandboxError('NOT_FOUND', message, { data: { entrypoint: argv0 } });
  if (argv0 === '') throw notFound('exec: empty command');
  const candidates: string[] = [];
  if (argv0.includes('/')) {
    candidates.push(argv0.startsWith('/') ? argv0 : joinPath(cwd, argv0));
  } else {
    const pathVar = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
    for (const dir of pathVar.split(':')) candidates.push(joinPath(dir.startsWith('/') ? dir : joinPath(cwd, dir || '.'), argv0));
  }
  let notRunnable: SandboxError | undefined;
  for (const path of candidates) {
    let node: unknown;
    try {
      node = resolvePath(vfs, vfs.root(), path, { followFinal: true, escape: 'clamp' }).node;
    } catch (e) {
      if (e instanceof FsError) continue;
      throw e;
    }
    if (node === undefined) continue;
    const kind = vfs.stat(node).kind;
    if (kind === 'file') return { path, node };
    notRunnable ??= new SandboxError('NOT_RUNNABLE', `exec: "${path}": is a ${kind === 'dir' ? 'directory' : kind}, not a program`);
  }
  if (notRunnable) throw notRunnable;
  throw notFound(argv0.includes('/') ? `exec: "${argv0}": no such file or directory` : `exec: "${argv0}": executable file not found in $PATH`);
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

function checkImports(module: WebAssembly.Module, path: string, memories: MemoryInfo[]): void {
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module === 'wasi_snapshot_preview1' && imp.kind === 'function') continue;
    if (imp.kind === 'memory' && memories.some((m) => m.import?.module === imp.module && m.import.name === imp.name)) continue;
    throw new SandboxError(
      'NOT_RUNNABLE',
      `${path}: the module imports ${imp.module}.${imp.name} (${imp.kind}); only wasi_snapshot_preview1 functions (and a memory) are provided`,
    );
  }
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === '_start' && e.kind === 'function')) {
    throw new SandboxError('NOT_RUNNABLE', `${path}: the module has no _start function (a reactor or a library, not a command)`);
  }
}

/**
 * Sandbox Workers kept for reuse: a Worker whose guest exited by itself runs the next guest (a fresh
 * Preview1 and instance; nothing of the last guest stays reachable). A Worker that was terminated
 * (timeout, kill, output cap) or failed is never reused. Idle Workers do not keep the process alive.
 */
class WorkerPool {
  readonly #opts: WasiBackendOptions;
  readonly #idle: Array<{ worker: HostWorker; failed: boolean; unsubscribe: () => void }> = [];
  static readonly MAX_IDLE = 2;

  constructor(opts: WasiBackendOptions) {
    this.#opts = opts;
  }

  prewarm(): void {
    if (this.#idle.length > 0) return;
    try {
      this.#park(spawnWorker(this.#opts.workerUrl));
    } catch {
      // Reported when a container needs a Worker.
    }
  }

  take(): HostWorker {
    let entry = this.#idle.pop();
    while (entry?.failed) entry = this.#idle.pop();
    entry?.unsubscribe();
    const worker = entry ? entry.worker : spawnWorker(this.#opts.workerUrl);
    worker.keepAlive(true);
    if (this.#opts.keepWarm) queueMicrotask(() => this.prewarm());
    return worker;
  }

  async close(): Promise<void> {
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map((e) => { e.unsubscribe(); return e.worker.terminate(); }));
  }

  release(worker: HostWorker): void {
    if (this.#idle.length >= WorkerPool.MAX_IDLE) {
      void worker.terminate();
      return;
    }
    this.#park(worker);
  }

  #park(worker: HostWorker): void {
    worker.keepAlive(false);
    const entry = { worker, failed: false, unsubscribe: () => {} };
    const offError = worker.onError(() => { entry.failed = true; });
    const offExit = worker.onExit(() => { entry.failed = true; });
    entry.unsubscribe = () => { offError(); offExit(); };
    this.#idle.push(entry);
  }
}

type State = 'created' | 'starting' | 'running' | 'exited';

class WasiContainer implements Container {
  readonly id: string;

  readonly #spec: ContainerSpec;
  readonly #compiled: CompiledModule;
  readonly #rootfs: { vfs: Vfs; packed(): unknown };
  readonly #inline: WasiBackendOptions['inline'];
  readonly #opts: WasiBackendOptions;
  #state: State = 'created';
  #worker: HostWorker | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #status: ExitStatus | undefined;
  #failure: SandboxError | undefined;
  #finalRoot: { live: Vfs } | { packed: unknown } | { upper: OverlayUpper } | undefined;
  readonly #done: Promise<ExitStatus>;
  #resolveDone!: (s: ExitStatus) => void;
  #rejectDone!: (e: unknown) => void;
  #started!: { resolve: () => void; reject: (e: unknown) => void };

  // The stdio streams are made when first used: a guest run on the CLI's thread writes straight to the
  // process's descriptors, and creating web streams costs a CLI start several milliseconds.
  readonly #streams: [ReadableStream<Uint8Array> | undefined, ReadableStream<Uint8Array> | undefined] = [undefined, undefined];
  #stdin: WritableStream<Uint8Array> | undefined;
  #closeStdin!: () => void;
  readonly #outputs: Array<ReadableStreamDefaultController<Uint8Array>> = [];
  readonly #unacked = [0, 0];
  /** A reader cancelled the stream: its output is dropped (and never holds the guest back). */
  readonly #cancelled = [false, false];
  #outputTotal = 0;
  readonly #flow: Int32Array | undefined;
  readonly #stdinSetup: StdinSetup;
  readonly #stdinRing: StdinRingWriter | undefined;
  readonly #stdinChunks: Uint8Array[] = [];
  #stdinClosed: Promise<void> | undefined;

  readonly #pool: WorkerPool;
  readonly #unsubscribe: Array<() => void> = [];

  constructor(id: string, spec: ContainerSpec, compiled: CompiledModule, rootfs: { vfs: Vfs; packed(): unknown }, opts: WasiBackendOptions, pool: WorkerPool) {
    this.id = id;
    this.#pool = pool;
    this.#spec = spec;
    this.#compiled = compiled;
    this.#rootfs = rootfs;
    const l = spec.limits;
    this.#inline = l.timeoutMs === undefined && l.outputBytes === undefined && !spec.stdin ? opts.inline : undefined;
    this.#opts = opts;
    this.#done = new Promise((resolve, reject) => { this.#resolveDone = resolve; this.#rejectDone = reject; });
    this.#done.catch(() => {});

    const shared = sharedMemoryAvailable();
    this.#flow = shared ? new Int32Array(createOutputFlow()) : undefined;

    if (!spec.stdin) {
      this.#stdinSetup = { kind: 'none' };
    } else if (shared) {
      const ring = createStdinRing();
      this.#stdinRing = new StdinRingWriter(ring);
      this.#stdinSetup = { kind: 'ring', buffer: ring };
    } else {
      this.#stdinSetup = { kind: 'bytes', data: new Uint8Array(0) };
    }
    this.#stdinClosed = new Promise((r) => { this.#closeStdin = r; });
  }

  get stdin(): WritableStream<Uint8Array> {
    return (this.#stdin ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (!this.#spec.stdin || this.#state === 'exited') return;
        if (this.#stdinRing) await this.#stdinRing.write(chunk);
        else this.#stdinChunks.push(chunk.slice());
      },
      close: () => { this.#stdinRing?.close(); this.#closeStdin(); },
      abort: () => { this.#stdinRing?.close(); this.#closeStdin(); },
    }));
  }

  get stdout(): ReadableStream<Uint8Array> {
    return this.#stream(0);
  }

  get stderr(): ReadableStream<Uint8Array> {
    return this.#stream(1);
  }

  #stream(index: 0 | 1): ReadableStream<Uint8Array> {
    return (this.#streams[index] ??= this.#outputStream(index));
  }

  #outputStream(index: 0 | 1): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#outputs[index] = c;
          // A stream first asked for after the guest ended is already over.
          if (this.#failure) c.error(this.#failure);
          else if (this.#state === 'exited') c.close();
        },
        pull: () => { this.#ack(index); },
        cancel: () => { this.#cancelled[index] = true; this.#ack(index); },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 256 * 1024 }),
    );
  }

  #ack(index: number): void {
    const n = this.#unacked[index]!;
    if (n > 0 && this.#flow) {
      this.#unacked[index] = 0;
      outputConsumed(this.#flow, n);
    }
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new SandboxError('INVALID_STATE', `container ${this.id.slice(0, 12)} was already started`);
    this.#state = 'starting';
    const started = new Promise<void>((resolve, reject) => { this.#started = { resolve, reject }; });
    let stdin = this.#stdinSetup;
    if (stdin.kind === 'bytes') {
      // No shared memory: stdin is given up front, so the guest starts when stdin is closed.
      await this.#stdinClosed;
      stdin = { kind: 'bytes', data: concat(this.#stdinChunks) };
    }
    const message: StartMessage = {
      type: 'start',
      module: this.#compiled.module,
      memories: this.#compiled.memories,
      args: this.#spec.argv,
      env: this.#spec.rootfsPreopen === false ? this.#spec.env : withPwd(this.#spec.env, this.#spec.cwd),
      cwd: this.#spec.cwd,
      mounts: this.#mounts(),
      stdin,
      // Inline output goes straight to the sinks: nothing to wait for (a flow would block forever).
      ...(this.#flow && !this.#inline ? { outputFlow: this.#flow.buffer as SharedArrayBuffer } : {}),
      ...(this.#spec.limits.outputBytes !== undefined ? { outputLimit: this.#spec.limits.outputBytes } : {}),
      storageBytes: this.#spec.limits.storageBytes ?? DEFAULT_STORAGE_BYTES,
      returnFs: this.#inline ? 'live' : 'packed',
    };
    if (this.#inline) {
      // Same thread: runGuest reports through #onMessage synchronously, exit included.
      const { runGuest } = await import('./worker-entry.ts');
      runGuest(message, (m) => this.#onMessage(m));
      await started;
      return;
    }
    let worker: HostWorker;
    try {
      worker = this.#pool.take();
    } catch (e) {
      this.#state = 'exited';
      throw toSandboxError(e);
    }
    this.#worker = worker;
    this.#unsubscribe.push(
      worker.onMessage((m) => this.#onMessage(m as FromWorker)),
      worker.onError((e) => this.#fail(toSandboxError(e))),
      worker.onExit(() => this.#fail(new SandboxError('INTERNAL', 'the sandbox Worker ended unexpectedly'))),
    );
    const timeoutMs = this.#spec.limits.timeoutMs;
    if (timeoutMs !== undefined) {
      this.#timer = setTimeout(() => {
        this.#stop({ code: TIMEOUT_EXIT_CODE, reason: 'timeout', detail: `killed after the ${timeoutMs} ms timeout` });
      }, timeoutMs);
    }
    worker.post(message);
    await started;
  }

  #mounts(): WorkerMount[] {
    const mounts: WorkerMount[] = [];
    const root = this.#spec.mounts.find((m) => m.guest === '/');
    if (!root && this.#spec.rootfsPreopen !== false) {
      mounts.push({
        guestPath: '/',
        source: this.#inline ? { kind: 'vfs', vfs: this.#rootfs.vfs } : { kind: 'packed', packed: this.#rootfs.packed() },
        readOnly: this.#spec.readOnlyRoot,
      });
    }
    const ordered = [...this.#spec.mounts].sort((a, b) => (a.guest === '/' ? -1 : b.guest === '/' ? 1 : 0));
    for (const m of ordered) {
      const readOnly = m.mode === 'ro' || (m.guest === '/' && this.#spec.readOnlyRoot);
      switch (m.source.type) {
        case 'host':
          mounts.push({ guestPath: m.guest, source: { kind: 'host', path: m.source.path }, readOnly });
          break;
        case 'volume': {
          const packed = this.#opts.provider.volumes.get(m.source.name);
          mounts.push({
            guestPath: m.guest,
            source: packed === undefined ? { kind: 'empty' } : { kind: 'packed', packed },
            readOnly,
            volume: m.source.name,
          });
          break;
        }
        case 'vfs':
          throw new SandboxError('INVALID_ARGUMENT', `mount ${m.guest}: a Vfs object cannot be handed to a sandbox Worker; use a volume`);
      }
    }
    return mounts;
  }

  #onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'ready':
        this.#state = 'running';
        this.#started.resolve();
        return;
      case 'output':
        this.#output(m.stream - 1, m.data);
        return;
      case 'output-limit':
        this.#stop({ code: 137, reason: 'output-limit', detail: `output passed the limit of ${this.#spec.limits.outputBytes} bytes`, signal: 'SIGKILL' });
        return;
      case 'exit':
        this.#finalRoot = m.rootVfs ? { live: m.rootVfs } : m.rootUpper ? { upper: m.rootUpper } : m.rootfs === undefined ? undefined : { packed: m.rootfs };
        for (const v of m.volumes ?? []) this.#opts.provider.volumes.set(v.name, v.packed);
        this.#finish({ code: m.code, reason: m.reason, ...(m.detail !== undefined ? { detail: m.detail } : {}) }, true);
        return;
      case 'failed':
        this.#fail(new SandboxError(m.code as SandboxError['code'], m.message));
        return;
    }
  }

  #output(index: number, data: Uint8Array): void {
    if (this.#state === 'exited') return;
    const limit = this.#spec.limits.outputBytes;
    let chunk = data;
    if (limit !== undefined && this.#outputTotal + chunk.length > limit) chunk = chunk.subarray(0, Math.max(0, limit - this.#outputTotal));
    this.#outputTotal += chunk.length;
    if (this.#inline) {
      if (index === 0) this.#inline.stdout(chunk);
      else this.#inline.stderr(chunk);
      return;
    }
    this.#stream(index as 0 | 1);
    const c = this.#outputs[index]!;
    this.#unacked[index]! += data.length;
    if (this.#cancelled[index]) {
      this.#ack(index);
    } else {
      if (chunk.length > 0) c.enqueue(chunk);
      if ((c.desiredSize ?? 0) > 0) this.#ack(index);
    }
    if (chunk.length < data.length) {
      this.#stop({ code: 137, reason: 'output-limit', detail: `output passed the limit of ${limit} bytes`, signal: 'SIGKILL' });
    }
  }

  #stop(status: ExitStatus): void {
    if (this.#state === 'exited') return;
    this.#finish(status, false);
  }

  /** `reusable`: the guest ended by itself, so its Worker is idle and can run another guest. */
  #finish(status: ExitStatus, reusable = false): void {
    if (this.#state === 'exited') return;
    const wasStarting = this.#state === 'starting';
    this.#state = 'exited';
    this.#status = status;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#flow) outputStop(this.#flow);
    this.#stdinRing?.close();
    for (const c of this.#outputs) {
      try { c.close(); } catch { /* already closed or errored */ }
    }
    this.#releaseWorker(reusable);
    this.#resolveDone(status);
    if (wasStarting) this.#started.resolve();
  }

  #fail(error: SandboxError): void {
    if (this.#state === 'exited') return;
    const wasStarting = this.#state === 'starting';
    this.#state = 'exited';
    this.#failure = error;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#flow) outputStop(this.#flow);
    this.#stdinRing?.close();
    for (const c of this.#outputs) {
      try { c.error(error); } catch { /* already closed */ }
    }
    this.#releaseWorker(false);
    this.#rejectDone(error);
    if (wasStarting) this.#started.reject(error);
  }

  #releaseWorker(reusable: boolean): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    const worker = this.#worker;
    this.#worker = undefined;
    if (!worker) return;
    if (reusable) this.#pool.release(worker);
    else void worker.terminate();
  }

  wait(): Promise<ExitStatus> {
    return this.#done;
  }

  async kill(signal = 'SIGKILL'): Promise<void> {
    const n = SIGNALS[signal.toUpperCase()] ?? SIGNALS[`SIG${signal.toUpperCase()}`] ?? Number(signal);
    if (!Number.isInteger(n) || n <= 0 || n > 64) throw new SandboxError('INVALID_ARGUMENT', `unknown signal ${signal}`);
    if (this.#state === 'exited') return;
    if (this.#state === 'created') {
      this.#finish({ code: 128 + n, reason: n === 9 ? 'killed' : 'signal', signal: signalName(n), detail: 'killed before it started' });
      return;
    }
    // A WASI guest has no signal handlers: every signal ends it, as SIGKILL would.
    const worker = this.#worker;
    this.#stop({ code: 128 + n, reason: n === 9 ? 'killed' : 'signal', signal: signalName(n) });
    await worker?.terminate();
  }

  async fs(): Promise<Vfs> {
    if (this.#state === 'created') return Overlay.view(this.#rootfs.vfs);
    if (this.#state !== 'exited') throw new SandboxError('INVALID_STATE', `container ${this.id.slice(0, 12)} is still running`);
    if (this.#failure) throw this.#failure;
    if (this.#finalRoot === undefined) {
      const why = this.#spec.mounts.some((m) => m.guest === '/')
        ? 'its root is a host directory'
        : `it was stopped (${this.#status?.reason}) before it could hand its filesystem back`;
      throw new SandboxError('INVALID_STATE', `container ${this.id.slice(0, 12)} has no filesystem to show: ${why}`);
    }
    // After exit nothing writes to the overlay any more: a read-only view of it is stable.
    if ('live' in this.#finalRoot) return Overlay.view(this.#finalRoot.live);
    if ('upper' in this.#finalRoot) return Overlay.fromUpper(this.#opts.provider.openPacked(this.#rootfs.packed()), this.#finalRoot.upper);
    return this.#opts.provider.openPacked(this.#finalRoot.packed);
  }
}

function signalName(n: number): string {
  return Object.entries(SIGNALS).find(([, v]) => v === n)?.[0] ?? `SIG${n}`;
}

/** WASI has no process working directory: the guest's libc (or program) enters $PWD. */
function withPwd(env: string[], cwd: string): string[] {
  return [...env.filter((e) => !e.startsWith('PWD=')), `PWD=${cwd}`];
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}
