import * as fs from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../../errors.ts';

/**
 * Detached containers on disk, one directory each under `$WASMBOX_HOME/detached/<64-hex id>`:
 * - launch.json: what the supervisor is to run (written once by `run -d`);
 * - state.json: what it is doing (rewritten whole by the supervisor: temp file + rename);
 * - stdout.log, stderr.log: the container's output; supervisor.log: the supervisor's own;
 * - control.json: a signal request for the supervisor (see requestSignal).
 * Names are claimed as symbolic links `detached/names/<name>` -> id, made with O_EXCL semantics.
 */

export type Status = 'created' | 'running' | 'exited' | 'failed';

export interface DetachedState {
  id: string;
  name: string;
  image: string;
  /** The command as the container runs it (entrypoint and arguments). */
  command: string[];
  created: string;
  started?: string;
  finished?: string;
  status: Status;
  supervisorPid?: number;
  exitCode?: number;
  /** Why the container could not be created or started (status 'failed'). */
  error?: string;
  autoRemove?: boolean;
}

/** What `run -d` hands the supervisor: the image reference and the run options, as data. */
export interface LaunchRequest {
  ref: string;
  platform?: string;
  options: Record<string, unknown>;
}

/** A control request: the signal to give the container, and for `stop` the grace before SIGKILL. */
export interface ControlRequest {
  signal: string;
  killAfterMs?: number;
}

/** What a container is doing now: 'dead' when its supervisor is gone without recording an exit. */
export type Phase = 'created' | 'running' | 'exited' | 'dead';

export interface DetachedContainer {
  dir: string;
  state: DetachedState;
}

export const NAME_RULE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function detachedRoot(home: string): string {
  return join(home, 'detached');
}

export function containerDir(root: string, id: string): string {
  return join(root, id);
}

