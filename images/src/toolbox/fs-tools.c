/* File tools: ls mkdir rm rmdir mv cp ln touch stat find pwd. */
#include "toolbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Sorted names in a directory, without "." and "..". */
static int list_dir(const char *path, StrList *names) {
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) list_push(names, xstrdup(e->d_name));
  }
  closedir(d);
  for (int i = 1; i < names->len; i++) { /* insertion sort: directories are small here */
    char *x = names->items[i];
    int j = i - 1;
    while (j >= 0 && strcmp(names->items[j], x) > 0) {
      names->items[j + 1] = names->items[j];
      j--;
    }
    names->items[j + 1] = x;
  }
  return 0;
}

/* WASI reports no permission bits; show the usual ones then. */
static mode_t perms(const struct stat *st) {
  mode_t p = st->st_mode & 07777;
  if (p) return p;
  if (S_ISDIR(st->st_mode)) return 0755;
  if (S_ISLNK(st->st_mode)) return 0777;
  return 0644;
}

static char type_char(mode_t m) {
  return S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' : '-';
}

static const char *type_name(mode_t m) {
  return S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symbolic link" : S_ISCHR(m) ? "character special file"
       : S_ISBLK(m) ? "block special file" : S_ISFIFO(m) ? "fifo" : S_ISSOCK(m) ? "socket" : "regular file";
}

static void mode_string(const struct stat *st, char out[11]) {
  mode_t p = perms(st);
  const char *rwx = "rwxrwxrwx";
  out[0] = type_char(st->st_mode);
  for (int i = 0; i < 9; i++) out[i + 1] = (p & (0400 >> i)) ? rwx[i] : '-';
  if (p & 01000) out[9] = (p & 01) ? 't' : 'T';
  out[10] = '\0';
}

static void format_time(time_t t, char *out, size_t n) {
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%Y-%m-%d %H:%M", &tm);
}

typedef struct {
  Opts o;
  Io *io;
  int status;
} Ls;

static void ls_entry(Ls *ls, const char *path, const char *shown) {
  if (!ls->o.on['l']) {
    fprintf(ls->io->out, "%s\n", shown);
    return;
  }
  struct stat st;
  if (lstat(path, &st) != 0) {
    ls->status = fail_errno(ls->io, "ls", path);
    return;
  }
  char mode[11], when[32];
  mode_string(&st, mode);
  format_time(st.st_mtime, when, sizeof when);
  fprintf(ls->io->out, "%s %2lu root root %8lld %s %s", mode, (unsigned long)st.st_nlink, (long long)st.st_size, when, shown);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n >= 0) {
      target[n] = '\0';
      fprintf(ls->io->out, " -> %s", target);
    }
  }
  fputc('\n', ls->io->out);
}

static void ls_dir(Ls *ls, const char *path, int header) {
  StrList names = {0};
  if (list_dir(path, &names) != 0) {
    ls->status = fail_errno(ls->io, "ls", path);
    return;
  }
  if (header) fprintf(ls->io->out, "%s:\n", path);
  if (ls->o.on['a']) {
    char *dot = path_join(path, "."), *dotdot = path_join(path, "..");
    ls_entry(ls, dot, ".");
    ls_entry(ls, dotdot, "..");
    free(dot);
    free(dotdot);
  }
  for (int i = 0; i < names.len; i++) {
    if (names.items[i][0] == '.' && !ls->o.on['a'] && !ls->o.on['A']) continue;
    char *child = path_join(path, names.items[i]);
    ls_entry(ls, child, names.items[i]);
    free(child);
  }
  if (ls->o.on['R']) {
    for (int i = 0; i < names.len; i++) {
      if (names.items[i][0] == '.' && !ls->o.on['a'] && !ls->o.on['A']) continue;
      char *child = path_join(path, names.items[i]);
      struct stat st;
      if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
        fputc('\n', ls->io->out);
        ls_dir(ls, child, 1);
      }
      free(child);
    }
  }
  list_free(&names);
}

int ls_main(int argc, char **argv, Io *io) {
  Ls ls = {.io = io};
  int i = parse_opts(argc, argv, "laAR1d", &ls.o, io);
  if (i < 0) return 2;
  char *dot[] = {".", NULL};
  char **args = i < argc ? argv + i : dot;
  int n = i < argc ? argc - i : 1;
  int dirs = 0;
  for (int k = 0; k < n; k++) { /* files first, as ls does */
    struct stat st;
    if (stat(args[k], &st) != 0 && lstat(args[k], &st) != 0) {
      ls.status = fail(io, "ls", "%s: %s", args[k], strerror(errno));
      continue;
    }
    if (S_ISDIR(st.st_mode) && !ls.o.on['d']) dirs++;
    else ls_entry(&ls, args[k], args[k]);
  }
  int printed = n - dirs > 0;
  for (int k = 0; k < n; k++) {
    struct stat st;
    if (stat(args[k], &st) != 0 || !S_ISDIR(st.st_mode) || ls.o.on['d']) continue;
    if (printed) fputc('\n', io->out);
    ls_dir(&ls, args[k], n > 1 || ls.o.on['R']);
    printed = 1;
  }
  return ls.status ? 2 : 0;
}

