import type { Command } from 'commander';
import { SandboxError } from '../../errors.ts';
import { forEachContainer, rootFor } from '../detached/cli.ts';
import { phaseOf, readState, removeContainer } from '../detached/state.ts';
import { stopContainer } from './stop.ts';

export function register(program: Command): void {
  program
    .command('rm')
    .description('Remove detached containers (a running one only with -f, which kills it)')
    .argument('<containers...>', 'names, IDs or unique ID prefixes')
    .option('-f, --force', 'kill a running container (SIGKILL) and remove it')
    .action(async (refs: string[], flags: { force?: boolean }, cmd: Command) => {
      const root = await rootFor(cmd);
      process.exitCode = await forEachContainer(root, refs, async (c, ref) => {
        const phase = phaseOf(c);
        if (phase === 'running' || phase === 'created') {
          if (!flags.force) {
            throw new SandboxError('INVALID_STATE', `cannot remove container "${ref}": container is running: stop the container before removing or force remove`);
          }
          await stopContainer(c, 0, 'SIGKILL');
        }
        removeContainer(root, { dir: c.dir, state: readState(c.dir) ?? c.state });
        return ref;
      });
    });
}
