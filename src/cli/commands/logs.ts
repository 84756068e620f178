import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { toSandboxError } from '../../errors.ts';
import { rootFor } from '../detached/cli.ts';
import { phaseOf, readState, resolveContainer } from '../detached/state.ts';
import { writeAllSync } from '../write-all.ts';

export function register(program: Command): void {
  program
    .command('logs')
    .description('Print the output of a detached container (its stdout on stdout, its stderr on stderr)')
    .argument('<container>', 'name, ID or unique ID prefix')
    .option('-f, --follow', 'follow the output until the container exits')
    .action(async (ref: string, flags: { follow?: boolean }, cmd: Command) => {
      try {
        const c = resolveContainer(await rootFor(cmd), ref);
        const out = new LogFile(join(c.dir, 'stdout.log'), 1);
        const err = new LogFile(join(c.dir, 'stderr.log'), 2);
        for (;;) {
          const state = readState(c.dir);
          const done = !flags.follow || !state || phaseOf({ dir: c.dir, state }) === 'exited' || phaseOf({ dir: c.dir, state }) === 'dead';
          // What was written before the exit was recorded is all there: one last read takes it.
          const moved = out.copyNew() + err.copyNew();
          if (done) break;
          if (moved === 0) await new Promise((r) => setTimeout(r, 100));
        }
        out.close();
        err.close();
      } catch (e) {
        process.stderr.write(`wasmbox: ${toSandboxError(e).message}\n`);
        process.exitCode = 1;
      }
    });
}

/** A log file read from where the last read stopped, copied to a descriptor of ours. */
class LogFile {
  #fd: number | undefined;
  #offset = 0;
  readonly #buf = Buffer.alloc(64 * 1024);

  constructor(readonly path: string, readonly to: number) {}

  copyNew(): number {
    if (this.#fd === undefined) {
      try {
        this.#fd = fs.openSync(this.path, 'r');
      } catch {
        return 0; // not made yet (or removed with the container)
      }
    }
    let total = 0;
    for (;;) {
      const n = fs.readSync(this.#fd, this.#buf, 0, this.#buf.length, this.#offset);
      if (n === 0) return total;
      this.#offset += n;
      total += n;
      writeAllSync(this.to, this.#buf.subarray(0, n));
    }
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
  }
}