static int make_dirs(const char *path) {
  char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      free(p);
      return -1;
    }
    *s = '/';
  }
  int rc = mkdir(p, 0777);
  struct stat st;
  if (rc != 0 && errno == EEXIST && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) rc = 0;
  free(p);
  return rc;
}

int mkdir_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "pm:", &o, io);
  if (i < 0) return 2;
  if (i >= argc) return fail(io, "mkdir", "missing operand");
  int status = 0;
  for (; i < argc; i++) {
    int rc = o.on['p'] ? make_dirs(argv[i]) : mkdir(argv[i], 0777);
    if (rc != 0) status = fail(io, "mkdir", "can't create directory '%s': %s", argv[i], strerror(errno));
  }
  return status;
}

static int remove_tree(const char *path, int recursive, int force, Io *io) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (force && errno == ENOENT) return 0;
    return fail(io, "rm", "can't remove '%s': %s", path, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    if (!recursive) return fail(io, "rm", "'%s' is a directory", path);
    StrList names = {0};
    if (list_dir(path, &names) != 0) return fail_errno(io, "rm", path);
    int status = 0;
    for (int i = 0; i < names.len; i++) {
      char *child = path_join(path, names.items[i]);
      status |= remove_tree(child, recursive, force, io);
      free(child);
    }
    list_free(&names);
    if (rmdir(path) != 0) status = fail(io, "rm", "can't remove '%s': %s", path, strerror(errno));
    return status;
  }
  if (unlink(path) != 0) return fail(io, "rm", "can't remove '%s': %s", path, strerror(errno));
  return 0;
}

int rm_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "rRfi", &o, io);
  if (i < 0) return 2;
  if (i >= argc && !o.on['f']) return fail(io, "rm", "missing operand");
  int status = 0;
  for (; i < argc; i++) status |= remove_tree(argv[i], o.on['r'] || o.on['R'], o.on['f'], io);
  return status;
}

int rmdir_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "p", &o, io);
  if (i < 0) return 2;
  if (i >= argc) return fail(io, "rmdir", "missing operand");
  int status = 0;
  for (; i < argc; i++)
    if (rmdir(argv[i]) != 0) status = fail(io, "rmdir", "'%s': %s", argv[i], strerror(errno));
  return status;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static int copy_file(const char *src, const char *dst, Io *io) {
  struct stat a, b;
  if (stat(src, &a) == 0 && stat(dst, &b) == 0 && same_file(&a, &b)) return fail(io, "cp", "'%s' and '%s' are the same file", src, dst);
  FILE *in = fopen(src, "rb");
  if (!in) return fail_errno(io, "cp", src);
  FILE *out = fopen(dst, "wb");
  if (!out) {
    fclose(in);
    return fail_errno(io, "cp", dst);
  }
  char buf[16384];
  size_t n;
  int status = 0;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
    if (fwrite(buf, 1, n, out) != n) {
      status = fail_errno(io, "cp", dst);
      break;
    }
  }
  if (ferror(in)) status = fail_errno(io, "cp", src);
  fclose(in);
  if (fclose(out) != 0 && !status) status = fail_errno(io, "cp", dst);
  return status;
}

/* Copies src to dst; the top level (root_copy NULL) follows symlinks, deeper levels copy them as
 * links. root_copy is the directory the top level created, never copied into itself. */
static int copy_tree(const char *src, const char *dst, int recursive, const struct stat *root_copy, Io *io) {
  int top = root_copy == NULL;
  struct stat st, made;
  if ((top ? stat(src, &st) : lstat(src, &st)) != 0) return fail_errno(io, "cp", src);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(src, target, sizeof target - 1);
    if (n < 0) return fail_errno(io, "cp", src);
    target[n] = '\0';
    unlink(dst);
    if (symlink(target, dst) != 0) return fail_errno(io, "cp", dst);
    return 0;
  }
  if (!S_ISDIR(st.st_mode)) return copy_file(src, dst, io);
  if (!recursive) return fail(io, "cp", "-r not specified; omitting directory '%s'", src);
  if (!top && same_file(&st, root_copy)) return fail(io, "cp", "cannot copy a directory into itself: '%s'", src);
  if (mkdir(dst, 0777) != 0 && !(errno == EEXIST && is_dir(dst))) return fail_errno(io, "cp", dst);
  if (top) {
    if (stat(dst, &made) != 0) return fail_errno(io, "cp", dst);
    if (same_file(&st, &made)) return fail(io, "cp", "'%s' and '%s' are the same directory", src, dst);
    root_copy = &made;
  }
  StrList names = {0};
  if (list_dir(src, &names) != 0) return fail_errno(io, "cp", src);
  int status = 0;
  for (int i = 0; i < names.len; i++) {
    char *s = path_join(src, names.items[i]), *d = path_join(dst, names.items[i]);
    status |= copy_tree(s, d, recursive, root_copy, io);
    free(s);
    free(d);
  }
  list_free(&names);
  return status;
}

