import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { SandboxError } from '../../errors.ts';
import type { Image } from '../../loader/source.ts';
import type { LayoutStore } from '../../loader/store/layout-store.ts';
import type { Platform } from '../../loader/types.ts';
import type { RunOptions } from '../../runtime/spec.ts';
import { NAME_RULE, createContainer, detachedRoot, readState, removeContainer, type DetachedState } from './state.ts';

export interface DetachRequest {
  /** The image as the user named it (ps's IMAGE). */
  image: string;
  /** The reference to open (a ./path made absolute). */
  ref: string;
  platform?: string;
  name?: string;
  autoRemove: boolean;
  home?: string;
  options: RunOptions;
  pull: (ref: string, o: { platform?: string | Platform; store: LayoutStore }) => Promise<Image>;
}

export function checkName(name: string | undefined): void {
  if (name !== undefined && !NAME_RULE.test(name)) {
    throw new SandboxError('INVALID_ARGUMENT', `invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

/**
 * `run -d`: checks what can be checked here (name, options, image, a backend for it), records the
 * container, starts its supervisor (`__supervise DIR`, detached in a session of its own) and waits until
 * the supervisor says the container started, then prints its ID. A failure leaves nothing behind.
 */
export async function runDetached(req: DetachRequest): Promise<number> {
  checkName(req.name);
  const [{ createRuntime }, { LayoutStore }, { newContainerId }] = await Promise.all([
    import('../../runtime/runtime.ts'), import('../../loader/store/layout-store.ts'), import('../../runtime/ids.ts'),
  ]);
  const home = req.home ?? LayoutStore.defaultDir();
  const runtime = createRuntime({ home, keepWarm: false, pull: req.pull });
  const img = await runtime.image(req.ref, req.platform ? { platform: req.platform } : {});
  await runtime.backendFor(img);
  const spec = runtime.spec(img, { ...req.options, hostEnv: process.env });
  const id = newContainerId(64);
  const state: DetachedState = {
    id,
    name: req.name ?? `wasmbox_${id.slice(0, 8)}`,
    image: req.image,
    command: spec.argv,
    created: new Date().toISOString(),
    status: 'created',
    ...(req.autoRemove ? { autoRemove: true } : {}),
  };
  const { hostEnv: _hostEnv, ...options } = req.options;
  const root = detachedRoot(home);
  const dir = createContainer(root, state, { ref: req.ref, ...(req.platform ? { platform: req.platform } : {}), options: options as Record<string, unknown> });
  let child: ChildProcess | undefined;
  try {
    const log = fs.openSync(join(dir, 'supervisor.log'), 'a', 0o600);
    try {
      child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--home', home, '__supervise', dir], {
        detached: true,
        stdio: ['ignore', log, log],
      });
    } finally {
      fs.closeSync(log);
    }
    const outcome = await startOutcome(dir, child);
    if (outcome.error !== undefined) {
      removeContainer(root, { dir, state });
      process.stderr.write(`wasmbox: ${outcome.error}\n`);
      return outcome.code;
    }
    process.stdout.write(`${id}\n`);
    return 0;
  } catch (e) {
    if (child?.pid !== undefined) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    removeContainer(root, { dir, state });
    throw e;
  } finally {
    child?.unref();
  }
}

/** Watches the state until the supervisor started the container (or it failed, or the supervisor died). */
async function startOutcome(dir: string, child: ChildProcess): Promise<{ error?: string; code: number }> {
  let exited = false;
  let spawnError: Error | undefined;
  child.once('exit', () => { exited = true; });
  child.once('error', (e) => { spawnError = e; exited = true; });
  for (;;) {
    const wasExited = exited;
    const s = readState(dir);
    // A --rm container that already ended removed itself: it started.
    if (!s) return { code: 0 };
    if (s.status === 'running' || s.status === 'exited') return { code: 0 };
    if (s.status === 'failed') return { error: s.error ?? 'the container could not be started', code: s.exitCode ?? 125 };
    if (wasExited) {
      const said = readTail(join(dir, 'supervisor.log'));
      return { error: `the container's supervisor ended before starting it${spawnError ? `: ${spawnError.message}` : ''}${said ? `: ${said}` : ''}`, code: 125 };
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

function readTail(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' ');
  } catch {
    return '';
  }
}