/** Makes the directory of a new container and claims its name; refuses a name in use (docker's conflict). */
export function createContainer(root: string, state: DetachedState, launch: LaunchRequest): string {
  if (!NAME_RULE.test(state.name)) {
    throw new SandboxError('INVALID_ARGUMENT', `invalid container name (${state.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  fs.mkdirSync(join(root, 'names'), { recursive: true, mode: 0o700 });
  const dir = containerDir(root, state.id);
  fs.mkdirSync(dir, { mode: 0o700 });
  try {
    claimName(root, state.name, state.id);
    writeJson(dir, 'launch.json', launch);
    writeState(dir, state);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

function claimName(root: string, name: string, id: string): void {
  const link = join(root, 'names', name);
  for (let attempt = 0; ; attempt++) {
    try {
      fs.symlinkSync(id, link);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const owner = readLink(link);
      // A claim whose container is gone (a run -d that died half-way) is free again.
      if (owner !== undefined && fs.existsSync(containerDir(root, owner))) {
        throw new SandboxError('INVALID_ARGUMENT', `Conflict. The container name "/${name}" is already in use by container "${owner}". You have to remove (or rename) that container to be able to reuse that name.`, { data: { name, id: owner } });
      }
      fs.rmSync(link, { force: true });
    }
  }
}

function readLink(path: string): string | undefined {
  try {
    return fs.readlinkSync(path);
  } catch {
    return undefined;
  }
}

function writeJson(dir: string, file: string, value: unknown): void {
  const tmp = join(dir, `.${file}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, join(dir, file));
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function writeState(dir: string, state: DetachedState): void {
  writeJson(dir, 'state.json', state);
}

export function readState(dir: string): DetachedState | undefined {
  return readJson<DetachedState>(join(dir, 'state.json'));
}

export function readLaunch(dir: string): LaunchRequest | undefined {
  return readJson<LaunchRequest>(join(dir, 'launch.json'));
}

/** Every detached container with a readable state, newest first. */
export function listContainers(root: string): DetachedContainer[] {
  let ids: string[];
  try {
    ids = fs.readdirSync(root).filter((n) => /^[0-9a-f]{64}$/.test(n));
  } catch {
    return [];
  }
  const out: DetachedContainer[] = [];
  for (const id of ids) {
    const dir = containerDir(root, id);
    const state = readState(dir);
    if (state) out.push({ dir, state });
  }
  return out.sort((a, b) => b.state.created.localeCompare(a.state.created));
}

/** docker's lookup: the full ID, then a name, then a unique ID prefix; an error naming `ref` otherwise. */
export function resolveContainer(root: string, ref: string): DetachedContainer {
  const all = listContainers(root);
  const found = all.find((c) => c.state.id === ref) ?? all.find((c) => c.state.name === ref);
  if (found) return found;
  const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((c) => c.state.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new SandboxError('INVALID_ARGUMENT', `multiple IDs found with provided prefix: ${ref}`, { data: { ref } });
  throw new SandboxError('NOT_FOUND', `No such container: ${ref}`, { data: { ref } });
}

/** Removes a container's directory and its name (whatever of them is still there). */
export function removeContainer(root: string, c: DetachedContainer): void {
  const link = join(root, 'names', c.state.name);
  if (readLink(link) === c.state.id) fs.rmSync(link, { force: true });
  fs.rmSync(c.dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Whether `pid` is still this container's supervisor: alive, and its command line names the container's
 * directory (a pid reused by another process is not trusted). Where /proc is missing, alive is enough.
 */
export function supervisorAlive(pid: number, dir: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || fs.existsSync('/proc/self')) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

export function phaseOf(c: DetachedContainer): Phase {
  const s = c.state;
  if (s.status === 'exited' || s.status === 'failed') return 'exited';
  // Before the supervisor wrote its pid, the container is only being created.
  if (s.supervisorPid === undefined) return 'created';
  return supervisorAlive(s.supervisorPid, c.dir) ? s.status : 'dead';
}

/** The exit code a finished container reports: its own, or 137 for one whose supervisor was killed. */
export function exitCodeOf(c: DetachedContainer): number | undefined {
  const phase = phaseOf(c);
  if (phase === 'dead') return 137;
  return phase === 'exited' ? (c.state.exitCode ?? 125) : undefined;
}

/** Asks a container's supervisor to signal the container (SIGTERM wakes it to read the request). */
export function requestSignal(c: DetachedContainer, request: ControlRequest): boolean {
  const pid = c.state.supervisorPid;
  if (pid === undefined || !supervisorAlive(pid, c.dir)) return false;
  writeJson(c.dir, 'control.json', request);
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch {
    return false;
  }
}

/** Takes the pending control request, if any (the supervisor's side of requestSignal). */
export function takeControlRequest(dir: string): ControlRequest | undefined {
  const path = join(dir, 'control.json');
  const taken = `${path}.${process.pid}.taken`;
  try {
    fs.renameSync(path, taken);
  } catch {
    return undefined;
  }
  const request = readJson<ControlRequest>(taken);
  fs.rmSync(taken, { force: true });
  return request;
}

/**
 * A `wait` on a container that removes itself (--rm) says so with a file `waiters/<its pid>`: the supervisor
 * keeps the directory, exit recorded, until those waiters read it (or are gone). Returns the release.
 */
export function registerWaiter(c: DetachedContainer): () => void {
  const file = join(c.dir, 'waiters', String(process.pid));
  try {
    fs.mkdirSync(join(c.dir, 'waiters'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, '');
  } catch {
    // removed meanwhile: the wait finds it gone
  }
  return () => fs.rmSync(file, { force: true });
}

/** The supervisor's side: until every registered waiter is done (or dead), at most `maxMs`. */
export async function waitersDone(dir: string, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  for (;;) {
    let pending: string[];
    try {
      pending = fs.readdirSync(join(dir, 'waiters')).filter((pid) => {
        try {
          process.kill(Number(pid), 0);
          return true;
        } catch {
          return false;
        }
      });
    } catch {
      return;
    }
    if (!pending.length || Date.now() >= until) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Re-reads a container until it is no longer running (or gone); `deadlineMs` bounds the wait. */
export async function waitUntilStopped(c: DetachedContainer, deadlineMs = Infinity): Promise<DetachedContainer | undefined> {
  const until = Date.now() + deadlineMs;
  let current: DetachedContainer | undefined = c;
  for (;;) {
    const state = readState(c.dir);
    if (!state) return undefined;
    current = { dir: c.dir, state };
    const phase = phaseOf(current);
    if (phase === 'exited' || phase === 'dead' || Date.now() >= until) return current;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A signal given as KILL, SIGKILL or 9, as its SIG name; an error for others. */
export function signalName(signal: string, known: Record<string, number>): string {
  const upper = signal.toUpperCase();
  if (/^\d+$/.test(signal)) {
    const name = Object.entries(known).find(([, n]) => n === Number(signal))?.[0];
    if (name) return name;
  } else {
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    if (known[name] !== undefined) return name;
  }
  throw new SandboxError('INVALID_ARGUMENT', `invalid signal: ${signal}`);
}
