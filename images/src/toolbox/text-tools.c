/* Text and small tools: cat echo wc grep head tail sort uniq tee printf seq basename dirname
 * env true false sleep test/[. */
#include "toolbox.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Opens an operand for reading ("-" is standard input); NULL after a message. */
static FILE *open_input(const char *tool, const char *path, Io *io) {
  if (strcmp(path, "-") == 0) return io->in;
  FILE *f = fopen(path, "rb");
  if (!f) fail_errno(io, tool, path);
  return f;
}

static void close_input(FILE *f, Io *io) {
  if (f && f != io->in) fclose(f);
}

int cat_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "u", &o, io);
  if (i < 0) return 2;
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  int status = 0;
  char buf[16384];
  for (int k = 0; k < n; k++) {
    FILE *f = open_input("cat", files[k], io);
    if (!f) { status = 1; continue; }
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, got, io->out);
    if (ferror(f)) status = fail_errno(io, "cat", files[k]);
    close_input(f, io);
  }
  return status;
}

/* Writes s with backslash escapes; returns 1 when \c asked to stop all output. */
static int put_escaped(const char *s, FILE *out) {
  for (const char *p = s; *p; p++) {
    if (*p != '\\' || !p[1]) { fputc(*p, out); continue; }
    switch (*++p) {
      case 'n': fputc('\n', out); break;
      case 't': fputc('\t', out); break;
      case 'r': fputc('\r', out); break;
      case 'a': fputc('\a', out); break;
      case 'b': fputc('\b', out); break;
      case 'f': fputc('\f', out); break;
      case 'v': fputc('\v', out); break;
      case '\\': fputc('\\', out); break;
      case 'c': return 1;
      case '0': {
        int v = 0, k = 0;
        while (k < 3 && p[1] >= '0' && p[1] <= '7') v = v * 8 + (*++p - '0'), k++;
        fputc(v, out);
        break;
      }
      default: fputc('\\', out); fputc(*p, out); break;
    }
  }
  return 0;
}

int echo_main(int argc, char **argv, Io *io) {
  int newline = 1, escapes = 0, i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
    const char *p = argv[i] + 1;
    if (strspn(p, "neE") != strlen(p)) break;
    for (; *p; p++) {
      if (*p == 'n') newline = 0;
      else if (*p == 'e') escapes = 1;
      else escapes = 0;
    }
  }
  for (int first = i; i < argc; i++) {
    if (i > first) fputc(' ', io->out);
    if (escapes ? put_escaped(argv[i], io->out) : (fputs(argv[i], io->out), 0)) return 0;
  }
  if (newline) fputc('\n', io->out);
  return 0;
}

int wc_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "lwcm", &o, io);
  if (i < 0) return 2;
  int all = !o.on['l'] && !o.on['w'] && !o.on['c'] && !o.on['m'];
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  long long total[3] = {0, 0, 0};
  int status = 0;
  for (int k = 0; k < n; k++) {
    FILE *f = open_input("wc", files[k], io);
    if (!f) { status = 1; continue; }
    long long lines = 0, words = 0, bytes = 0;
    int in_word = 0, c;
    while ((c = getc(f)) != EOF) {
      bytes++;
      if (c == '\n') lines++;
      if (isspace(c)) in_word = 0;
      else if (!in_word) in_word = 1, words++;
    }
    close_input(f, io);
    long long counts[3] = {lines, words, bytes};
    const char *show = "lwc";
    int printed = 0;
    for (int j = 0; j < 3; j++) {
      total[j] += counts[j];
      if (all || o.on[(int)show[j]] || (j == 2 && o.on['m'])) fprintf(io->out, printed++ ? " %lld" : "%lld", counts[j]);
    }
    if (i < argc) fprintf(io->out, " %s", files[k]);
    fputc('\n', io->out);
  }
  if (n > 1) {
    const char *show = "lwc";
    int printed = 0;
    for (int j = 0; j < 3; j++)
      if (all || o.on[(int)show[j]] || (j == 2 && o.on['m'])) fprintf(io->out, printed++ ? " %lld" : "%lld", total[j]);
    fputs(" total\n", io->out);
  }
  return status;
}

