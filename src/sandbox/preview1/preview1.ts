import { SandboxError } from '../../errors.ts';
import { errnoOf } from '../errno.ts';
import { argsEnvImports } from './args-env.ts';
import { clockRandomImports } from './clock-random.ts';
import { Context } from './context.ts';
import { fdImports } from './fd-ops.ts';
import { pathImports } from './path-ops.ts';
import { pollImports } from './poll.ts';
import { ProcExit, procSockImports } from './proc-sock.ts';
import type { Preview1Options } from './types.ts';

export type { Preopen, Preview1Clock, Preview1Options, StdinSource } from './types.ts';
export { ProcExit } from './proc-sock.ts';

/** The import module name preview1 guests use. */
export const PREVIEW1_MODULE = 'wasi_snapshot_preview1';

/**
 * WASI preview1 for one guest instance: its own descriptor table (stdio, then the granted preopens
 * from fd 3), args, env and clocks. Nothing is granted that the options do not name.
 */
export class Preview1 {
  readonly #ctx: Context;
  /** The functions of `wasi_snapshot_preview1`, to put under that name in the import object. */
  readonly imports: WebAssembly.ModuleImports;

  constructor(o: Preview1Options) {
    this.#ctx = new Context(o);
    const raw: Record<string, (...args: never[]) => number> = {
      ...argsEnvImports(this.#ctx),
      ...clockRandomImports(this.#ctx),
      ...fdImports(this.#ctx),
      ...pathImports(this.#ctx),
      ...pollImports(this.#ctx),
      ...procSockImports(this.#ctx),
    };
    const onUnexpected = o.onUnexpectedError;
    const ctx = this.#ctx;
    const imports: WebAssembly.ModuleImports = {};
    for (const [name, fn] of Object.entries(raw)) imports[name] = guard(ctx, fn as (...a: unknown[]) => number, onUnexpected);
    this.imports = imports;
  }

  /** Binds the guest memory the imports read and write (done by start/initialize from the export `memory`). */
  bindMemory(memory: WebAssembly.Memory): void {
    this.#ctx.mem.bind(memory);
  }

  /** Runs a command's `_start`; returns its exit code (0 when it returns, the proc_exit code otherwise). */
  start(instance: WebAssembly.Instance): number {
    this.#bind(instance);
    const start = instance.exports._start;
    if (typeof start !== 'function') throw new SandboxError('NOT_RUNNABLE', 'the module does not export _start (not a WASI command)');
    try {
      (start as () => void)();
    } catch (e) {
      if (e instanceof ProcExit) return e.code;
      throw e;
    }
    return this.#ctx.exitCode ?? 0;
  }

  /** Prepares a reactor: calls `_initialize` when the module exports it. */
  initialize(instance: WebAssembly.Instance): void {
    this.#bind(instance);
    const init = instance.exports._initialize;
    if (init !== undefined && typeof init !== 'function') throw new SandboxError('NOT_RUNNABLE', '_initialize is not a function');
    if (typeof init === 'function') (init as () => void)();
  }

  /** Binds the exported `memory`; a module that imports its memory instead needs bindMemory() first. */
  #bind(instance: WebAssembly.Instance): void {
    const memory = instance.exports.memory;
    if (memory instanceof WebAssembly.Memory) this.#ctx.mem.bind(memory);
    else if (!this.#ctx.mem.bound) throw new SandboxError('NOT_RUNNABLE', 'the module neither exports its memory as "memory" nor was one bound with bindMemory()');
  }
}

/** Every import returns an errno: anything thrown but proc_exit becomes one, in one place. */
function guard(ctx: Context, fn: (...a: unknown[]) => number, onUnexpected: ((e: unknown) => void) | undefined): (...a: unknown[]) => number {
  // Fixed parameters (no rest array): the longest import (path_open) takes 9.
  return function guarded(a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown, g?: unknown, h?: unknown, i?: unknown): number {
    // After proc_exit nothing runs on, even if the guest caught the unwinding (wasm exception handling).
    if (ctx.exitCode !== undefined) throw new ProcExit(ctx.exitCode);
    try {
      ctx.mem.refresh();
      return fn(a, b, c, d, e, f, g, h, i);
    } catch (err) {
      if (err instanceof ProcExit) {
        ctx.exitCode = err.code;
        throw err;
      }
      return errnoOf(err, onUnexpected);
    }
  };
}
