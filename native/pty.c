/*
 * pty: run a program on a new pseudo-terminal, relayed to this process's stdin and stdout.
 *
 *   pty COLS ROWS -- PROG [ARG...]
 *
 * What a container run with -t/--tty runs first (after the user switch), so that its program gets a
 * terminal of the container's own devpts, as under docker -t. stdin carries frames from wasmbox:
 *   'd' LEN(2 bytes, big-endian) BYTES   input typed at the terminal (after the line discipline, so ^C
 *                                        becomes SIGINT for the foreground process group);
 *   'w' COLS(2) ROWS(2)                  the window size changed (SIGWINCH for the foreground group).
 * Everything the terminal outputs goes to stdout. stdin's end only ends input; the terminal stays.
 * Signals sent to pty (docker kill -s, Ctrl-C at wasmbox's own terminal) are passed on to PROG.
 * PROG is executed as given (wasmbox resolves it in $PATH before). Exit status: PROG's own, 128+N when
 * signal N ended it; 127 or 126 when it could not be executed; 125 when the terminal could not be made
 * or a frame is malformed. Freestanding (native/sys.h); build: native/build.sh.
 */
#include "sys.h"


#define AT_FDCWD (-100)
#define O_RDWR 02
#define O_NOCTTY 0400
#define O_NONBLOCK 04000

/* the same numbers on x86_64 and aarch64 (asm-generic) */
#define TIOCSCTTY 0x540E
#define TIOCSWINSZ 0x5414
#define TIOCGPTN 0x80045430
#define TIOCSPTLCK 0x40045431


#define FRAME_MAX (3 + 65535)

struct winsize {
  unsigned short rows, cols, xpixel, ypixel;
};

static unsigned char in[FRAME_MAX];   /* frames read from stdin, not yet taken */
static size_t in_len;
static unsigned char pending[65536];  /* input for the terminal, not yet written to it */
static size_t pending_len;
static unsigned char out[16384];
static char slave_path[32];

__attribute__((noreturn)) static void fail(const char *what, long err) {
  setup_failed("pty", what, err);
}

/** A decimal 0..65535, or -1. */
static long dimension(const char *s) {
  long v = 0;
  if (!*s) return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
    if (v > 65535) return -1;
  }
  return v;
}

static void write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    long w = sys3(SYS_write, fd, p, n);
    if (w == -EINTR || w == -EAGAIN) continue;
    if (w <= 0) return; /* the reader went away: the output is dropped, the program still runs */
    p += w;
    n -= (size_t)w;
  }
}

/** Copies what the terminal has to stdout; returns 0 once it has nothing more to give (EIO: no slave left). */
static int relay_output(int master) {
  for (;;) {
    long n = sys3(SYS_read, master, out, sizeof out);
    if (n == -EINTR) continue;
    if (n == -EAGAIN) return 1;
    if (n <= 0) return 0;
    write_all(1, out, (size_t)n);
  }
}

/** Takes whole frames from `in`: input joins `pending` while it fits; window sizes apply at once. */
static void take_frames(int master) {
  size_t at = 0;
  while (in_len - at >= 1) {
    unsigned char type = in[at];
    if (type == 'd') {
      if (in_len - at < 3) break;
      size_t n = ((size_t)in[at + 1] << 8) | in[at + 2];
      if (in_len - at < 3 + n || pending_len + n > sizeof pending) break;
      for (size_t i = 0; i < n; i++) pending[pending_len + i] = in[at + 3 + i];
      pending_len += n;
      at += 3 + n;
    } else if (type == 'w') {
      if (in_len - at < 5) break;
      struct winsize ws = {0, 0, 0, 0};
      ws.cols = (unsigned short)((in[at + 1] << 8) | in[at + 2]);
      ws.rows = (unsigned short)((in[at + 3] << 8) | in[at + 4]);
      sys3(SYS_ioctl, master, TIOCSWINSZ, &ws);
      at += 5;
    } else {
      fail("malformed input frame", 0);
    }
  }
  for (size_t i = at; i < in_len; i++) in[i - at] = in[i];
  in_len -= at;
}

static void write_pending(int master) {
  while (pending_len > 0) {
    long w = sys3(SYS_write, master, pending, pending_len);
    if (w == -EINTR) continue;
    if (w <= 0) return; /* EAGAIN: the terminal's input queue is full; poll says when it has room */
    for (size_t i = (size_t)w; i < pending_len; i++) pending[i - (size_t)w] = pending[i];
    pending_len -= (size_t)w;
  }
}

