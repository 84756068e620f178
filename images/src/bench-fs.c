/*
 * bench-fs: a small-file filesystem workload.
 * Usage: bench-fs [N] [DIR]   (default 2000 files in /tmp/bench-fs)
 * Creates DIR, writes N small files, stats them, lists DIR, reads them back,
 * renames and unlinks them, removes DIR, then prints one line of counts.
 * Exits 1 on the first failing call.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what, const char *path) {
  fprintf(stderr, "bench-fs: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  const char *pwd = getenv("PWD");
  if (pwd && *pwd) chdir(pwd);
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
  const char *dir = argc > 2 ? argv[2] : "/tmp/bench-fs";
  if (n < 0) n = 0;
  char path[4096], path2[4096], data[128];
  long created = 0, statted = 0, listed = 0, read_bytes = 0, renamed = 0, unlinked = 0;

  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return fail("mkdir", dir);
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/file-%05ld.txt", dir, i);
    FILE *f = fopen(path, "w");
    if (!f) return fail("create", path);
    int len = snprintf(data, sizeof data, "file %ld of %ld: the quick brown fox jumps over the lazy dog\n", i, n);
    if (fwrite(data, 1, (size_t)len, f) != (size_t)len || fclose(f) != 0) return fail("write", path);
    created++;
  }
  for (long i = 0; i < n; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/file-%05ld.txt", dir, i);
    if (stat(path, &st) != 0) return fail("stat", path);
    if (S_ISREG(st.st_mode) && st.st_size > 0) statted++;
  }
  DIR *d = opendir(dir);
  if (!d) return fail("opendir", dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) listed++;
  }
  closedir(d);
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/file-%05ld.txt", dir, i);
    FILE *f = fopen(path, "r");
    if (!f) return fail("open", path);
    size_t got;
    while ((got = fread(data, 1, sizeof data, f)) > 0) read_bytes += (long)got;
    fclose(f);
  }
  for (long i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/file-%05ld.txt", dir, i);
    snprintf(path2, sizeof path2, "%s/renamed-%05ld.txt", dir, i);
    if (rename(path, path2) != 0) return fail("rename", path);
    renamed++;
  }
  for (long i = 0; i < n; i++) {
    snprintf(path2, sizeof path2, "%s/renamed-%05ld.txt", dir, i);
    if (unlink(path2) != 0) return fail("unlink", path2);
    unlinked++;
  }
  if (rmdir(dir) != 0) return fail("rmdir", dir);
  printf("created %ld stat %ld listed %ld read %ld bytes renamed %ld unlinked %ld\n",
         created, statted, listed, read_bytes, renamed, unlinked);
  return 0;
}
