import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult as Result } from './helpers/cli.ts';
import { compileWasi, hasWasiClang } from './helpers/compile-wasi.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'bin/wasmbox.cjs');
let tmp: string;
let home: string;


/** Runs the built CLI (dist/cli.cjs, built by `npm test`) with its own store. */
function wasmbox(args: string[], o: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return runCli(args, { env: { ...process.env, WASMBOX_HOME: home, ...o.env }, ...(o.input !== undefined ? { input: o.input } : {}) });
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist/cli.cjs')) || !existsSync(join(root, 'dist/sandbox-worker.js'))) {
    execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'inherit' });
  }
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-cli-run-'));
  home = join(tmp, 'home');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('wasmbox run', () => {
  it('runs the bundled hello image by name on an empty store, args replacing Cmd', async () => {
    const r = await wasmbox(['run', 'hello', 'a', 'b c']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hello from wasmbox\n/);
    expect(r.stdout).toContain('argv[0]: /hello.wasm\nargv[1]: a\nargv[2]: b c\n');
    const again = await wasmbox(['run', '--rm', 'hello']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('argc: 1\n');
  });

  it('-e, a bare -e from the host env, --env-file, -w; options stop at the image name', async () => {
    const envFile = join(tmp, 'env.list');
    writeFileSync(envFile, '# comment\nFROM_FILE=yes\nGREETING=from file\n');
    const r = await wasmbox(
      ['run', '-e', 'GREETING=hi there', '--env-file', envFile, '-e', 'HOSTVAR', '-w', '/work/dir', 'hello', '-e', 'X=1'],
      { env: { HOSTVAR: 'host value' } },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^hi there\n/); // -e comes after --env-file
    expect(r.stdout).toContain('env: FROM_FILE=yes\n');
    expect(r.stdout).toContain('env: HOSTVAR=host value\n');
    expect(r.stdout).toContain('cwd: /work/dir\n');
    expect(r.stdout).toContain('argv[1]: -e\nargv[2]: X=1\n');
  });

  it('passes the guest exit status and stderr through; -i feeds stdin', async () => {
    const r = await wasmbox(['run', '-i', 'hello', '--stdin', '--stderr', 'to stderr', '--exit', '42'], { input: 'from stdin\n' });
    expect(r.code).toBe(42);
    expect(r.stderr).toBe('to stderr\n');
    expect(r.stdout).toMatch(/from stdin\n$/);
    const closed = await wasmbox(['run', 'hello', '--stdin'], { input: 'not given without -i\n' });
    expect(closed.code).toBe(0);
    expect(closed.stdout).not.toContain('not given');
  });

  it('a bare .wasm runs like wasmtime: only -e and -v are granted, not its image filesystem', async (ctx) => {
    if (!hasWasiClang()) ctx.skip();
    const module = await compileWasi(`#include <stdio.h>
extern char **environ;
int main(void) {
  for (char **e = environ; *e; e++) printf("env %s\\n", *e);
  FILE *f = fopen("/data/out.txt", "w");
  if (f) { fputs("from the guest", f); fclose(f); }
  printf("own module visible: %s\\n", fopen("/bare.wasm", "r") ? "yes" : "no");
  return 7;
}
`);
    const wasmPath = join(tmp, 'bare.wasm');
    writeFileSync(wasmPath, module);
    const data = join(tmp, 'bare-data');
    mkdirSync(data, { recursive: true });
    const r = await wasmbox(['run', '-e', 'ONLY=this', '-v', `${data}:/data`, wasmPath]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('env ONLY=this\nown module visible: no\n');
    expect(readFileSync(join(data, 'out.txt'), 'utf8')).toBe('from the guest');
  });

  it('--cpus is refused for a WASI guest rather than ignored; --pids-limit must be a whole number', async () => {
    const cpus = await wasmbox(['run', '--cpus', '1', 'hello']);
    expect(cpus.code).toBe(125);
    expect(cpus.stderr).toMatch(/CPU quota .* cannot be enforced/);
    expect((await wasmbox(['run', '--pids-limit', '2.5', 'hello'])).code).toBe(125);
    expect((await wasmbox(['run', '--pids-limit', '4', 'hello'])).code).toBe(0);
  });

  it('what a guest writes to its in-memory filesystem is bounded: ENOSPC, never a host allocation', async (ctx) => {
    if (!hasWasiClang()) ctx.skip();
    const module = await compileWasi(`#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void try_write(const char *path, long long offset, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT, 0644);
  char *buf = calloc(1, len);
  ssize_t n = pwrite(fd, buf, len, offset);
  printf("%s %lld+%zu: %s\\n", path, offset, len, n < 0 ? strerror(errno) : "ok");
  close(fd);
  free(buf);
}
int main(void) {
  try_write("/tmp/sparse", 3LL << 30, 1);
  try_write("/tmp/small", 0, 512 << 10);
  try_write("/tmp/big", 0, 2 << 20);
  return 0;
}
`);
    const wasmPath = join(tmp, 'quota.wasm');
    writeFileSync(wasmPath, module);
    const tmpDir = join(tmp, 'quota-tmp');
    mkdirSync(tmpDir, { recursive: true });
    // A bare module sees only its mounts: an in-memory volume as /tmp.
    const def = await wasmbox(['run', '-v', 'scratch:/tmp', wasmPath]);
    expect(def.stderr).toBe('');
    expect(def.stdout).toBe('/tmp/sparse 3221225472+1: No space left on device\n/tmp/small 0+524288: ok\n/tmp/big 0+2097152: ok\n');
    const small = await wasmbox(['run', '--storage-opt', 'size=1m', '-v', 'scratch:/tmp', wasmPath]);
    expect(small.stdout).toBe('/tmp/sparse 3221225472+1: No space left on device\n/tmp/small 0+524288: ok\n/tmp/big 0+2097152: No space left on device\n');
    expect((await wasmbox(['run', '--storage-opt', 'bogus=1', 'hello'])).code).toBe(125);
  });

  it('exit statuses: 127 not found, 126 not runnable, 125 for wasmbox failures', async () => {
    const notFound = await wasmbox(['run', '--entrypoint', 'nope', 'toolbox']);
    expect(notFound.code).toBe(127);
    expect(notFound.stderr).toMatch(/nope.*not found/);
    const dir = await wasmbox(['run', '--entrypoint', '/bin', 'toolbox']);
    expect(dir.code).toBe(126);
    expect((await wasmbox(['run', '--no-such-flag', 'hello'])).code).toBe(125);
    const noImage = await wasmbox(['run', 'no-such-image']);
    expect(noImage.code).toBe(125);
    expect(noImage.stderr).toMatch(/no-such-image/);
    expect((await wasmbox(['run', '-m', 'lots', 'hello'])).code).toBe(125);
    const tiny = await wasmbox(['run', '-m', '64k', 'toolbox', 'true']);
    expect(tiny.code).toBe(125);
    expect(tiny.stderr).toMatch(/memory limit/);
  });

  it('toolbox script with --entrypoint and a pipeline; --read-only refuses writes', async () => {
    const r = await wasmbox(['run', 'toolbox', 'sh', '-c', 'ls -l /; echo hi > /tmp/x; cat /tmp/x']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tmp/);
    expect(r.stdout).toMatch(/hi\n$/);
    const ro = await wasmbox(['run', '--read-only', 'toolbox', 'sh', '-c', 'echo hi > /tmp/x']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/read-only/i);
  });

  it('megabytes of output come through whole, on the main thread and from a Worker', async () => {
    const inline = await wasmbox(['run', 'toolbox', 'seq', '1', '300000']);
    expect(inline.code).toBe(0);
    expect(inline.stdout.length).toBe(1_988_895);
    expect(inline.stdout.endsWith('299999\n300000\n')).toBe(true);
    const worker = await wasmbox(['run', '--timeout', '60s', 'toolbox', 'seq', '1', '300000']);
    expect(worker.code).toBe(0);
    expect(worker.stdout.length).toBe(1_988_895);
  });

  it('-v HOST:GUEST read-write and :ro', async () => {
    const host = join(tmp, 'share');
    mkdirSync(host);
    writeFileSync(join(host, 'in'), 'host file\n');
    const rw = await wasmbox(['run', '-v', `${host}:/share`, 'toolbox', 'sh', '-c', 'cat /share/in; echo out > /share/out']);
    expect(rw.code).toBe(0);
    expect(rw.stdout).toBe('host file\n');
    expect(readFileSync(join(host, 'out'), 'utf8')).toBe('out\n');
    const ro = await wasmbox(['run', '-v', `${host}:/share:ro`, 'toolbox', 'sh', '-c', 'echo no > /share/ro']);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toMatch(/read-only/i);
    expect(existsSync(join(host, 'ro'))).toBe(false);
    expect((await wasmbox(['run', '-v', `${host}:/share:rx`, 'toolbox', 'true'])).code).toBe(125);
    expect((await wasmbox(['run', '-v', `${join(tmp, 'missing')}:/m`, 'toolbox', 'true'])).code).toBe(125);
  });
});

describe('the CLI code cache (bin/wasmbox.cjs)', () => {
  it('is written after a command\'s second run, used by later runs, and a damaged one is replaced', async () => {
    const dir = join(tmp, 'code-cache');
    const env = { WASMBOX_CODE_CACHE: dir };
    const out = (r: Result) => r.stdout.replace(/HOSTNAME=\w+/, 'HOSTNAME=*');
    const zeroth = await wasmbox(['run', 'hello', 'a'], { env });
    expect(zeroth.code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin'))).toEqual([]);
    const first = await wasmbox(['run', 'hello', 'a'], { env });
    expect([first.code, out(first)]).toEqual([0, out(zeroth)]);
    const files = readdirSync(dir).filter((f) => f.endsWith('.bin'));
    expect(files).toEqual([expect.stringMatching(new RegExp(`^${process.version}-${process.arch}-.*-run\\.bin$`))]);
    // It names the way the command went (a guest on this thread), so that another way is added later.
    expect(readFileSync(join(dir, `${files[0]}.paths`), 'utf8')).toBe('run:wasi:inline');
    const written = readFileSync(join(dir, files[0]!));
    const inode = statSync(join(dir, files[0]!)).ino;
    expect(written.length).toBeGreaterThan(10_000);

    const second = await wasmbox(['run', 'hello', 'a'], { env });
    expect([second.code, out(second)]).toEqual([0, out(first)]);
    // Accepted by V8, so not written again.
    expect(statSync(join(dir, files[0]!)).ino).toBe(inode);

    // A run down another way (a Worker, for the timeout) compiles more: the cache is made again, holding
    // both ways, then kept.
    expect((await wasmbox(['run', '--timeout', '10s', 'hello', 'a'], { env })).code).toBe(0);
    const both = statSync(join(dir, files[0]!));
    expect(both.ino).not.toBe(inode);
    expect(both.size).toBeGreaterThan(written.length);
    expect(readFileSync(join(dir, `${files[0]}.paths`), 'utf8')).toBe('run:wasi:inline\nrun:wasi');
    expect((await wasmbox(['run', '--timeout', '10s', 'hello', 'a'], { env })).code).toBe(0);
    expect(statSync(join(dir, files[0]!)).ino).toBe(both.ino);

    writeFileSync(join(dir, files[0]!), written.subarray(0, 5000));
    const third = await wasmbox(['run', 'hello', 'a'], { env });
    expect([third.code, out(third)]).toEqual([0, out(first)]);
    expect(readFileSync(join(dir, files[0]!)).length).toBeGreaterThan(10_000);

    for (let i = 0; i < 2; i++) expect((await wasmbox(['--version'], { env })).code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin')).sort()).toEqual([files[0], files[0]!.replace(/-run\.bin$/, '-none.bin')].sort());
  });

  it('a cache file others can write is not used (it is compiled code), and is replaced by one of ours', async () => {
    const dir = join(tmp, 'code-cache-shared');
    const env = { WASMBOX_CODE_CACHE: dir };
    for (let i = 0; i < 2; i++) expect((await wasmbox(['run', 'hello'], { env })).code).toBe(0);
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith('-run.bin'))!);
    chmodSync(file, 0o666);
    const inode = statSync(file).ino;
    expect((await wasmbox(['run', 'hello'], { env })).code).toBe(0);
    // Not accepted, so written anew (a new file, mode 0600).
    expect(statSync(file).ino).not.toBe(inode);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('WASMBOX_CODE_CACHE=0 writes none', async () => {
    const cacheHome = join(tmp, 'xdg-off');
    const r = await wasmbox(['run', 'hello'], { env: { WASMBOX_CODE_CACHE: '0', XDG_CACHE_HOME: cacheHome } });
    expect(r.code).toBe(0);
    expect(existsSync(cacheHome)).toBe(false);
  });
});

describe.skipIf(!hasWasiClang())('wasmbox run FILE.wasm with limits', () => {
  it('a module that imports its memory runs, on the main thread and in a Worker, with and without -m', async () => {
    const mod = join(tmp, 'import-memory.wasm');
    writeFileSync(mod, await compileWasi('#include <stdio.h>\nint main(void) { puts("imported memory"); return 0; }', { flags: ['-Wl,--import-memory'] }));
    expect(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(mod))).some((i) => i.kind === 'memory')).toBe(true);
    for (const extra of [[], ['--timeout', '30s'], ['-m', '16m']]) {
      const r = await wasmbox(['run', ...extra, mod]);
      expect([r.code, r.stdout, r.stderr]).toEqual([0, 'imported memory\n', '']);
    }
  });

  it('--timeout ends an infinite loop with 124', async () => {
    const loop = join(tmp, 'loop.wasm');
    writeFileSync(loop, await compileWasi('int main(void) { volatile unsigned n = 0; for (;;) n++; }'));
    const r = await wasmbox(['run', '--timeout', '300ms', loop]);
    expect(r.code).toBe(124);
  });

  it('Ctrl-C (SIGINT) ends a guest with 130, on the main thread and in a Worker', async () => {
    const loop = join(tmp, 'loop-int.wasm');
    writeFileSync(loop, await compileWasi('int main(void) { volatile unsigned n = 0; for (;;) n++; }'));
    for (const args of [['run', loop], ['run', '--timeout', '60s', loop]]) {
      const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, WASMBOX_HOME: home }, stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGINT');
      const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('close', (c, s) => r([c, s])));
      // On the main thread the process takes SIGINT's default action; in a Worker, wasmbox kills the guest.
      expect(code === 130 || signal === 'SIGINT').toBe(true);
    }
  });

  it('--output-limit kills a flood with 137 after exactly that many bytes', async () => {
    const flood = join(tmp, 'flood.wasm');
    writeFileSync(flood, await compileWasi('#include <stdio.h>\nint main(void) { for (;;) puts("yes"); }'));
    const r = await wasmbox(['run', '--output-limit', '10k', flood]);
    expect(r.code).toBe(137);
    expect(r.stdout.length).toBe(10 * 1024);
  });

  it('-m caps memory: allocation fails in the guest', async () => {
    const bomb = join(tmp, 'bomb.wasm');
    writeFileSync(bomb, await compileWasi(`
      #include <stdio.h>
      #include <stdlib.h>
      int main(void) {
        int n = 0; void **head = 0;
        for (;;) { void **p = malloc(1 << 20); if (!p) break; *p = head; head = p; if (++n > 3000) break; }
        printf("%d\\n", n);
        return head ? 0 : 1;
      }`));
    const r = await wasmbox(['run', '-m', '8m', bomb]);
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBeLessThan(8);
  });
});
