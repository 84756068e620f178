// Detached containers through the built CLI: run -d, ps, logs, stop, kill, rm, wait (WASI and Linux images).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult as Result } from './helpers/cli.ts';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import { buildBusyboxImage, busyboxAvailable, openOciDir, tempDir } from './helpers/linux-images.ts';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'bin', 'wasmbox.cjs');
const work = tempDir('wasmbox-cli-detached-');
const home = path.join(work, 'home');
const detached = path.join(home, 'detached');


function wasmbox(...args: string[]): Promise<Result> {
  return runCli(['--home', home, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work }, timeout: 60_000 });
}

/** `run -d ARGS`: the ID it printed (the run must succeed). */
async function runDetached(...args: string[]): Promise<string> {
  const r = await wasmbox('run', '-d', ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
  return r.stdout.trim();
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const until = Date.now() + 30_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function psRow(name: string, all = true): Promise<string | undefined> {
  const r = await wasmbox('ps', ...(all ? ['-a'] : []));
  expect(r.code).toBe(0);
  return r.stdout.split('\n').find((l) => l.endsWith(`   ${name}`));
}

function supervisorPid(id: string): number {
  return (JSON.parse(fs.readFileSync(path.join(detached, id, 'state.json'), 'utf8')) as { supervisorPid: number }).supervisorPid;
}

/** Host pids of processes running `sleep ARG`. */
function sleepers(arg: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      return argv.length === 3 && /(^|\/)sleep$/.test(argv[0]!) && argv[1] === arg;
    } catch {
      return false;
    }
  }).map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(() => {
  if (!fs.existsSync(path.join(root, 'dist', 'cli.cjs')) || !fs.existsSync(path.join(root, 'dist', 'sandbox-worker.js'))) {
    execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'inherit' });
  }
});

afterAll(() => {
  // Every supervisor a test left running (a failed test's) goes, and with it its container.
  for (const id of fs.existsSync(detached) ? fs.readdirSync(detached) : []) {
    try {
      const pid = supervisorPid(id);
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(detached, id))) process.kill(pid, 'SIGKILL');
    } catch { /* not a container, or gone */ }
  }
  fs.rmSync(work, { recursive: true, force: true });
});

