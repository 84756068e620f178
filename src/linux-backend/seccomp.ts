/**
 * A classic-BPF seccomp program (struct sock_filter[], what bwrap --seccomp reads from a file
 * descriptor), generated from data: an architecture check, a deny list drawn from docker's default
 * profile, and argument checks for clone and personality. Everything not listed is allowed.
 */
import { AUDIT_ARCH, SYSCALLS, type SeccompArch, type SyscallName } from './syscalls.ts';

const EPERM = 1;
const ENOSYS = 38;

// linux/filter.h and linux/seccomp.h
const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;
const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const RET_ALLOW = 0x7fff0000;

// struct seccomp_data offsets
const OFF_NR = 0;
const OFF_ARCH = 4;
const offArgLow = (i: number): number => 16 + 8 * i; // little-endian: the low 32 bits come first

/** clone flags that create namespaces (docker blocks them without CAP_SYS_ADMIN). */
export const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** x32 ABI syscalls on x86_64 carry this bit; the filter refuses them. */
const X32_SYSCALL_BIT = 0x40000000;

/** Docker's default profile lets personality() through only for these values. */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

export interface SeccompPolicy {
  arch: SeccompArch;
  /** Calls that fail with the given errno. */
  deny: Array<{ name: SyscallName; errno: number }>;
  /** clone() with any of these flag bits fails with EPERM. */
  cloneDenyFlags: number;
  /** personality() with any other argument fails with EPERM. */
  personalityAllow: number[];
}

/** What docker's default profile blocks among the dangerous calls, for a container without extra capabilities. */
export const DEFAULT_DENY: readonly SyscallName[] = [
  'init_module', 'finit_module', 'delete_module', 'create_module', 'get_kernel_syms', 'query_module',
  'kexec_load', 'kexec_file_load', 'bpf', 'keyctl', 'add_key', 'request_key',
  'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd',
  'mount', 'umount2', 'pivot_root', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount', 'fspick',
  'mount_setattr', 'unshare', 'setns',
  'reboot', 'swapon', 'swapoff', 'acct', 'settimeofday', 'clock_settime', 'adjtimex', 'clock_adjtime',
  'open_by_handle_at', 'name_to_handle_at', 'userfaultfd', 'perf_event_open', 'fanotify_init',
  'quotactl', 'quotactl_fd', 'lookup_dcookie', 'iopl', 'ioperm', 'syslog', 'nfsservctl', 'uselib',
  'ustat', 'sysfs', '_sysctl', 'vhangup', 'mbind', 'set_mempolicy', 'get_mempolicy', 'migrate_pages',
  'move_pages', 'io_uring_setup', 'io_uring_enter', 'io_uring_register',
];

export function defaultSeccompPolicy(arch: SeccompArch): SeccompPolicy {
  return {
    arch,
    // clone3 answers ENOSYS so that libc falls back to clone(), whose flags the filter can see.
    deny: [...DEFAULT_DENY.map((name) => ({ name, errno: EPERM })), { name: 'clone3', errno: ENOSYS }],
    cloneDenyFlags: CLONE_NAMESPACE_FLAGS,
    personalityAllow: ALLOWED_PERSONALITIES,
  };
}

interface Insn { code: number; jt: number; jf: number; k: number }
const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k });

/** Compiles a policy into the instructions of a seccomp program. */
export function compileSeccomp(policy: SeccompPolicy): Insn[] {
  const table = SYSCALLS[policy.arch];
  const out: Insn[] = [];
  out.push(stmt(BPF_LD_W_ABS, OFF_ARCH));
  // Any other ABI (i386 or x32 on x86_64, arm32 compat on aarch64) is refused outright: the deny list
  // only names the native numbers.
  out.push(jump(BPF_JEQ_K, AUDIT_ARCH[policy.arch], 1, 0));
  out.push(stmt(BPF_RET_K, RET_KILL_PROCESS));
  out.push(stmt(BPF_LD_W_ABS, OFF_NR));
  if (policy.arch === 'x86_64') {
    out.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
    out.push(stmt(BPF_RET_K, RET_ERRNO | ENOSYS));
  }
  const seen = new Set<number>();
  for (const { name, errno } of policy.deny) {
    const nr = table[name];
    if (nr === undefined || seen.has(nr)) continue; // not present on this architecture
    seen.add(nr);
    out.push(jump(BPF_JEQ_K, nr, 0, 1));
    out.push(stmt(BPF_RET_K, RET_ERRNO | (errno & 0xffff)));
  }
  const clone = table.clone;
  if (clone !== undefined && policy.cloneDenyFlags !== 0) {
    // if (nr == clone) { A = args[0]; if (A & flags) return EPERM; return ALLOW }
    out.push(jump(BPF_JEQ_K, clone, 0, 4));
    out.push(stmt(BPF_LD_W_ABS, offArgLow(0)));
    out.push(jump(BPF_JSET_K, policy.cloneDenyFlags, 0, 1));
    out.push(stmt(BPF_RET_K, RET_ERRNO | EPERM));
    out.push(stmt(BPF_RET_K, RET_ALLOW));
  }
  const personality = table.personality;
  if (personality !== undefined) {
    const allowed = policy.personalityAllow;
    // if (nr == personality) { A = args[0]; if (A in allowed) return ALLOW; return EPERM }
    out.push(jump(BPF_JEQ_K, personality, 0, allowed.length + 3));
    out.push(stmt(BPF_LD_W_ABS, offArgLow(0)));
    allowed.forEach((value, i) => out.push(jump(BPF_JEQ_K, value, allowed.length - i, 0)));
    out.push(stmt(BPF_RET_K, RET_ERRNO | EPERM));
    out.push(stmt(BPF_RET_K, RET_ALLOW));
  }
  out.push(stmt(BPF_RET_K, RET_ALLOW));
  if (out.length > 4096) throw new Error('seccomp program too long'); // BPF_MAXINSNS
  return out;
}

/** The program as the bytes of struct sock_filter[] (little-endian hosts: x86_64, aarch64). */
export function encodeSeccomp(program: Insn[]): Uint8Array {
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return bytes;
}

/** Runs a program against one syscall, as the kernel would (for tests and for checking a plan). */
export function evaluateSeccomp(
  program: Insn[],
  data: { arch: number; nr: number; args?: number[] },
): { action: 'allow' | 'kill' | 'errno'; errno?: number } {
  let a = 0;
  let pc = 0;
  const load = (off: number): number => {
    if (off === OFF_NR) return data.nr >>> 0;
    if (off === OFF_ARCH) return data.arch >>> 0;
    const i = (off - 16) / 8;
    return (data.args?.[i] ?? 0) >>> 0;
  };
  while (pc < program.length) {
    const insn = program[pc]!;
    switch (insn.code) {
      case BPF_LD_W_ABS: a = load(insn.k); pc++; break;
      case BPF_JEQ_K: pc += 1 + (a === insn.k >>> 0 ? insn.jt : insn.jf); break;
      case BPF_JGE_K: pc += 1 + (a >= insn.k >>> 0 ? insn.jt : insn.jf); break;
      case BPF_JSET_K: pc += 1 + ((a & insn.k) !== 0 ? insn.jt : insn.jf); break;
      case BPF_RET_K: {
        const k = insn.k >>> 0;
        if (k === RET_ALLOW) return { action: 'allow' };
        if ((k & 0xffff0000) === RET_ERRNO) return { action: 'errno', errno: k & 0xffff };
        return { action: 'kill' };
      }
      default: throw new Error(`unknown BPF instruction ${insn.code}`);
    }
  }
  throw new Error('seccomp program fell off its end');
}
