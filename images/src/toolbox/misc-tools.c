/* More tools: cut tr date uname hostname xargs which id whoami. */
#include "toolbox.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- cut ---- */

typedef struct {
  long from, to; /* 1-based, inclusive; to = 0 means to the end */
} Range;

static int parse_ranges(const char *spec, Range **out, int *n) {
  *out = NULL;
  *n = 0;
  const char *p = spec;
  while (*p) {
    Range r = {1, 0};
    char *end;
    if (*p != '-') {
      r.from = strtol(p, &end, 10);
      if (end == p || r.from < 1) return -1;
      p = end;
      r.to = r.from;
    }
    if (*p == '-') {
      p++;
      r.to = 0;
      if (isdigit((unsigned char)*p)) {
        r.to = strtol(p, &end, 10);
        p = end;
        if (r.to < r.from) return -1;
      }
    }
    *out = xrealloc(*out, sizeof(Range) * (size_t)(*n + 1));
    (*out)[(*n)++] = r;
    if (*p == ',') p++;
    else if (*p) return -1;
  }
  return *n > 0 ? 0 : -1;
}

static int in_ranges(const Range *r, int n, long i) {
  for (int k = 0; k < n; k++)
    if (i >= r[k].from && (r[k].to == 0 || i <= r[k].to)) return 1;
  return 0;
}

int cut_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "d:f:c:b:s", &o, io);
  if (i < 0) return 2;
  const char *list = o.arg['f'] ? o.arg['f'] : o.arg['c'] ? o.arg['c'] : o.arg['b'];
  Range *ranges;
  int nranges;
  if (!list || parse_ranges(list, &ranges, &nranges) != 0) return fail(io, "cut", "a list of fields (-f) or characters (-c) is required");
  char delim = o.arg['d'] ? o.arg['d'][0] : '\t';
  int status = 0;
  char *dash[] = {"-"};
  char **files = i < argc ? argv + i : dash;
  int n = i < argc ? argc - i : 1;
  char *line = NULL;
  size_t cap = 0;
  for (int k = 0; k < n; k++) {
    FILE *f = strcmp(files[k], "-") == 0 ? io->in : fopen(files[k], "rb");
    if (!f) { status = fail_errno(io, "cut", files[k]); continue; }
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
      if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
      if (!o.arg['f']) {
        for (long c = 0; c < len; c++)
          if (in_ranges(ranges, nranges, c + 1)) fputc(line[c], io->out);
      } else if (!strchr(line, delim)) {
        if (!o.on['s']) fputs(line, io->out);
        else continue;
      } else {
        long field = 1;
        int printed = 0;
        for (char *start = line;; field++) {
          char *end = strchr(start, delim);
          size_t flen = end ? (size_t)(end - start) : strlen(start);
          if (in_ranges(ranges, nranges, field)) {
            if (printed++) fputc(delim, io->out);
            fwrite(start, 1, flen, io->out);
          }
          if (!end) break;
          start = end + 1;
        }
      }
      fputc('\n', io->out);
    }
    if (f != io->in) fclose(f);
  }
  free(line);
  free(ranges);
  return status;
}

/* ---- tr ---- */

/* Expands a tr set (ranges a-z, escapes, [:class:]) into its characters; returns the count. */
static int expand_set(const char *s, unsigned char *out) {
  static const struct { const char *name; int (*is)(int); } classes[] = {
    {"[:alpha:]", isalpha}, {"[:digit:]", isdigit}, {"[:alnum:]", isalnum}, {"[:upper:]", isupper},
    {"[:lower:]", islower}, {"[:space:]", isspace}, {"[:punct:]", ispunct}, {"[:blank:]", isblank},
  };
  int n = 0;
  while (*s && n < 4096) {
    int matched = 0;
    for (size_t k = 0; k < sizeof classes / sizeof classes[0]; k++) {
      size_t len = strlen(classes[k].name);
      if (strncmp(s, classes[k].name, len) == 0) {
        for (int c = 0; c < 256 && n < 4096; c++)
          if (classes[k].is(c)) out[n++] = (unsigned char)c;
        s += len;
        matched = 1;
        break;
      }
    }
    if (matched) continue;
    unsigned char c = (unsigned char)*s++;
    if (c == '\\' && *s) {
      char e = *s++;
      c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? '\0' : (unsigned char)e;
    }
    if (*s == '-' && s[1]) {
      unsigned char hi = (unsigned char)s[1];
      s += 2;
      for (int x = c; x <= hi && n < 4096; x++) out[n++] = (unsigned char)x;
    } else {
      out[n++] = c;
    }
  }
  return n;
}

int tr_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "dsc", &o, io);
  if (i < 0) return 2;
  int nsets = argc - i;
  if (nsets < 1 || (!o.on['d'] && !o.on['s'] && nsets < 2)) return fail(io, "tr", "missing operand");
  static unsigned char set1[4096], set2[4096];
  int n1 = expand_set(argv[i], set1), n2 = nsets > 1 ? expand_set(argv[i + 1], set2) : 0;
  int map[256], del[256] = {0}, squeeze[256] = {0};
  for (int c = 0; c < 256; c++) map[c] = c;
  if (o.on['d']) {
    for (int k = 0; k < n1; k++) del[set1[k]] = 1;
    if (o.on['c'])
      for (int c = 0; c < 256; c++) del[c] = !del[c];
  } else if (n2 > 0) {
    for (int k = 0; k < n1; k++) map[set1[k]] = set2[k < n2 ? k : n2 - 1];
  }
  if (o.on['s']) {
    const unsigned char *sq = (o.on['d'] || n2 == 0) ? (o.on['d'] ? set2 : set1) : set2;
    int nsq = (o.on['d'] || n2 == 0) ? (o.on['d'] ? n2 : n1) : n2;
    for (int k = 0; k < nsq; k++) squeeze[sq[k]] = 1;
  }
  int c, last = -1;
  while ((c = getc(io->in)) != EOF) {
    if (del[c]) continue;
    int m = map[c];
    if (squeeze[m] && m == last) continue;
    fputc(m, io->out);
    last = m;
  }
  return 0;
}

