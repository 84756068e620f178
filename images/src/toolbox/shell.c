/*
 * sh: a small POSIX-flavoured shell that runs everything inside this one process.
 *   sh -c STRING [NAME [ARGS...]] | sh SCRIPT [ARGS...] | sh (reads commands from stdin)
 * Lists with `;`, newlines, `&&`, `||`; pipelines (`|`, `!`) run stage after stage with an
 * in-memory buffer between them; redirections `<`, `>`, `>>`, `N>`, `N>&M`, `N>&-`;
 * quoting '...', "...", backslash; expansions $VAR ${VAR} ${VAR:-w} ${#VAR} $? $# $0-$9 $@ $*
 * $(...) `...`; field splitting and pathname globbing of unquoted words; NAME=value prefixes.
 * Builtins: cd export unset exit read . source exec : plus every toolbox applet.
 * Not supported: if/for/while/case, functions, here-documents, background jobs.
 */
#include "toolbox.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  int status;   /* $? */
  int exiting;  /* `exit` ran: stop */
  int argc;     /* positional parameters, argv[0] is $0 */
  char **argv;
} Shell;

enum { T_EOF, T_WORD, T_SEMI, T_NEWLINE, T_AND, T_OR, T_PIPE, T_AMP, T_REDIR, T_ERROR };
enum { R_IN, R_OUT, R_APPEND, R_DUP };

typedef struct {
  int type;
  char *text; /* T_WORD: the raw word, quotes kept; T_ERROR: the message */
  int fd;     /* T_REDIR: the fd redirected */
  int op;     /* T_REDIR: R_* */
} Token;

typedef struct {
  const char *s;
  size_t pos;
} Lexer;

typedef struct {
  int fd, op;
  char *target; /* raw word */
} Redir;

typedef struct {
  StrList words;
  Redir *redirs;
  int nredirs;
} Command;

static int run_source(Shell *sh, const char *src, Io *io);

/* ---- lexing ---- */

static int is_meta(char c) { return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '<' || c == '>'; }

/* Index just past the `)` closing a `$(` whose `(` is at s[i-1]; or -1. */
static long skip_subst(const char *s, size_t i) {
  int depth = 1;
  while (s[i]) {
    char c = s[i];
    if (c == '\\' && s[i + 1]) {
      i += 2;
    } else if (c == '\'') {
      const char *q = strchr(s + i + 1, '\'');
      if (!q) return -1;
      i = (size_t)(q - s) + 1;
    } else if (c == '"') {
      i++;
      while (s[i] && s[i] != '"') i += (s[i] == '\\' && s[i + 1]) ? 2 : 1;
      if (!s[i]) return -1;
      i++;
    } else if (c == '(') {
      depth++;
      i++;
    } else if (c == ')') {
      if (--depth == 0) return (long)i + 1;
      i++;
    } else {
      i++;
    }
  }
  return -1;
}

/* Index just past the word starting at s[i]; or -1 (message in *err) when a quote is open. */
static long scan_word(const char *s, size_t i, const char **err) {
  while (s[i] && !is_meta(s[i])) {
    char c = s[i];
    if (c == '\\') {
      i += s[i + 1] ? 2 : 1;
    } else if (c == '\'') {
      const char *q = strchr(s + i + 1, '\'');
      if (!q) return *err = "unterminated quote '", -1;
      i = (size_t)(q - s) + 1;
    } else if (c == '"') {
      i++;
      while (s[i] && s[i] != '"') {
        if (s[i] == '\\' && s[i + 1]) {
          i += 2;
        } else if (s[i] == '$' && s[i + 1] == '(') {
          long end = skip_subst(s, i + 2);
          if (end < 0) return *err = "unterminated $(", -1;
          i = (size_t)end;
        } else if (s[i] == '`') {
          const char *q = strchr(s + i + 1, '`');
          if (!q) return *err = "unterminated `", -1;
          i = (size_t)(q - s) + 1;
        } else {
          i++;
        }
      }
      if (!s[i]) return *err = "unterminated quote \"", -1;
      i++;
    } else if (c == '$' && s[i + 1] == '(') {
      long end = skip_subst(s, i + 2);
      if (end < 0) return *err = "unterminated $(", -1;
      i = (size_t)end;
    } else if (c == '`') {
      const char *q = strchr(s + i + 1, '`');
      if (!q) return *err = "unterminated `", -1;
      i = (size_t)(q - s) + 1;
    } else {
      i++;
    }
  }
  return (long)i;
}

