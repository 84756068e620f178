import type { Image } from '../loader/source.ts';
import type { Vfs } from '../fs/vfs.ts';

export interface Mount {
  /** Absolute path inside the container. */
  guest: string;
  /** A host directory (Node only), or an in-memory volume. */
  source: { type: 'host'; path: string } | { type: 'volume'; name: string } | { type: 'vfs'; vfs: Vfs };
  mode: 'ro' | 'rw';
}

export interface Limits {
  /** WASI: cap on linear memory. Linux: cgroup memory.max. */
  memoryBytes?: number;
  timeoutMs?: number;
  pids?: number;
  /** Linux: CPU quota in cores (docker --cpus). */
  cpus?: number;
  /** Total bytes of stdout + stderr kept; the guest is killed past it. */
  outputBytes?: number;
  /**
   * WASI: bytes of file content each in-memory filesystem of the container (its root's writable layer,
   * each in-memory volume) may hold; writes past it fail with ENOSPC. Host memory backs them, so there is
   * always a bound: DEFAULT_STORAGE_BYTES when unset (docker's `--storage-opt size=`).
   */
  storageBytes?: number;
}

/** The default `storageBytes`: 1 GiB. */
export const DEFAULT_STORAGE_BYTES = 2 ** 30;

export interface ContainerSpec {
  argv: string[];
  env: string[];
  cwd: string;
  user?: string;
  /** docker's --cap-add / --cap-drop (names with or without CAP_, or ALL) for a Linux image's root processes. */
  capAdd?: string[];
  capDrop?: string[];
  /** More supplementary groups for the user (docker's --group-add: names in the image's /etc/group, or gids); Linux images only. */
  groupAdd?: string[];
  hostname?: string;
  /**
   * A terminal for the guest (docker -t). Linux images get a pseudo-terminal of their own: stdout carries
   * what it shows (stderr too), stdin what is typed at it; WASI guests see their stdio as a terminal.
   */
  tty: boolean;
  /** The terminal's size at the start (default 80 x 24); Container.resize changes it. */
  ttySize?: { cols: number; rows: number };
  /** Keep stdin open for the guest (docker -i); otherwise the guest reads EOF. */
  stdin: boolean;
  readOnlyRoot: boolean;
  /**
   * WASI: the image's filesystem is preopened as `/` (docker's model). False for a bare .wasm module,
   * which sees only its mounts, as under `wasmtime run --dir`.
   */
  rootfsPreopen?: boolean;
  /**
   * env's HOME is the default (/root), set because neither the image nor the options set one: a backend
   * that knows the user's entry in /etc/passwd puts that home there instead, as docker does.
   */
  defaultHome?: boolean;
  mounts: Mount[];
  /**
   * 'none': a network namespace of the container's own with loopback only (docker --network none, our
   * default); 'host': the host's network (docker --network host; Linux images: WASI guests have no
   * sockets either way).
   */
  network: 'none' | 'host';
  /**
   * docker's -p/--publish: TCP ports of the container reachable at ports of the host (Linux images; a WASI
   * guest has no sockets). Ignored with network 'host', as docker does (the ports are the host's already).
   */
  publish?: PublishedPort[];
  limits: Limits;
}

/** A published port (docker -p [hostIp:]hostPort:containerPort): TCP only. */
export interface PublishedPort {
  /** The host address to listen on; default 0.0.0.0 (every IPv4 address), as docker's. */
  hostIp?: string;
  /** 0: a port the host picks (see Container.ports). */
  hostPort: number;
  containerPort: number;
}

/** Where a published port listens once the container started: hostPort is the one bound (never 0). */
export interface PortBinding {
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

export type ExitReason = 'exit' | 'signal' | 'trap' | 'timeout' | 'oom' | 'output-limit' | 'killed';

export interface ExitStatus {
  code: number;
  reason: ExitReason;
  detail?: string;
  signal?: string;
}

export interface Container {
  readonly id: string;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /**
   * True when the container writes to this process's own stdout and stderr (RuntimeOptions.inheritStdio)
   * and, if interactive, reads its stdin: `stdout` and `stderr` then end empty.
   */
  readonly inheritedStdio?: boolean;
  start(): Promise<void>;
  /** Resolves for every guest outcome (exit, trap, timeout, kill); never rejects for the guest's sake. */
  wait(): Promise<ExitStatus>;
  kill(signal?: string): Promise<void>;
  /**
   * A container with published ports (ContainerSpec.publish), once start() resolved: where each one
   * listens on the host, in the order given. Empty before start() and for other containers.
   */
  readonly ports?: readonly PortBinding[];
  /** A container with a pseudo-terminal: its new size (the program gets SIGWINCH); otherwise nothing. */
  resize?(cols: number, rows: number): void;
  /** The container's root filesystem; after exit it holds what the guest wrote. */
  fs(): Promise<Vfs>;
}

export type ProbeResult = { ok: true } | { ok: false; reason: string };

export interface Backend {
  readonly name: string;
  probe(image: Image): Promise<ProbeResult>;
  create(image: Image, spec: ContainerSpec): Promise<Container>;
  /**
   * Removes what the backend keeps on disk for images (materialised root filesystems) except those of
   * `live` (top chainIDs of the stored images) and those a container uses; returns what it removed.
   */
  pruneRootfs?(live: Set<string>): Promise<string[]>;
}