describe('detached WASI containers', () => {
  it('run -d returns while the container runs; ps, ps -q, logs; stop ends it with 143; wait prints the code', async () => {
    const id = await runDetached('--name', 'web', 'toolbox', 'sh', '-c', 'echo out; echo err >&2; sleep 1000');
    const row = await psRow('web', false);
    expect(row).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+toolbox\\s+"sh -c echo out; ech…"\\s+.+ ago\\s+Up .+\\s+web$`));
    expect((await wasmbox('ps', '-q')).stdout.split('\n')).toContain(id.slice(0, 12));
    const logs = await eventually(async () => {
      const r = await wasmbox('logs', 'web');
      return r.stdout === 'out\n' && r.stderr === 'err\n' ? r : undefined;
    }, 'logs show the output');
    expect(logs.code).toBe(0);
    expect(await wasmbox('stop', 'web')).toMatchObject({ code: 0, stdout: 'web\n' });
    expect(await psRow('web', false)).toBeUndefined();
    expect(await psRow('web')).toMatch(/Exited \(143\) .+ ago\s+web$/);
    expect(await wasmbox('wait', id.slice(0, 7))).toMatchObject({ code: 0, stdout: '143\n' });
    expect(await wasmbox('rm', 'web')).toMatchObject({ code: 0, stdout: 'web\n' });
    expect(fs.existsSync(path.join(detached, id))).toBe(false);
    expect(await psRow('web')).toBeUndefined();
  });

  it('a default name; ps -a shows an exit code; logs -f follows until the exit', async () => {
    const id = await runDetached('toolbox', 'sh', '-c', 'echo one; sleep 1; echo two >&2; echo three; exit 3');
    const followed = await wasmbox('logs', '-f', id);
    expect(followed).toMatchObject({ code: 0, stdout: 'one\nthree\n', stderr: 'two\n' });
    expect(await wasmbox('wait', id)).toMatchObject({ code: 0, stdout: '3\n' });
    expect(await psRow(`wasmbox_${id.slice(0, 8)}`)).toMatch(/Exited \(3\) /);
    expect(await psRow(`wasmbox_${id.slice(0, 8)}`, false)).toBeUndefined();
  });

  it('kill sends a signal (default SIGKILL); kill of a stopped container is refused', async () => {
    await runDetached('--name', 'hup', 'toolbox', 'sleep', '1000');
    await runDetached('--name', 'nine', 'toolbox', 'sleep', '1000');
    expect(await wasmbox('kill', '-s', 'HUP', 'hup')).toMatchObject({ code: 0, stdout: 'hup\n' });
    expect(await wasmbox('kill', 'nine')).toMatchObject({ code: 0, stdout: 'nine\n' });
    expect(await wasmbox('wait', 'hup', 'nine')).toMatchObject({ code: 0, stdout: '129\n137\n' });
    const again = await wasmbox('kill', 'hup');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/hup.*is not running/);
    expect((await wasmbox('kill', '-s', 'NOSUCH', 'nine')).code).toBe(125);
  });

  it('rm refuses a running container without -f; rm -f kills and removes it', async () => {
    const id = await runDetached('--name', 'busy', 'toolbox', 'sleep', '1000');
    const refused = await wasmbox('rm', 'busy');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/container is running/);
    expect(await psRow('busy', false)).toMatch(/Up /);
    const pid = supervisorPid(id);
    expect(await wasmbox('rm', '-f', 'busy')).toMatchObject({ code: 0, stdout: 'busy\n' });
    expect(fs.existsSync(path.join(detached, id))).toBe(false);
    await eventually(async () => (alive(pid) ? undefined : true), 'the supervisor ends');
  });

  it('--rm with -d removes the container once it exits (a wait under way still gets its code); the name is free again', async () => {
    // The container exits once the test says so: after the wait below registered itself.
    const gate = path.join(work, 'gate');
    fs.mkdirSync(gate);
    const id = await runDetached('--rm', '--name', 'brief', '-v', `${gate}:/gate`, 'toolbox', 'sh', '-c', 'while [ ! -e /gate/go ]; do sleep 1; done; exit 4');
    const waiting = wasmbox('wait', 'brief');
    await eventually(async () => (fs.existsSync(path.join(detached, id, 'waiters')) ? true : undefined), 'the wait registers');
    fs.writeFileSync(path.join(gate, 'go'), '');
    expect(await waiting).toMatchObject({ code: 0, stdout: '4\n' });
    await eventually(async () => (fs.existsSync(path.join(detached, id)) ? undefined : true), 'the container removes itself');
    expect(await psRow('brief')).toBeUndefined();
    const again = await runDetached('--name', 'brief', 'toolbox', 'true');
    expect(await wasmbox('wait', again)).toMatchObject({ stdout: '0\n' });
  });

  it('names: conflicts and bad names refused; unknown names and prefixes are errors naming them', async () => {
    const id = await runDetached('--name', 'taken', 'toolbox', 'sleep', '1000');
    const conflict = await wasmbox('run', '-d', '--name', 'taken', 'toolbox', 'true');
    expect(conflict.code).toBe(125);
    expect(conflict.stderr).toContain(`The container name "/taken" is already in use by container "${id}"`);
    expect((await wasmbox('run', '-d', '--name', 'bad name', 'toolbox', 'true')).code).toBe(125);
    for (const cmd of ['logs', 'stop', 'kill', 'rm', 'wait']) {
      const r = await wasmbox(cmd, 'nosuch');
      expect(r.code, cmd).toBe(1);
      expect(r.stderr, cmd).toContain('No such container: nosuch');
    }
    const unknownPrefix = id[0] === 'f' ? '0000000' : 'fffffff';
    expect((await wasmbox('stop', unknownPrefix)).stderr).toContain(`No such container: ${unknownPrefix}`);
    expect(await wasmbox('stop', '-t', '1', id.slice(0, 10))).toMatchObject({ code: 0, stdout: `${id.slice(0, 10)}\n` });
  });

  it('an image that does not exist, a command that does not, -d with -i/-t: refused and no container left', async () => {
    const containers = () => (fs.existsSync(detached) ? fs.readdirSync(detached).filter((n) => n !== 'names').sort() : []);
    const names = () => (fs.existsSync(path.join(detached, 'names')) ? fs.readdirSync(path.join(detached, 'names')).sort() : []);
    const before = [containers(), names()];
    const missing = await wasmbox('run', '-d', '--name', 'ghost', 'no-such-image', 'true');
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/no-such-image/);
    expect(missing.stdout).toBe('');
    // The supervisor's failure to start it is the run's: docker's 127 for an entrypoint not found.
    const notFound = await wasmbox('run', '-d', '--name', 'ghost', 'toolbox', 'no-such-command');
    expect(notFound.code).toBe(127);
    expect(notFound.stderr).toMatch(/no-such-command/);
    const interactive = await wasmbox('run', '-d', '-i', 'toolbox', 'sh');
    expect(interactive.code).toBe(125);
    expect(interactive.stderr).toMatch(/-d cannot be combined with -i or -t/);
    expect([containers(), names()]).toEqual(before);
    expect(await psRow('ghost')).toBeUndefined();
  });

  it('a container whose supervisor was killed (SIGKILL) shows as Dead, never running', async () => {
    const id = await runDetached('--name', 'orphan', 'toolbox', 'sleep', '1000');
    const pid = supervisorPid(id);
    process.kill(pid, 'SIGKILL');
    await eventually(async () => (alive(pid) ? undefined : true), 'the supervisor ends');
    expect(await psRow('orphan', false)).toBeUndefined();
    expect(await psRow('orphan')).toMatch(/\sDead\s+orphan$/);
    expect(await wasmbox('wait', 'orphan')).toMatchObject({ code: 0, stdout: '137\n' });
    expect(await wasmbox('rm', 'orphan')).toMatchObject({ code: 0 });
  });
});

describe('detached container records', () => {
  /** A container directory as a supervisor would leave it (state.json only). */
  function record(id: string, name: string, state: Record<string, unknown>): void {
    fs.mkdirSync(path.join(detached, id), { recursive: true });
    fs.mkdirSync(path.join(detached, 'names'), { recursive: true });
    fs.symlinkSync(id, path.join(detached, 'names', name));
    const created = new Date(Date.now() - 60_000).toISOString();
    fs.writeFileSync(path.join(detached, id, 'state.json'), JSON.stringify({ id, name, image: 'toolbox', command: ['true'], created, ...state }));
  }

  it('a recorded pid that is alive but is not the supervisor is not trusted; ambiguous prefixes refused', async () => {
    // This test's own pid: alive, but its command line does not name the container's directory.
    record(`abcd1${'0'.repeat(59)}`, 'impostor', { status: 'running', supervisorPid: process.pid, started: new Date().toISOString() });
    record(`abcd2${'0'.repeat(59)}`, 'finished', { status: 'exited', exitCode: 7, supervisorPid: process.pid, finished: new Date().toISOString() });
    expect(await psRow('impostor', false)).toBeUndefined();
    expect(await psRow('impostor')).toMatch(/\sDead\s+impostor$/);
    expect(await psRow('finished')).toMatch(/Exited \(7\) /);
    const ambiguous = await wasmbox('wait', 'abcd');
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain('multiple IDs found with provided prefix: abcd');
    expect(await wasmbox('wait', 'abcd1', 'abcd2')).toMatchObject({ code: 0, stdout: '137\n7\n' });
    expect(await wasmbox('rm', 'impostor', 'finished')).toMatchObject({ code: 0, stdout: 'impostor\nfinished\n' });
    expect(alive(process.pid)).toBe(true);
    expect(await psRow('impostor')).toBeUndefined();
  });
});

describe('detached Linux containers', () => {
  let busybox = '';
  let skipReason = busyboxAvailable();

  beforeAll(async () => {
    if (skipReason) return;
    busybox = `oci:${await buildBusyboxImage(path.join(work, 'busybox'))}`;
    const probe = await createLinuxBackend({ home }).probe(await openOciDir(busybox.slice(4)));
    if (!probe.ok) skipReason = probe.reason;
    if (skipReason) console.warn(`linux detached tests skipped: ${skipReason}`);
  });

  it('logs keep stdout and stderr apart; stop ends sleep with 143', async (ctx) => {
    if (skipReason) return ctx.skip();
    const id = await runDetached('--name', 'lx', busybox, 'sh', '-c', 'echo out; echo err >&2; exec sleep 1000');
    expect(await psRow('lx', false)).toMatch(/Up .+\s+lx$/);
    await eventually(async () => {
      const r = await wasmbox('logs', 'lx');
      return r.stdout === 'out\n' && r.stderr === 'err\n' ? r : undefined;
    }, 'logs show the output');
    expect(await wasmbox('stop', 'lx')).toMatchObject({ code: 0, stdout: 'lx\n' });
    expect(await wasmbox('wait', id)).toMatchObject({ stdout: '143\n' });
  });

  it('stop of a container that ignores SIGTERM ends it with 137 after -t', async (ctx) => {
    if (skipReason) return ctx.skip();
    await runDetached('--name', 'stubborn', busybox, 'sh', '-c', "trap '' TERM; echo ready; sleep 1000");
    await eventually(async () => ((await wasmbox('logs', 'stubborn')).stdout === 'ready\n' ? true : undefined), 'the trap is set');
    expect(await wasmbox('stop', '-t', '1', 'stubborn')).toMatchObject({ code: 0, stdout: 'stubborn\n' });
    expect(await wasmbox('wait', 'stubborn')).toMatchObject({ stdout: '137\n' });
  });

  it('kill -s, rm -f, and a killed supervisor takes its container with it', async (ctx) => {
    if (skipReason) return ctx.skip();
    await runDetached('--name', 'usr', busybox, 'sleep', '1000');
    expect(await wasmbox('kill', '-s', 'USR1', 'usr')).toMatchObject({ code: 0 });
    expect(await wasmbox('wait', 'usr')).toMatchObject({ stdout: '138\n' });
    const id = await runDetached('--name', 'gone', busybox, 'sleep', '1000');
    expect(await wasmbox('rm', '-f', 'gone')).toMatchObject({ code: 0, stdout: 'gone\n' });
    expect(fs.existsSync(path.join(detached, id))).toBe(false);
    const orphan = await runDetached('--name', 'lxorphan', busybox, 'sleep', '1777');
    await eventually(async () => (sleepers('1777').length ? true : undefined), 'the container runs');
    const pid = supervisorPid(orphan);
    process.kill(pid, 'SIGKILL');
    await eventually(async () => (alive(pid) ? undefined : true), 'the supervisor ends');
    expect(await psRow('lxorphan')).toMatch(/\sDead\s+lxorphan$/);
    await eventually(async () => (sleepers('1777').length ? undefined : true), 'the container ends with its supervisor');
  });
});