static void next_token(Lexer *lx, Token *t) {
  const char *s = lx->s;
  memset(t, 0, sizeof *t);
  for (;;) {
    while (s[lx->pos] == ' ' || s[lx->pos] == '\t') lx->pos++;
    if (s[lx->pos] == '\\' && s[lx->pos + 1] == '\n') {
      lx->pos += 2;
      continue;
    }
    if (s[lx->pos] == '#') {
      while (s[lx->pos] && s[lx->pos] != '\n') lx->pos++;
    }
    break;
  }
  size_t p = lx->pos;
  char c = s[p];
  if (!c) {
    t->type = T_EOF;
    return;
  }
  if (c == '\n') { t->type = T_NEWLINE; lx->pos++; return; }
  if (c == ';') { t->type = T_SEMI; lx->pos++; return; }
  if (c == '&') {
    if (s[p + 1] == '&') { t->type = T_AND; lx->pos += 2; } else { t->type = T_AMP; lx->pos++; }
    return;
  }
  if (c == '|') {
    if (s[p + 1] == '|') { t->type = T_OR; lx->pos += 2; } else { t->type = T_PIPE; lx->pos++; }
    return;
  }
  /* An IO number: digits right before < or >. */
  size_t q = p;
  while (isdigit((unsigned char)s[q])) q++;
  int fd = -1;
  if (q > p && (s[q] == '<' || s[q] == '>') && q - p < 3) {
    fd = atoi(s + p);
    p = q;
    c = s[p];
  }
  if (c == '<' || c == '>') {
    t->type = T_REDIR;
    if (c == '<') {
      t->fd = fd < 0 ? 0 : fd;
      if (s[p + 1] == '&') { t->op = R_DUP; p += 2; } else { t->op = R_IN; p += 1; }
    } else {
      t->fd = fd < 0 ? 1 : fd;
      if (s[p + 1] == '>') { t->op = R_APPEND; p += 2; }
      else if (s[p + 1] == '&') { t->op = R_DUP; p += 2; }
      else if (s[p + 1] == '|') { t->op = R_OUT; p += 2; }
      else { t->op = R_OUT; p += 1; }
    }
    lx->pos = p;
    return;
  }
  const char *err = NULL;
  long end = scan_word(s, lx->pos, &err);
  if (end < 0) {
    t->type = T_ERROR;
    t->text = xstrdup(err);
    lx->pos = strlen(s);
    return;
  }
  t->type = T_WORD;
  t->text = strndup(s + lx->pos, (size_t)end - lx->pos);
  lx->pos = (size_t)end;
}

static const char *token_name(const Token *t) {
  switch (t->type) {
    case T_EOF: return "end of input";
    case T_SEMI: return ";";
    case T_NEWLINE: return "newline";
    case T_AND: return "&&";
    case T_OR: return "||";
    case T_PIPE: return "|";
    case T_AMP: return "&";
    case T_REDIR: return t->op == R_IN ? "<" : t->op == R_APPEND ? ">>" : t->op == R_DUP ? ">&" : ">";
    default: return t->text ? t->text : "?";
  }
}

/* ---- expansion ---- */

typedef struct {
  StrList *fields;
  Buf cur;       /* the field being built */
  Buf pat;       /* the same, as a glob pattern (quoted characters escaped) */
  int started;   /* the field exists even if empty ("" or '') */
  int globbing;  /* an unquoted * ? [ is in it */
  int split;     /* split and glob (command words), or keep one field (assignments, redirections) */
} Expander;

