import { CommanderError } from 'commander';
import { createProgram } from './program.ts';
import { ExitCode, reportError } from './exit-codes.ts';

/**
 * Runs one command line (without the node and script arguments); resolves to the exit status. `command`:
 * the command word bin/wasmbox.cjs found in it (only that command is built).
 */
export async function main(argv: string[], command?: string): Promise<number> {
  const program = createProgram(command);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version "fail" with status 0; every usage error is a wasmbox failure (125), as in docker.
      if (e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed') return ExitCode.ok;
      return ExitCode.failed;
    }
    return reportError(e);
  }
}

