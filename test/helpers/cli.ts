// What the CLI tests share: the built CLI and a snapshot of a directory to check "nothing written".
import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const cliBin = join(repoRoot, 'bin/wasmbox.cjs');

/** Builds dist/ unless it is newer than every source file (npm test builds first anyway). */
export function ensureBuilt(): void {
  const cli = join(repoRoot, 'dist/cli.cjs');
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest(join(repoRoot, 'src'))) {
    execFileSync(process.execPath, ['build.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  }
}

/** Every file under `dir` with its content hash, sorted: a directory's observable state. */
export function dirListing(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string): void => {
    for (const name of readdirSync(p).sort()) {
      const full = join(p, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(full).isDirectory()) {
        out.push(`${r}/`);
        walk(full, r);
      } else out.push(`${r} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
    }
  };
  walk(dir, '');
  return out;
}

/** What a CLI process left: its exit status, stdout and stderr. */
export interface CliResult { code: number | null; stdout: string; stderr: string }

/**
 * Runs the CLI (bin/wasmbox.cjs) as a child process, without blocking this one (spawnSync would hold up
 * a server or client this process runs for the container while the CLI waits for it). `input` is written
 * to its stdin, which is otherwise closed at once.
 */
export function runCli(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'], ...(o.timeout ? { timeout: o.timeout } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => { /* it exited before reading */ });
    child.stdin.end(o.input ?? '');
  });
}

/** `wasmbox --home HOME ...args` (see runCli), its exit status as `status`. */
export async function cliAsync(home: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const r = await runCli(['--home', home, ...args]);
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}
