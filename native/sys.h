/*
 * The freestanding base of wasmbox's small static programs (no libc): system call numbers and stubs for
 * x86_64 and aarch64, the process entry point (_start calls start_c with the initial stack pointer),
 * and a few helpers. Include it once, from the program's only source file.
 */
#ifndef WASMBOX_SYS_H
#define WASMBOX_SYS_H

typedef unsigned long size_t;

#define EINTR 4
#define EAGAIN 11
#define EIO 5

#if defined(__x86_64__)
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_rt_sigprocmask 14
#define SYS_ioctl 16
#define SYS_clone 56
#define SYS_execve 59
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_fcntl 72
#define SYS_setsid 112
#define SYS_getgroups 115
#define SYS_setgroups 116
#define SYS_setresuid 117
#define SYS_getresuid 118
#define SYS_setresgid 119
#define SYS_getresgid 120
#define SYS_exit_group 231
#define SYS_openat 257
#define SYS_ppoll 271
#define SYS_signalfd4 289
#define SYS_dup3 292
#define SYS_pidfd_open 434

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long r;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return r;
}

__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  xor %rbp, %rbp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call start_c\n"
    "  hlt\n");
#elif defined(__aarch64__)
#define SYS_dup3 24
#define SYS_fcntl 25
#define SYS_ioctl 29
#define SYS_openat 56
#define SYS_close 57
#define SYS_read 63
#define SYS_write 64
#define SYS_signalfd4 74
#define SYS_ppoll 73
#define SYS_exit_group 94
#define SYS_kill 129
#define SYS_setresuid 147
#define SYS_getresuid 148
#define SYS_setresgid 149
#define SYS_getresgid 150
#define SYS_getgroups 158
#define SYS_setgroups 159
#define SYS_rt_sigprocmask 135
#define SYS_setsid 157
#define SYS_clone 220
#define SYS_execve 221
#define SYS_wait4 260
#define SYS_pidfd_open 434

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}

__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  bl start_c\n"
    "  brk #0\n");
#else
#error "wasmbox's native programs are built for x86_64 and aarch64"
#endif

#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

static size_t length(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

/** Writes all of s to fd (best effort: gives up on an error). */
static void put(int fd, const char *s) {
  size_t n = length(s);
  while (n > 0) {
    long w = sys3(SYS_write, fd, s, n);
    if (w == -EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/** v in decimal, written backwards from the end of `buf` (24 bytes); returns where it starts. */
static const char *decimal(char buf[24], unsigned long v) {
  int i = 23;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v && i > 0);
  return buf + i;
}

__attribute__((noreturn)) static void leave(int status) {
  for (;;) sys3(SYS_exit_group, status, 0, 0);
}

#endif