static void add_char(Expander *e, char c, int quoted) {
  buf_putc(&e->cur, c);
  if (quoted && strchr("*?[]\\", c)) buf_putc(&e->pat, '\\');
  buf_putc(&e->pat, c);
  if (!quoted && e->split && strchr("*?[", c)) e->globbing = 1;
  e->started = 1;
}

static void end_field(Expander *e) {
  if (!e->started) return;
  char *lit = buf_take(&e->cur);
  char *pat = buf_take(&e->pat);
  glob_t g;
  if (e->globbing && glob(pat, 0, NULL, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) list_push(e->fields, xstrdup(g.gl_pathv[i]));
    globfree(&g);
    free(lit);
  } else {
    list_push(e->fields, lit);
  }
  free(pat);
  e->started = e->globbing = 0;
}

/* Adds an expansion result: unquoted results split at blanks (IFS is fixed to space, tab, newline). */
static void add_text(Expander *e, const char *text, int quoted) {
  for (const char *p = text; *p; p++) {
    if (!quoted && e->split && (*p == ' ' || *p == '\t' || *p == '\n')) {
      end_field(e);
    } else {
      add_char(e, *p, quoted);
    }
  }
}

static char *command_subst(Shell *sh, const char *src, Io *io) {
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  Shell sub = *sh;
  sub.exiting = 0;
  Io subio = {io->in, f, io->err};
  run_source(&sub, src, &subio);
  fclose(f);
  sh->status = sub.status;
  while (len > 0 && out[len - 1] == '\n') out[--len] = '\0';
  return out;
}

static char *var_value(Shell *sh, const char *name) {
  char tmp[32];
  if (strcmp(name, "?") == 0) return snprintf(tmp, sizeof tmp, "%d", sh->status), xstrdup(tmp);
  if (strcmp(name, "#") == 0) return snprintf(tmp, sizeof tmp, "%d", sh->argc > 0 ? sh->argc - 1 : 0), xstrdup(tmp);
  if (strcmp(name, "$") == 0) return xstrdup("1");
  if (strcmp(name, "@") == 0 || strcmp(name, "*") == 0) {
    Buf b = {0};
    for (int i = 1; i < sh->argc; i++) {
      if (i > 1) buf_putc(&b, ' ');
      buf_puts(&b, sh->argv[i]);
    }
    return buf_take(&b);
  }
  if (isdigit((unsigned char)name[0])) {
    int n = atoi(name);
    return xstrdup(n < sh->argc ? sh->argv[n] : "");
  }
  const char *v = getenv(name);
  return xstrdup(v ? v : "");
}

static int is_name_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int is_name_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static void expand_raw(Shell *sh, const char *raw, Io *io, Expander *e, int in_dquote);

