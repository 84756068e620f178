/* toolbox: one multi-call WASI program holding a small shell and the common tools. */
#ifndef TOOLBOX_H
#define TOOLBOX_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>

/* Where an applet reads and writes: the shell swaps these for redirections and pipes. */
typedef struct {
  FILE *in;
  FILE *out;
  FILE *err;
} Io;

typedef int (*AppletFn)(int argc, char **argv, Io *io);

/* Runs the applet argv[0] names (its basename); 127 with a message when there is none. */
int run_applet(int argc, char **argv, Io *io);
/* The applet for a name, or NULL. */
AppletFn find_applet(const char *name);

/* Options: single-letter flags, `spec` like "lan:" (n takes a value). Stops at the first
 * operand, at "--" and at "-". Returns the index of the first operand, or -1 after printing
 * a message for an unknown option. */
typedef struct {
  char on[128];
  const char *arg[128];
} Opts;
int parse_opts(int argc, char **argv, const char *spec, Opts *o, Io *io);

/* "tool: message" on io->err; returns 1 so callers can `return fail(...)`. */
int fail(Io *io, const char *tool, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "tool: path: strerror(errno)" on io->err; returns 1. */
int fail_errno(Io *io, const char *tool, const char *path);

char *path_join(const char *dir, const char *name);
const char *base_name(const char *path);
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Growable byte string. */
typedef struct {
  char *data;
  size_t len, cap;
} Buf;
void buf_putc(Buf *b, char c);
void buf_puts(Buf *b, const char *s);
void buf_putn(Buf *b, const char *s, size_t n);
char *buf_take(Buf *b); /* NUL-terminated; the Buf is reset */

/* Growable list of strings. */
typedef struct {
  char **items;
  int len, cap;
} StrList;
void list_push(StrList *l, char *s);
void list_free(StrList *l);

/* A stream that reads the given bytes (it takes ownership of `data`), and a stream that
 * discards what it is given. */
FILE *open_reader(char *data, size_t len);
FILE *open_discard(void);
/* Reads a whole stream or file; NULL with errno set on failure. */
char *read_all(FILE *f, size_t *len);
char *read_file(const char *path, size_t *len);
/* All lines of a stream, without their newlines. */
void read_lines(FILE *f, StrList *lines);

/* Shell (shell.c). */
int sh_main(int argc, char **argv, Io *io);

/* File tools (fs-tools.c). */
int ls_main(int, char **, Io *);
int mkdir_main(int, char **, Io *);
int rm_main(int, char **, Io *);
int rmdir_main(int, char **, Io *);
int mv_main(int, char **, Io *);
int cp_main(int, char **, Io *);
int ln_main(int, char **, Io *);
int touch_main(int, char **, Io *);
int stat_main(int, char **, Io *);
int find_main(int, char **, Io *);
int pwd_main(int, char **, Io *);

/* Text and misc tools (text-tools.c). */
int cat_main(int, char **, Io *);
int echo_main(int, char **, Io *);
int wc_main(int, char **, Io *);
int grep_main(int, char **, Io *);
int head_main(int, char **, Io *);
int tail_main(int, char **, Io *);
int sort_main(int, char **, Io *);
int uniq_main(int, char **, Io *);
int tee_main(int, char **, Io *);
int printf_main(int, char **, Io *);
int seq_main(int, char **, Io *);
int basename_main(int, char **, Io *);
int dirname_main(int, char **, Io *);
int env_main(int, char **, Io *);
int true_main(int, char **, Io *);
int false_main(int, char **, Io *);
int sleep_main(int, char **, Io *);
int test_main(int, char **, Io *);

/* More tools (misc-tools.c). */
int cut_main(int, char **, Io *);
int tr_main(int, char **, Io *);
int date_main(int, char **, Io *);
int uname_main(int, char **, Io *);
int hostname_main(int, char **, Io *);
int id_main(int, char **, Io *);
int whoami_main(int, char **, Io *);
int which_main(int, char **, Io *);
int xargs_main(int, char **, Io *);

/* sed.c */
int sed_main(int, char **, Io *);

#endif
