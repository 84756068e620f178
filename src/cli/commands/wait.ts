import type { Command } from 'commander';
import { SandboxError } from '../../errors.ts';
import { forEachContainer, rootFor } from '../detached/cli.ts';
import { exitCodeOf, registerWaiter, waitUntilStopped } from '../detached/state.ts';

export function register(program: Command): void {
  program
    .command('wait')
    .description('Wait until detached containers exit, and print their exit codes')
    .argument('<containers...>', 'names, IDs or unique ID prefixes')
    .action(async (refs: string[], _flags: unknown, cmd: Command) => {
      process.exitCode = await forEachContainer(await rootFor(cmd), refs, async (c, ref) => {
        // A --rm container removes itself once it exits, after the waiters registered read its code.
        const release = c.state.autoRemove ? registerWaiter(c) : undefined;
        const after = await waitUntilStopped(c).finally(() => release?.());
        if (!after) throw new SandboxError('NOT_FOUND', `No such container: ${ref} (removed as it exited)`);
        return String(exitCodeOf(after));
      });
    });
}