/* Expands the `$...` at raw[i] (raw[i] == '$'); returns the index after it. */
static size_t expand_dollar(Shell *sh, const char *raw, size_t i, Io *io, Expander *e, int quoted) {
  const char *p = raw + i + 1;
  if (*p == '(') {
    long end = skip_subst(raw, i + 2);
    if (end < 0) end = (long)strlen(raw);
    char *inner = strndup(raw + i + 2, (size_t)end - i - 3);
    char *out = command_subst(sh, inner, io);
    add_text(e, out, quoted);
    free(inner);
    free(out);
    return (size_t)end;
  }
  if (*p == '{') {
    const char *close = strchr(p, '}');
    if (!close) {
      add_char(e, '$', quoted);
      return i + 1;
    }
    char *body = strndup(p + 1, (size_t)(close - p - 1));
    char *value;
    if (body[0] == '#' && body[1]) {
      char *v = var_value(sh, body + 1);
      char tmp[32];
      snprintf(tmp, sizeof tmp, "%zu", strlen(v));
      free(v);
      value = xstrdup(tmp);
    } else {
      size_t n = 0;
      if (is_name_start(body[0])) {
        while (is_name_char(body[n])) n++;
      } else if (body[0]) {
        n = 1;
        while (isdigit((unsigned char)body[0]) && isdigit((unsigned char)body[n])) n++;
      }
      char *name = strndup(body, n);
      const char *op = body + n;
      value = var_value(sh, name);
      int set = strcmp(name, "?") == 0 || isdigit((unsigned char)name[0]) ? value[0] != '\0' : getenv(name) != NULL;
      if ((op[0] == ':' && (op[1] == '-' || op[1] == '=')) || op[0] == '-' || op[0] == '=') {
        int colon = op[0] == ':';
        char kind = op[colon];
        if (colon ? value[0] == '\0' : !set) {
          Expander w = {.fields = &(StrList){0}, .split = 0};
          expand_raw(sh, op + colon + 1, io, &w, 1);
          free(value);
          value = buf_take(&w.cur);
          free(buf_take(&w.pat));
          if (kind == '=' && is_name_start(name[0])) setenv(name, value, 1);
        }
      }
      free(name);
    }
    add_text(e, value, quoted);
    free(value);
    free(body);
    return (size_t)(close - raw) + 1;
  }
  size_t n = 0;
  if (is_name_start(*p)) {
    while (is_name_char(p[n])) n++;
  } else if (*p && strchr("?#$@*", *p)) {
    n = 1;
  } else if (isdigit((unsigned char)*p)) {
    n = 1;
  }
  if (n == 0) {
    add_char(e, '$', quoted);
    return i + 1;
  }
  char *name = strndup(p, n);
  char *value = var_value(sh, name);
  add_text(e, value, quoted);
  free(name);
  free(value);
  return i + 1 + n;
}

static void expand_raw(Shell *sh, const char *raw, Io *io, Expander *e, int in_dquote) {
  size_t i = 0;
  while (raw[i]) {
    char c = raw[i];
    if (c == '\\') {
      if (!raw[i + 1]) { add_char(e, '\\', 1); i++; continue; }
      if (in_dquote && !strchr("$`\"\\\n", raw[i + 1])) { add_char(e, '\\', 1); i++; continue; }
      if (raw[i + 1] != '\n') add_char(e, raw[i + 1], 1);
      i += 2;
    } else if (c == '\'' && !in_dquote) {
      e->started = 1;
      for (i++; raw[i] && raw[i] != '\''; i++) add_char(e, raw[i], 1);
      if (raw[i]) i++;
    } else if (c == '"' && !in_dquote) {
      e->started = 1;
      size_t start = ++i;
      while (raw[i] && raw[i] != '"') {
        if (raw[i] == '\\' && raw[i + 1]) i += 2;
        else if (raw[i] == '$' && raw[i + 1] == '(') { long end = skip_subst(raw, i + 2); i = end < 0 ? strlen(raw) : (size_t)end; }
        else if (raw[i] == '`') { const char *q = strchr(raw + i + 1, '`'); i = q ? (size_t)(q - raw) + 1 : strlen(raw); }
        else i++;
      }
      char *inner = strndup(raw + start, i - start);
      expand_raw(sh, inner, io, e, 1);
      free(inner);
      if (raw[i]) i++;
    } else if (c == '$') {
      i = expand_dollar(sh, raw, i, io, e, in_dquote);
    } else if (c == '`') {
      const char *q = strchr(raw + i + 1, '`');
      size_t end = q ? (size_t)(q - raw) : strlen(raw);
      char *inner = strndup(raw + i + 1, end - i - 1);
      char *out = command_subst(sh, inner, io);
      add_text(e, out, in_dquote);
      free(inner);
      free(out);
      i = q ? end + 1 : end;
    } else {
      add_char(e, c, in_dquote);
      i++;
    }
  }
}

/* Expands command words: splitting and globbing. */
static void expand_words(Shell *sh, char **raws, int n, Io *io, StrList *out) {
  Expander e = {.fields = out, .split = 1};
  for (int i = 0; i < n; i++) {
    expand_raw(sh, raws[i], io, &e, 0);
    end_field(&e);
  }
}

/* Expands one word to one string (assignment values, redirection targets). */
static char *expand_single(Shell *sh, const char *raw, Io *io) {
  StrList fields = {0};
  Expander e = {.fields = &fields, .split = 0};
  expand_raw(sh, raw, io, &e, 0);
  char *s = buf_take(&e.cur);
  free(buf_take(&e.pat));
  list_free(&fields);
  return s;
}

