// Limits (cgroups) and escape attempts (seccomp, capabilities) against real containers.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLinuxBackend } from '../src/linux-backend/index.ts';
import { probeCgroups } from '../src/linux-backend/cgroups.ts';
import type { Backend, ContainerSpec, ExitStatus } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { busyboxAvailable, busyboxEntries, layerTar, openOciDir, tempDir, writeOciLayout } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-limits-');
const home = path.join(work, 'home');
let backend: Backend;
let image: Image;
let skipReason = busyboxAvailable();
let probeBinary: string | undefined;
const cgroups = probeCgroups();

// A static C program that tries the calls docker's profile blocks and prints "name=errno" for each.
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/personality.h>
#include <unistd.h>
static void report(const char *name, long r) { printf("%s=%d\n", name, r < 0 ? errno : 0); }
int main(void) {
  pid_t parent = getppid();
  report("ptrace_attach", syscall(SYS_ptrace, PTRACE_ATTACH, parent, 0, 0));
  report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0));
  report("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -4));
  report("bpf", syscall(SYS_bpf, 0, 0, 0));
  report("init_module", syscall(SYS_init_module, 0, 0, ""));
  report("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
  report("mount", mount("none", "/tmp", "tmpfs", 0, 0));
  report("umount2", syscall(SYS_umount2, "/proc", 0));
  report("unshare_user", unshare(CLONE_NEWUSER));
  report("unshare_net", unshare(CLONE_NEWNET));
  report("setns", syscall(SYS_setns, 0, 0));
  report("perf_event_open", syscall(SYS_perf_event_open, 0, 0, -1, -1, 0));
  report("userfaultfd", syscall(SYS_userfaultfd, 0));
  report("personality_odd", personality(0x0040000));
  report("clone_newns", syscall(SYS_clone, CLONE_NEWNS | 17, 0, 0, 0, 0));
  report("clone3", syscall(435, 0, 0));
  report("reboot", syscall(SYS_reboot, 0xfee1dead, 0x28121969, 0x4321fedc, 0));
  report("settimeofday", syscall(SYS_settimeofday, 0, 0));
  report("process_vm_readv", syscall(SYS_process_vm_readv, parent, 0, 0, 0, 0, 0));
  report("getpid", syscall(SYS_getpid));
  return 0;
}
`;

beforeAll(async () => {
  if (skipReason) return;
  const entries = busyboxEntries();
  try {
    const src = path.join(work, 'probe.c');
    fs.writeFileSync(src, PROBE_C);
    probeBinary = path.join(work, 'probe');
    execFileSync('cc', ['-static', '-O1', '-o', probeBinary, src], { stdio: 'pipe' });
    entries.push({ type: 'file', name: 'bin/probe', data: fs.readFileSync(probeBinary), mode: 0o755 });
  } catch (e) {
    probeBinary = undefined;
    console.warn(`seccomp probe not built (needs cc with static libc: apt-get install gcc libc6-dev): ${(e as Error).message.split('\n')[0]}`);
  }
  image = await openOciDir(writeOciLayout(path.join(work, 'img'), [await layerTar(entries)], { Cmd: ['sh'] }));
  backend = createLinuxBackend({ home });
  const p = await backend.probe(image);
  if (!p.ok) skipReason = p.reason;
  if (skipReason) console.warn(`linux limit tests skipped: ${skipReason}`);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const spec = (script: string, o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false,
  mounts: [], network: 'none', limits: {}, ...o,
});

async function run(s: ContainerSpec, during?: (id: string) => void): Promise<{ status: ExitStatus; stdout: string; stderr: string }> {
  const c = await backend.create(image, s);
  await c.start();
  const out = Promise.all([new Response(c.stdout).text(), new Response(c.stderr).text()]);
  if (during) during(c.id);
  const [stdout, stderr] = await out;
  return { status: await c.wait(), stdout, stderr };
}

describe('linux limits', () => {
  it('--pids-limit stops a fork bomb', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (!cgroups.pids) return ctx.skip(`no pids cgroup: ${cgroups.missingReason}`);
    // builtins only once the limit is reached: counting processes must not need a fork
    // (an inner shell forks until it fails, which ends it; the outer one then counts with builtins only)
    const r = await run(spec('sh -c "for i in \\$(seq 60); do sleep 5 & done" 2>/dev/null; set -- /proc/[0-9]*; echo $#', { limits: { pids: 16, timeoutMs: 20_000 } }));
    expect(r.status.reason).toBe('exit');
    // at most 16 tasks in the container's cgroup (bwrap's init, sh and the sleeps that could start)
    expect(Number(r.stdout.trim())).toBeLessThanOrEqual(16);
    expect(Number(r.stdout.trim())).toBeGreaterThan(3);
    // the real fork bomb, ended by the timeout at the latest
    const bomb = await run(spec('b() { b | b & }; b; sleep 2; ps | wc -l', { limits: { pids: 32, timeoutMs: 8_000 } }));
    expect(['exit', 'timeout']).toContain(bomb.status.reason);
    if (bomb.status.reason === 'exit' && bomb.stdout.trim()) expect(Number(bomb.stdout.trim())).toBeLessThanOrEqual(33);
  });

  it('-m kills a memory hog with reason oom and exit 137', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (!cgroups.memory) return ctx.skip(`no memory cgroup: ${cgroups.missingReason}`);
    // the hog is the container's main process (docker: the OOM killer picks a process, the container ends with its main one)
    const r = await run(spec('echo start; exec dd if=/dev/zero of=/dev/null bs=256M count=1', { limits: { memoryBytes: 32 << 20, timeoutMs: 30_000 } }));
    expect(r.stdout).toBe('start\n');
    expect(r.status).toMatchObject({ code: 137, reason: 'oom' });
    const ok = await run(spec('dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null; echo fine', { limits: { memoryBytes: 64 << 20 } }));
    expect(ok.stdout).toBe('fine\n');
    expect(ok.status).toEqual({ code: 0, reason: 'exit' });
  });

  it('--cpus writes a CFS quota for the container cgroup', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (cgroups.cpu !== 'v1') return ctx.skip(`no cgroup v1 cpu controller: ${cgroups.missingReason}`);
    let quota = '';
    const r = await run(spec('sleep 1; echo done', { limits: { cpus: 0.5 } }), (id) => {
      quota = fs.readFileSync(`/sys/fs/cgroup/cpu/wasmbox/${id}/cpu.cfs_quota_us`, 'utf8').trim();
    });
    expect(quota).toBe('50000');
    expect(r.stdout).toBe('done\n');
  });

  it('removes the container cgroups after exit', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (!cgroups.pids) return ctx.skip(`no pids cgroup: ${cgroups.missingReason}`);
    let id = '';
    await run(spec('true', { limits: { pids: 10 } }), (i) => { id = i; });
    const dir = cgroups.pids === 'v1' ? `/sys/fs/cgroup/pids/wasmbox/${id}` : '';
    if (dir) expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('linux escape attempts', () => {
  it('seccomp and capabilities refuse ptrace, keyctl, bpf, modules, kexec, mount, unshare, setns, ...', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (!probeBinary) return ctx.skip('no C compiler to build the probe');
    const r = await run({ ...spec(''), argv: ['/bin/probe'] });
    const res = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=')).map(([k, v]) => [k, Number(v)]));
    const EPERM = 1;
    for (const name of ['ptrace_attach', 'keyctl', 'add_key', 'bpf', 'init_module', 'kexec_load', 'mount', 'umount2', 'unshare_user', 'unshare_net', 'setns', 'perf_event_open', 'userfaultfd', 'personality_odd', 'clone_newns', 'reboot', 'settimeofday', 'process_vm_readv']) {
      expect([name, res[name]]).toEqual([name, EPERM]);
    }
    expect(res.clone3).toBe(38); // ENOSYS: libc falls back to clone, whose flags the filter sees
    expect(res.getpid).toBe(0);
  });

  it('/proc/sys and the other kernel knobs are read-only, /proc/keys and friends hidden', async (ctx) => {
    if (skipReason) return ctx.skip();
    // Writes the host's current value back: harmless even if the protection were missing.
    const aslr = fs.readFileSync('/proc/sys/kernel/randomize_va_space', 'utf8').trim();
    const r = await run(spec(`cat /proc/sys/kernel/randomize_va_space; echo ${aslr} > /proc/sys/kernel/randomize_va_space; echo sys=$?; cat /proc/keys 2>/dev/null | wc -c; ls /proc/irq >/dev/null; echo irq=$?`));
    expect(r.stdout).toBe(`${aslr}\nsys=1\n0\nirq=0\n`);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(fs.readFileSync('/proc/sys/kernel/randomize_va_space', 'utf8').trim()).toBe(aslr);
  });

  it('the host\'s device nodes in /dev work but their inodes cannot be changed, even by the container\'s root', async (ctx) => {
    if (skipReason) return ctx.skip();
    // chmod to the mode it has and touch -c: harmless to the host even if the protection were missing.
    const before = fs.statSync('/dev/null');
    const script = 'echo x > /dev/null && echo write=ok; head -c 3 /dev/zero | wc -c; for d in null zero full random urandom tty; do chmod 666 /dev/$d 2>/dev/null && echo chmod-$d; touch -c /dev/$d 2>/dev/null && echo touch-$d; chown 0 /dev/$d 2>/dev/null && echo chown-$d; done; echo done';
    const r = await run(spec(script));
    expect(r.stdout).toBe('write=ok\n3\ndone\n');
    const after = fs.statSync('/dev/null');
    expect([after.mode, after.uid, after.ctimeMs]).toEqual([before.mode, before.uid, before.ctimeMs]);
  });

  it('the same as a non-root user', async (ctx) => {
    if (skipReason) return ctx.skip();
    if (!probeBinary) return ctx.skip('no C compiler to build the probe');
    const r = await run({ ...spec(''), argv: ['/bin/probe'], user: '1000:1000' });
    for (const line of r.stdout.trim().split('\n')) {
      const [name, errno] = line.split('=');
      if (name === 'getpid') expect(errno).toBe('0');
      else expect([name, errno]).not.toEqual([name, '0']);
    }
  });
});
