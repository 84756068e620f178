import { isSandboxError, toSandboxError } from '../errors.ts';
import type { ExitStatus } from '../runtime/types.ts';

/** `docker run`'s exit statuses, plus the conventions for a guest that did not exit by itself. */
export const ExitCode = {
  ok: 0,
  /** wasmbox itself failed (bad flag, bad image, no such image...). */
  failed: 125,
  /** The entrypoint exists but cannot be run. */
  notRunnable: 126,
  /** The entrypoint was not found. */
  notFound: 127,
  /** The guest ran past its time limit (timeout(1)'s status). */
  timeout: 124,
  /** The guest was killed (SIGKILL: limit exceeded, out of memory, `kill`). */
  killed: 137,
  /** A WebAssembly trap, reported like an abort (128 + SIGABRT). */
  trap: 134,
} as const;

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGXCPU: 24, SIGXFSZ: 25,
};

/** The exit status for an error wasmbox threw (not the guest's own status). */
export function exitCodeFor(err: unknown): number {
  if (!isSandboxError(err)) return ExitCode.failed;
  if (err.code === 'NOT_RUNNABLE') return ExitCode.notRunnable;
  // NOT_FOUND means "entrypoint not found" only when the runtime says so; a missing image is a wasmbox failure.
  if (err.code === 'NOT_FOUND' && err.data.entrypoint !== undefined) return ExitCode.notFound;
  return ExitCode.failed;
}

/** The CLI's exit status for a guest outcome (docker's conventions). */
export function exitCodeForStatus(s: ExitStatus): number {
  switch (s.reason) {
    case 'exit':
      return s.code >= 0 && s.code <= 255 ? s.code : s.code & 0xff;
    case 'timeout':
      return ExitCode.timeout;
    case 'oom':
    case 'killed':
    case 'output-limit':
      return ExitCode.killed;
    case 'trap':
      return ExitCode.trap;
    case 'signal': {
      const n = s.signal ? SIGNALS[s.signal.toUpperCase().startsWith('SIG') ? s.signal.toUpperCase() : `SIG${s.signal.toUpperCase()}`] : undefined;
      if (n !== undefined) return 128 + n;
      return s.code > 128 && s.code < 256 ? s.code : ExitCode.killed;
    }
    default:
      return ExitCode.failed;
  }
}

/** Prints `wasmbox: <message>` on stderr and returns the exit status for it. */
export function reportError(err: unknown, write: (text: string) => void = (t) => process.stderr.write(t)): number {
  const e = toSandboxError(err);
  const message = e.message || e.code;
  write(`wasmbox: ${message}\n`);
  if (process.env.WASMBOX_DEBUG && err instanceof Error && err.stack) write(`${err.stack}\n`);
  return exitCodeFor(err);
}
