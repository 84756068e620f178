/*
 * publish: relay connections from a Unix socket to TCP ports on the container's loopback, and run a program.
 *
 *   publish SOCKET PORTS -- PROG [ARG...]
 *
 * What a container run with -p/--publish runs first (after the user switch, before the terminal
 * program if any): its network namespace has only loopback, so wasmbox listens on the host's ports
 * itself and joins each connection it accepts to the container through SOCKET, a Unix socket in a
 * host directory private to the container (bound into it). Each connection there starts with a header,
 *   'p' PORT(2 bytes, big-endian)
 * naming one of PORTS (comma-separated); publish then connects to 127.0.0.1:PORT and relays both ways
 * until both sides have ended (an end in one direction is passed on as shutdown(SHUT_WR)). A connection
 * whose header is malformed or names another port, or that the server refuses, is closed at once.
 * Signals sent to publish are passed on to PROG, and PROG's exit ends publish with PROG's status
 * (128+N when signal N ended it; 127 or 126 when it could not be executed; 125 when the socket could
 * not be made), once what the servers sent before has been passed on (for at most LINGER: a server
 * that answers and exits leaves its answer in the kernel's buffers, and the client should have it). Freestanding (native/sys.h); build: native/build.sh.
 */
#include "sys.h"

#define EINPROGRESS 115

#define AF_UNIX 1
#define AF_INET 2
#define SOCK_STREAM 1
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC O_CLOEXEC
#define SOL_SOCKET 1
#define SO_ERROR 4
#define SHUT_WR 1
#define AT_FDCWD (-100)


#define MAX_CONNECTIONS 256
#define BUFFER 65536
#define HEADER 3
#define LINGER 2

struct sockaddr_un {
  unsigned short family;
  char path[108];
};
struct sockaddr_in {
  unsigned short family;
  unsigned short port; /* network order */
  unsigned int addr;   /* network order */
  unsigned char zero[8];
};

/* One direction of a connection: bytes read from one side, not yet written to the other. */
struct flow {
  unsigned char data[BUFFER];
  size_t start, end;
  int ended; /* the reading side ended: once the buffer is empty, the writing side gets SHUT_WR */
  int shut;
};

enum state { FREE, READING_HEADER, CONNECTING, RELAYING };

struct connection {
  enum state state;
  int outer;  /* from wasmbox, through SOCKET */
  int inner;  /* to the server, on loopback */
  unsigned char header[HEADER];
  size_t header_len;
  struct flow in;  /* outer -> inner */
  struct flow out; /* inner -> outer */
};

static struct connection connections[MAX_CONNECTIONS];
static unsigned char allowed[65536 / 8];
static struct pollfd fds[3 + 2 * MAX_CONNECTIONS];

__attribute__((noreturn)) static void fail(const char *what, long err) {
  setup_failed("publish", what, err);
}

/** PORTS into `allowed`; 0 when the list is not comma-separated numbers from 1 to 65535. */
static int parse_ports(const char *s) {
  if (!*s) return 0;
  while (*s) {
    long v = 0;
    if (*s < '0' || *s > '9') return 0;
    for (; *s >= '0' && *s <= '9'; s++) {
      v = v * 10 + (*s - '0');
      if (v > 65535) return 0;
    }
    if (v == 0) return 0;
    allowed[v >> 3] |= (unsigned char)(1 << (v & 7));
    if (*s == ',') {
      s++;
      if (!*s) return 0;
    } else if (*s) {
      return 0;
    }
  }
  return 1;
}

static void drop(struct connection *c) {
  if (c->outer >= 0) sys3(SYS_close, c->outer, 0, 0);
  if (c->inner >= 0) sys3(SYS_close, c->inner, 0, 0);
  c->state = FREE;
}

static void accept_connection(long listener) {
  long fd = sys6(SYS_accept4, listener, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC, 0, 0);
  if (fd < 0) return; /* EAGAIN, or a client that went away already */
  for (int i = 0; i < MAX_CONNECTIONS; i++) {
    struct connection *c = &connections[i];
    if (c->state != FREE) continue;
    c->state = READING_HEADER;
    c->outer = (int)fd;
    c->inner = -1;
    c->header_len = 0;
    c->in.start = c->in.end = 0;
    c->in.ended = c->in.shut = 0;
    c->out.start = c->out.end = 0;
    c->out.ended = c->out.shut = 0;
    return;
  }
  sys3(SYS_close, fd, 0, 0); /* (not reached: the listener is polled only while a slot is free) */
}

