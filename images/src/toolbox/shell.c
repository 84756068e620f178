/*
 * sh: a small POSIX-flavoured shell that runs everything inside this one process.
 *   sh -c STRING [NAME [ARGS...]] | sh SCRIPT [ARGS...] | sh (reads commands from stdin)
 * Lists with `;`, newlines, `&&`, `||`; pipelines (`|`, `!`) run stage after stage with an
 * in-memory buffer between them; redirections `<`, `>`, `>>`, `N>`, `N>&M`, `N>&-`;
 * quoting '...', "...", backslash; expansions $VAR ${VAR} ${VAR:-w} ${#VAR} $? $# $0-$9 $@ $*
 * $(...) `...`; field splitting and pathname globbing of unquoted words; NAME=value prefixes.
 * Compound commands: if/elif/else/fi, while/until ... do ... done, for NAME [in WORDS] do ... done,
 * case WORD in PATTERN|PATTERN) LIST ;; ... esac, { LIST; }, ( LIST ) (a subshell for exit, cd and
 * loops; the environment is shared). Here-documents: <<WORD, <<-WORD, <<'WORD'.
 * Builtins: cd export unset exit break continue read . source exec command type set shift :
 * plus every toolbox applet. set -e -u -x -o pipefail, set -- ARGS.
 * Functions: NAME() COMPOUND, with $1... and return [N].
 * Not supported: local, background jobs (& runs in the foreground), $(( )) assignments.
 */
#include "toolbox.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct Node Node;

/* Functions defined with NAME() COMMAND; shared by a shell and its subshells. */
typedef struct Function {
  char *name;
  Node *body;
  struct Function *next;
} Function;

typedef struct {
  int status;   /* $? */
  int exiting;  /* `exit` ran: stop */
  int loops;    /* loops being run, for break and continue */
  int breaking, continuing; /* loop levels still to leave */
  int argc;     /* positional parameters, argv[0] is $0 */
  char **argv;
  int errexit, xtrace, pipefail, nounset; /* set -e, -x, -o pipefail, -u */
  int conditions;   /* > 0 while running an if/while condition or the left of && || (no errexit) */
  int expand_error; /* an unset variable was used under set -u */
  int nesting;      /* $(...) and `.` levels, bounded so that the stack cannot run out */
  int calls;        /* function calls being run, bounded likewise */
  int returning;    /* `return` ran: leave the function */
  Function **functions;
} Shell;

enum { T_EOF, T_WORD, T_SEMI, T_DSEMI, T_NEWLINE, T_AND, T_OR, T_PIPE, T_AMP, T_REDIR, T_LPAREN, T_RPAREN, T_ERROR };
enum { R_IN, R_OUT, R_APPEND, R_DUP, R_HEREDOC, R_HEREDOC_RAW };

typedef struct {
  int type;
  char *text; /* T_WORD: the raw word, quotes kept; T_ERROR: the message; here-document: its body */
  int fd;     /* T_REDIR: the fd redirected */
  int op;     /* T_REDIR: R_* */
} Token;

typedef struct {
  const char *s;
  size_t pos;
  size_t heredoc_end; /* where the current line's here-document bodies end (0: none) */
} Lexer;

typedef struct {
  int fd, op;
  char *target; /* raw word; here-documents: the body */
} Redir;

enum { N_SIMPLE, N_PIPELINE, N_ANDOR, N_LIST, N_IF, N_WHILE, N_FOR, N_CASE, N_GROUP, N_SUBSHELL, N_FUNCTION };

/* The syntax tree. Words stay raw (quotes kept) until the node runs. */
struct Node {
  int kind;
  StrList words;  /* N_SIMPLE: the words; N_FOR: the words after `in`; N_CASE: the subject, then patterns */
  Redir *redirs;  /* N_SIMPLE and compound commands */
  int nredirs;
  Node **kids;    /* N_PIPELINE stages; N_ANDOR pipelines; N_LIST items; N_IF cond, body, cond, body..., [else];
                     N_WHILE cond, body; N_CASE one body per item; N_FOR, N_GROUP, N_SUBSHELL body */
  int *ops;       /* N_ANDOR: T_AND or T_OR before each kid; N_CASE: how many patterns each item has */
  int nkids;
  int negate;     /* N_PIPELINE: `!` */
  int until;      /* N_WHILE: `until` */
  int has_else;   /* N_IF */
  int has_in;     /* N_FOR */
  char *var;      /* N_FOR: the variable; N_FUNCTION: the name (kids[0] is the body) */
};

static int run_source(Shell *sh, const char *src, Io *io);
static int run_node(Shell *sh, Node *n, Io *io);

/* ---- lexing ---- */

static int is_meta(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '<' || c == '>' || c == '(' || c == ')';
}

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

/* `<<[-]WORD`: reads the body from the line after this one (after earlier bodies of this line),
 * up to a line holding only WORD. A quoted WORD gives a body without expansions. */