typedef struct {
  Opts o;
  regex_t re;
  const char *fixed;
} Grep;

static int grep_match(Grep *g, const char *line) {
  int hit;
  if (g->fixed) {
    if (g->o.on['x']) hit = g->o.on['i'] ? strcasecmp(line, g->fixed) == 0 : strcmp(line, g->fixed) == 0;
    else hit = (g->o.on['i'] ? strcasestr(line, g->fixed) : strstr(line, g->fixed)) != NULL;
  } else {
    hit = regexec(&g->re, line, 0, NULL, 0) == 0;
  }
  return g->o.on['v'] ? !hit : hit;
}

int grep_main(int argc, char **argv, Io *io) {
  Grep g = {0};
  int i = parse_opts(argc, argv, "vcnilqFEGxshHe:", &g.o, io);
  if (i < 0) return 2;
  const char *pattern = g.o.arg['e'];
  if (!pattern) {
    if (i >= argc) return fail(io, "grep", "no pattern"), 2;
    pattern = argv[i++];
  }
  if (g.o.on['F']) {
    g.fixed = pattern;
  } else {
    int ere = g.o.on['E'];
    Buf b = {0};
    if (g.o.on['x']) buf_puts(&b, ere ? "^(" : "^\\(");
    buf_puts(&b, pattern);
    if (g.o.on['x']) buf_puts(&b, ere ? ")$" : "\\)$");
    int rc = regcomp(&g.re, b.data, REG_NOSUB | (ere ? REG_EXTENDED : 0) | (g.o.on['i'] ? REG_ICASE : 0));
    free(b.data);
    if (rc != 0) {
      char msg[256];
      regerror(rc, &g.re, msg, sizeof msg);
      return fail(io, "grep", "bad pattern '%s': %s", pattern, msg), 2;
    }
  }
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  int prefix = g.o.on['H'] || (n > 1 && !g.o.on['h']);
  int matched = 0, errors = 0;
  char *line = NULL;
  size_t cap = 0;
  for (int k = 0; k < n; k++) {
    FILE *f = g.o.on['s'] && strcmp(files[k], "-") != 0 ? fopen(files[k], "rb") : open_input("grep", files[k], io);
    if (!f) { errors = 1; continue; }
    long count = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
      if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
      lineno++;
      if (!grep_match(&g, line)) continue;
      count++;
      matched = 1;
      if (g.o.on['q']) break;
      if (g.o.on['l'] || g.o.on['c']) continue;
      if (prefix) fprintf(io->out, "%s:", files[k]);
      if (g.o.on['n']) fprintf(io->out, "%ld:", lineno);
      fprintf(io->out, "%s\n", line);
    }
    close_input(f, io);
    if (g.o.on['q'] && matched) break;
    if (g.o.on['c']) {
      if (prefix) fprintf(io->out, "%s:", files[k]);
      fprintf(io->out, "%ld\n", count);
    } else if (g.o.on['l'] && count) {
      fprintf(io->out, "%s\n", files[k]);
    }
  }
  free(line);
  if (!g.fixed) regfree(&g.re);
  if (errors && !(g.o.on['q'] && matched)) return 2;
  return matched ? 0 : 1;
}

/* -N is short for -n N in head and tail. */
static int line_count_opts(int argc, char **argv, Opts *o, Io *io, long *count, int *from_start) {
  static char *fixed[64];
  char nbuf[32];
  *from_start = 0;
  if (argc > 1 && argv[1][0] == '-' && isdigit((unsigned char)argv[1][1]) && argc < 63) {
    snprintf(nbuf, sizeof nbuf, "%s", argv[1] + 1);
    fixed[0] = argv[0];
    fixed[1] = "-n";
    fixed[2] = nbuf;
    for (int k = 2; k < argc; k++) fixed[k + 1] = argv[k];
    int i = parse_opts(argc + 1, fixed, "n:q", o, io);
    *count = atol(nbuf);
    return i < 0 ? -1 : i - 1;
  }
  int i = parse_opts(argc, argv, "n:q", o, io);
  if (i < 0) return -1;
  *count = 10;
  if (o->arg['n']) {
    const char *v = o->arg['n'];
    if (*v == '+') *from_start = 1, v++;
    char *end;
    *count = strtol(v, &end, 10);
    if (*end || *count < 0) return fail(io, base_name(argv[0]), "invalid number '%s'", o->arg['n']), -1;
  }
  return i;
}