/* ---- date, uname, hostname, id, whoami ---- */

int date_main(int argc, char **argv, Io *io) {
  time_t now = time(NULL);
  const char *format = "%a %b %e %H:%M:%S UTC %Y";
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '+') format = argv[i] + 1;
    else if (strcmp(argv[i], "-u") == 0 || strcmp(argv[i], "-R") == 0) {
      if (argv[i][1] == 'R') format = "%a, %d %b %Y %H:%M:%S +0000";
    } else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc && argv[i + 1][0] == '@') {
      now = (time_t)strtoll(argv[++i] + 1, NULL, 10);
    } else {
      return fail(io, "date", "unsupported argument '%s' (use +FORMAT, -u, -R, -d @SECONDS)", argv[i]);
    }
  }
  struct tm tm;
  gmtime_r(&now, &tm);
  char out[512];
  size_t n = strftime(out, sizeof out, format, &tm);
  fwrite(out, 1, n, io->out);
  fputc('\n', io->out);
  return 0;
}

static void host_name(char *out, size_t size) {
  const char *env = getenv("HOSTNAME");
  if (env && *env) {
    snprintf(out, size, "%s", env);
    return;
  }
  FILE *f = fopen("/etc/hostname", "r");
  if (f && fgets(out, (int)size, f)) {
    out[strcspn(out, "\n")] = '\0';
  } else {
    snprintf(out, size, "localhost");
  }
  if (f) fclose(f);
}

int hostname_main(int argc, char **argv, Io *io) {
  (void)argc;
  (void)argv;
  char name[256];
  host_name(name, sizeof name);
  fprintf(io->out, "%s\n", name);
  return 0;
}

int uname_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "asnrvmpio", &o, io);
  if (i < 0) return 2;
  char node[256];
  host_name(node, sizeof node);
  const char *fields[] = {"WASI", node, "preview1", "wasmbox", "wasm32"};
  const char letters[] = "snrvm";
  int any = 0;
  for (int k = 0; k < 5; k++) any |= o.on[(int)letters[k]];
  int printed = 0;
  for (int k = 0; k < 5; k++) {
    if (o.on['a'] || o.on[(int)letters[k]] || (!any && k == 0)) fprintf(io->out, printed++ ? " %s" : "%s", fields[k]);
  }
  fputc('\n', io->out);
  return 0;
}

int id_main(int argc, char **argv, Io *io) {
  (void)argc;
  (void)argv;
  fputs("uid=0(root) gid=0(root) groups=0(root)\n", io->out);
  return 0;
}

int whoami_main(int argc, char **argv, Io *io) {
  (void)argc;
  (void)argv;
  fputs("root\n", io->out);
  return 0;
}

/* ---- which, xargs ---- */

int which_main(int argc, char **argv, Io *io) {
  int status = argc > 1 ? 0 : 1;
  for (int i = 1; i < argc; i++) {
    if (find_applet(argv[i])) fprintf(io->out, "/bin/%s\n", argv[i]);
    else status = 1;
  }
  return status;
}

int xargs_main(int argc, char **argv, Io *io) {
  Opts o;
  int i = parse_opts(argc, argv, "n:", &o, io);
  if (i < 0) return 2;
  long per = o.arg['n'] ? atol(o.arg['n']) : 0;
  if (o.arg['n'] && per < 1) return fail(io, "xargs", "invalid number for -n");
  StrList items = {0};
  Buf word = {0};
  int c, quote = 0, have = 0;
  while ((c = getc(io->in)) != EOF) {
    if (quote) {
      if (c == quote) quote = 0;
      else buf_putc(&word, (char)c);
    } else if (c == '\'' || c == '"') {
      quote = c;
      have = 1;
    } else if (c == '\\') {
      int next = getc(io->in);
      if (next != EOF) buf_putc(&word, (char)next), have = 1;
    } else if (isspace(c)) {
      if (have || word.len) list_push(&items, buf_take(&word));
      have = 0;
    } else {
      buf_putc(&word, (char)c);
      have = 1;
    }
  }
  if (have || word.len) list_push(&items, buf_take(&word));
  free(word.data);

  char *echo[] = {"echo"};
  char **cmd = i < argc ? argv + i : echo;
  int ncmd = i < argc ? argc - i : 1;
  int status = 0, done = 0;
  Io child = {open_reader(xstrdup(""), 0), io->out, io->err};
  do {
    int take = per ? (int)(items.len - done < per ? items.len - done : per) : items.len - done;
    char **args = xmalloc(sizeof(char *) * (size_t)(ncmd + take + 1));
    memcpy(args, cmd, sizeof(char *) * (size_t)ncmd);
    if (take > 0) memcpy(args + ncmd, items.items + done, sizeof(char *) * (size_t)take);
    args[ncmd + take] = NULL;
    int rc = run_applet(ncmd + take, args, &child);
    free(args);
    if (rc == 127) {
      status = 127;
      break;
    }
    if (rc != 0) status = 123;
    done += take;
  } while (done < items.len);
  fclose(child.in);
  list_free(&items);
  return status;
}