__attribute__((noreturn)) static void child(int master, char **prog, char **envp) {
  unblock_signals();
  sys3(SYS_close, master, 0, 0);
  if (sys3(SYS_setsid, 0, 0, 0) < 0) fail("setsid failed", 0);
  /* opened by a session leader without a terminal: it becomes the controlling terminal */
  long slave = sys6(SYS_openat, AT_FDCWD, (long)slave_path, O_RDWR, 0, 0, 0);
  if (slave < 0) fail("cannot open the terminal", slave);
  sys3(SYS_ioctl, slave, TIOCSCTTY, 0);
  for (int fd = 0; fd < 3; fd++) {
    if (slave != fd && sys3(SYS_dup3, slave, fd, 0) < 0) fail("dup3 failed", 0);
  }
  if (slave > 2) sys3(SYS_close, slave, 0, 0);
  exec_as_given("pty", prog, envp);
}

__attribute__((noreturn, used)) void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  two_then_program(argc, argv, "usage: pty COLS ROWS -- PROG [ARG...]\n");
  long cols = dimension(argv[1]);
  long rows = dimension(argv[2]);
  if (cols < 0 || rows < 0) fail("COLS and ROWS must be numbers from 0 to 65535", 0);

  long master = sys6(SYS_openat, AT_FDCWD, (long)"/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0, 0, 0);
  if (master < 0) fail("cannot open /dev/ptmx", master);
  int unlock = 0;
  unsigned int index = 0;
  if (sys3(SYS_ioctl, master, TIOCSPTLCK, &unlock) < 0 || sys3(SYS_ioctl, master, TIOCGPTN, &index) < 0) fail("cannot unlock the terminal", 0);
  {
    const char *prefix = "/dev/pts/";
    char digits[24];
    size_t p = 0;
    for (; prefix[p]; p++) slave_path[p] = prefix[p];
    for (const char *d = decimal(digits, index); *d; d++) slave_path[p++] = *d;
    slave_path[p] = 0;
  }
  struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
  sys3(SYS_ioctl, master, TIOCSWINSZ, &ws);
  /* held open here for the whole run: the master then never hangs up (no busy poll before the program
     opens its side, or after it closed it), and the program's exit is what ends the run */
  long held = sys6(SYS_openat, AT_FDCWD, (long)slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0, 0, 0);
  if (held < 0) fail("cannot open the terminal", held);

  long sigfd = signals_to_descriptor();
  if (sigfd < 0) fail("cannot make a signal descriptor", sigfd);

  long pid = sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
  if (pid < 0) fail("cannot start the program", pid);
  if (pid == 0) child((int)master, argv + 4, envp);

  /* pidfd: readable once the program exits (Linux >= 5.3; before that, a poll every 50 ms) */
  long pidfd = sys3(SYS_pidfd_open, pid, 0, 0);
  struct timespec tick = {0, 50 * 1000 * 1000};
  int input_open = 1;
  int terminal_open = 1;
  for (;;) {
    struct pollfd fds[4];
    int n = 0;
    int at_in = -1, at_master = -1, at_pid = -1;
    int at_sig = n;
    fds[n++] = (struct pollfd){(int)sigfd, POLLIN, 0};
    if (input_open && in_len < sizeof in) {
      at_in = n;
      fds[n++] = (struct pollfd){0, POLLIN, 0};
    }
    if (terminal_open) {
      at_master = n;
      fds[n++] = (struct pollfd){(int)master, (short)(POLLIN | (pending_len ? POLLOUT : 0)), 0};
    }
    if (pidfd >= 0) {
      at_pid = n;
      fds[n++] = (struct pollfd){(int)pidfd, POLLIN, 0};
    }
    long r = sys6(SYS_ppoll, (long)fds, n, pidfd >= 0 ? 0 : (long)&tick, 0, 8, 0);
    if (r < 0 && r != -EINTR) fail("poll failed", r);
    if (r > 0 && (fds[at_sig].revents & POLLIN)) pass_signal(sigfd, pid);
    if (r > 0 && at_master >= 0) {
      short ev = fds[at_master].revents;
      if (ev & POLLIN) terminal_open = relay_output((int)master);
      if (ev & POLLOUT) write_pending((int)master);
    }
    if (r > 0 && at_in >= 0 && (fds[at_in].revents & (POLLIN | POLLHUP | POLLERR))) {
      long got = sys3(SYS_read, 0, in + in_len, sizeof in - in_len);
      if (got > 0) in_len += (size_t)got;
      else if (got != -EINTR && got != -EAGAIN) input_open = 0;
    }
    take_frames((int)master);
    if (pending_len) write_pending((int)master);
    int status = 0;
    long done = reap(pid, pidfd, at_pid >= 0 && r > 0 && (fds[at_pid].revents & POLLIN), &status);
    if (done == 1) {
      relay_output((int)master); /* what it wrote just before it exited */
      leave(exit_status(status));
    }
    if (done < 0) fail("wait failed", done);
  }
}
