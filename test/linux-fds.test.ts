// Descriptors: the container gets stdin, stdout, stderr and nothing else of its host's. bwrap hands
// every descriptor it has to the container, so one this process inherited without close-on-exec
// (here a host directory, the classic way out of a chroot) must be covered before bwrap runs.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stdioInheritable } from '../src/linux-backend/container.ts';
import { buildBusyboxImage, bundleRunner, busyboxAvailable, runnerPrelude, tempDir } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-fds-');
let skipReason = busyboxAvailable();
let runner = '';
let ociDir = '';

const RUNNER = (root: string) => `
${runnerPrelude(root)}
const out = { probe: await backend.probe(image), runs: [] };
const script = 'echo "own $(readlink /proc/self/ns/user)"; for f in /proc/self/fd/*; do echo "$f $(readlink $f)"; done; ls /proc/self/fd/30/ 2>/dev/null && echo LISTED; cat /proc/self/fd/30/secret 2>/dev/null && echo READ; echo end';
if (out.probe.ok) for (const [user, readOnlyRoot] of [[undefined, false], ['1000', true]]) {
  out.runs.push(await runToEnd(backend, image, { argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot, mounts: [], network: 'none', limits: {}, ...(user ? { user } : {}) }));
}
console.log(JSON.stringify(out));
`;

beforeAll(async () => {
  if (skipReason) return;
  ociDir = await buildBusyboxImage(path.join(work, 'img'));
  runner = await bundleRunner(work, RUNNER(path.resolve(import.meta.dirname, '..')));
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('linux container descriptors', () => {
  it('an inherited host directory descriptor does not reach the container, nor does any namespace but its own user namespace', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const secretDir = path.join(work, 'host-dir');
    fs.mkdirSync(secretDir);
    fs.writeFileSync(path.join(secretDir, 'secret'), 'host secret\n');
    {
      // the runner inherits the directory as its fd 30, without close-on-exec, as from a parent shell
      // (`30<DIR`; Node itself starts with low descriptors of its own)
      // (bash: sh may take only one-digit descriptors in redirections)
      const r = spawnSync('bash', ['-c', 'exec "$0" "$@" 30<"$WASMBOX_TEST_DIR"', process.execPath, runner, ociDir, path.join(work, 'home')], {
        stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000, env: { ...process.env, WASMBOX_TEST_DIR: secretDir },
      });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { probe: { ok: boolean; reason?: string }; runs: Array<{ stdout: string; stderr: string; status: { code: number } }> };
      if (!out.probe.ok) return ctx.skip(`linux backend unavailable: ${out.probe.reason}`);
      expect(out.runs).toHaveLength(2);
      for (const run of out.runs) {
        expect(run.status.code, run.stderr).toBe(0);
        expect(run.stdout).not.toContain('host secret');
        expect(run.stdout).not.toMatch(/LISTED|READ/);
        expect(run.stdout).not.toContain(secretDir);
        // no namespace handle either, but the container's own user namespace (as /proc/self/ns/user opens it)
        const own = /^own (user:\[\d+\])$/m.exec(run.stdout)?.[1];
        const handles = run.stdout.split('\n').filter((l) => l.startsWith('/proc/self/fd/')).map((l) => l.split(' ')[1]).filter((t) => /^[a-z_]+:\[/.test(t ?? '') && !/^(pipe|socket):/.test(t!));
        expect(handles.filter((t) => t !== own)).toEqual([]);
        expect(run.stdout.trim().split('\n').at(-1)).toBe('end');
      }
    }
  });
});

describe('stdioInheritable', () => {
  it('hands over /dev/null (and pipes, sockets) only: never a regular file or another device', () => {
    const opened: number[] = [];
    const open = (p: string, flags = 'r') => { const fd = fs.openSync(p, flags); opened.push(fd); return fd; };
    try {
      expect(stdioInheritable([open('/dev/null', 'w')])).toBe(true);
      expect(stdioInheritable([open('/dev/zero')])).toBe(false);
      const file = path.join(tempDir('wasmbox-stdio-'), 'out');
      expect(stdioInheritable([open(file, 'w')])).toBe(false);
      expect(stdioInheritable([open('/dev/null', 'w'), open(file, 'a')])).toBe(false); // all or nothing
      expect(stdioInheritable([1_000_000])).toBe(false); // not open
      // (pipes and sockets: the CLI test gives a container its caller's pipe)
    } finally {
      for (const fd of opened) fs.closeSync(fd);
    }
  });
});