static void read_heredoc(Lexer *lx, Token *t) {
  const char *s = lx->s;
  int strip_tabs = s[lx->pos] == '-';
  if (strip_tabs) lx->pos++;
  while (s[lx->pos] == ' ' || s[lx->pos] == '\t') lx->pos++;
  const char *err = NULL;
  long end = scan_word(s, lx->pos, &err);
  if (end <= (long)lx->pos) {
    t->type = T_ERROR;
    t->text = xstrdup(end < 0 ? err : "missing here-document delimiter");
    lx->pos = strlen(s);
    return;
  }
  Buf delim = {0};
  int quoted = 0;
  for (size_t i = lx->pos; i < (size_t)end; i++) {
    if (s[i] == '\'' || s[i] == '"' || s[i] == '\\') quoted = 1;
    else buf_putc(&delim, s[i]);
  }
  if (!delim.data) buf_puts(&delim, "");
  lx->pos = (size_t)end;
  size_t line = lx->heredoc_end;
  if (!line) {
    const char *nl = strchr(s + lx->pos, '\n');
    line = nl ? (size_t)(nl - s) + 1 : strlen(s);
  }
  Buf body = {0};
  for (;;) {
    if (!s[line]) {
      t->type = T_ERROR;
      t->text = xstrdup("unterminated here-document");
      free(delim.data);
      free(body.data);
      lx->pos = strlen(s);
      return;
    }
    const char *nl = strchr(s + line, '\n');
    size_t next = nl ? (size_t)(nl - s) + 1 : strlen(s);
    size_t start = line;
    if (strip_tabs) while (s[start] == '\t') start++;
    size_t len = (nl ? (size_t)(nl - s) : next) - start;
    line = next;
    if (len == delim.len && strncmp(s + start, delim.data, len) == 0) break;
    buf_putn(&body, s + start, len);
    buf_putc(&body, '\n');
  }
  free(delim.data);
  lx->heredoc_end = line;
  t->type = T_REDIR;
  t->op = quoted ? R_HEREDOC_RAW : R_HEREDOC;
  t->text = buf_take(&body);
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
  if (c == '\n') {
    t->type = T_NEWLINE;
    lx->pos++;
    if (lx->heredoc_end > lx->pos) lx->pos = lx->heredoc_end; /* skip the bodies read at `<<` */
    lx->heredoc_end = 0;
    return;
  }
  if (c == ';') {
    if (s[p + 1] == ';') { t->type = T_DSEMI; lx->pos += 2; } else { t->type = T_SEMI; lx->pos++; }
    return;
  }
  if (c == '(') { t->type = T_LPAREN; lx->pos++; return; }
  if (c == ')') { t->type = T_RPAREN; lx->pos++; return; }
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
  if (c == '<' && s[p + 1] == '<') {
    t->fd = fd < 0 ? 0 : fd;
    lx->pos = p + 2;
    read_heredoc(lx, t);
    return;
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
    case T_DSEMI: return ";;";
    case T_NEWLINE: return "newline";
    case T_AND: return "&&";
    case T_OR: return "||";
    case T_PIPE: return "|";
    case T_AMP: return "&";
    case T_LPAREN: return "(";
    case T_RPAREN: return ")";
    case T_REDIR: return t->op == R_IN ? "<" : t->op == R_APPEND ? ">>" : t->op == R_DUP ? ">&" : t->op >= R_HEREDOC ? "<<" : ">";
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

#define MAX_NESTING 25
#define MAX_PARSE_DEPTH 100

static char *command_subst(Shell *sh, const char *src, Io *io) {
  if (sh->nesting >= MAX_NESTING) {
    fprintf(io->err, "sh: command substitutions nested too deeply\n");
    sh->status = 2;
    return xstrdup("");
  }
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  Shell sub = *sh;
  sub.exiting = 0;
  sub.nesting++;
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

/* set -u: using an unset variable is an error (the command does not run). */
static void check_set(Shell *sh, const char *name, Io *io) {
  if (!sh->nounset || !is_name_start(name[0]) || getenv(name)) return;
  if (!sh->expand_error) fprintf(io->err, "sh: %s: parameter not set\n", name);
  sh->expand_error = 1;
}

static void expand_raw(Shell *sh, const char *raw, Io *io, Expander *e, int in_dquote);
static char *expand_single(Shell *sh, const char *raw, Io *io);

/* ${VAR#pat} ${VAR##pat} ${VAR%pat} ${VAR%%pat}: the value without the shortest/longest
 * matching prefix or suffix. */
static char *remove_affix(const char *value, const char *pattern, int prefix, int longest) {
  size_t len = strlen(value);
  for (size_t k = 0; k <= len; k++) {
    size_t n = longest ? len - k : k; /* length of the part tried */
    if (prefix) {
      char *head = strndup(value, n);
      int hit = fnmatch(pattern, head, 0) == 0;
      free(head);
      if (hit) return xstrdup(value + n);
    } else if (fnmatch(pattern, value + len - n, 0) == 0) {
      return strndup(value, len - n);
    }
  }
  return xstrdup(value);
}

/* $(( )) arithmetic on long long: numbers, variables, ( ), unary - + ! ~, * / %, + -,
 * < <= > >=, == !=, &&, ||. */
typedef struct {
  const char *s;
  const char *error;
} Arith;

static long long arith_level(Arith *a, int level);

static void arith_space(Arith *a) {
  while (isspace((unsigned char)*a->s)) a->s++;
}

static long long arith_unary(Arith *a) {
  arith_space(a);
  char c = *a->s;
  if (c == '-' || c == '+' || c == '!' || c == '~') {
    a->s++;
    long long v = arith_unary(a);
    return c == '-' ? -v : c == '+' ? v : c == '!' ? !v : ~v;
  }
  if (c == '(') {
    a->s++;
    long long v = arith_level(a, 0);
    arith_space(a);
    if (*a->s == ')') a->s++;
    else a->error = "missing )";
    return v;
  }
  if (isdigit((unsigned char)c)) {
    char *end;
    long long v = strtoll(a->s, &end, 0);
    a->s = end;
    return v;
  }
  if (isalpha((unsigned char)c) || c == '_') {
    const char *start = a->s;
    while (isalnum((unsigned char)*a->s) || *a->s == '_') a->s++;
    char *name = strndup(start, (size_t)(a->s - start));
    const char *v = getenv(name);
    free(name);
    return v ? strtoll(v, NULL, 0) : 0;
  }
  a->error = c ? "unexpected character" : "missing operand";
  return 0;
}

static long long arith_level(Arith *a, int level) {
  static const char *ops[6][5] = {
    {"||"}, {"&&"}, {"==", "!="}, {"<=", ">=", "<", ">"}, {"+", "-"}, {"*", "/", "%"},
  };
  if (level == 6) return arith_unary(a);
  long long v = arith_level(a, level + 1);
  while (!a->error) {
    arith_space(a);
    const char *op = NULL;
    for (int k = 0; k < 5 && ops[level][k]; k++) {
      if (strncmp(a->s, ops[level][k], strlen(ops[level][k])) == 0) {
        op = ops[level][k];
        break;
      }
    }
    if (!op) break;
    a->s += strlen(op);
    long long w = arith_level(a, level + 1);
    if ((op[0] == '/' || op[0] == '%') && w == 0) {
      a->error = "division by zero";
      return 0;
    }
    if (strcmp(op, "||") == 0) v = v || w;
    else if (strcmp(op, "&&") == 0) v = v && w;
    else if (strcmp(op, "==") == 0) v = v == w;
    else if (strcmp(op, "!=") == 0) v = v != w;
    else if (strcmp(op, "<=") == 0) v = v <= w;
    else if (strcmp(op, ">=") == 0) v = v >= w;
    else if (strcmp(op, "<") == 0) v = v < w;
    else if (strcmp(op, ">") == 0) v = v > w;
    else if (strcmp(op, "+") == 0) v = v + w;
    else if (strcmp(op, "-") == 0) v = v - w;
    else if (strcmp(op, "*") == 0) v = v * w;
    else if (strcmp(op, "/") == 0) v = v / w;
    else v = v % w;
  }
  return v;
}

static char *arith_expand(const char *expr, Io *io) {
  Arith a = {expr, NULL};
  long long v = arith_level(&a, 0);
  arith_space(&a);
  if (!a.error && *a.s) a.error = "unexpected character";
  if (a.error) {
    fprintf(io->err, "sh: arithmetic: %s in '%s'\n", a.error, expr);
    v = 0;
  }
  char out[32];
  snprintf(out, sizeof out, "%lld", v);
  return xstrdup(out);
}

/* Expands the `$...` at raw[i] (raw[i] == '$'); returns the index after it. */
static size_t expand_dollar(Shell *sh, const char *raw, size_t i, Io *io, Expander *e, int quoted) {
  const char *p = raw + i + 1;
  if (*p == '(') {
    long end = skip_subst(raw, i + 2);
    if (end < 0) end = (long)strlen(raw);
    if (p[1] == '(' && end >= (long)i + 5 && raw[end - 2] == ')') { /* $(( arithmetic )) */
      char *inner = strndup(raw + i + 3, (size_t)end - i - 5);
      char *expr = expand_single(sh, inner, io);
      char *out = arith_expand(expr, io);
      add_text(e, out, quoted);
      free(inner);
      free(expr);
      free(out);
      return (size_t)end;
    }
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
      if (!strchr("-=+", op[op[0] == ':'])) check_set(sh, name, io);
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
      } else if (op[0] == '#' || op[0] == '%') {
        int longest = op[1] == op[0];
        Expander w = {.fields = &(StrList){0}, .split = 0};
        expand_raw(sh, op + 1 + longest, io, &w, 0);
        free(buf_take(&w.cur));
        char *pattern = buf_take(&w.pat);
        char *cut = remove_affix(value, pattern, op[0] == '#', longest);
        free(value);
        free(pattern);
        value = cut;
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
  if (*p == '@' && quoted && e->split) { /* "$@": one field per positional parameter */
    for (int k = 1; k < sh->argc; k++) {
      if (k > 1) end_field(e);
      e->started = 1;
      add_text(e, sh->argv[k], 1);
    }
    return i + 2;
  }
  char *name = strndup(p, n);
  check_set(sh, name, io);
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
      /* "$@" with no positional parameters is no field at all. */
      if (!(strncmp(raw + i, "\"$@\"", 4) == 0 && sh->argc <= 1)) e->started = 1;
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

static int builtin_set(Shell *sh, int argc, char **argv, Io *io) {
  extern char **environ;
  if (argc == 1) {
    for (char **e = environ; *e; e++) fprintf(io->out, "%s\n", *e);
    return 0;
  }
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if ((a[0] != '-' && a[0] != '+') || !a[1]) break;
    int on = a[0] == '-';
    for (const char *f = a + 1; *f; f++) {
      const char *opt = NULL;
      if (*f == 'o') {
        if (i + 1 >= argc) return fail(io, "sh: set", "-o needs an option name"), 2;
        opt = argv[++i];
      }
      if (*f == 'e' || (opt && strcmp(opt, "errexit") == 0)) sh->errexit = on;
      else if (*f == 'x' || (opt && strcmp(opt, "xtrace") == 0)) sh->xtrace = on;
      else if (*f == 'u' || (opt && strcmp(opt, "nounset") == 0)) sh->nounset = on;
      else if (opt && strcmp(opt, "pipefail") == 0) sh->pipefail = on;
      else return fail(io, "sh: set", "unsupported option %c%s", a[0], opt ? opt : (char[]){*f, 0}), 2;
      if (opt) break;
    }
  }
  if (i < argc || (i == argc && strcmp(argv[i - 1], "--") == 0)) {
    char **params = xmalloc(sizeof(char *) * (size_t)(argc - i + 2));
    params[0] = sh->argv ? sh->argv[0] : "sh";
    int n = 1;
    for (; i < argc; i++) params[n++] = xstrdup(argv[i]);
    params[n] = NULL;
    sh->argc = n;
    sh->argv = params;
  }
  return 0;
}

static int is_shell_builtin(const char *name) {
  static const char *names[] = {"cd", "export", "read", ":", "unset", "exit", "break", "continue", "command", "type",
                                "exec", ".", "source", "set", "shift", "return", NULL};
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], name) == 0) return 1;
  return 0;
}

/* Runs a command by name: shell builtins, then applets; 127 when nothing has the name. */
static int call_function(Shell *sh, Function *f, int argc, char **argv, Io *io) {
  if (sh->calls >= 200) return fail(io, "sh", "%s: function calls nested too deeply", f->name), 2;
  int saved_argc = sh->argc;
  char **saved_argv = sh->argv;
  char **params = xmalloc(sizeof(char *) * (size_t)(argc + 1));
  params[0] = saved_argv ? saved_argv[0] : "sh"; /* $0 stays the shell's */
  for (int i = 1; i < argc; i++) params[i] = argv[i];
  params[argc] = NULL;
  sh->argc = argc;
  sh->argv = params;
  sh->calls++;
  int status = run_node(sh, f->body, io);
  sh->calls--;
  if (sh->returning) {
    sh->returning = 0;
    status = sh->status;
  }
  sh->argc = saved_argc;
  sh->argv = saved_argv;
  free(params);
  return status;
}

static int is_special_builtin(const char *name) {
  static const char *names[] = {":", ".", "break", "continue", "exec", "exit", "export", "return", "set", "shift", "source",
                                "unset", NULL};
  for (int i = 0; names[i]; i++)
    if (strcmp(names[i], name) == 0) return 1;
  return 0;
}

static int run_argv(Shell *sh, int argc, char **argv, Io *io) {
  const char *name = argv[0];
  if (sh->functions && !is_special_builtin(name)) {
    for (Function *f = *sh->functions; f; f = f->next)
      if (strcmp(f->name, name) == 0) return call_function(sh, f, argc, argv, io);
  }
  if (strcmp(name, "return") == 0) {
    if (sh->calls == 0 && sh->nesting == 0) return fail(io, "sh", "return: not in a function"), 2;
    sh->returning = 1;
    sh->status = argc > 1 ? atoi(argv[1]) & 0xff : sh->status;
    return sh->status;
  }
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
  if (strcmp(name, "break") == 0 || strcmp(name, "continue") == 0) {
    int levels = argc > 1 ? atoi(argv[1]) : 1;
    if (levels < 1) return fail(io, "sh", "%s: bad number", name), 2;
    if (sh->loops == 0) return 0;
    if (levels > sh->loops) levels = sh->loops;
    if (name[0] == 'b') sh->breaking = levels;
    else sh->continuing = levels;
    return 0;
  }
  if (strcmp(name, "command") == 0 || strcmp(name, "type") == 0) {
    int lookup = name[0] == 't' || (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "-V") == 0));
    int first = name[0] == 't' ? 1 : argc > 1 && argv[1][0] == '-' ? 2 : 1;
    if (!lookup) return argc > 1 ? run_argv(sh, argc - 1, argv + 1, io) : 0;
    int status = 0;
    for (int i = first; i < argc; i++) {
      if (is_shell_builtin(argv[i])) fprintf(io->out, "%s\n", argv[i]);
      else if (find_applet(argv[i])) fprintf(io->out, "/bin/%s\n", argv[i]);
      else status = 1;
    }
    return status;
  }
  if (strcmp(name, "set") == 0) return builtin_set(sh, argc, argv, io);
  if (strcmp(name, "shift") == 0) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 0 || n > sh->argc - 1) return fail(io, "sh: shift", "can't shift that many"), 1;
    char **rest = xmalloc(sizeof(char *) * (size_t)(sh->argc - n + 1));
    rest[0] = sh->argv[0];
    for (int i = 1 + n; i < sh->argc; i++) rest[i - n] = sh->argv[i];
    sh->argc -= n;
    rest[sh->argc] = NULL;
    sh->argv = rest;
    return 0;
  }
  if (strcmp(name, "exec") == 0) {
    if (argc == 1) return 0;
    int status = run_argv(sh, argc - 1, argv + 1, io);
    sh->exiting = 1;
    return status;
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "source") == 0) {
    if (argc < 2) return fail(io, "sh: .", "filename argument required"), 2;
    if (sh->nesting >= MAX_NESTING) return fail(io, "sh: .", "%s: sourced files nested too deeply", argv[1]), 2;
    size_t len;
    char *src = read_file(argv[1], &len);
    if (!src) return fail(io, "sh: .", "can't open %s: %s", argv[1], strerror(errno)), 2;
    sh->nesting++;
    int status = run_source(sh, src, io);
    sh->nesting--;
    if (sh->returning && sh->calls == 0) sh->returning = 0;
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

/* ---- parsing ---- */

typedef struct {
  Lexer lx;
  Token tok;    /* the lookahead */
  int error;    /* a syntax error was found (and reported unless quiet) */
  int at_eof;   /* ...at the end of the input: more input could complete it */
  int quiet;
  int depth;    /* compound commands being parsed */
  Io *io;
} Parser;

static Node *new_node(int kind) {
  Node *n = xmalloc(sizeof *n);
  memset(n, 0, sizeof *n);
  n->kind = kind;
  return n;
}

static void add_kid(Node *n, Node *kid, int op) {
  n->kids = xrealloc(n->kids, sizeof(Node *) * (size_t)(n->nkids + 1));
  n->ops = xrealloc(n->ops, sizeof(int) * (size_t)(n->nkids + 1));
  n->kids[n->nkids] = kid;
  n->ops[n->nkids++] = op;
}

static void free_node(Node *n) {
  if (!n) return;
  list_free(&n->words);
  for (int i = 0; i < n->nredirs; i++) free(n->redirs[i].target);
  free(n->redirs);
  for (int i = 0; i < n->nkids; i++) free_node(n->kids[i]);
  free(n->kids);
  free(n->ops);
  free(n->var);
  free(n);
}

static void advance(Parser *p) {
  free(p->tok.text);
  next_token(&p->lx, &p->tok);
}

static int is_word(Parser *p, const char *word) {
  return p->tok.type == T_WORD && strcmp(p->tok.text, word) == 0;
}

/* Words that end a list when they stand where a command would start. */
static int at_list_end(Parser *p) {
  static const char *ends[] = {"then", "else", "elif", "fi", "do", "done", "}", "esac", NULL};
  if (p->tok.type == T_EOF || p->tok.type == T_RPAREN || p->tok.type == T_DSEMI) return 1;
  for (int i = 0; ends[i]; i++)
    if (is_word(p, ends[i])) return 1;
  return 0;
}

static void syntax_error(Parser *p) {
  if (p->error) return;
  p->error = 1;
  p->at_eof = p->tok.type == T_EOF || p->tok.type == T_ERROR;
  if (p->quiet) return;
  if (p->tok.type == T_ERROR) fprintf(p->io->err, "sh: syntax error: %s\n", p->tok.text);
  else fprintf(p->io->err, "sh: syntax error: unexpected %s\n", token_name(&p->tok));
}

static void expect_word(Parser *p, const char *word) {
  if (p->error) return;
  if (is_word(p, word)) advance(p);
  else syntax_error(p);
}

static void skip_newlines(Parser *p) {
  while (p->tok.type == T_NEWLINE) advance(p);
}

static Node *parse_list(Parser *p);

static void parse_redirs(Parser *p, Node *n) {
  while (!p->error && p->tok.type == T_REDIR) {
    int fd = p->tok.fd, op = p->tok.op;
    if (op == R_HEREDOC || op == R_HEREDOC_RAW) {
      n->redirs = xrealloc(n->redirs, sizeof(Redir) * (size_t)(n->nredirs + 1));
      n->redirs[n->nredirs++] = (Redir){fd, op, p->tok.text};
      p->tok.text = NULL;
      advance(p);
      continue;
    }
    advance(p);
    if (p->tok.type != T_WORD) {
      syntax_error(p);
      return;
    }
    n->redirs = xrealloc(n->redirs, sizeof(Redir) * (size_t)(n->nredirs + 1));
    n->redirs[n->nredirs++] = (Redir){fd, op, p->tok.text};
    p->tok.text = NULL;
    advance(p);
  }
}

static Node *parse_compound_body(Parser *p);

static Node *parse_compound(Parser *p) {
  if (p->depth >= MAX_PARSE_DEPTH) {
    if (!p->error && !p->quiet) fprintf(p->io->err, "sh: syntax error: commands nested too deeply\n");
    p->error = 1;
    return new_node(N_GROUP);
  }
  p->depth++;
  Node *n = parse_compound_body(p);
  p->depth--;
  return n;
}

static Node *parse_compound_body(Parser *p) {
  Node *n;
  if (p->tok.type == T_LPAREN) {
    advance(p);
    n = new_node(N_SUBSHELL);
    add_kid(n, parse_list(p), 0);
    if (!p->error && p->tok.type == T_RPAREN) advance(p);
    else syntax_error(p);
  } else if (is_word(p, "{")) {
    advance(p);
    n = new_node(N_GROUP);
    add_kid(n, parse_list(p), 0);
    expect_word(p, "}");
  } else if (is_word(p, "if")) {
    n = new_node(N_IF);
    do { /* `if` and each `elif` */
      advance(p);
      add_kid(n, parse_list(p), 0);
      expect_word(p, "then");
      add_kid(n, parse_list(p), 0);
    } while (!p->error && is_word(p, "elif"));
    if (!p->error && is_word(p, "else")) {
      advance(p);
      add_kid(n, parse_list(p), 0);
      n->has_else = 1;
    }
    expect_word(p, "fi");
  } else if (is_word(p, "while") || is_word(p, "until")) {
    n = new_node(N_WHILE);
    n->until = is_word(p, "until");
    advance(p);
    add_kid(n, parse_list(p), 0);
    expect_word(p, "do");
    add_kid(n, parse_list(p), 0);
    expect_word(p, "done");
  } else if (is_word(p, "case")) {
    n = new_node(N_CASE);
    advance(p);
    if (p->tok.type != T_WORD) {
      syntax_error(p);
      return n;
    }
    list_push(&n->words, p->tok.text);
    p->tok.text = NULL;
    advance(p);
    skip_newlines(p);
    expect_word(p, "in");
    skip_newlines(p);
    while (!p->error && !is_word(p, "esac")) {
      if (p->tok.type == T_LPAREN) advance(p);
      int patterns = 0;
      for (;;) {
        if (p->tok.type != T_WORD) {
          syntax_error(p);
          return n;
        }
        list_push(&n->words, p->tok.text);
        p->tok.text = NULL;
        patterns++;
        advance(p);
        if (p->tok.type != T_PIPE) break;
        advance(p);
      }
      if (p->tok.type != T_RPAREN) {
        syntax_error(p);
        return n;
      }
      advance(p);
      add_kid(n, parse_list(p), patterns);
      if (p->error) return n;
      if (p->tok.type == T_DSEMI) {
        advance(p);
        skip_newlines(p);
      } else if (!is_word(p, "esac")) {
        syntax_error(p);
      }
    }
    expect_word(p, "esac");
  } else { /* for */
    n = new_node(N_FOR);
    advance(p);
    if (p->tok.type != T_WORD || !is_name_start(p->tok.text[0])) {
      syntax_error(p);
      return n;
    }
    n->var = p->tok.text;
    p->tok.text = NULL;
    advance(p);
    skip_newlines(p);
    if (is_word(p, "in")) {
      n->has_in = 1;
      advance(p);
      while (p->tok.type == T_WORD) {
        list_push(&n->words, p->tok.text);
        p->tok.text = NULL;
        advance(p);
      }
      if (p->tok.type == T_SEMI || p->tok.type == T_NEWLINE) advance(p);
      else syntax_error(p);
    } else if (p->tok.type == T_SEMI) {
      advance(p);
    }
    skip_newlines(p);
    expect_word(p, "do");
    add_kid(n, parse_list(p), 0);
    expect_word(p, "done");
  }
  parse_redirs(p, n);
  return n;
}

static Node *parse_command(Parser *p) {
  if (p->tok.type == T_LPAREN || is_word(p, "{") || is_word(p, "if") || is_word(p, "while") || is_word(p, "until") ||
      is_word(p, "for") || is_word(p, "case")) {
    return parse_compound(p);
  }
  Node *n = new_node(N_SIMPLE);
  if (at_list_end(p)) {
    syntax_error(p);
    return n;
  }
  for (;;) {
    if (p->tok.type == T_WORD) {
      list_push(&n->words, p->tok.text);
      p->tok.text = NULL;
      advance(p);
    } else if (p->tok.type == T_REDIR) {
      parse_redirs(p, n);
      if (p->error) return n;
    } else {
      break;
    }
  }
  if (n->words.len == 1 && n->nredirs == 0 && p->tok.type == T_LPAREN && is_name_start(n->words.items[0][0])) {
    advance(p); /* NAME ( ) COMMAND */
    if (p->tok.type != T_RPAREN) {
      syntax_error(p);
      return n;
    }
    advance(p);
    skip_newlines(p);
    Node *f = new_node(N_FUNCTION);
    f->var = n->words.items[0];
    n->words.items[0] = NULL;
    n->words.len = 0;
    free_node(n);
    if (!(p->tok.type == T_LPAREN || is_word(p, "{") || is_word(p, "if") || is_word(p, "while") || is_word(p, "until") ||
          is_word(p, "for") || is_word(p, "case"))) {
      syntax_error(p);
      return f;
    }
    add_kid(f, parse_compound(p), 0);
    return f;
  }
  if (n->words.len == 0 && n->nredirs == 0) syntax_error(p);
  return n;
}

static Node *parse_pipeline(Parser *p) {
  Node *n = new_node(N_PIPELINE);
  if (is_word(p, "!")) {
    n->negate = 1;
    advance(p);
  }
  add_kid(n, parse_command(p), 0);
  while (!p->error && p->tok.type == T_PIPE) {
    advance(p);
    skip_newlines(p);
    add_kid(n, parse_command(p), 0);
  }
  return n;
}

static Node *parse_and_or(Parser *p) {
  Node *n = new_node(N_ANDOR);
  add_kid(n, parse_pipeline(p), T_SEMI);
  while (!p->error && (p->tok.type == T_AND || p->tok.type == T_OR)) {
    int op = p->tok.type;
    advance(p);
    skip_newlines(p);
    add_kid(n, parse_pipeline(p), op);
  }
  return n;
}

static Node *parse_list(Parser *p) {
  Node *n = new_node(N_LIST);
  for (;;) {
    skip_newlines(p);
    if (p->error || at_list_end(p)) break;
    add_kid(n, parse_and_or(p), 0);
    if (p->error) break;
    if (p->tok.type == T_SEMI || p->tok.type == T_AMP || p->tok.type == T_NEWLINE) advance(p);
    else break;
  }
  return n;
}

/* ---- execution ---- */

static int run_node(Shell *sh, Node *n, Io *io);

typedef struct {
  char *name;
  char *old; /* NULL when it was unset */
} SavedVar;

typedef struct {
  Io io;
  FILE *opened[16];
  int nopened;
} Redirected;

/* Applies redirections in order on top of `io`; 0, or 1 after a message. */
static int apply_redirs(Shell *sh, Redir *redirs, int n, Io *io, Redirected *out) {
  out->io = *io;
  out->nopened = 0;
  for (int i = 0; i < n; i++) {
    Redir *r = &redirs[i];
    if (r->fd > 2) return fail(io, "sh", "%d: only file descriptors 0, 1 and 2 can be redirected", r->fd);
    FILE **slot = r->fd == 0 ? &out->io.in : r->fd == 1 ? &out->io.out : &out->io.err;
    if (r->op == R_HEREDOC || r->op == R_HEREDOC_RAW) {
      if (out->nopened >= 16) return fail(io, "sh", "too many redirections");
      char *body;
      if (r->op == R_HEREDOC_RAW) {
        body = xstrdup(r->target);
      } else {
        Expander e = {.fields = &(StrList){0}, .split = 0};
        expand_raw(sh, r->target, io, &e, 1);
        free(buf_take(&e.pat));
        body = buf_take(&e.cur);
      }
      FILE *f = open_reader(body, strlen(body));
      out->opened[out->nopened++] = f;
      *slot = f;
      continue;
    }
    char *target = expand_single(sh, r->target, io);
    int status = 0;
    if (r->op == R_DUP) {
      if (strcmp(target, "-") == 0 && out->nopened < 16) {
        FILE *f = r->fd == 0 ? open_reader(xstrdup(""), 0) : open_discard();
        out->opened[out->nopened++] = f;
        *slot = f;
      } else if (strcmp(target, "0") == 0 || strcmp(target, "1") == 0 || strcmp(target, "2") == 0) {
        *slot = target[0] == '0' ? out->io.in : target[0] == '1' ? out->io.out : out->io.err;
      } else {
        status = fail(io, "sh", "%s: bad file descriptor", target);
      }
    } else {
      const char *mode = r->op == R_IN ? "r" : r->op == R_APPEND ? "a" : "w";
      FILE *f = out->nopened < 16 ? fopen(target, mode) : NULL;
      if (!f && errno == ENOENT && strcmp(target, "/dev/null") == 0) {
        /* Runtimes without a /dev still get the null device scripts expect. */
        f = r->op == R_IN ? open_reader(xstrdup(""), 0) : open_discard();
      }
      if (!f) {
        status = fail(io, "sh", "%s: %s", target, out->nopened < 16 ? strerror(errno) : "too many redirections");
      } else {
        out->opened[out->nopened++] = f;
        *slot = f;
      }
    }
    free(target);
    if (status) return status;
  }
  return 0;
}

static void close_redirs(Redirected *r) {
  for (int i = 0; i < r->nopened; i++) fclose(r->opened[i]);
  r->nopened = 0;
}

static int run_simple(Shell *sh, Node *cmd, Io *io) {
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

  Redirected r;
  int status;
  if (sh->expand_error) {
    sh->expand_error = 0;
    sh->exiting = 1;
    status = 2;
    r.nopened = 0;
  } else {
    status = apply_redirs(sh, cmd->redirs, cmd->nredirs, io, &r);
  }
  if (status == 0 && sh->xtrace && argv.len > 0) {
    fputc('+', io->err);
    for (int i = 0; i < argv.len; i++) fprintf(io->err, " %s", argv.items[i]);
    fputc('\n', io->err);
  }
  if (status == 0 && argv.len > 0) {
    status = run_argv(sh, argv.len, argv.items, &r.io);
  } else if (status == 0) {
    /* Assignments alone keep the status of their last $(...); a bare redirection is 0. */
    status = nassign > 0 ? sh->status : 0;
  }
  close_redirs(&r);

  /* Prefix assignments last only for their command; alone they stay (shell variables are the env here). */
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
static int run_pipeline(Shell *sh, Node *n, Io *io) {
  int status = 0;
  if (n->nkids == 1) {
    status = run_node(sh, n->kids[0], io);
  } else {
    char *data = NULL;
    size_t len = 0;
    int failed = 0;
    for (int i = 0; i < n->nkids; i++) {
      Io stage = *io;
      FILE *in = NULL, *out = NULL;
      char *next = NULL;
      size_t next_len = 0;
      if (i > 0) stage.in = in = open_reader(data, len);
      if (i < n->nkids - 1) stage.out = out = open_memstream(&next, &next_len);
      Shell saved = *sh;
      status = run_node(sh, n->kids[i], &stage);
      if (status != 0) failed = status;
      /* Each stage is a subshell: exit, break and continue end only the stage. */
      sh->exiting = saved.exiting;
      sh->breaking = saved.breaking;
      sh->continuing = saved.continuing;
      sh->returning = saved.returning;
      if (in) fclose(in); /* frees data */
      if (out) fclose(out);
      data = next;
      len = next_len;
    }
    if (sh->pipefail && failed) status = failed;
  }
  return n->negate ? !status : status;
}

static int interrupted(Shell *sh) { return sh->exiting || sh->breaking || sh->continuing || sh->returning; }

/* Runs a loop body; returns 1 when the loop must stop (break, exit). */
static int loop_body(Shell *sh, Node *body, Io *io) {
  sh->status = run_node(sh, body, io);
  if (sh->exiting) return 1;
  if (sh->breaking) {
    sh->breaking--;
    return 1;
  }
  if (sh->continuing) {
    if (--sh->continuing > 0) return 1; /* continue N: go on with an outer loop */
  }
  return 0;
}

static int run_node(Shell *sh, Node *n, Io *io) {
  Redirected r;
  int status = 0;
  switch (n->kind) {
    case N_SIMPLE:
      return run_simple(sh, n, io);
    case N_PIPELINE:
      return run_pipeline(sh, n, io);
    case N_ANDOR: {
      int last_ran = 0;
      for (int i = 0; i < n->nkids && !interrupted(sh); i++) {
        if (n->ops[i] == T_AND && sh->status != 0) continue;
        if (n->ops[i] == T_OR && sh->status == 0) continue;
        int left = i < n->nkids - 1;
        sh->conditions += left;
        sh->status = run_node(sh, n->kids[i], io);
        sh->conditions -= left;
        last_ran = !left;
      }
      /* set -e: a failing command ends the shell, unless it was tested (if, while, && ||, !). */
      if (sh->errexit && sh->status != 0 && last_ran && !sh->conditions && !n->kids[n->nkids - 1]->negate) sh->exiting = 1;
      return sh->status;
    }
    case N_FUNCTION: {
      Function *f = NULL;
      for (Function *g = *sh->functions; g; g = g->next)
        if (strcmp(g->name, n->var) == 0) f = g;
      if (!f) {
        f = xmalloc(sizeof *f);
        f->name = xstrdup(n->var);
        f->next = *sh->functions;
        *sh->functions = f;
      } /* an old body is kept: it may be running */
      f->body = n->kids[0];
      n->nkids = 0; /* the definition outlives this tree */
      return 0;
    }
    case N_LIST:
      for (int i = 0; i < n->nkids && !interrupted(sh); i++) sh->status = run_node(sh, n->kids[i], io);
      return n->nkids ? sh->status : 0;
  }
  if (apply_redirs(sh, n->redirs, n->nredirs, io, &r) != 0) {
    close_redirs(&r);
    return 1;
  }
  io = &r.io;
  switch (n->kind) {
    case N_GROUP:
      status = run_node(sh, n->kids[0], io);
      break;
    case N_SUBSHELL: {
      Shell sub = *sh;
      sub.loops = sub.breaking = sub.continuing = sub.exiting = 0;
      char *cwd = xmalloc(4096); /* on the heap: subshells nest */
      int have_cwd = getcwd(cwd, 4096) != NULL;
      status = run_node(&sub, n->kids[0], io);
      if (have_cwd && chdir(cwd) != 0) fail(io, "sh", "cannot return to %s", cwd);
      free(cwd);
      break;
    }
    case N_IF: {
      int i = 0;
      for (; i + 1 < n->nkids; i += 2) {
        sh->conditions++;
        int cond = run_node(sh, n->kids[i], io);
        sh->conditions--;
        if (cond == 0 && !interrupted(sh)) {
          status = run_node(sh, n->kids[i + 1], io);
          break;
        }
        if (interrupted(sh)) break;
      }
      if (i + 1 >= n->nkids && n->has_else && !interrupted(sh)) status = run_node(sh, n->kids[n->nkids - 1], io);
      break;
    }
    case N_WHILE:
      sh->loops++;
      for (;;) {
        sh->conditions++;
        int cond = run_node(sh, n->kids[0], io);
        sh->conditions--;
        if (interrupted(sh) || (cond == 0) == n->until) break;
        int stop = loop_body(sh, n->kids[1], io);
        status = sh->status;
        if (stop) break;
      }
      sh->loops--;
      break;
    case N_CASE: {
      char *subject = expand_single(sh, n->words.items[0], io);
      int w = 1;
      for (int k = 0; k < n->nkids; k++) {
        int hit = 0;
        for (int j = 0; j < n->ops[k]; j++) {
          Expander e = {.fields = &(StrList){0}, .split = 0};
          expand_raw(sh, n->words.items[w + j], io, &e, 0);
          free(buf_take(&e.cur));
          char *pattern = buf_take(&e.pat);
          hit = hit || fnmatch(pattern, subject, 0) == 0;
          free(pattern);
        }
        w += n->ops[k];
        if (hit) {
          status = run_node(sh, n->kids[k], io);
          break;
        }
      }
      free(subject);
      break;
    }
    case N_FOR: {
      StrList items = {0};
      if (n->has_in) {
        expand_words(sh, n->words.items, n->words.len, io, &items);
      } else {
        for (int i = 1; i < sh->argc; i++) list_push(&items, xstrdup(sh->argv[i]));
      }
      sh->loops++;
      for (int i = 0; i < items.len; i++) {
        setenv(n->var, items.items[i], 1);
        int stop = loop_body(sh, n->kids[0], io);
        status = sh->status;
        if (stop) break;
      }
      sh->loops--;
      list_free(&items);
      break;
    }
  }
  fflush(io->out);
  fflush(io->err);
  close_redirs(&r);
  return status;
}

static int ends_command(int type) { return type == T_SEMI || type == T_AMP || type == T_NEWLINE || type == T_EOF; }

/* Parses and runs one complete command at a time, as sh does, so that a syntax error further on
 * does not stop what comes before it. */
static int run_source(Shell *sh, const char *src, Io *io) {
  Parser p = {.lx = {src, 0}, .io = io};
  next_token(&p.lx, &p.tok);
  while (!sh->exiting) {
    while (p.tok.type == T_NEWLINE || p.tok.type == T_SEMI) advance(&p);
    if (p.tok.type == T_EOF) break;
    Node *n = parse_and_or(&p);
    if (!p.error && !ends_command(p.tok.type)) syntax_error(&p);
    if (p.error) {
      free_node(n);
      sh->status = 2;
      break;
    }
    if (p.tok.type != T_EOF) advance(&p);
    sh->status = run_node(sh, n, io);
    free_node(n);
  }
  free(p.tok.text);
  fflush(io->out);
  return sh->status;
}

/* True while the text so far cannot end a command (open quote, trailing operator, open `if`). */
static int needs_more(const char *src) {
  size_t len = strlen(src);
  while (len > 0 && (src[len - 1] == '\n' || src[len - 1] == ' ' || src[len - 1] == '\t')) len--;
  if (len >= 1 && src[len - 1] == '\\') return 1;
  Parser p = {.lx = {src, 0}, .quiet = 1};
  next_token(&p.lx, &p.tok);
  while (!p.error) {
    while (p.tok.type == T_NEWLINE || p.tok.type == T_SEMI) advance(&p);
    if (p.tok.type == T_EOF) break;
    free_node(parse_and_or(&p));
    if (!p.error && !ends_command(p.tok.type)) syntax_error(&p);
    if (!p.error && p.tok.type != T_EOF) advance(&p);
  }
  free(p.tok.text);
  return p.error && p.at_eof;
}

int sh_main(int argc, char **argv, Io *io) {
  Function *functions = NULL; /* kept until exit: bodies may be shared with subshell copies */
  Shell sh = {.functions = &functions};
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
