// The Linux backend run by an unprivileged user (nobody): user namespaces instead of root.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage, bundleRunner, busyboxAvailable, runnerPrelude, tempDir } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-nobody-');
let skipReason = busyboxAvailable();
let runner = '';
let ociDir = '';

const RUNNER = (root: string) => `
${runnerPrelude(root)}
const spec = (script, o = {}) => ({ argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o });
const out = { probe: await backend.probe(image), runs: [] };
async function run(s) {
  try {
    return await runToEnd(backend, image, s);
  } catch (e) {
    return { error: { code: e.code, message: e.message } };
  }
}
if (out.probe.ok) {
  out.runs.push(await run(spec('id -u; hostname; echo written > /etc/new && cat /etc/new; set -- /proc/[0-9]*; echo $#; grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status | tr -d "\\t"', { hostname: 'nobodybox' })));
  out.runs.push(await run(spec('touch /etc/x', { readOnlyRoot: true })));
  out.runs.push(await run(spec('true', { limits: { pids: 5 } })));
  out.runs.push(await run(spec('mount -t tmpfs x /mnt; unshare -U true; echo rc=$?')));
}
console.log(JSON.stringify(out));
`;

beforeAll(async () => {
  if (skipReason) return;
  if (process.getuid?.() !== 0) {
    skipReason = 'the test switches to nobody, which needs root to start';
    return;
  }
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
  } catch {
    skipReason = 'setpriv (util-linux) is missing';
    return;
  }
  fs.chmodSync(work, 0o755);
  ociDir = await buildBusyboxImage(path.join(work, 'img'));
  execFileSync('chmod', ['-R', 'a+rX', ociDir]);
  runner = await bundleRunner(work, RUNNER(path.resolve(import.meta.dirname, '..')), { uid: 65534, gid: 65534 });
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('linux backend as an unprivileged user', () => {
  it('runs containers as nobody through user namespaces, refuses cgroup limits it cannot enforce', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, runner, ociDir, path.join(work, 'home')], {
      encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: path.join(work, 'home') }, timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { probe: { ok: boolean; reason?: string }; runs: Array<{ stdout?: string; status?: { code: number }; error?: { code: string; message: string } }> };
    if (!out.probe.ok) {
      // The only acceptable reason: this kernel does not give unprivileged users namespaces.
      expect(out.probe.reason).toMatch(/user namespaces|overlayfs/);
      return ctx.skip(`unprivileged containers unavailable here: ${out.probe.reason}`);
    }
    const [basic, readOnly, limited, blocked] = out.runs;
    expect(basic!.stdout!.split('\n').slice(0, 3)).toEqual(['0', 'nobodybox', 'written']);
    expect(Number(basic!.stdout!.split('\n')[3])).toBeLessThanOrEqual(3);
    expect(basic!.stdout).toContain('NoNewPrivs:1');
    expect(basic!.stdout).toContain('Seccomp:2');
    expect(basic!.status).toEqual({ code: 0, reason: 'exit' });
    expect(readOnly!.status!.code).not.toBe(0);
    expect(limited!.error?.code).toBe('BACKEND_UNAVAILABLE');
    expect(limited!.error?.message).toMatch(/cannot enforce the pids/);
    expect(blocked!.stdout).toContain('rc=1');
    // nothing left behind that nobody could not remove
    expect(fs.readdirSync(path.join(work, 'home', 'linux', 'containers'))).toEqual([]);
  });
});
