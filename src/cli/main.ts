import { CommanderError } from 'commander';
import { codePathOf, createProgram, storesSettled } from './program.ts';
import { ExitCode, reportError } from './exit-codes.ts';

/**
 * Runs one command line (without the node and script arguments); resolves to the exit status. `command`:
 * the command word bin/wasmbox.cjs found in it (only that command is built). `report.codePath` is set to
 * the way the command went (`run:linux`...), which bin/wasmbox.cjs keeps its code cache by.
 */
export async function main(argv: string[], command?: string, report: { codePath?: string } = {}): Promise<number> {
  const program = createProgram(command);
  let code: number;
  try {
    await program.parseAsync(argv, { from: 'user' });
    code = typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version "fail" with status 0; every usage error is a wasmbox failure (125), as in docker.
      code = e.exitCode === 0 || e.code === 'commander.help' || e.code === 'commander.helpDisplayed' ? ExitCode.ok : ExitCode.failed;
    } else {
      code = reportError(e);
    }
  }
  // A new store's layout, written while the command ran, is on disk before the process ends (the CLI
  // exits without waiting for anything else), whether the command succeeded or not.
  try {
    await storesSettled(program);
  } catch (e) {
    if (code === ExitCode.ok) code = reportError(e);
  }
  const path = codePathOf(program);
  if (path !== undefined) report.codePath = path;
  return code;
}