/* ---- builtins that change the shell itself ---- */

static int is_assignment(const char *w) {
  if (!is_name_start(w[0])) return 0;
  const char *p = w;
  while (is_name_char(*p)) p++;
  return *p == '=';
}

static int builtin_cd(Shell *sh, int argc, char **argv, Io *io) {
  (void)sh;
  const char *dir = argc > 1 ? argv[1] : getenv("HOME");
  if (!dir || !*dir) dir = "/";
  if (strcmp(dir, "-") == 0) {
    dir = getenv("OLDPWD");
    if (!dir) return fail(io, "cd", "OLDPWD not set");
    fprintf(io->out, "%s\n", dir);
  }
  char *target = xstrdup(dir);
  char old[4096];
  if (!getcwd(old, sizeof old)) old[0] = '\0';
  if (chdir(target) != 0) {
    fail(io, "sh: cd", "can't cd to %s: %s", target, strerror(errno));
    free(target);
    return 2;
  }
  free(target);
  char now[4096];
  if (getcwd(now, sizeof now)) setenv("PWD", now, 1);
  if (old[0]) setenv("OLDPWD", old, 1);
  return 0;
}

static int builtin_export(int argc, char **argv, Io *io) {
  extern char **environ;
  if (argc == 1 || (argc == 2 && strcmp(argv[1], "-p") == 0)) {
    for (char **e = environ; *e; e++) fprintf(io->out, "export %s\n", *e);
    return 0;
  }
  int status = 0;
  for (int i = 1; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (eq) {
      char *name = strndup(argv[i], (size_t)(eq - argv[i]));
      if (is_name_start(name[0])) setenv(name, eq + 1, 1);
      else status = fail(io, "sh: export", "%s: bad variable name", name);
      free(name);
    } else if (!getenv(argv[i])) {
      setenv(argv[i], "", 1);
    }
  }
  return status;
}

static int builtin_read(Shell *sh, int argc, char **argv, Io *io) {
  (void)sh;
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "-r") == 0) first = 2;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, io->in);
  if (n < 0) {
    free(line);
    for (int i = first; i < argc; i++) setenv(argv[i], "", 1);
    return 1;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  char *p = line;
  for (int i = first; i < argc; i++) {
    while (*p == ' ' || *p == '\t') p++;
    if (i == argc - 1) {
      size_t len = strlen(p);
      while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) p[--len] = '\0';
      setenv(argv[i], p, 1);
      break;
    }
    char *start = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (*p) *p++ = '\0';
    setenv(argv[i], start, 1);
  }
  if (argc == first) setenv("REPLY", line, 1);
  free(line);
  return 0;
}

/* Runs a command by name: shell builtins, then applets; 127 when nothing has the name. */
static int run_argv(Shell *sh, int argc, char **argv, Io *io) {
  const char *name = argv[0];
  if (strcmp(name, "cd") == 0) return builtin_cd(sh, argc, argv, io);
  if (strcmp(name, "export") == 0) return builtin_export(argc, argv, io);
  if (strcmp(name, "read") == 0) return builtin_read(sh, argc, argv, io);
  if (strcmp(name, ":") == 0) return 0;
  if (strcmp(name, "unset") == 0) {
    for (int i = 1; i < argc; i++) unsetenv(argv[i]);
    return 0;
  }
  if (strcmp(name, "exit") == 0) {
    sh->exiting = 1;
    return argc > 1 ? atoi(argv[1]) & 0xff : sh->status;
  }
  if (strcmp(name, "exec") == 0) {
    if (argc == 1) return 0;
    int status = run_argv(sh, argc - 1, argv + 1, io);
    sh->exiting = 1;
    return status;
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "source") == 0) {
    if (argc < 2) return fail(io, "sh: .", "filename argument required"), 2;
    size_t len;
    char *src = read_file(argv[1], &len);
    if (!src) return fail(io, "sh: .", "can't open %s: %s", argv[1], strerror(errno)), 2;
    int status = run_source(sh, src, io);
    free(src);
    return status;
  }
  AppletFn fn = find_applet(strchr(name, '/') ? base_name(name) : name);
  if (strchr(name, '/')) {
    struct stat st;
    if (stat(name, &st) != 0) {
      fprintf(io->err, "sh: %s: not found\n", name);
      return 127;
    }
    if (!fn || S_ISDIR(st.st_mode)) {
      fprintf(io->err, "sh: %s: cannot execute (only toolbox applets run here)\n", name);
      return 126;
    }
  }
  if (!fn) {
    fprintf(io->err, "sh: %s: not found\n", name);
    return 127;
  }
  int status = fn(argc, argv, io);
  fflush(io->out);
  fflush(io->err);
  return status;
}

