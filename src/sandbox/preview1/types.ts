import type { Vfs } from '../../fs/vfs.ts';

/** A directory granted to the guest at `guestPath`. */
export interface Preopen {
  guestPath: string;
  vfs: Vfs<any>;
  /** Every mutation below this preopen fails with EROFS (also when vfs.readOnly). */
  readOnly: boolean;
  /**
   * The container's own root filesystem mounted at '/': paths resolved from its top directory have
   * chroot semantics (an absolute symlink target starts at this root, `..` at the top stays there),
   * as inside a container, and absolute symlinks may be created. Resolution still never leaves this
   * Vfs, and from descriptors of its subdirectories it stays as strict as any preopen. Default false
   * (wasmtime's semantics: absolute targets and `..` above the descriptor are ENOTCAPABLE).
   */
  containerRoot?: boolean;
}

export interface StdinSource {
  /** Blocks until bytes are available; null at EOF. Returns at most `max` bytes. */
  read(max: number): Uint8Array | null;
  /** True when a read would not block (for poll_oneoff); without it stdin counts as always ready. */
  ready?(): boolean;
}

export interface Preview1Clock {
  realtimeNs(): bigint;
  monotonicNs(): bigint;
  /** CPU time used by the host process, from any origin. Without it the process clock is wall time since the start. */
  processCpuNs?(): bigint;
  /**
   * CPU time used by the calling thread, from any origin. Without it the thread clock is the lesser of
   * the process clock and wall time since the start (a thread runs no longer than either).
   */
  threadCpuNs?(): bigint;
}

export interface Preview1Options {
  args: string[];
  /** "KEY=VALUE" strings. */
  env: string[];
  preopens: Preopen[];
  stdin: StdinSource;
  stdout(b: Uint8Array): void;
  stderr(b: Uint8Array): void;
  clock?: Preview1Clock;
  randomFill?(buf: Uint8Array): void;
  /** Blocks the calling thread for `ns` (in a Worker: Atomics.wait). Used by poll_oneoff clock waits. */
  sleep?(ns: bigint): void;
  /** Report stdio as a terminal (character device), which makes libc line-buffer stdout. Default false. */
  tty?: boolean;
  /** Sees every unexpected host exception an import turned into EIO. */
  onUnexpectedError?(e: unknown): void;
}
