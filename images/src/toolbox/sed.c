/*
 * sed: a small stream editor.
 *   sed [-n] [-E|-r] [-i] [-e SCRIPT]... [SCRIPT] [FILE...]
 * Commands, separated by `;` or newlines, each with an optional address (N, $, /RE/) or range
 * (ADDR,ADDR) and an optional `!`: s/RE/REPLACEMENT/[g][p][N][i] (& and \1-\9 in REPLACEMENT, any
 * delimiter), d, p, q, =, y/SRC/DST/.
 */
#include "toolbox.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { A_NONE, A_LINE, A_LAST, A_REGEX };

typedef struct {
  int kind;
  long line;
  regex_t re;
} Address;

typedef struct {
  Address a1, a2;
  int naddr, negate, in_range;
  char cmd;
  regex_t re;   /* s */
  char *repl;   /* s */
  int global, print, nth;
  unsigned char from[256], to[256]; /* y */
  int ny;
} SedCmd;

typedef struct {
  SedCmd *cmds;
  int n;
  int quiet, ere;
  long lineno;
  int quit;
} Sed;

/* Reads text up to an unescaped delimiter; `\delim` becomes delim, other escapes are kept. */
static char *read_until(const char **p, char delim, int keep_escapes) {
  Buf b = {0};
  const char *s = *p;
  while (*s && *s != delim) {
    if (*s == '\\' && s[1]) {
      if (s[1] == delim) buf_putc(&b, delim);
      else if (s[1] == 'n' && !keep_escapes) buf_putc(&b, '\n');
      else { buf_putc(&b, '\\'); buf_putc(&b, s[1]); }
      s += 2;
    } else {
      buf_putc(&b, *s++);
    }
  }
  if (*s != delim) {
    free(b.data);
    return NULL;
  }
  *p = s + 1;
  return buf_take(&b);
}

static int compile_re(regex_t *re, const char *pattern, int flags, Io *io) {
  int rc = regcomp(re, pattern, flags);
  if (rc != 0) {
    char msg[256];
    regerror(rc, re, msg, sizeof msg);
    fail(io, "sed", "bad regex '%s': %s", pattern, msg);
    return -1;
  }
  return 0;
}

static int parse_address(const char **p, Address *a, Sed *sed, Io *io) {
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    a->kind = A_LINE;
    a->line = strtol(s, (char **)&s, 10);
  } else if (*s == '$') {
    a->kind = A_LAST;
    s++;
  } else if (*s == '/' || (*s == '\\' && s[1])) {
    char delim = *s == '\\' ? s[1] : '/';
    s += *s == '\\' ? 2 : 1;
    char *pattern = read_until(&s, delim, 1);
    if (!pattern) return fail(io, "sed", "unterminated address regex"), -1;
    int rc = compile_re(&a->re, pattern, REG_NOSUB | (sed->ere ? REG_EXTENDED : 0), io);
    free(pattern);
    if (rc) return -1;
    a->kind = A_REGEX;
  } else {
    a->kind = A_NONE;
  }
  *p = s;
  return 0;
}

