import type { Command } from 'commander';
import { rootFor } from '../detached/cli.ts';
import { listContainers, phaseOf, exitCodeOf, type DetachedContainer } from '../detached/state.ts';

export function register(program: Command): void {
  program
    .command('ps')
    .description('List detached containers (run -d)')
    .option('-a, --all', 'show all containers (default: running ones)')
    .option('-q, --quiet', 'only display container IDs')
    .option('--no-trunc', 'do not truncate IDs and commands')
    .action(async (flags: { all?: boolean; quiet?: boolean; trunc: boolean }, cmd: Command) => {
      const now = Date.now();
      const shown = listContainers(await rootFor(cmd)).filter((c) => flags.all || isUp(c));
      if (flags.quiet) {
        for (const c of shown) process.stdout.write(`${flags.trunc ? c.state.id.slice(0, 12) : c.state.id}\n`);
        return;
      }
      const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
      for (const c of shown) {
        rows.push([
          flags.trunc ? c.state.id.slice(0, 12) : c.state.id,
          c.state.image,
          commandColumn(c.state.command, flags.trunc),
          `${humanDuration(now - Date.parse(c.state.created))} ago`,
          statusColumn(c, now),
          c.state.name,
        ]);
      }
      process.stdout.write(table(rows));
    });
}

function isUp(c: DetachedContainer): boolean {
  const phase = phaseOf(c);
  return phase === 'running' || phase === 'created';
}

/** docker's STATUS: "Up 3 seconds", "Exited (0) 2 seconds ago", "Created", "Dead". */
export function statusColumn(c: DetachedContainer, now: number): string {
  const s = c.state;
  switch (phaseOf(c)) {
    case 'created': return 'Created';
    case 'running': return `Up ${humanDuration(now - Date.parse(s.started ?? s.created))}`;
    case 'dead': return 'Dead';
    case 'exited': return `Exited (${exitCodeOf(c)}) ${humanDuration(now - Date.parse(s.finished ?? s.created))} ago`;
  }
}

/** docker's COMMAND: the command quoted, cut to 20 characters with an ellipsis. */
function commandColumn(command: string[], trunc: boolean): string {
  const text = command.join(' ');
  return `"${trunc && text.length > 20 ? `${text.slice(0, 19)}…` : text}"`;
}

/** docker's (go-units) HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(seconds / 3600);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** Columns padded to their widest cell plus three spaces, as docker's tabwriter does. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length + 3))).join('')).join('\n') + '\n';
}
