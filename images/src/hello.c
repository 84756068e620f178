/*
 * hello: the smallest wasmbox sample image.
 * Prints a greeting, its working directory, argv and environment, so tests can
 * check how a runtime passes args, `-e` variables and the working directory.
 *   --exit N      exit with status N after printing
 *   --stderr TEXT also write TEXT and a newline to stderr
 *   --stdin       copy standard input to standard output before exiting
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* WASI has no process working directory; the runtime passes WorkingDir as PWD. */
static void enter_pwd(void) {
  const char *pwd = getenv("PWD");
  if (pwd && *pwd && chdir(pwd) != 0) {
    fprintf(stderr, "hello: cannot enter PWD %s\n", pwd);
  }
}

int main(int argc, char **argv) {
  enter_pwd();
  const char *greeting = getenv("GREETING");
  printf("%s\n", greeting && *greeting ? greeting : "hello from wasmbox");

  char cwd[4096];
  printf("cwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
  printf("argc: %d\n", argc);
  for (int i = 0; i < argc; i++) printf("argv[%d]: %s\n", i, argv[i]);
  for (char **e = environ; e && *e; e++) printf("env: %s\n", *e);

  int status = 0;
  int copy_stdin = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc) {
      status = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--stderr") == 0 && i + 1 < argc) {
      fprintf(stderr, "%s\n", argv[++i]);
    } else if (strcmp(argv[i], "--stdin") == 0) {
      copy_stdin = 1;
    }
  }
  if (copy_stdin) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
  }
  fflush(stdout);
  return status;
}