/* The destination for SRC given DEST: DEST/basename(SRC) when DEST is a directory. */
static char *target_path(const char *src, const char *dest) {
  if (!is_dir(dest)) return xstrdup(dest);
  char *trimmed = xstrdup(src);
  size_t n = strlen(trimmed);
  while (n > 1 && trimmed[n - 1] == '/') trimmed[--n] = '\0';
  char *p = path_join(dest, base_name(trimmed));
  free(trimmed);
  return p;
}

int cp_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "rRfpaP", &o, io);
  if (i < 0) return 2;
  if (argc - i < 2) return fail(io, "cp", "missing destination operand");
  const char *dest = argv[argc - 1];
  if (argc - i > 2 && !is_dir(dest)) return fail(io, "cp", "target '%s' is not a directory", dest);
  int status = 0;
  for (; i < argc - 1; i++) {
    char *to = target_path(argv[i], dest);
    status |= copy_tree(argv[i], to, o.on['r'] || o.on['R'] || o.on['a'], NULL, io);
    free(to);
  }
  return status;
}

int mv_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "fin", &o, io);
  if (i < 0) return 2;
  if (argc - i < 2) return fail(io, "mv", "missing destination operand");
  const char *dest = argv[argc - 1];
  if (argc - i > 2 && !is_dir(dest)) return fail(io, "mv", "target '%s' is not a directory", dest);
  int status = 0;
  for (; i < argc - 1; i++) {
    char *to = target_path(argv[i], dest);
    if (rename(argv[i], to) != 0) {
      if (errno == EXDEV && copy_tree(argv[i], to, 1, NULL, io) == 0) {
        status |= remove_tree(argv[i], 1, 0, io);
      } else {
        status = fail(io, "mv", "can't rename '%s': %s", argv[i], strerror(errno));
      }
    }
    free(to);
  }
  return status;
}

int ln_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "sfn", &o, io);
  if (i < 0) return 2;
  if (argc - i < 1) return fail(io, "ln", "missing operand");
  const char *target = argv[i];
  char *name = argc - i >= 2 ? target_path(target, argv[i + 1]) : xstrdup(base_name(target));
  if (o.on['f']) unlink(name);
  int rc = o.on['s'] ? symlink(target, name) : link(target, name);
  int status = rc != 0 ? fail(io, "ln", "%s: %s", name, strerror(errno)) : 0;
  free(name);
  return status;
}

int touch_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "c", &o, io);
  if (i < 0) return 2;
  if (i >= argc) return fail(io, "touch", "missing file operand");
  int status = 0;
  for (; i < argc; i++) {
    if (access(argv[i], F_OK) == 0) {
      if (utimensat(AT_FDCWD, argv[i], NULL, 0) != 0) status = fail_errno(io, "touch", argv[i]);
    } else if (!o.on['c']) {
      int fd = open(argv[i], O_WRONLY | O_CREAT, 0666);
      if (fd < 0) status = fail_errno(io, "touch", argv[i]);
      else close(fd);
    }
  }
  return status;
}

static void stat_format(const char *fmt, const char *path, const struct stat *st, FILE *out) {
  char mode[11], buf[64];
  for (const char *p = fmt; *p; p++) {
    if (*p == '\\' && p[1] == 'n') { fputc('\n', out); p++; continue; }
    if (*p == '\\' && p[1] == 't') { fputc('\t', out); p++; continue; }
    if (*p != '%' || !p[1]) { fputc(*p, out); continue; }
    switch (*++p) {
      case 'n': fputs(path, out); break;
      case 's': fprintf(out, "%lld", (long long)st->st_size); break;
      case 'F': fputs(type_name(st->st_mode), out); break;
      case 'a': fprintf(out, "%o", (unsigned)perms(st)); break;
      case 'A': mode_string(st, mode); fputs(mode, out); break;
      case 'f': fprintf(out, "%x", (unsigned)(st->st_mode & S_IFMT) | (unsigned)perms(st)); break;
      case 'i': fprintf(out, "%llu", (unsigned long long)st->st_ino); break;
      case 'h': fprintf(out, "%lu", (unsigned long)st->st_nlink); break;
      case 'u': fprintf(out, "%u", (unsigned)st->st_uid); break;
      case 'g': fprintf(out, "%u", (unsigned)st->st_gid); break;
      case 'X': fprintf(out, "%lld", (long long)st->st_atime); break;
      case 'Y': fprintf(out, "%lld", (long long)st->st_mtime); break;
      case 'Z': fprintf(out, "%lld", (long long)st->st_ctime); break;
      case 'y': format_time(st->st_mtime, buf, sizeof buf); fputs(buf, out); break;
      case '%': fputc('%', out); break;
      default: fputc('%', out); fputc(*p, out); break;
    }
  }
  fputc('\n', out);
}