static int parse_script(Sed *sed, const char *script, Io *io) {
  const char *s = script;
  for (;;) {
    while (*s && (isspace((unsigned char)*s) || *s == ';')) s++;
    if (!*s) return 0;
    SedCmd c;
    memset(&c, 0, sizeof c);
    if (parse_address(&s, &c.a1, sed, io)) return -1;
    if (c.a1.kind != A_NONE) c.naddr = 1;
    if (c.naddr && *s == ',') {
      s++;
      if (parse_address(&s, &c.a2, sed, io)) return -1;
      if (c.a2.kind == A_NONE) return fail(io, "sed", "missing address after ','"), -1;
      c.naddr = 2;
    }
    while (*s == ' ') s++;
    if (*s == '!') c.negate = 1, s++;
    while (*s == ' ') s++;
    c.cmd = *s ? *s++ : '\0';
    switch (c.cmd) {
      case 'd': case 'p': case 'q': case '=':
        break;
      case 's': {
        char delim = *s ? *s++ : '/';
        char *pattern = read_until(&s, delim, 1);
        char *repl = pattern ? read_until(&s, delim, 1) : NULL;
        if (!pattern || !repl) {
          free(pattern);
          return fail(io, "sed", "unterminated 's' command"), -1;
        }
        int icase = 0;
        for (; *s && *s != ';' && *s != '\n' && *s != '}' && !isspace((unsigned char)*s); s++) {
          if (*s == 'g') c.global = 1;
          else if (*s == 'p') c.print = 1;
          else if (*s == 'i' || *s == 'I') icase = 1;
          else if (isdigit((unsigned char)*s)) c.nth = c.nth * 10 + (*s - '0');
          else {
            free(pattern);
            free(repl);
            return fail(io, "sed", "unknown option to 's': %c", *s), -1;
          }
        }
        int rc = compile_re(&c.re, pattern, (sed->ere ? REG_EXTENDED : 0) | (icase ? REG_ICASE : 0), io);
        free(pattern);
        if (rc) {
          free(repl);
          return -1;
        }
        c.repl = repl;
        break;
      }
      case 'y': {
        char delim = *s ? *s++ : '/';
        char *from = read_until(&s, delim, 0);
        char *to = from ? read_until(&s, delim, 0) : NULL;
        if (!from || !to || strlen(from) != strlen(to)) {
          free(from);
          free(to);
          return fail(io, "sed", "'y' needs two strings of the same length"), -1;
        }
        c.ny = (int)strlen(from);
        if (c.ny > 255) c.ny = 255;
        memcpy(c.from, from, (size_t)c.ny);
        memcpy(c.to, to, (size_t)c.ny);
        free(from);
        free(to);
        break;
      }
      default:
        return fail(io, "sed", "unknown command: '%c'", c.cmd ? c.cmd : ' '), -1;
    }
    sed->cmds = xrealloc(sed->cmds, sizeof(SedCmd) * (size_t)(sed->n + 1));
    sed->cmds[sed->n++] = c;
  }
}

static int address_matches(Address *a, const char *line, long lineno, int last) {
  switch (a->kind) {
    case A_LINE: return lineno == a->line;
    case A_LAST: return last;
    case A_REGEX: return regexec(&a->re, line, 0, NULL, 0) == 0;
    default: return 1;
  }
}

static int selected(SedCmd *c, const char *line, long lineno, int last) {
  int hit;
  if (c->naddr == 0) {
    hit = 1;
  } else if (c->naddr == 1) {
    hit = address_matches(&c->a1, line, lineno, last);
  } else if (c->in_range) {
    hit = 1;
    if (c->a2.kind == A_LINE ? lineno >= c->a2.line : address_matches(&c->a2, line, lineno, last)) c->in_range = 0;
  } else {
    hit = address_matches(&c->a1, line, lineno, last);
    if (hit) c->in_range = !(c->a2.kind == A_LINE ? lineno >= c->a2.line : 0) && !(c->a2.kind == A_LAST && last);
  }
  return c->negate ? !hit : hit;
}

/* Applies s///; returns 1 when a substitution was made (the result replaces *space). */
static int substitute(SedCmd *c, char **space) {
  const char *s = *space;
  Buf out = {0};
  regmatch_t m[10];
  size_t off = 0, len = strlen(s);
  int count = 0, made = 0;
  while (off <= len && regexec(&c->re, s + off, 10, m, off ? REG_NOTBOL : 0) == 0) {
    count++;
    size_t so = off + (size_t)m[0].rm_so, eo = off + (size_t)m[0].rm_eo;
    buf_putn(&out, s + off, so - off);
    if ((c->nth == 0 || count == c->nth) && (c->global || c->nth || count == 1)) {
      made = 1;
      for (const char *r = c->repl; *r; r++) {
        if (*r == '&') {
          buf_putn(&out, s + so, eo - so);
        } else if (*r == '\\' && r[1] >= '1' && r[1] <= '9') {
          int k = r[1] - '0';
          if (m[k].rm_so >= 0) buf_putn(&out, s + off + m[k].rm_so, (size_t)(m[k].rm_eo - m[k].rm_so));
          r++;
        } else if (*r == '\\' && r[1]) {
          r++;
          buf_putc(&out, *r == 'n' ? '\n' : *r == 't' ? '\t' : *r);
        } else {
          buf_putc(&out, *r);
        }
      }
    } else {
      buf_putn(&out, s + so, eo - so);
    }
    if (eo == so) { /* an empty match: keep one character and go on */
      if (so < len) buf_putc(&out, s[so]);
      off = so + 1;
    } else {
      off = eo;
    }
    if (made && !c->global && (c->nth == 0 || count >= c->nth)) break;
  }
  if (!made) {
    free(out.data);
    return 0;
  }
  if (off < len) buf_puts(&out, s + off);
  free(*space);
  *space = buf_take(&out);
  return 1;
}

