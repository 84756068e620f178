// The seccomp program generator: numbers checked against the kernel headers, decisions by an interpreter.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSeccomp, defaultSeccompPolicy, encodeSeccomp, evaluateSeccomp, DEFAULT_DENY, CLONE_NAMESPACE_FLAGS } from '../src/linux-backend/seccomp.ts';
import { AUDIT_ARCH, SYSCALLS, type SeccompArch } from '../src/linux-backend/syscalls.ts';

const HEADERS: Record<SeccompArch, { file: string; re: RegExp }> = {
  x86_64: { file: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h', re: /^#define __NR_(\w+)\s+(\d+)/gm },
  aarch64: { file: '/usr/include/asm-generic/unistd.h', re: /^#define __NR(?:3264)?_(\w+)\s+(\d+)/gm },
};

describe('seccomp syscall tables', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    it(`match the kernel headers for ${arch}`, (ctx) => {
      const { file, re } = HEADERS[arch];
      if (!fs.existsSync(file)) return ctx.skip(`${file} missing (apt-get install linux-libc-dev)`);
      const text = fs.readFileSync(file, 'utf8');
      const fromHeaders = new Map([...text.matchAll(re)].map((m) => [m[1]!, Number(m[2])]));
      const table = SYSCALLS[arch];
      expect(Object.keys(table).length).toBeGreaterThan(40);
      for (const [name, nr] of Object.entries(table)) {
        expect([name, fromHeaders.get(name)]).toEqual([name, nr]);
      }
    });
  }
});

describe('seccomp program', () => {
  for (const arch of ['x86_64', 'aarch64'] as const) {
    const prog = compileSeccomp(defaultSeccompPolicy(arch));
    const table = SYSCALLS[arch];
    const call = (nr: number, args: number[] = [], a = AUDIT_ARCH[arch]) => evaluateSeccomp(prog, { arch: a, nr, args });

    it(`${arch}: denies docker's dangerous calls with EPERM`, () => {
      let checked = 0;
      for (const name of DEFAULT_DENY) {
        const nr = table[name];
        if (nr === undefined) continue;
        expect([name, call(nr)]).toEqual([name, { action: 'errno', errno: 1 }]);
        checked++;
      }
      expect(checked).toBeGreaterThan(40);
      for (const name of ['ptrace', 'keyctl', 'bpf', 'mount', 'unshare', 'setns', 'init_module', 'kexec_load'] as const) {
        expect(call(table[name]!)).toEqual({ action: 'errno', errno: 1 });
      }
    });

    it(`${arch}: allows ordinary calls`, () => {
      const allowed = arch === 'x86_64' ? [0, 1, 2, 3, 9, 57, 59, 60, 231, 257] : [56, 57, 63, 64, 93, 94, 221, 222];
      for (const nr of allowed) expect(call(nr)).toEqual({ action: 'allow' });
    });

    it(`${arch}: clone with namespace flags is refused, threads and forks are not; clone3 says ENOSYS`, () => {
      const clone = table.clone!;
      expect(call(clone, [0x10000000])).toEqual({ action: 'errno', errno: 1 }); // CLONE_NEWUSER
      expect(call(clone, [0x20000000 | 0x11])).toEqual({ action: 'errno', errno: 1 }); // CLONE_NEWPID|SIGCHLD
      expect(call(clone, [0x00020000])).toEqual({ action: 'errno', errno: 1 }); // CLONE_NEWNS
      expect(call(clone, [0x11])).toEqual({ action: 'allow' }); // fork: SIGCHLD
      expect(call(clone, [0x003d0f00])).toEqual({ action: 'allow' }); // pthread_create's flags
      expect(CLONE_NAMESPACE_FLAGS & 0x003d0f00).toBe(0);
      expect(call(table.clone3!)).toEqual({ action: 'errno', errno: 38 });
    });

    it(`${arch}: personality only with docker's allowed values`, () => {
      const p = table.personality!;
      for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) expect(call(p, [v])).toEqual({ action: 'allow' });
      expect(call(p, [0x0040000])).toEqual({ action: 'errno', errno: 1 }); // ADDR_NO_RANDOMIZE
      expect(call(p, [0x0400000])).toEqual({ action: 'errno', errno: 1 }); // READ_IMPLIES_EXEC
    });

    it(`${arch}: another ABI is killed`, () => {
      expect(call(0, [], 0x40000003)).toEqual({ action: 'kill' }); // i386
      expect(call(0, [], 0x40000028)).toEqual({ action: 'kill' }); // arm
    });
  }

  it('x86_64: x32 syscalls are refused', () => {
    const prog = compileSeccomp(defaultSeccompPolicy('x86_64'));
    expect(evaluateSeccomp(prog, { arch: AUDIT_ARCH.x86_64, nr: 0x40000000 + 1 })).toEqual({ action: 'errno', errno: 38 });
  });

  it('encodes struct sock_filter little-endian, 8 bytes each', () => {
    const prog = compileSeccomp(defaultSeccompPolicy('x86_64'));
    const bytes = encodeSeccomp(prog);
    expect(bytes.length).toBe(prog.length * 8);
    const v = new DataView(bytes.buffer);
    expect(v.getUint16(0, true)).toBe(0x20); // BPF_LD|BPF_W|BPF_ABS
    expect(v.getUint32(4, true)).toBe(4); // offsetof(struct seccomp_data, arch)
    expect(v.getUint32(8 + 4, true)).toBe(AUDIT_ARCH.x86_64);
    const last = prog.length - 1;
    expect(v.getUint16(last * 8, true)).toBe(0x06);
    expect(v.getUint32(last * 8 + 4, true)).toBe(0x7fff0000);
  });
});