/* ---- execution ---- */

typedef struct {
  char *name;
  char *old; /* NULL when it was unset */
} SavedVar;

static int run_command(Shell *sh, Command *cmd, Io *io) {
  int nassign = 0;
  while (nassign < cmd->words.len && is_assignment(cmd->words.items[nassign])) nassign++;

  StrList argv = {0};
  expand_words(sh, cmd->words.items + nassign, cmd->words.len - nassign, io, &argv);

  SavedVar *saved = xmalloc(sizeof(SavedVar) * (size_t)(nassign + 1));
  for (int i = 0; i < nassign; i++) {
    char *w = cmd->words.items[i];
    char *eq = strchr(w, '=');
    char *name = strndup(w, (size_t)(eq - w));
    char *value = expand_single(sh, eq + 1, io);
    const char *old = getenv(name);
    saved[i].name = name;
    saved[i].old = old ? xstrdup(old) : NULL;
    setenv(name, value, 1);
    free(value);
  }

  Io local = *io;
  FILE *opened[16];
  int nopened = 0;
  int status = 0;
  for (int i = 0; i < cmd->nredirs; i++) {
    Redir *r = &cmd->redirs[i];
    if (r->fd > 2) {
      status = fail(io, "sh", "%d: only file descriptors 0, 1 and 2 can be redirected", r->fd);
      break;
    }
    FILE **slot = r->fd == 0 ? &local.in : r->fd == 1 ? &local.out : &local.err;
    char *target = expand_single(sh, r->target, io);
    if (r->op == R_DUP) {
      if (strcmp(target, "-") == 0) {
        FILE *f = r->fd == 0 ? open_reader(xstrdup(""), 0) : open_discard();
        opened[nopened++] = f;
        *slot = f;
      } else if (strcmp(target, "0") == 0 || strcmp(target, "1") == 0 || strcmp(target, "2") == 0) {
        *slot = target[0] == '0' ? local.in : target[0] == '1' ? local.out : local.err;
      } else {
        status = fail(io, "sh", "%s: bad file descriptor", target);
      }
    } else {
      const char *mode = r->op == R_IN ? "r" : r->op == R_APPEND ? "a" : "w";
      FILE *f = nopened < 16 ? fopen(target, mode) : NULL;
      if (!f) {
        status = fail(io, "sh", "%s: %s", target, nopened < 16 ? strerror(errno) : "too many redirections");
      } else {
        opened[nopened++] = f;
        *slot = f;
      }
    }
    free(target);
    if (status) break;
  }

  if (status == 0 && argv.len > 0) {
    status = run_argv(sh, argv.len, argv.items, &local);
  } else if (status == 0 && argv.len == 0) {
    status = sh->status; /* a bare assignment keeps the status of its $(...) */
    if (nassign == 0 || cmd->words.len > nassign) status = 0;
  }
  for (int i = 0; i < nopened; i++) fclose(opened[i]);

  /* Prefix assignments last only for the command; alone they stay (shell variables are the env here). */
  if (argv.len > 0 || cmd->words.len > nassign) {
    for (int i = 0; i < nassign; i++) {
      if (saved[i].old) setenv(saved[i].name, saved[i].old, 1);
      else unsetenv(saved[i].name);
    }
  }
  for (int i = 0; i < nassign; i++) {
    free(saved[i].name);
    free(saved[i].old);
  }
  free(saved);
  list_free(&argv);
  return status;
}