/* Runs the script over one line; returns 0 when the line was deleted. */
static int run_line(Sed *sed, char **space, int last, FILE *out) {
  for (int i = 0; i < sed->n; i++) {
    SedCmd *c = &sed->cmds[i];
    if (!selected(c, *space, sed->lineno, last)) continue;
    switch (c->cmd) {
      case 'd': return 0;
      case 'p': fprintf(out, "%s\n", *space); break;
      case '=': fprintf(out, "%ld\n", sed->lineno); break;
      case 'q': sed->quit = 1; return 1;
      case 's':
        if (substitute(c, space) && c->print) fprintf(out, "%s\n", *space);
        break;
      case 'y':
        for (char *p = *space; *p; p++) {
          void *hit = memchr(c->from, *p, (size_t)c->ny);
          if (hit) *p = (char)c->to[(unsigned char *)hit - c->from];
        }
        break;
    }
  }
  return 1;
}

/* Streams `in` through the script. `last_input` says whether no file follows this one. */
static void run_stream(Sed *sed, FILE *in, FILE *out, int last_input) {
  char *line = NULL, *next = NULL;
  size_t cap = 0, next_cap = 0;
  ssize_t n = getline(&line, &cap, in);
  while (n >= 0 && !sed->quit) {
    ssize_t m = getline(&next, &next_cap, in);
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    sed->lineno++;
    char *space = xstrdup(line);
    if (run_line(sed, &space, m < 0 && last_input, out) && !sed->quiet) fprintf(out, "%s\n", space);
    free(space);
    char *t = line; line = next; next = t;
    size_t tc = cap; cap = next_cap; next_cap = tc;
    n = m;
  }
  free(line);
  free(next);
}

int sed_main(int argc, char **argv, Io *io) {
  Sed sed = {0};
  StrList scripts = {0};
  int i = 1, in_place = 0;
  /* -e may repeat, so options are read here rather than with parse_opts. */
  for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
    if (strcmp(argv[i], "--") == 0) { i++; break; }
    for (const char *p = argv[i] + 1; *p; p++) {
      if (*p == 'n') sed.quiet = 1;
      else if (*p == 'E' || *p == 'r') sed.ere = 1;
      else if (*p == 'i') in_place = 1;
      else if (*p == 'e') {
        const char *v = p[1] ? p + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return fail(io, "sed", "option -e needs a script"), 2;
        list_push(&scripts, xstrdup(v));
        break;
      } else {
        list_free(&scripts);
        return fail(io, "sed", "unknown option -%c", *p), 2;
      }
    }
  }
  if (scripts.len == 0) {
    if (i >= argc) return fail(io, "sed", "no script"), 2;
    list_push(&scripts, xstrdup(argv[i++]));
  }
  int status = 0;
  for (int k = 0; k < scripts.len && status == 0; k++)
    if (parse_script(&sed, scripts.items[k], io)) status = 2;
  list_free(&scripts);
  if (status) return status;

  if (i >= argc) {
    if (in_place) return fail(io, "sed", "-i needs files"), 2;
    run_stream(&sed, io->in, io->out, 1);
    return 0;
  }
  for (int k = i; k < argc && !sed.quit; k++) {
    FILE *in = strcmp(argv[k], "-") == 0 ? io->in : fopen(argv[k], "rb");
    if (!in) { status = fail_errno(io, "sed", argv[k]); continue; }
    if (!in_place) {
      run_stream(&sed, in, io->out, k == argc - 1);
    } else {
      Buf name = {0};
      buf_puts(&name, argv[k]);
      buf_puts(&name, ".sed-tmp");
      FILE *out = fopen(name.data, "wb");
      if (!out) {
        status = fail_errno(io, "sed", name.data);
      } else {
        sed.lineno = 0;
        for (int c = 0; c < sed.n; c++) sed.cmds[c].in_range = 0;
        run_stream(&sed, in, out, 1);
        if (fclose(out) != 0 || rename(name.data, argv[k]) != 0) status = fail_errno(io, "sed", argv[k]);
      }
      free(name.data);
    }
    if (in != io->in) fclose(in);
  }
  return status;
}