int stat_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "Lc:", &o, io);
  if (i < 0) return 2;
  if (i >= argc) return fail(io, "stat", "missing operand");
  int status = 0;
  for (; i < argc; i++) {
    struct stat st;
    if ((o.on['L'] ? stat(argv[i], &st) : lstat(argv[i], &st)) != 0) {
      status = fail(io, "stat", "can't stat '%s': %s", argv[i], strerror(errno));
      continue;
    }
    if (o.arg['c']) {
      stat_format(o.arg['c'], argv[i], &st, io->out);
      continue;
    }
    char mode[11], when[32];
    mode_string(&st, mode);
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(io->out, "  File: %s", argv[i]);
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = readlink(argv[i], target, sizeof target - 1);
      if (n >= 0) target[n] = '\0', fprintf(io->out, " -> %s", target);
    }
    fprintf(io->out, "\n  Size: %lld\tType: %s\n", (long long)st.st_size, type_name(st.st_mode));
    fprintf(io->out, "Access: (%04o/%s)  Links: %lu  Inode: %llu\n", (unsigned)perms(&st), mode,
            (unsigned long)st.st_nlink, (unsigned long long)st.st_ino);
    fprintf(io->out, "Modify: %s.%09ld +0000\n", when, (long)st.st_mtim.tv_nsec);
  }
  return status;
}

typedef struct {
  const char *name;
  char type;
  int maxdepth, mindepth;
  Io *io;
  int status;
} Find;

static void find_walk(Find *f, const char *path, int depth) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    f->status = fail_errno(f->io, "find", path);
    return;
  }
  int match = depth >= f->mindepth;
  if (match && f->name) {
    char *trimmed = xstrdup(path);
    size_t n = strlen(trimmed);
    while (n > 1 && trimmed[n - 1] == '/') trimmed[--n] = '\0';
    match = fnmatch(f->name, base_name(trimmed), 0) == 0;
    free(trimmed);
  }
  if (match && f->type) {
    match = (f->type == 'f' && S_ISREG(st.st_mode)) || (f->type == 'd' && S_ISDIR(st.st_mode)) ||
            (f->type == 'l' && S_ISLNK(st.st_mode));
  }
  if (match) fprintf(f->io->out, "%s\n", path);
  if (!S_ISDIR(st.st_mode) || (f->maxdepth >= 0 && depth >= f->maxdepth)) return;
  StrList names = {0};
  if (list_dir(path, &names) != 0) {
    f->status = fail_errno(f->io, "find", path);
    return;
  }
  for (int i = 0; i < names.len; i++) {
    char *child = path_join(path, names.items[i]);
    find_walk(f, child, depth + 1);
    free(child);
  }
  list_free(&names);
}

int find_main(int argc, char **argv, Io *io) {
  Find f = {.maxdepth = -1, .io = io};
  int i = 1;
  StrList roots = {0};
  for (; i < argc && argv[i][0] != '-'; i++) list_push(&roots, xstrdup(argv[i]));
  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-print") == 0) continue;
    if (!v) return list_free(&roots), fail(io, "find", "missing argument to '%s'", a);
    if (strcmp(a, "-name") == 0) f.name = v;
    else if (strcmp(a, "-type") == 0) f.type = v[0];
    else if (strcmp(a, "-maxdepth") == 0) f.maxdepth = atoi(v);
    else if (strcmp(a, "-mindepth") == 0) f.mindepth = atoi(v);
    else return list_free(&roots), fail(io, "find", "unknown predicate '%s'", a);
    i++;
  }
  if (roots.len == 0) list_push(&roots, xstrdup("."));
  for (int k = 0; k < roots.len; k++) find_walk(&f, roots.items[k], 0);
  list_free(&roots);
  return f.status;
}

int pwd_main(int argc, char **argv, Io *io) {
  (void)argc;
  (void)argv;
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return fail_errno(io, "pwd", ".");
  fprintf(io->out, "%s\n", cwd);
  return 0;
}