int head_main(int argc, char **argv, Io *io) {
  Opts o;
  long count;
  int from_start;
  int i = line_count_opts(argc, argv, &o, io, &count, &from_start);
  if (i < 0) return 2;
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  int status = 0;
  for (int k = 0; k < n; k++) {
    FILE *f = open_input("head", files[k], io);
    if (!f) { status = 1; continue; }
    if (n > 1 && !o.on['q']) fprintf(io->out, "%s==> %s <==\n", k ? "\n" : "", files[k]);
    int c;
    long lines = 0;
    while (lines < count && (c = getc(f)) != EOF) {
      fputc(c, io->out);
      if (c == '\n') lines++;
    }
    close_input(f, io);
  }
  return status;
}

int tail_main(int argc, char **argv, Io *io) {
  Opts o;
  long count;
  int from_start;
  int i = line_count_opts(argc, argv, &o, io, &count, &from_start);
  if (i < 0) return 2;
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  int status = 0;
  for (int k = 0; k < n; k++) {
    FILE *f = open_input("tail", files[k], io);
    if (!f) { status = 1; continue; }
    if (n > 1 && !o.on['q']) fprintf(io->out, "%s==> %s <==\n", k ? "\n" : "", files[k]);
    size_t len;
    char *data = read_all(f, &len);
    close_input(f, io);
    if (!data) { status = fail_errno(io, "tail", files[k]); continue; }
    size_t start;
    if (from_start) {
      start = 0;
      for (long line = 1; line < count && start < len; start++)
        if (data[start] == '\n') line++;
    } else {
      start = len;
      long seen = 0;
      if (start > 0 && data[start - 1] == '\n') start--;
      while (start > 0) {
        if (data[start - 1] == '\n' && ++seen == count) break;
        start--;
      }
      if (count == 0) start = len;
    }
    fwrite(data + start, 1, len - start, io->out);
    free(data);
  }
  return status;
}

static int sort_numeric, sort_reverse;

static int compare_lines(const void *a, const void *b) {
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  int r;
  if (sort_numeric) {
    double dx = strtod(x, NULL), dy = strtod(y, NULL);
    r = dx < dy ? -1 : dx > dy ? 1 : strcmp(x, y);
  } else {
    r = strcmp(x, y);
  }
  return sort_reverse ? -r : r;
}

int sort_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "rnu", &o, io);
  if (i < 0) return 2;
  StrList lines = {0};
  int status = 0;
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  for (int k = 0; k < n; k++) {
    FILE *f = open_input("sort", files[k], io);
    if (!f) { status = 2; continue; }
    read_lines(f, &lines);
    close_input(f, io);
  }
  sort_numeric = o.on['n'];
  sort_reverse = o.on['r'];
  if (lines.len) qsort(lines.items, (size_t)lines.len, sizeof(char *), compare_lines);
  for (int k = 0; k < lines.len; k++) {
    if (o.on['u'] && k > 0 && compare_lines(&lines.items[k], &lines.items[k - 1]) == 0) continue;
    fprintf(io->out, "%s\n", lines.items[k]);
  }
  list_free(&lines);
  return status;
}

