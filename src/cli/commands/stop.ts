import { constants } from 'node:os';
import type { Command } from 'commander';
import { SandboxError } from '../../errors.ts';
import { forEachContainer, rootFor } from '../detached/cli.ts';
import { phaseOf, requestSignal, signalName, supervisorAlive, waitUntilStopped, type DetachedContainer } from '../detached/state.ts';

/** How long past its grace period a supervisor may take to record the exit before it is killed itself. */
const SUPERVISOR_SLACK_MS = 10_000;

export function register(program: Command): void {
  program
    .command('stop')
    .description('Stop detached containers: SIGTERM, then SIGKILL after the grace period')
    .argument('<containers...>', 'names, IDs or unique ID prefixes')
    .option('-t, --time <seconds>', 'seconds to wait before killing the container', '10')
    .action(async (refs: string[], flags: { time: string }, cmd: Command) => {
      const seconds = Number(flags.time);
      if (flags.time.trim() === '' || !Number.isInteger(seconds) || seconds < 0) {
        process.stderr.write(`wasmbox: invalid -t '${flags.time}': expected a whole number of seconds\n`);
        process.exitCode = 125;
        return;
      }
      process.exitCode = await forEachContainer(await rootFor(cmd), refs, async (c, ref) => {
        await stopContainer(c, seconds * 1000);
        return ref;
      });
    });
  program
    .command('kill')
    .description('Send a signal to detached containers (default SIGKILL)')
    .argument('<containers...>', 'names, IDs or unique ID prefixes')
    .option('-s, --signal <signal>', 'signal to send (name or number)', 'KILL')
    .action(async (refs: string[], flags: { signal: string }, cmd: Command) => {
      let signal: string;
      try {
        signal = signalName(flags.signal, constants.signals as Record<string, number>);
      } catch (e) {
        process.stderr.write(`wasmbox: ${(e as Error).message}\n`);
        process.exitCode = 125;
        return;
      }
      process.exitCode = await forEachContainer(await rootFor(cmd), refs, async (c, ref) => {
        if (!isRunning(c) || !requestSignal(c, { signal })) {
          throw new SandboxError('INVALID_STATE', `cannot kill container: ${ref}: container ${c.state.id} is not running`);
        }
        return ref;
      });
    });
}

function isRunning(c: DetachedContainer): boolean {
  const phase = phaseOf(c);
  return phase === 'running' || phase === 'created';
}

/**
 * docker's stop: SIGTERM, SIGKILL once `graceMs` passed (the supervisor does both), and back once the exit
 * is recorded. A supervisor that records nothing long after that is killed itself (the container shows Dead).
 */
export async function stopContainer(c: DetachedContainer, graceMs: number, signal = 'SIGTERM'): Promise<void> {
  if (!isRunning(c)) return;
  requestSignal(c, signal === 'SIGKILL' ? { signal } : { signal, killAfterMs: graceMs });
  const after = await waitUntilStopped(c, graceMs + SUPERVISOR_SLACK_MS);
  if (after && isRunning(after) && after.state.supervisorPid !== undefined && supervisorAlive(after.state.supervisorPid, c.dir)) {
    try { process.kill(after.state.supervisorPid, 'SIGKILL'); } catch { /* gone */ }
    await waitUntilStopped(after);
  }
}
