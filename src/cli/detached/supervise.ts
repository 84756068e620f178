import * as fs from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { toSandboxError } from '../../errors.ts';
import type { Container } from '../../runtime/types.ts';
import { exitCodeFor, exitCodeForStatus } from '../exit-codes.ts';
import { readLaunch, readState, removeContainer, takeControlRequest, waitersDone, writeState, type ControlRequest, type DetachedState } from './state.ts';

/** Signals a supervisor passes on to its container as they are (SIGTERM and SIGINT mean `stop`). */
const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
const DEFAULT_GRACE_MS = 10_000;
/** How long a --rm container's record waits for the `wait` commands reading its exit code. */
const WAITERS_MAX_MS = 10_000;

/**
 * The hidden `__supervise DIR` command: the detached process `run -d` starts in a session of its own. It
 * creates and starts the container of DIR/launch.json through the runtime, records its state, writes its
 * output to DIR/stdout.log and DIR/stderr.log, passes signals on, and records the exit.
 */
export function register(program: Command): void {
  program
    .command('__supervise', { hidden: true })
    .argument('<dir>')
    .action(async (dir: string, _flags: unknown, cmd: Command) => {
      process.exitCode = await supervise(dir, cmd.optsWithGlobals<{ home?: string }>().home);
    });
}

async function supervise(dir: string, home: string | undefined): Promise<number> {
  const launch = readLaunch(dir);
  let state = readState(dir);
  if (!launch || !state) {
    process.stderr.write(`wasmbox: ${dir} holds no container to start\n`);
    return 125;
  }
  const update = (change: Partial<DetachedState>) => {
    state = { ...state!, ...change };
    writeState(dir, state);
  };
  update({ supervisorPid: process.pid });

  let container: Container | undefined;
  let started = false;
  const pending: ControlRequest[] = [];
  let killTimer: NodeJS.Timeout | undefined;
  const deliver = (request: ControlRequest) => {
    if (!container || !started) {
      pending.push(request);
      return;
    }
    const c = container;
    // A backend that knows fewer signal names than the host takes the number.
    const number = (constants.signals as Record<string, number>)[request.signal];
    void c.kill(request.signal)
      .catch((e) => (number !== undefined ? c.kill(String(number)) : Promise.reject(e)))
      .catch((e) => process.stderr.write(`wasmbox: ${toSandboxError(e).message}\n`));
    if (request.killAfterMs !== undefined && killTimer === undefined) {
      killTimer = setTimeout(() => { void c.kill('SIGKILL').catch(() => {}); }, request.killAfterMs);
      killTimer.unref();
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    const request = takeControlRequest(dir);
    if (request) deliver(request);
    else if (signal === 'SIGTERM' || signal === 'SIGINT') deliver({ signal: 'SIGTERM', killAfterMs: DEFAULT_GRACE_MS });
    else deliver({ signal });
  };
  for (const s of ['SIGTERM', 'SIGINT', ...FORWARDED] as NodeJS.Signals[]) process.on(s, onSignal);

  const out = fs.openSync(join(dir, 'stdout.log'), 'a', 0o600);
  const err = fs.openSync(join(dir, 'stderr.log'), 'a', 0o600);
  try {
    const { createRuntime } = await import('../../runtime/runtime.ts');
    const runtime = createRuntime({ ...(home ? { home } : {}), keepWarm: false, pull: false });
    container = await runtime.create(launch.ref, {
      ...launch.options,
      hostEnv: process.env,
      ...(launch.platform ? { platform: launch.platform } : {}),
    });
    const pumps = [pump(container.stdout, out), pump(container.stderr, err)];
    await container.start();
    started = true;
    update({ status: 'running', started: new Date().toISOString() });
    await container.stdin.close().catch(() => {});
    for (const request of pending.splice(0)) deliver(request);
    const status = await container.wait();
    await Promise.all(pumps);
    if (killTimer) clearTimeout(killTimer);
    if (status.reason !== 'exit' && status.detail) fs.writeSync(err, `wasmbox: ${status.detail}\n`);
    update({ status: 'exited', exitCode: exitCodeForStatus(status), finished: new Date().toISOString() });
  } catch (e) {
    const error = toSandboxError(e);
    // Before start: `run -d` reports it and removes the container. After: an exit of its own.
    if (!started) update({ status: 'failed', error: error.message || error.code, exitCode: exitCodeFor(e), finished: new Date().toISOString() });
    else update({ status: 'exited', exitCode: 125, error: error.message, finished: new Date().toISOString() });
  } finally {
    fs.closeSync(out);
    fs.closeSync(err);
  }
  if (state.autoRemove && state.status === 'exited') {
    await waitersDone(dir, WAITERS_MAX_MS);
    removeContainer(join(dir, '..'), { dir, state });
  }
  return 0;
}

/** Appends a container stream to a log file as it comes. */
async function pump(stream: ReadableStream<Uint8Array>, fd: number): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      let off = 0;
      while (off < value.length) off += fs.writeSync(fd, value, off, value.length - off);
    }
  } catch {
    // The container failed; its status says so.
  }
}