int uniq_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "cdu", &o, io);
  if (i < 0) return 2;
  FILE *f = i < argc ? open_input("uniq", argv[i], io) : io->in;
  if (!f) return 1;
  FILE *out = io->out;
  if (i + 1 < argc && !(out = fopen(argv[i + 1], "w"))) {
    close_input(f, io);
    return fail_errno(io, "uniq", argv[i + 1]);
  }
  StrList lines = {0};
  read_lines(f, &lines);
  close_input(f, io);
  for (int k = 0; k < lines.len;) {
    int run = 1;
    while (k + run < lines.len && strcmp(lines.items[k], lines.items[k + run]) == 0) run++;
    if ((!o.on['d'] || run > 1) && (!o.on['u'] || run == 1)) {
      if (o.on['c']) fprintf(out, "%7d %s\n", run, lines.items[k]);
      else fprintf(out, "%s\n", lines.items[k]);
    }
    k += run;
  }
  list_free(&lines);
  if (out != io->out) fclose(out);
  return 0;
}

int tee_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "a", &o, io);
  if (i < 0) return 2;
  int n = argc - i, status = 0;
  FILE **outs = xmalloc(sizeof(FILE *) * (size_t)(n + 1));
  for (int k = 0; k < n; k++) {
    outs[k] = fopen(argv[i + k], o.on['a'] ? "a" : "w");
    if (!outs[k]) status = fail_errno(io, "tee", argv[i + k]);
  }
  char buf[16384];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, io->in)) > 0) {
    fwrite(buf, 1, got, io->out);
    for (int k = 0; k < n; k++)
      if (outs[k]) fwrite(buf, 1, got, outs[k]);
  }
  for (int k = 0; k < n; k++)
    if (outs[k]) fclose(outs[k]);
  free(outs);
  return status;
}

int printf_main(int argc, char **argv, Io *io) {
  if (argc < 2) return fail(io, "printf", "missing format"), 2;
  const char *fmt = argv[1];
  int arg = 2, status = 0;
  do {
    int used = 0;
    for (const char *p = fmt; *p; p++) {
      if (*p == '\\') {
        char one[3] = {'\\', p[1], '\0'};
        if (!p[1]) { fputc('\\', io->out); break; }
        if (p[1] == '0') {
          int v = 0, k = 0;
          p++;
          while (k < 3 && p[1] >= '0' && p[1] <= '7') v = v * 8 + (*++p - '0'), k++;
          fputc(v, io->out);
        } else {
          if (put_escaped(one, io->out)) return status;
          p++;
        }
        continue;
      }
      if (*p != '%') { fputc(*p, io->out); continue; }
      if (p[1] == '%') { fputc('%', io->out); p++; continue; }
      const char *start = p++;
      while (*p && strchr("-+ #0", *p)) p++;
      while (isdigit((unsigned char)*p) || *p == '.') p++;
      if (!*p) { fputs(start, io->out); break; }
      char spec[32];
      size_t len = (size_t)(p - start);
      if (len > 20) len = 20;
      memcpy(spec, start, len);
      const char *value = arg < argc ? argv[arg++] : NULL;
      used = 1;
      char conv = *p;
      if (strchr("diouxXc", conv) && conv != 'c') {
        char *end = NULL;
        long long v = value ? (value[0] == '\'' || value[0] == '"' ? (unsigned char)value[1] : strtoll(value, &end, 0)) : 0;
        if (end && *end) status = fail(io, "printf", "%s: invalid number", value);
        memcpy(spec + len, "ll", 2);
        spec[len + 2] = conv;
        spec[len + 3] = '\0';
        fprintf(io->out, spec, v);
      } else if (strchr("feEgGaA", conv)) {
        spec[len] = conv;
        spec[len + 1] = '\0';
        fprintf(io->out, spec, value ? strtod(value, NULL) : 0.0);
      } else if (conv == 'c') {
        if (value && *value) fputc(value[0], io->out);
      } else if (conv == 'b') {
        if (value && put_escaped(value, io->out)) return status;
      } else {
        spec[len] = 's';
        spec[len + 1] = '\0';
        fprintf(io->out, spec, value ? value : "");
      }
    }
    if (!used) break;
  } while (arg < argc);
  return status;
}