/* Runs the stages one after another; each stage's output is the next one's input. */
static int run_pipeline(Shell *sh, Command *cmds, int n, Io *io) {
  if (n == 1) return run_command(sh, &cmds[0], io);
  char *data = NULL;
  size_t len = 0;
  int status = 0;
  for (int i = 0; i < n; i++) {
    Io stage = *io;
    FILE *in = NULL, *out = NULL;
    char *next = NULL;
    size_t next_len = 0;
    if (i > 0) stage.in = in = open_reader(data, len);
    if (i < n - 1) stage.out = out = open_memstream(&next, &next_len);
    status = run_command(sh, &cmds[i], &stage);
    sh->exiting = 0; /* each stage is a subshell: `exit` ends only the stage */
    if (in) fclose(in); /* frees data */
    if (out) fclose(out);
    data = next;
    len = next_len;
  }
  return status;
}

static void free_commands(Command *cmds, int n) {
  for (int i = 0; i < n; i++) {
    list_free(&cmds[i].words);
    for (int j = 0; j < cmds[i].nredirs; j++) free(cmds[i].redirs[j].target);
    free(cmds[i].redirs);
  }
  free(cmds);
}

/* Parses one pipeline; *end gets the token that ended it. Returns -1 on a syntax error. */
static int parse_pipeline(Lexer *lx, Command **out, int *count, Token *end, Io *io) {
  Command *cmds = xmalloc(sizeof(Command));
  int n = 1;
  memset(&cmds[0], 0, sizeof(Command));
  Token t;
  for (;;) {
    next_token(lx, &t);
    Command *c = &cmds[n - 1];
    if (t.type == T_WORD) {
      list_push(&c->words, t.text);
    } else if (t.type == T_REDIR) {
      Token target;
      next_token(lx, &target);
      if (target.type != T_WORD) {
        fprintf(io->err, "sh: syntax error: unexpected %s after redirection\n", token_name(&target));
        free(target.text);
        free_commands(cmds, n);
        return -1;
      }
      c->redirs = xrealloc(c->redirs, sizeof(Redir) * (size_t)(c->nredirs + 1));
      c->redirs[c->nredirs++] = (Redir){t.fd, t.op, target.text};
    } else if (t.type == T_PIPE) {
      if (c->words.len == 0 && c->nredirs == 0) break;
      cmds = xrealloc(cmds, sizeof(Command) * (size_t)(n + 1));
      memset(&cmds[n++], 0, sizeof(Command));
      size_t save;
      do { /* a newline may follow | */
        save = lx->pos;
        next_token(lx, &t);
      } while (t.type == T_NEWLINE);
      lx->pos = save;
      free(t.text);
    } else {
      break;
    }
  }
  if (t.type == T_ERROR) {
    fprintf(io->err, "sh: syntax error: %s\n", t.text);
    free(t.text);
    free_commands(cmds, n);
    return -1;
  }
  Command *last = &cmds[n - 1];
  int empty = last->words.len == 0 && last->nredirs == 0;
  if (empty && (n > 1 || t.type == T_AND || t.type == T_OR || t.type == T_PIPE)) {
    fprintf(io->err, "sh: syntax error: unexpected %s\n", token_name(&t));
    free_commands(cmds, n);
    return -1;
  }
  if (empty) n = 0;
  *out = cmds;
  *count = n;
  *end = t;
  return 0;
}

/* Parses and runs a list command by command, so that each expansion sees the effects of the
 * commands before it. */
