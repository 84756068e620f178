/**
 * Launchers: a container's process started before the container is planned (see Launch in
 * invocation.ts). bwrap waits reading its options from ARGS_FD; launch() puts the process in the
 * container's cgroups, then writes its seccomp program and options, and the container starts.
 * Starting a process from Node forks this whole process (a cost that grows with its memory: ~2 ms at
 * 50 MB, ~20 ms at 250 MB); a spare launcher, started while the previous container runs, takes that
 * off the next container's start.
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { SandboxError } from '../errors.ts';
import { spawnContainerProcess } from './container.ts';
import { ARGS_FD, SECCOMP_FD, type Launch } from './invocation.ts';

/** The process's stdio and user namespace: what a launcher must have been started with to fit a container. */
export interface LaunchShape {
  stdin: 'pipe' | 'ignore' | 'inherit';
  /** 'inherit': this process's stdout and stderr. */
  output: 'pipe' | 'inherit';
  /** The identity-mapped user namespace, passed at USERNS_FD; the process then runs as uid 0, gid 0, no supplementary groups. */
  usernsFd?: number;
  /**
   * A harmless descriptor (an empty file of ours, read-only) put at the numbers of descriptors this process
   * inherited without close-on-exec (see coverInheritedFds): bwrap hands all of its descriptors on.
   */
  placeholderFd?: number;
}

export function launcherKey(argv: string[], shape: LaunchShape): string {
  return JSON.stringify([argv, shape.stdin, shape.output, shape.usernsFd ?? null]);
}

export class Launcher {
  readonly child: ChildProcess;
  readonly key: string;
  /** Resolves once the process runs, rejects when it could not be started. */
  readonly spawned: Promise<void>;
  #launched = false;

  private constructor(child: ChildProcess, key: string) {
    this.child = child;
    this.key = key;
    this.spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    this.spawned.catch(() => { /* reported to whoever launches it */ });
    for (const fd of [SECCOMP_FD, ARGS_FD]) (child.stdio as unknown as Array<Writable | null>)[fd]?.on('error', () => { /* it exited: its status says why */ });
  }

  /** Starts `argv` (a Launch's), waiting for its options. Throws BACKEND_UNAVAILABLE when it cannot be started. */
  static start(argv: string[], shape: LaunchShape): Launcher {
    let child: ChildProcess;
    try {
      child = spawnContainerProcess(argv, shape, true);
    } catch (e) {
      throw new SandboxError('BACKEND_UNAVAILABLE', `cannot start ${argv[0]}: ${(e as Error).message}`, { cause: e });
    }
    return new Launcher(child, launcherKey(argv, shape));
  }

  /** Still waiting for its options (a spare can be taken). */
  get waiting(): boolean {
    return !this.#launched && this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }

  /**
   * The container starts: the process joins the container's cgroups (before anything of the container
   * runs), then bwrap gets its seccomp program and options. Throws when a cgroup cannot be joined (the
   * process is killed).
   */
  launch(launch: Launch, seccomp: Uint8Array): void {
    if (this.#launched) throw new Error('a launcher starts one container');
    this.#launched = true;
    this.hold();
    const pid = this.child.pid;
    try {
      if (pid === undefined) throw new Error('it did not start');
      for (const procs of launch.cgroupProcs) fs.writeFileSync(procs, String(pid));
    } catch (e) {
      this.discard();
      throw new SandboxError('BACKEND_UNAVAILABLE', `cannot put the container in its cgroups: ${(e as Error).message}`, { cause: e });
    }
    this.#pipe(SECCOMP_FD).end(seccomp);
    // (NUL-terminated words; the last, __WASMBOX_END, is what the trampoline checks: options cut short never run)
    (this.#pipe(ARGS_FD)).end(launch.options.map((w) => `${w}\0`).join(''));
  }

  /** A launcher that will not be used: it ends (it has run nothing of a container). */
  discard(): void {
    this.#launched = true;
    try { this.child.kill('SIGKILL'); } catch { /* gone */ }
    this.idle();
  }

  /** Keeps this process alive while the container runs. */
  hold(): void {
    this.child.ref();
    for (const s of this.#streams()) (s as unknown as { ref?(): void }).ref?.();
  }

  /** A spare does not keep this process alive (at exit its options pipe closes, and it ends unlaunched). */
  idle(): void {
    this.child.unref();
    for (const s of this.#streams()) (s as unknown as { unref?(): void }).unref?.();
  }

  #pipe(fd: number): Writable {
    return (this.child.stdio as unknown as Writable[])[fd]!;
  }

  #streams(): Array<Readable | Writable> {
    return this.child.stdio.filter((s): s is Readable | Writable => s !== null && s !== undefined);
  }
}

/** At most one spare launcher, for the shape of the last container (a spare of another shape is dropped). */
export class SpareLaunchers {
  #spare: Launcher | undefined;

  /** The spare when it fits `key` and still waits, else undefined (and a spare that does not fit is dropped). */
  take(key: string): Launcher | undefined {
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare && spare.key === key && spare.waiting) return spare;
    spare?.discard();
    return undefined;
  }

  /** Starts a spare for the next container of this shape, after the current turn of the event loop. */
  prepare(start: () => Launcher): void {
    setImmediate(() => {
      if (this.#spare?.waiting) return;
      try {
        const l = start();
        l.idle();
        this.#spare = l;
      } catch { /* the next container starts its own */ }
    }).unref();
  }

  close(): void {
    this.#spare?.discard();
    this.#spare = undefined;
  }
}