int seq_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "s:w", &o, io);
  if (i < 0) return 2;
  int n = argc - i;
  if (n < 1 || n > 3) return fail(io, "seq", "usage: seq [-s SEP] [FIRST [INCREMENT]] LAST");
  double first = n > 1 ? strtod(argv[i], NULL) : 1, step = n > 2 ? strtod(argv[i + 1], NULL) : 1;
  double last = strtod(argv[argc - 1], NULL);
  if (step == 0) return fail(io, "seq", "zero increment");
  const char *sep = o.arg['s'] ? o.arg['s'] : "\n";
  int printed = 0;
  for (long k = 0;; k++) {
    double v = first + (double)k * step;
    if (step > 0 ? v > last + 1e-9 : v < last - 1e-9) break;
    if (printed++) fputs(sep, io->out);
    fprintf(io->out, "%g", v);
  }
  if (printed) fputc('\n', io->out);
  return 0;
}

int basename_main(int argc, char **argv, Io *io) {
  if (argc < 2) return fail(io, "basename", "missing operand");
  char *s = xstrdup(argv[1]);
  size_t n = strlen(s);
  while (n > 1 && s[n - 1] == '/') s[--n] = '\0';
  const char *b = n == 1 && s[0] == '/' ? "/" : base_name(s);
  size_t bl = strlen(b);
  if (argc > 2) {
    size_t sl = strlen(argv[2]);
    if (sl < bl && strcmp(b + bl - sl, argv[2]) == 0) bl -= sl;
  }
  fprintf(io->out, "%.*s\n", (int)bl, b);
  free(s);
  return 0;
}

int dirname_main(int argc, char **argv, Io *io) {
  if (argc < 2) return fail(io, "dirname", "missing operand");
  char *s = xstrdup(argv[1]);
  size_t n = strlen(s);
  while (n > 1 && s[n - 1] == '/') s[--n] = '\0';
  char *slash = strrchr(s, '/');
  if (!slash) fputs(".\n", io->out);
  else {
    while (slash > s && slash[-1] == '/') slash--;
    if (slash == s) fputs("/\n", io->out);
    else fprintf(io->out, "%.*s\n", (int)(slash - s), s);
  }
  free(s);
  return 0;
}

int env_main(int argc, char **argv, Io *io) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "-i") == 0) {
    clearenv();
    i++;
  }
  for (; i < argc && strchr(argv[i], '='); i++) {
    char *name = strndup(argv[i], (size_t)(strchr(argv[i], '=') - argv[i]));
    setenv(name, strchr(argv[i], '=') + 1, 1);
    free(name);
  }
  if (i < argc) return run_applet(argc - i, argv + i, io);
  for (char **e = environ; e && *e; e++) fprintf(io->out, "%s\n", *e);
  return 0;
}

int true_main(int argc, char **argv, Io *io) { (void)argc; (void)argv; (void)io; return 0; }
int false_main(int argc, char **argv, Io *io) { (void)argc; (void)argv; (void)io; return 1; }

