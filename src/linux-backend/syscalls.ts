/**
 * Syscall numbers the seccomp filter names, per architecture. Checked against the kernel headers
 * (asm/unistd_64.h for x86_64, asm-generic/unistd.h for aarch64) by test/linux-seccomp.test.ts.
 */
export type SeccompArch = 'x86_64' | 'aarch64';

export type SyscallName =
  | 'clone' | 'clone3' | 'personality' | 'ptrace' | 'syslog' | 'uselib' | 'ustat' | 'sysfs' | 'vhangup'
  | 'pivot_root' | '_sysctl' | 'adjtimex' | 'acct' | 'settimeofday' | 'mount' | 'umount2' | 'swapon'
  | 'swapoff' | 'reboot' | 'iopl' | 'ioperm' | 'create_module' | 'init_module' | 'delete_module'
  | 'get_kernel_syms' | 'query_module' | 'quotactl' | 'nfsservctl' | 'lookup_dcookie' | 'clock_settime'
  | 'mbind' | 'set_mempolicy' | 'get_mempolicy' | 'kexec_load' | 'add_key' | 'request_key' | 'keyctl'
  | 'migrate_pages' | 'unshare' | 'move_pages' | 'perf_event_open' | 'fanotify_init' | 'name_to_handle_at'
  | 'open_by_handle_at' | 'clock_adjtime' | 'setns' | 'process_vm_readv' | 'process_vm_writev' | 'kcmp'
  | 'finit_module' | 'kexec_file_load' | 'bpf' | 'userfaultfd' | 'io_uring_setup' | 'io_uring_enter'
  | 'io_uring_register' | 'open_tree' | 'move_mount' | 'fsopen' | 'fsconfig' | 'fsmount' | 'fspick'
  | 'pidfd_getfd' | 'mount_setattr' | 'quotactl_fd';

export const SYSCALLS: Record<SeccompArch, Partial<Record<SyscallName, number>>> = {
  x86_64: {
    clone: 56, ptrace: 101, syslog: 103, uselib: 134, personality: 135, ustat: 136, sysfs: 139,
    vhangup: 153, pivot_root: 155, _sysctl: 156, adjtimex: 159, acct: 163, settimeofday: 164, mount: 165,
    umount2: 166, swapon: 167, swapoff: 168, reboot: 169, iopl: 172, ioperm: 173, create_module: 174,
    init_module: 175, delete_module: 176, get_kernel_syms: 177, query_module: 178, quotactl: 179,
    nfsservctl: 180, lookup_dcookie: 212, clock_settime: 227, mbind: 237, set_mempolicy: 238,
    get_mempolicy: 239, kexec_load: 246, add_key: 248, request_key: 249, keyctl: 250, migrate_pages: 256,
    unshare: 272, move_pages: 279, perf_event_open: 298, fanotify_init: 300, name_to_handle_at: 303,
    open_by_handle_at: 304, clock_adjtime: 305, setns: 308, process_vm_readv: 310, process_vm_writev: 311,
    kcmp: 312, finit_module: 313, kexec_file_load: 320, bpf: 321, userfaultfd: 323, io_uring_setup: 425,
    io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430,
    fsconfig: 431, fsmount: 432, fspick: 433, clone3: 435, pidfd_getfd: 438, mount_setattr: 442,
    quotactl_fd: 443,
  },
  aarch64: {
    lookup_dcookie: 18, umount2: 39, mount: 40, pivot_root: 41, nfsservctl: 42, vhangup: 58, quotactl: 60,
    acct: 89, personality: 92, unshare: 97, kexec_load: 104, init_module: 105, delete_module: 106,
    clock_settime: 112, syslog: 116, ptrace: 117, reboot: 142, settimeofday: 170, adjtimex: 171,
    add_key: 217, request_key: 218, keyctl: 219, clone: 220, swapon: 224, swapoff: 225, mbind: 235,
    get_mempolicy: 236, set_mempolicy: 237, migrate_pages: 238, move_pages: 239, perf_event_open: 241,
    fanotify_init: 262, name_to_handle_at: 264, open_by_handle_at: 265, clock_adjtime: 266, setns: 268,
    process_vm_readv: 270, process_vm_writev: 271, kcmp: 272, finit_module: 273, bpf: 280,
    userfaultfd: 282, kexec_file_load: 294, io_uring_setup: 425, io_uring_enter: 426,
    io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432,
    fspick: 433, clone3: 435, pidfd_getfd: 438, mount_setattr: 442, quotactl_fd: 443,
  },
};

/** AUDIT_ARCH_* values that seccomp_data.arch carries. */
export const AUDIT_ARCH: Record<SeccompArch, number> = {
  x86_64: 0xc000003e,
  aarch64: 0xc00000b7,
};
