/*
 * setid: set the user, group and supplementary groups, then run a program.
 *
 *   setid UID GID GROUPS [GROUPS...] -- PROG [ARG...]
 *
 * GROUPS is a comma-separated list of gids (it may be empty); several lists are joined (one argument
 * of the kernel's is at most 128 KiB). In order: setgroups(list), setresgid(GID), setresuid(UID); the
 * ids are read back and compared, then PROG runs as execvp runs it: a name with a slash is executed as
 * it is, otherwise it is searched in $PATH (/bin:/usr/bin when unset; an empty entry is the working
 * directory); a file without a recognised format is run by /bin/sh. Exit status: 127 when PROG is not
 * found, 126 when it cannot be executed, 125 for bad arguments or ids that could not be set.
 *
 * The first exec of a wasmbox container whose user is not root, or whose root has supplementary groups
 * (see src/linux-backend/invocation.ts). Freestanding: no libc, raw system calls, so one static binary of
 * a few KiB runs in any image. Build: native/build.sh.
 */

#include "sys.h"

typedef unsigned int gid32;

#define EXIT_SETUP 125
#define EXIT_NOT_EXECUTABLE 126
#define EXIT_NOT_FOUND 127

#define MAX_ID 0xfffffffeUL /* (uid_t)-1 means "unchanged" to the kernel */
#define MAX_GROUPS 65536    /* NGROUPS_MAX */
#define MAX_PATH 4096       /* PATH_MAX, with its NUL */

#define ENOENT 2
#define E2BIG 7
#define ENOEXEC 8
#define ENOMEM 12
#define EACCES 13
#define ENOTDIR 20
#define EISDIR 21
#define ETXTBSY 26
#define ENAMETOOLONG 36
#define ELOOP 40
#define EPERM 1
#define EINVAL 22
#define ENODEV 19
#define ETIMEDOUT 110
#define ESTALE 116


static gid32 groups[MAX_GROUPS];
static gid32 readback[MAX_GROUPS];
static char candidate[MAX_PATH];

__attribute__((noreturn)) static void usage(const char *problem) {
  put(2, "setid: ");
  put(2, problem);
  put(2, "\nusage: setid UID GID GROUPS [GROUPS...] -- PROG [ARG...]  (GROUPS: comma-separated gids, may be empty)\n");
  leave(EXIT_SETUP);
}

static const char *describe(long err);

/* A system call that set or read the ids failed (e.g. EINVAL: an id the user namespace does not map). */
__attribute__((noreturn)) static void failed(const char *what, long err) {
  char number[24];
  put(2, "setid: ");
  put(2, what);
  put(2, " failed: ");
  put(2, describe(-err));
  put(2, " (errno ");
  put(2, decimal(number, (unsigned long)-err));
  put(2, ")\n");
  leave(EXIT_SETUP);
}

static const char *describe(long err) {
  switch (err) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case ENOEXEC: return "Exec format error";
    case E2BIG: return "Argument list too long";
    case ENOMEM: return "Cannot allocate memory";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ETXTBSY: return "Text file busy";
    case ENAMETOOLONG: return "File name too long";
    case ELOOP: return "Too many levels of symbolic links";
    case EPERM: return "Operation not permitted";
    case EINVAL: return "Invalid argument";
    default: return "error";
  }
}

/* A decimal id from s[0..n): digits only, no sign, at most MAX_ID. Returns 0 when malformed. */
static int parse_id(const char *s, size_t n, unsigned long *out) {
  unsigned long v = 0;
  if (n == 0 || n > 10) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v > MAX_ID) return 0;
  *out = v;
  return 1;
}

/* Appends the gids of one comma list to groups[*count]. Returns 0 when malformed or too many. */
static int parse_groups(const char *s, size_t *count) {
  if (*s == 0) return 1;
  for (;;) {
    size_t n = 0;
    unsigned long v;
    while (s[n] && s[n] != ',') n++;
    if (!parse_id(s, n, &v) || *count >= MAX_GROUPS) return 0;
    groups[(*count)++] = (gid32)v;
    if (s[n] == 0) return 1;
    s += n + 1;
  }
}

static void sift(gid32 *a, size_t root, size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && a[child + 1] > a[child]) child++;
    if (a[root] >= a[child]) return;
    gid32 t = a[root];
    a[root] = a[child];
    a[child] = t;
    root = child;
  }
}

/* Heap sort: the kernel keeps (and getgroups returns) the list sorted. */
static void sort(gid32 *a, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
  for (size_t end = n; end-- > 1;) {
    gid32 t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(a, 0, end);
  }
}

