/*
 * toolbox: dispatches on basename(argv[0]) (`sh`, `ls`, ... are symlinks to it), or on
 * argv[1] when called as `toolbox NAME ARGS...`. Shared helpers live here too.
 */
#include "toolbox.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *name;
  AppletFn fn;
} Applet;

/* Sorted by name; images/build.mjs links each one to /bin/NAME. */
static const Applet APPLETS[] = {
  {"[", test_main}, {"basename", basename_main}, {"cat", cat_main}, {"cp", cp_main},
  {"cut", cut_main}, {"date", date_main}, {"dirname", dirname_main}, {"echo", echo_main},
  {"env", env_main}, {"false", false_main}, {"find", find_main}, {"grep", grep_main},
  {"head", head_main}, {"hostname", hostname_main}, {"id", id_main}, {"ln", ln_main},
  {"ls", ls_main}, {"mkdir", mkdir_main}, {"mv", mv_main}, {"printf", printf_main},
  {"pwd", pwd_main}, {"rm", rm_main}, {"rmdir", rmdir_main}, {"seq", seq_main},
  {"sed", sed_main}, {"sh", sh_main}, {"sleep", sleep_main}, {"sort", sort_main}, {"stat", stat_main},
  {"tail", tail_main}, {"tee", tee_main}, {"test", test_main}, {"touch", touch_main},
  {"tr", tr_main}, {"true", true_main}, {"uname", uname_main}, {"uniq", uniq_main},
  {"wc", wc_main}, {"which", which_main}, {"whoami", whoami_main}, {"xargs", xargs_main},
};
#define APPLET_COUNT (sizeof APPLETS / sizeof APPLETS[0])

AppletFn find_applet(const char *name) {
  for (size_t i = 0; i < APPLET_COUNT; i++)
    if (strcmp(APPLETS[i].name, name) == 0) return APPLETS[i].fn;
  return NULL;
}

int run_applet(int argc, char **argv, Io *io) {
  AppletFn fn = find_applet(base_name(argv[0]));
  if (!fn) {
    fprintf(io->err, "%s: not found\n", argv[0]);
    return 127;
  }
  int status = fn(argc, argv, io);
  fflush(io->out);
  fflush(io->err);
  return status;
}

static void usage(FILE *f) {
  fprintf(f, "usage: toolbox NAME [ARGS...]  (or call it through a link named NAME)\napplets:");
  for (size_t i = 0; i < APPLET_COUNT; i++) fprintf(f, " %s", APPLETS[i].name);
  fprintf(f, "\n");
}

/* WASI has no process working directory; the runtime passes WorkingDir as PWD. */
static void enter_pwd(void) {
  const char *pwd = getenv("PWD");
  if (pwd && *pwd && chdir(pwd) != 0) fprintf(stderr, "toolbox: cannot enter PWD %s: %s\n", pwd, strerror(errno));
}

int main(int argc, char **argv) {
  enter_pwd();
  Io io = {stdin, stdout, stderr};
  if (argc < 1) {
    usage(stderr);
    return 2;
  }
  const char *name = base_name(argv[0]);
  int status;
  if (strcmp(name, "toolbox") == 0 || strstr(name, ".wasm")) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
      usage(stdout);
      status = 0;
    } else if (strcmp(argv[1], "--list") == 0) {
      for (size_t i = 0; i < APPLET_COUNT; i++) printf("%s\n", APPLETS[i].name);
      status = 0;
    } else {
      status = run_applet(argc - 1, argv + 1, &io);
    }
  } else {
    status = run_applet(argc, argv, &io);
  }
  fflush(stdout);
  fflush(stderr);
  return status & 0xff;
}

/* ---- helpers ---- */

