import type { OverlayUpper } from '../fs/overlay.ts';
import type { Vfs } from '../fs/vfs.ts';
import type { MemoryInfo } from './memory-limit.ts';

/**
 * Messages between the runtime (main thread) and a sandbox Worker. Everything here survives
 * structured clone: a compiled `WebAssembly.Module`, packed trees whose buffers are
 * SharedArrayBuffers (shared, not copied), plain data.
 */

/** A filesystem the Worker mounts: an image tree (packed), or a host directory (Node only). */
export type FsSource =
  | { kind: 'packed'; packed: unknown }
  /** Inline mode only (same thread): the image's Vfs itself, not packed. */
  | { kind: 'vfs'; vfs: Vfs }
  | { kind: 'host'; path: string }
  | { kind: 'empty' };

export interface WorkerMount {
  /** Absolute guest path ('/' replaces the root). */
  guestPath: string;
  source: FsSource;
  readOnly: boolean;
  /** Packed/empty sources get a private writable overlay unless read-only. */
  volume?: string;
}

export type StdinSetup =
  | { kind: 'none' }
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'ring'; buffer: SharedArrayBuffer };

export interface StartMessage {
  type: 'start';
  module: WebAssembly.Module;
  memories: MemoryInfo[];
  args: string[];
  env: string[];
  /** The working directory (also in env as PWD); created in the root when missing, as docker does. */
  cwd: string;
  /** Mounts in order; the first one is '/' (the container's rootfs). */
  mounts: WorkerMount[];
  stdin: StdinSetup;
  /** Output flow control and stop flag (see stdio.ts); absent without SharedArrayBuffer. */
  outputFlow?: SharedArrayBuffer;
  /** Total stdout + stderr bytes allowed before the guest is stopped. */
  outputLimit?: number;
  /** Bound on the file bytes each writable in-memory filesystem holds (Overlay quotaBytes). */
  storageBytes: number;
  /**
   * How the container's final root filesystem comes back at exit: packed (from a Worker), or 'live',
   * the Vfs object itself (inline mode, same thread). Named volumes always come back packed.
   */
  returnFs: 'packed' | 'live';
}

export type ToWorker = StartMessage;

export type FromWorker =
  | { type: 'ready' }
  | { type: 'output'; stream: 1 | 2; data: Uint8Array }
  | { type: 'output-limit' }
  | {
      type: 'exit';
      code: number;
      reason: 'exit' | 'trap';
      detail?: string;
      rootfs?: unknown;
      /** The root's overlay upper (over the image's packed tree the Worker was given): what the guest changed. */
      rootUpper?: OverlayUpper;
      /** Inline mode: the root Vfs itself. */
      rootVfs?: Vfs;
      volumes?: Array<{ name: string; packed: unknown }>;
    }
  | { type: 'failed'; code: string; message: string };

/** The host's Worker, as the sandbox runtime sees it (Node: worker_threads; browsers: a module Web Worker). */
export interface HostWorker {
  post(message: unknown, transfer?: Transferable[]): void;
  /** Returns a function that removes the listener. */
  onMessage(cb: (message: unknown) => void): () => void;
  /** An uncaught error in the Worker (its code failed, not the guest). */
  onError(cb: (error: unknown) => void): () => void;
  /** The Worker's thread ended (after terminate(), or on its own: out of memory, a crash). Web Workers report no exit. */
  onExit(cb: () => void): () => void;
  terminate(): Promise<void>;
  /** Whether an idle Worker keeps the host process alive (Node; a no-op in browsers). */
  keepAlive(on: boolean): void;
}

/** The Worker's side of the channel to the thread that spawned it. */
export interface WorkerChannel {
  post(message: unknown, transfer?: Transferable[]): void;
  onMessage(cb: (message: unknown) => void): void;
}