static void set_ids(unsigned long uid, unsigned long gid, size_t count) {
  unsigned int r[3];
  long e;
  sort(groups, count);
  if ((e = sys3(SYS_setgroups, (long)count, (long)groups, 0)) < 0) failed("setgroups", e);
  if ((e = sys3(SYS_setresgid, (long)gid, (long)gid, (long)gid)) < 0) failed("setresgid", e);
  if ((e = sys3(SYS_setresuid, (long)uid, (long)uid, (long)uid)) < 0) failed("setresuid", e);

  if ((e = sys3(SYS_getresuid, (long)&r[0], (long)&r[1], (long)&r[2])) < 0) failed("getresuid", e);
  if (r[0] != uid || r[1] != uid || r[2] != uid) usage("the uid did not take");
  if ((e = sys3(SYS_getresgid, (long)&r[0], (long)&r[1], (long)&r[2])) < 0) failed("getresgid", e);
  if (r[0] != gid || r[1] != gid || r[2] != gid) usage("the gid did not take");
  e = sys3(SYS_getgroups, MAX_GROUPS, (long)readback, 0);
  if (e < 0) failed("getgroups", e);
  if ((size_t)e != count) usage("the supplementary groups did not take");
  for (size_t i = 0; i < count; i++) {
    if (readback[i] != groups[i]) usage("the supplementary groups did not take");
  }
}

static const char *env_value(char **envp, const char *name) {
  size_t n = length(name);
  for (; *envp; envp++) {
    const char *e = *envp;
    size_t i = 0;
    while (i < n && e[i] == name[i]) i++;
    if (i == n && e[n] == '=') return e + n + 1;
  }
  return 0;
}

/*
 * execve, and for a file the kernel does not know how to run, /bin/sh FILE ARGS (argv[-1] is free:
 * it held "--"). Returns the error.
 */
static long run(const char *file, char **argv, char **envp) {
  long e = sys3(SYS_execve, (long)file, (long)argv, (long)envp);
  if (e != -ENOEXEC) return e;
  argv[-1] = (char *)"/bin/sh";
  argv[0] = (char *)file;
  sys3(SYS_execve, (long)"/bin/sh", (long)(argv - 1), (long)envp);
  return e;
}

__attribute__((noreturn)) static void cannot_run(const char *prog, long err) {
  put(2, "setid: can't execute '");
  put(2, prog);
  put(2, "': ");
  put(2, describe(err));
  put(2, "\n");
  leave(err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE);
}

__attribute__((noreturn)) static void exec_program(char **argv, char **envp) {
  const char *prog = argv[0];
  size_t name = length(prog);
  if (name == 0) cannot_run(prog, ENOENT);
  for (size_t i = 0; i < name; i++) {
    if (prog[i] == '/') cannot_run(prog, -run(prog, argv, envp));
  }
  const char *path = env_value(envp, "PATH");
  if (!path) path = "/bin:/usr/bin";
  int denied = 0;
  for (const char *p = path;;) {
    size_t n = 0;
    while (p[n] && p[n] != ':') n++;
    /* dir + '/' + name + NUL must fit; longer entries are skipped */
    if (n + 1 + name + 1 <= sizeof candidate) {
      size_t at = 0;
      for (size_t i = 0; i < n; i++) candidate[at++] = p[i];
      if (n > 0) candidate[at++] = '/';
      for (size_t i = 0; i < name; i++) candidate[at++] = prog[i];
      candidate[at] = 0;
      long e = -run(candidate, argv, envp);
      /* as glibc's execvp: these try the next entry, anything else is the answer */
      if (e == EACCES) denied = 1;
      else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV && e != ETIMEDOUT) cannot_run(prog, e);
    }
    if (p[n] == 0) break;
    p += n + 1;
  }
  cannot_run(prog, denied ? EACCES : ENOENT);
}

__attribute__((noreturn, used)) void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  unsigned long uid, gid;
  size_t count = 0;
  long i;

  if (argc < 6) usage("too few arguments");
  if (!parse_id(argv[1], length(argv[1]), &uid)) usage("UID must be a decimal number below 4294967295");
  if (!parse_id(argv[2], length(argv[2]), &gid)) usage("GID must be a decimal number below 4294967295");
  for (i = 3; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2] == 0) break;
    if (!parse_groups(argv[i], &count)) usage("GROUPS must be comma-separated decimal gids below 4294967295, at most 65536");
  }
  if (i == 3 || i >= argc) usage("expected UID GID GROUPS -- PROG");
  if (i + 1 >= argc) usage("no program after --");
  set_ids(uid, gid, count);
  exec_program(argv + i + 1, envp);
}