int parse_opts(int argc, char **argv, const char *spec, Opts *o, Io *io) {
  memset(o, 0, sizeof *o);
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') break;
    if (strcmp(a, "--") == 0) return i + 1;
    for (const char *p = a + 1; *p; p++) {
      const char *s = (unsigned char)*p < 128 ? strchr(spec, *p) : NULL;
      if (!s || *p == ':') {
        fprintf(io->err, "%s: unknown option -%c\n", base_name(argv[0]), *p);
        return -1;
      }
      o->on[(int)*p] = 1;
      if (s[1] == ':') {
        if (p[1]) {
          o->arg[(int)*p] = p + 1;
        } else if (i + 1 < argc) {
          o->arg[(int)*p] = argv[++i];
        } else {
          fprintf(io->err, "%s: option -%c needs a value\n", base_name(argv[0]), *p);
          return -1;
        }
        break;
      }
    }
  }
  return i;
}

int fail(Io *io, const char *tool, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(io->err, "%s: ", tool);
  vfprintf(io->err, fmt, ap);
  fputc('\n', io->err);
  va_end(ap);
  return 1;
}

int fail_errno(Io *io, const char *tool, const char *path) {
  return fail(io, tool, "%s: %s", path, strerror(errno));
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fputs("toolbox: out of memory\n", stderr);
    exit(70);
  }
  return p;
}

void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) {
    fputs("toolbox: out of memory\n", stderr);
    exit(70);
  }
  return p;
}

char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

char *path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  int slash = a > 0 && dir[a - 1] != '/';
  char *p = xmalloc(a + slash + b + 1);
  memcpy(p, dir, a);
  if (slash) p[a] = '/';
  memcpy(p + a + slash, name, b + 1);
  return p;
}

const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

void buf_putn(Buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->data = xrealloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}
void buf_putc(Buf *b, char c) { buf_putn(b, &c, 1); }
void buf_puts(Buf *b, const char *s) { buf_putn(b, s, strlen(s)); }
char *buf_take(Buf *b) {
  char *s = b->data ? b->data : xstrdup("");
  b->data = NULL;
  b->len = b->cap = 0;
  return s;
}

void list_push(StrList *l, char *s) {
  if (l->len + 1 >= l->cap) {
    l->cap = l->cap ? l->cap * 2 : 8;
    l->items = xrealloc(l->items, sizeof(char *) * (size_t)l->cap);
  }
  l->items[l->len++] = s;
  l->items[l->len] = NULL;
}

void list_free(StrList *l) {
  for (int i = 0; i < l->len; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->len = l->cap = 0;
}

typedef struct {
  char *data;
  size_t len, pos;
} Reader;

static ssize_t reader_read(void *cookie, char *out, size_t n) {
  Reader *r = cookie;
  size_t left = r->len - r->pos;
  if (n > left) n = left;
  memcpy(out, r->data + r->pos, n);
  r->pos += n;
  return (ssize_t)n;
}

static int reader_close(void *cookie) {
  Reader *r = cookie;
  free(r->data);
  free(r);
  return 0;
}

FILE *open_reader(char *data, size_t len) {
  Reader *r = xmalloc(sizeof *r);
  r->data = data;
  r->len = len;
  r->pos = 0;
  cookie_io_functions_t fns = {reader_read, NULL, NULL, reader_close};
  return fopencookie(r, "r", fns);
}

static ssize_t discard_write(void *cookie, const char *data, size_t n) {
  (void)cookie;
  (void)data;
  return (ssize_t)n;
}

FILE *open_discard(void) {
  cookie_io_functions_t fns = {NULL, discard_write, NULL, NULL};
  return fopencookie(NULL, "w", fns);
}

char *read_all(FILE *f, size_t *len) {
  Buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_putn(&b, chunk, n);
  if (ferror(f)) {
    free(b.data);
    return NULL;
  }
  *len = b.len;
  return buf_take(&b);
}

char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *data = read_all(f, len);
  int saved = errno;
  fclose(f);
  errno = saved;
  return data;
}

void read_lines(FILE *f, StrList *lines) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) >= 0) {
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    list_push(lines, xstrdup(line));
  }
  free(line);
}