/** The header's rest; once whole, the connection to the port it names starts (or the connection is dropped). */
static void read_header(struct connection *c) {
  long n = sys3(SYS_read, c->outer, c->header + c->header_len, HEADER - c->header_len);
  if (n == -EINTR || n == -EAGAIN) return;
  if (n <= 0) { drop(c); return; }
  c->header_len += (size_t)n;
  if (c->header_len < HEADER) return;
  unsigned int port = ((unsigned int)c->header[1] << 8) | c->header[2];
  if (c->header[0] != 'p' || !(allowed[port >> 3] & (1 << (port & 7)))) { drop(c); return; }
  long fd = sys3(SYS_socket, AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { drop(c); return; }
  c->inner = (int)fd;
  struct sockaddr_in to = {AF_INET, (unsigned short)((port >> 8) | ((port & 0xff) << 8)), 0x0100007f, {0}};
  long err = sys3(SYS_connect, fd, &to, sizeof to);
  if (err == 0) c->state = RELAYING;
  else if (err == -EINPROGRESS || err == -EINTR) c->state = CONNECTING;
  else drop(c); /* refused: wasmbox sees the close and closes its client's connection */
}

static void finish_connect(struct connection *c) {
  int err = 0;
  unsigned int len = sizeof err;
  if (sys6(SYS_getsockopt, c->inner, SOL_SOCKET, SO_ERROR, (long)&err, (long)&len, 0) < 0 || err != 0) drop(c);
  else c->state = RELAYING;
}

/** Reads what fits from `from`; 0 when the connection must be dropped (an error). */
static int fill(struct flow *f, int from) {
  if (f->ended || f->end == BUFFER) return 1;
  long n = sys3(SYS_read, from, f->data + f->end, BUFFER - f->end);
  if (n == -EINTR || n == -EAGAIN) return 1;
  if (n < 0) return 0;
  if (n == 0) f->ended = 1;
  else f->end += (size_t)n;
  return 1;
}

/** Writes what is buffered to `to`, and passes the end on once all is written; 0 on an error. */
static int flush(struct flow *f, int to) {
  while (f->start < f->end) {
    long n = sys3(SYS_write, to, f->data + f->start, f->end - f->start);
    if (n == -EINTR) continue;
    if (n == -EAGAIN) return 1;
    if (n <= 0) return 0;
    f->start += (size_t)n;
  }
  f->start = f->end = 0;
  if (f->ended && !f->shut) {
    sys3(SYS_shutdown, to, SHUT_WR, 0);
    f->shut = 1;
  }
  return 1;
}

static short wants(const struct flow *read_side, const struct flow *write_side) {
  short ev = 0;
  if (!read_side->ended && read_side->end < BUFFER) ev |= POLLIN;
  if (write_side->start < write_side->end) ev |= POLLOUT;
  return ev;
}

/** Listening at path, writable by its owner's group and others too (wasmbox may connect as another uid). */
static long listen_at(const char *path) {
  struct sockaddr_un at = {AF_UNIX, {0}};
  size_t n = length(path);
  if (n == 0 || n >= sizeof at.path) fail("the socket path is empty or too long", 0);
  for (size_t i = 0; i < n; i++) at.path[i] = path[i];
  long fd = sys3(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("cannot make a socket", fd);
  sys3(SYS_unlinkat, AT_FDCWD, path, 0);
  long mask = sys3(SYS_umask, 0, 0, 0);
  long err = sys3(SYS_bind, fd, &at, sizeof at);
  sys3(SYS_umask, mask, 0, 0);
  if (err < 0) fail("cannot bind the socket", err);
  err = sys3(SYS_listen, fd, 128, 0);
  if (err < 0) fail("cannot listen on the socket", err);
  return fd;
}

__attribute__((noreturn, used)) void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  two_then_program(argc, argv, "usage: publish SOCKET PORTS -- PROG [ARG...]\n");
  if (!parse_ports(argv[2])) fail("PORTS must be comma-separated numbers from 1 to 65535", 0);
  long listener = listen_at(argv[1]);
  long sigfd = signals_to_descriptor();
  if (sigfd < 0) fail("cannot make a signal descriptor", sigfd);

  long pid = sys6(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0);
  if (pid < 0) fail("cannot start the program", pid);
  if (pid == 0) {
    unblock_signals();
    exec_as_given("publish", argv + 4, envp);
  }
  /* pidfd: readable once the program exits (Linux >= 5.3; before that, a poll every 50 ms) */
  long pidfd = sys3(SYS_pidfd_open, pid, 0, 0);
  struct timespec tick = {0, 50 * 1000 * 1000};
  int exited = 0, status = 0;
  struct timespec linger = {LINGER, 0}; /* (ppoll takes the time it waited off it) */
  for (;;) {
    int n = 0;
    int at_sig = n;
    fds[n++] = (struct pollfd){(int)sigfd, POLLIN, 0};
    int at_pid = -1, at_listener = -1;
    if (pidfd >= 0 && !exited) {
      at_pid = n;
      fds[n++] = (struct pollfd){(int)pidfd, POLLIN, 0};
    }
    int used = 0;
    for (int i = 0; i < MAX_CONNECTIONS; i++) used += connections[i].state != FREE;
    if (exited && used == 0) leave(exit_status(status));
    if (used < MAX_CONNECTIONS && !exited) {
      at_listener = n;
      fds[n++] = (struct pollfd){(int)listener, POLLIN, 0};
    }
    int first = n;
    for (int i = 0; i < MAX_CONNECTIONS; i++) {
      struct connection *c = &connections[i];
      short outer = 0, inner = 0;
      if (c->state == READING_HEADER) outer = POLLIN;
      else if (c->state == CONNECTING) inner = POLLOUT;
      else if (c->state == RELAYING) {
        outer = wants(&c->in, &c->out);
        inner = wants(&c->out, &c->in);
      }
      /* (a side with nothing to do is left out: a hang-up would be reported at once, every time) */
      fds[first + 2 * i] = (struct pollfd){outer ? c->outer : -1, outer, 0};
      fds[first + 2 * i + 1] = (struct pollfd){inner ? c->inner : -1, inner, 0};
    }
    n = first + 2 * MAX_CONNECTIONS;
    long r = sys6(SYS_ppoll, (long)fds, n, exited ? (long)&linger : pidfd >= 0 ? 0 : (long)&tick, 0, 8, 0);
    if (r < 0 && r != -EINTR) fail("poll failed", r);
    if (exited && r == 0) leave(exit_status(status));
    if (r > 0 && (fds[at_sig].revents & POLLIN)) {
      if (exited) { struct signalfd_siginfo dropped; sys3(SYS_read, sigfd, &dropped, sizeof dropped); }
      else pass_signal(sigfd, pid);
    }
    for (int i = 0; r > 0 && i < MAX_CONNECTIONS; i++) {
      struct connection *c = &connections[i];
      short outer = fds[first + 2 * i].revents, inner = fds[first + 2 * i + 1].revents;
      if (c->state == READING_HEADER && outer) read_header(c);
      else if (c->state == CONNECTING && inner) finish_connect(c);
      else if (c->state == RELAYING && (outer || inner)) {
        int ok = 1;
        if (outer & (POLLIN | POLLHUP | POLLERR)) ok = fill(&c->in, c->outer);
        if (ok && (inner & (POLLIN | POLLHUP | POLLERR))) ok = fill(&c->out, c->inner);
        if (ok) ok = flush(&c->in, c->inner) && flush(&c->out, c->outer);
        /* (once the program is gone, a connection ends with what its server sent) */
        if (!ok || (c->in.shut && c->out.shut) || (exited && c->out.shut)) drop(c);
      }
    }
    if (r > 0 && at_listener >= 0 && (fds[at_listener].revents & POLLIN)) accept_connection(listener);
    if (exited) continue;
    long done = reap(pid, pidfd, at_pid >= 0 && r > 0 && (fds[at_pid].revents & POLLIN), &status);
    if (done < 0) fail("wait failed", done);
    if (done == 1) {
      exited = 1;
      sys3(SYS_close, listener, 0, 0);
      for (int i = 0; i < MAX_CONNECTIONS; i++) {
        struct connection *c = &connections[i];
        if (c->state == READING_HEADER || c->state == CONNECTING || (c->state == RELAYING && c->out.shut)) drop(c);
      }
    }
  }
}