static int run_source(Shell *sh, const char *src, Io *io) {
  Lexer lx = {src, 0};
  int connector = T_SEMI;
  while (!sh->exiting) {
    Command *cmds;
    int n;
    Token end;
    if (parse_pipeline(&lx, &cmds, &n, &end, io) < 0) {
      sh->status = 2;
      break;
    }
    if (n == 0 && connector != T_SEMI) {
      fprintf(io->err, "sh: syntax error: unexpected %s after %s\n", token_name(&end), connector == T_AND ? "&&" : "||");
      free_commands(cmds, 1);
      sh->status = 2;
      break;
    }
    if (n > 0) {
      int negate = cmds[0].words.len > 0 && strcmp(cmds[0].words.items[0], "!") == 0;
      if (negate) {
        free(cmds[0].words.items[0]);
        memmove(cmds[0].words.items, cmds[0].words.items + 1, sizeof(char *) * (size_t)cmds[0].words.len);
        cmds[0].words.len--;
      }
      int run = connector == T_SEMI || (connector == T_AND && sh->status == 0) || (connector == T_OR && sh->status != 0);
      if (run) {
        int status = run_pipeline(sh, cmds, n, io);
        sh->status = negate ? !status : status;
      }
    }
    free_commands(cmds, n > 0 ? n : 1);
    if (end.type == T_EOF) break;
    if (end.type == T_AND || end.type == T_OR) {
      connector = end.type;
      size_t save;
      Token t;
      do { /* a newline may follow && and || */
        save = lx.pos;
        next_token(&lx, &t);
        free(t.text);
      } while (t.type == T_NEWLINE);
      lx.pos = save;
    } else {
      connector = T_SEMI;
    }
  }
  fflush(io->out);
  return sh->status;
}

/* True while the text so far cannot end a command (open quote, trailing operator). */
static int needs_more(const char *src) {
  const char *err = NULL;
  size_t i = 0, len = strlen(src);
  while (i < len) {
    if (src[i] == '#' && (i == 0 || is_meta(src[i - 1]))) {
      while (i < len && src[i] != '\n') i++;
      continue;
    }
    if (is_meta(src[i])) { i++; continue; }
    long end = scan_word(src, i, &err);
    if (end < 0) return 1;
    i = (size_t)end;
  }
  while (len > 0 && (src[len - 1] == '\n' || src[len - 1] == ' ' || src[len - 1] == '\t')) len--;
  if (len >= 1 && (src[len - 1] == '|' || src[len - 1] == '\\')) return 1;
  if (len >= 2 && src[len - 1] == '&' && src[len - 2] == '&') return 1;
  return 0;
}

int sh_main(int argc, char **argv, Io *io) {
  Shell sh = {0};
  Opts o;
  int i = parse_opts(argc, argv, "cexu", &o, io);
  if (i < 0) return 2;
  if (o.on['c']) {
    if (i >= argc) return fail(io, "sh", "-c requires an argument"), 2;
    const char *src = argv[i];
    sh.argc = argc - i - 1;
    sh.argv = argv + i + 1;
    if (sh.argc == 0) {
      sh.argc = 1;
      sh.argv = argv;
    }
    return run_source(&sh, src, io);
  }
  if (i < argc) {
    size_t len;
    char *src = read_file(argv[i], &len);
    if (!src) {
      fprintf(io->err, "sh: can't open %s: %s\n", argv[i], strerror(errno));
      return 127;
    }
    sh.argc = argc - i;
    sh.argv = argv + i;
    int status = run_source(&sh, src, io);
    free(src);
    return status;
  }
  /* Commands from stdin, run as soon as each one is complete. */
  sh.argc = 1;
  sh.argv = argv;
  int interactive = io->in == stdin && isatty(0);
  Buf pending = {0};
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    if (interactive) {
      fputs(pending.len ? "> " : "$ ", io->err);
      fflush(io->err);
    }
    ssize_t n = getline(&line, &cap, io->in);
    if (n < 0) break;
    buf_putn(&pending, line, (size_t)n);
    if (needs_more(pending.data)) continue;
    char *src = buf_take(&pending);
    run_source(&sh, src, io);
    free(src);
    if (sh.exiting) break;
  }
  if (pending.len && !sh.exiting) {
    char *src = buf_take(&pending);
    run_source(&sh, src, io);
    free(src);
  }
  free(line);
  free(pending.data);
  return sh.status;
}
