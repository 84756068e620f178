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
#define SYS_socket 41
#define SYS_connect 42
#define SYS_shutdown 48
#define SYS_bind 49
#define SYS_listen 50
#define SYS_getsockopt 55
#define SYS_umask 95
#define SYS_unlinkat 263
#define SYS_accept4 288

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
#define SYS_unlinkat 35
#define SYS_umask 166
#define SYS_socket 198
#define SYS_bind 200
#define SYS_listen 201
#define SYS_connect 203
#define SYS_getsockopt 209
#define SYS_shutdown 210
#define SYS_accept4 242

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

/* The relays' common part (pty, publish): a program run as a child, signals passed on to it through a
   descriptor, its exit seen through a pidfd, and its status as theirs. */

#define ENOENT 2
#define O_CLOEXEC 02000000
#define POLLIN 0x1
#define POLLOUT 0x4
#define POLLERR 0x8
#define POLLHUP 0x10
#define SIGKILL 9
#define SIGPIPE 13
#define SIGCHLD 17
#define SIGSTOP 19
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define WNOHANG 1

struct pollfd {
  int fd;
  short events;
  short revents;
};
/* what signalfd reads: the signal number first, then fields the relays do not use */
struct signalfd_siginfo {
  unsigned int signo;
  unsigned char rest[124];
};
struct timespec {
  long sec, nsec;
};

/** Says `who: what (errno N)` on stderr and exits 125: the relay could not be set up. */
__attribute__((noreturn, unused)) static void setup_failed(const char *who, const char *what, long err) {
  put(2, who);
  put(2, ": ");
  put(2, what);
  if (err < 0) {
    char num[24];
    put(2, " (errno ");
    put(2, decimal(num, (unsigned long)-err));
    put(2, ")");
  }
  put(2, "\n");
  leave(125);
}

/** The relays' command line, `NAME A B -- PROG [ARG...]`: otherwise `usage` on stderr, exit 125. */
__attribute__((unused)) static void two_then_program(long argc, char **argv, const char *usage) {
  if (argc >= 5 && argv[3][0] == '-' && argv[3][1] == '-' && argv[3][2] == 0) return;
  put(2, usage);
  leave(125);
}

/** A wait status as a shell gives it: the exit code, or 128+N when signal N ended the process. */
__attribute__((unused)) static int exit_status(int status) {
  int sig = status & 0x7f;
  return sig == 0 ? (status >> 8) & 0xff : 128 + sig;
}

/**
 * Blocks every signal but SIGCHLD (and SIGKILL, SIGSTOP) and returns a descriptor that reads them, to be
 * passed on; SIGPIPE is the relay's own (a reader went away; blocked, a write fails with EPIPE instead).
 * Negative: the errno.
 */
__attribute__((unused)) static long signals_to_descriptor(void) {
  unsigned long all = ~0UL & ~(1UL << (SIGKILL - 1)) & ~(1UL << (SIGSTOP - 1)) & ~(1UL << (SIGCHLD - 1));
  long err = sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, 8, 0, 0);
  if (err < 0) return err;
  unsigned long forwarded = all & ~(1UL << (SIGPIPE - 1));
  return sys6(SYS_signalfd4, -1, (long)&forwarded, 8, O_CLOEXEC, 0, 0);
}

/** Takes one signal from the descriptor and sends it to pid. */
__attribute__((unused)) static void pass_signal(long sigfd, long pid) {
  struct signalfd_siginfo info;
  if (sys3(SYS_read, sigfd, &info, sizeof info) == (long)sizeof info) sys3(SYS_kill, pid, info.signo, 0);
}

/** In the child: the signal mask cleared (a blocked mask would survive the exec). */
__attribute__((unused)) static void unblock_signals(void) {
  unsigned long none = 0;
  sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8, 0, 0);
}

/** Executes prog (a path, as given); when it cannot: says so as `who` and exits 127 (not found) or 126. */
__attribute__((noreturn, unused)) static void exec_as_given(const char *who, char **prog, char **envp) {
  long err = sys3(SYS_execve, prog[0], prog, envp);
  put(2, who);
  put(2, ": cannot execute ");
  put(2, prog[0]);
  put(2, err == -ENOENT ? ": no such file or directory\n" : ": permission denied or not a program\n");
  leave(err == -ENOENT ? 127 : 126);
}

/**
 * Whether the program has ended (after a poll that saw `pid_ready`, the pidfd readable; without a pidfd,
 * Linux < 5.3, at every call): its wait status in *status. 1 ended, 0 running, negative the errno.
 */
__attribute__((unused)) static long reap(long pid, long pidfd, int pid_ready, int *status) {
  long done = 0;
  if (pidfd >= 0 && pid_ready) done = sys6(SYS_wait4, pid, (long)status, 0, 0, 0, 0);
  else if (pidfd < 0) done = sys6(SYS_wait4, pid, (long)status, WNOHANG, 0, 0, 0);
  if (done == pid) return 1;
  return done < 0 && done != -EINTR ? done : 0;
}

#endif
