// `wasmbox run` of real Linux images through the CLI (bin/wasmbox.cjs -> dist/cli.cjs).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import { buildBusyboxImage, buildLayeredImage, busyboxAvailable, openOciDir, tempDir } from './helpers/linux-images.ts';

const root = path.resolve(import.meta.dirname, '..');
const work = tempDir('wasmbox-linux-cli-');
const home = path.join(work, 'home');
let busybox = '';
let layered = '';
let skipReason = busyboxAvailable();

beforeAll(async () => {
  if (skipReason) return;
  busybox = await buildBusyboxImage(path.join(work, 'busybox'));
  layered = await buildLayeredImage(path.join(work, 'layered'));
  const probe = await createLinuxBackend({ home }).probe(await openOciDir(busybox));
  if (!probe.ok) skipReason = probe.reason;
  if (!skipReason && !fs.existsSync(path.join(root, 'dist', 'cli.cjs'))) {
    const b = spawnSync(process.execPath, ['build.mjs'], { cwd: root, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`node build.mjs failed: ${b.stderr}`);
  }
  if (skipReason) console.warn(`linux CLI tests skipped: ${skipReason}`);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function wasmbox(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'wasmbox.cjs'), '--home', home, ...args], {
    encoding: 'utf8', input: input ?? '', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('wasmbox run (linux images)', () => {
  it('prints the output and passes the exit code through', (ctx) => {
    if (skipReason) return ctx.skip();
    expect(wasmbox(['run', `oci:${busybox}`, 'echo', 'hello', 'world'])).toMatchObject({ code: 0, stdout: 'hello world\n' });
    expect(wasmbox(['run', `oci:${busybox}`, 'sh', '-c', 'echo err >&2; exit 42'])).toMatchObject({ code: 42, stderr: 'err\n' });
  });

  it('a container writes to our stdout itself when it is a pipe or socket, never when it is a file; nothing is left behind', (ctx) => {
    if (skipReason) return ctx.skip();
    const script = 'readlink /proc/self/fd/1; readlink /proc/self/fd/2; seq 1 50000 | tail -1';
    // A shell pipeline gives the CLI a pipe: the container gets it as its own (wasmbox's own stdio pipes
    // for a container are socket pairs, so a pipe here can only be the caller's).
    const cli = [process.execPath, path.join(root, 'bin', 'wasmbox.cjs'), '--home', home, 'run', `oci:${busybox}`, 'sh', '-c', script]
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const piped = spawnSync('sh', ['-c', `${cli} 2>&1 | cat`], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
    expect(piped.status).toBe(0);
    expect(piped.stdout).toMatch(/^pipe:\[(\d+)\]\npipe:\[\1\]\n50000\n$/);
    // A regular file (it could be reopened whole through /proc/self/fd) is written by us from a pipe of ours.
    const out = path.join(work, 'out.txt');
    const fd = fs.openSync(out, 'w');
    try {
      const r = spawnSync(process.execPath, [path.join(root, 'bin', 'wasmbox.cjs'), '--home', home, 'run', `oci:${busybox}`, 'sh', '-c', script], {
        stdio: ['ignore', fd, 'pipe'], timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work },
      });
      expect(r.status).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    expect(lines[0]).toMatch(/^socket:/); // a socket pair of the CLI's, not the file
    expect(lines[1]).not.toBe(lines[0]);
    expect(lines.slice(2)).toEqual(['50000', '']);
    // The process exits without waiting for the root's unmount or the directories' removal, which the
    // namespace helper does once it is gone: they are gone a moment later all the same.
    const left = () => ['containers', 'kept'].flatMap((d) => {
      const dir = path.join(home, 'linux', d);
      return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    });
    for (const deadline = Date.now() + 20_000; left().length > 0 && Date.now() < deadline;) spawnSync('sleep', ['0.05']);
    expect(left()).toEqual([]);
  });

  it('127 for a missing command, 126 for one that cannot run', (ctx) => {
    if (skipReason) return ctx.skip();
    const missing = wasmbox(['run', `oci:${busybox}`, 'no-such-tool']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/no-such-tool.*not found/);
    expect(wasmbox(['run', `oci:${busybox}`, '/etc/passwd']).code).toBe(126);
  });

  it('-i passes stdin; -e, -w, -u, --hostname set the process', (ctx) => {
    if (skipReason) return ctx.skip();
    expect(wasmbox(['run', '-i', `oci:${busybox}`, 'sh', '-c', 'tr a-z A-Z'], 'piped in\n').stdout).toBe('PIPED IN\n');
    const r = wasmbox(['run', '-e', 'GREETING=hey', '-w', '/home/app', '-u', 'app', '--hostname', 'clibox', `oci:${busybox}`, 'sh', '-c', 'echo $GREETING; pwd; id -u; hostname']);
    expect(r).toMatchObject({ code: 0, stdout: 'hey\n/home/app\n1000\nclibox\n' });
  });

  it('-v binds host directories rw and :ro', (ctx) => {
    if (skipReason) return ctx.skip();
    const rw = path.join(work, 'rw');
    const ro = path.join(work, 'ro');
    fs.mkdirSync(rw, { recursive: true });
    fs.mkdirSync(ro, { recursive: true });
    fs.writeFileSync(path.join(ro, 'in'), 'host data\n');
    const r = wasmbox(['run', '-v', `${rw}:/out`, '-v', `${ro}:/in:ro`, `oci:${busybox}`, 'sh', '-c', 'cat /in/in > /out/copy; touch /in/x']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(fs.readFileSync(path.join(rw, 'copy'), 'utf8')).toBe('host data\n');
    expect(fs.existsSync(path.join(ro, 'x'))).toBe(false);
  });

  it('the layered image as the container sees it, and --read-only', (ctx) => {
    if (skipReason) return ctx.skip();
    const r = wasmbox(['run', '--read-only', `oci:${layered}`, 'sh', '-c', 'pwd; ls /data /opaque; cat /data/keep.txt; touch /data/x']);
    expect(r.stdout).toBe('/data\n/data:\nkeep.txt\n\n/opaque:\nnew\nv2\n');
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('no host network, no host files, pid namespace', (ctx) => {
    if (skipReason) return ctx.skip();
    const r = wasmbox(['run', `oci:${busybox}`, 'sh', '-c', 'ip -o link | cut -d: -f2 | tr -d " "; test -e /usr/bin/node || echo no-node; echo $$']);
    expect(r.stdout).toBe('lo\nno-node\n2\n');
  });

  it('--timeout ends with 124, -m with 137', (ctx) => {
    if (skipReason) return ctx.skip();
    expect(wasmbox(['run', '--timeout', '300ms', `oci:${busybox}`, 'sh', '-c', 'while :; do :; done']).code).toBe(124);
    const oom = wasmbox(['run', '-m', '32m', `oci:${busybox}`, 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=256M', 'count=1']);
    if (oom.stderr.includes('cannot enforce')) return ctx.skip(oom.stderr.trim());
    expect(oom.code).toBe(137);
  });

  it('--pids-limit and --cpus reach the cgroup', (ctx) => {
    if (skipReason) return ctx.skip();
    // With 8 pids the shell cannot start 20 background sleeps: some forks fail.
    const r = wasmbox(['run', '--pids-limit', '8', '--timeout', '20s', `oci:${busybox}`, 'sh', '-c',
      'n=0; for i in $(seq 20); do sleep 3 & n=$((n+1)); done 2>/dev/null; set -- /proc/[0-9]*; echo $#']);
    if (r.stderr.includes('cannot enforce')) return ctx.skip(r.stderr.trim());
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(8);
    const cpu = wasmbox(['run', '--cpus', '0.5', `oci:${busybox}`, 'true']);
    if (cpu.stderr.includes('cannot enforce')) return ctx.skip(cpu.stderr.trim());
    expect(cpu.code).toBe(0);
    expect(wasmbox(['run', '--cpus', 'lots', `oci:${busybox}`, 'true']).code).toBe(125);
  });
});