int sleep_main(int argc, char **argv, Io *io) {
  if (argc < 2) return fail(io, "sleep", "missing operand");
  double total = 0;
  for (int i = 1; i < argc; i++) {
    char *end;
    double v = strtod(argv[i], &end);
    if (*end == 'm') v *= 60;
    else if (*end == 'h') v *= 3600;
    else if (*end && *end != 's') return fail(io, "sleep", "invalid time interval '%s'", argv[i]);
    total += v;
  }
  fflush(io->out);
  struct timespec ts = {(time_t)total, (long)((total - (double)(time_t)total) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

/* ---- test / [ ---- */

typedef struct {
  char **argv;
  int pos, end;
  int error;
  Io *io;
} Test;

static int test_or(Test *t);

static int file_test(char op, const char *path) {
  struct stat st;
  if (op == 'L' || op == 'h') return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
  if (stat(path, &st) != 0) return 0;
  switch (op) {
    case 'e': return 1;
    case 'f': return S_ISREG(st.st_mode);
    case 'd': return S_ISDIR(st.st_mode);
    case 's': return st.st_size > 0;
    case 'r': return access(path, R_OK) == 0;
    case 'w': return access(path, W_OK) == 0;
    case 'x': return access(path, X_OK) == 0;
    case 'p': return S_ISFIFO(st.st_mode);
    case 'c': return S_ISCHR(st.st_mode);
    case 'b': return S_ISBLK(st.st_mode);
    default: return 0;
  }
}

static int is_binary_op(const char *s) {
  static const char *ops[] = {"=", "==", "!=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge", "<", ">", NULL};
  for (int i = 0; ops[i]; i++)
    if (strcmp(s, ops[i]) == 0) return 1;
  return 0;
}

static long long test_number(Test *t, const char *s) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end) {
    fail(t->io, "test", "%s: integer expression expected", s);
    t->error = 1;
  }
  return v;
}

static int test_primary(Test *t) {
  if (t->pos >= t->end) {
    t->error = 1;
    return 0;
  }
  char *a = t->argv[t->pos];
  if (strcmp(a, "!") == 0 && t->pos + 1 < t->end) {
    t->pos++;
    return !test_primary(t);
  }
  if (strcmp(a, "(") == 0 && t->pos + 1 < t->end) {
    t->pos++;
    int v = test_or(t);
    if (t->pos >= t->end || strcmp(t->argv[t->pos], ")") != 0) t->error = 1;
    t->pos++;
    return v;
  }
  if (t->pos + 2 < t->end && is_binary_op(t->argv[t->pos + 1])) {
    const char *op = t->argv[t->pos + 1], *b = t->argv[t->pos + 2];
    t->pos += 3;
    if (strcmp(op, "=") == 0 || strcmp(op, "==") == 0) return strcmp(a, b) == 0;
    if (strcmp(op, "!=") == 0) return strcmp(a, b) != 0;
    if (strcmp(op, "<") == 0) return strcmp(a, b) < 0;
    if (strcmp(op, ">") == 0) return strcmp(a, b) > 0;
    long long x = test_number(t, a), y = test_number(t, b);
    if (strcmp(op, "-eq") == 0) return x == y;
    if (strcmp(op, "-ne") == 0) return x != y;
    if (strcmp(op, "-lt") == 0) return x < y;
    if (strcmp(op, "-le") == 0) return x <= y;
    if (strcmp(op, "-gt") == 0) return x > y;
    return x >= y;
  }
  if (a[0] == '-' && a[1] && !a[2] && t->pos + 1 < t->end && strchr("efdsrwxLhpcbzn", a[1])) {
    const char *v = t->argv[t->pos + 1];
    t->pos += 2;
    if (a[1] == 'z') return v[0] == '\0';
    if (a[1] == 'n') return v[0] != '\0';
    return file_test(a[1], v);
  }
  t->pos++;
  return a[0] != '\0';
}

static int test_and(Test *t) {
  int v = test_primary(t);
  while (t->pos < t->end && strcmp(t->argv[t->pos], "-a") == 0) {
    t->pos++;
    int w = test_primary(t);
    v = v && w;
  }
  return v;
}

static int test_or(Test *t) {
  int v = test_and(t);
  while (t->pos < t->end && strcmp(t->argv[t->pos], "-o") == 0) {
    t->pos++;
    int w = test_and(t);
    v = v || w;
  }
  return v;
}

int test_main(int argc, char **argv, Io *io) {
  int end = argc;
  if (strcmp(base_name(argv[0]), "[") == 0) {
    if (argc < 2 || strcmp(argv[argc - 1], "]") != 0) return fail(io, "[", "missing ]"), 2;
    end--;
  }
  if (end <= 1) return 1;
  Test t = {argv, 1, end, 0, io};
  int v = test_or(&t);
  if (t.error || t.pos != t.end) {
    if (!t.error) fail(io, "test", "unexpected argument '%s'", argv[t.pos]);
    return 2;
  }
  return v ? 0 : 1;
}
