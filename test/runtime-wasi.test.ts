import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { isSandboxError } from '../src/errors.ts';
import { compileWasi, hasWasiClang } from './helpers/compile-wasi.ts';
import { buildWorker } from './helpers/sandbox-worker.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const hello = join(root, 'images/hello.tar');
const toolbox = join(root, 'images/toolbox.tar');
const text = (b: Uint8Array) => new TextDecoder().decode(b);
let tmp: string;
let runtime: Runtime;

async function wasmFile(name: string, source: string): Promise<string> {
  const path = join(tmp, `${name}.wasm`);
  writeFileSync(path, await compileWasi(source));
  return path;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-runtime-'));
  runtime = createRuntime({ home: join(tmp, 'home'), workerUrl: await buildWorker(tmp) });
});
afterAll(async () => {
  await runtime?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('runtime.run on the sample images', () => {
  it('finds the bundled sample images by name in an empty store, unless fallback is false', async () => {
    const home = join(tmp, 'fresh-home');
    const fresh = createRuntime({ home, workerUrl: await buildWorker(tmp) });
    const r = await fresh.run('toolbox', { args: ['sh', '-c', 'echo hi | wc -c'] });
    expect([r.code, text(r.stdout)]).toEqual([0, '3\n']);
    await fresh.close();
    const strict = createRuntime({ home: join(tmp, 'strict-home'), fallback: false });
    await expect(strict.run('toolbox', {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await strict.close();
  });

  it('hello: image Entrypoint, Env, WorkingDir; args replace Cmd; -e and -w', async () => {
    const r = await runtime.run(hello, { args: ['one', 'two words'], env: ['GREETING=bonjour', 'EXTRA=1'], workdir: '/tmp' });
    expect(r.reason).toBe('exit');
    expect(r.code).toBe(0);
    const out = text(r.stdout);
    expect(out).toMatch(/^bonjour\n/);
    expect(out).toContain('cwd: /tmp\n');
    expect(out).toContain('argv[0]: /hello.wasm\nargv[1]: one\nargv[2]: two words\n');
    expect(out).toContain('env: EXTRA=1\n');
    expect(out).toContain('env: PATH=/bin\n');
    expect(out).toContain('env: PWD=/tmp\n');
    expect(out).not.toContain('GREETING=hello from wasmbox');
  });

  it('hello: exit status, stderr, stdin given whole', async () => {
    const r = await runtime.run(hello, { args: ['--exit', '7', '--stderr', 'oops', '--stdin'], stdin: 'piped input\n' });
    expect(r).toMatchObject({ code: 7, reason: 'exit' });
    expect(text(r.stderr)).toBe('oops\n');
    expect(text(r.stdout)).toMatch(/piped input\n$/);
  });

  it('interactive stdin through the container stream, and output as it is written', async () => {
    const c = await runtime.create(hello, { args: ['--stdin'], interactive: true });
    const out = new Response(c.stdout).text();
    await c.start();
    const w = c.stdin.getWriter();
    await w.write(new TextEncoder().encode('line 1\n'));
    await w.write(new TextEncoder().encode('x'.repeat(200_000)));
    await w.close();
    expect(await c.wait()).toMatchObject({ code: 0, reason: 'exit' });
    expect(await out).toMatch(/line 1\nx{200000}$/);
  });

  it('--entrypoint replaces the entrypoint; unknown commands are NOT_FOUND (127), directories NOT_RUNNABLE (126)', async () => {
    const r = await runtime.run(toolbox, { entrypoint: 'echo', args: ['via', 'entrypoint'] });
    expect(text(r.stdout)).toBe('via entrypoint\n');
    const missing = await runtime.create(hello, { entrypoint: 'no-such-command' }).catch((e) => e);
    expect(isSandboxError(missing, 'NOT_FOUND')).toBe(true);
    expect(missing.data.entrypoint).toBe('no-such-command');
    const dir = await runtime.create(toolbox, { entrypoint: '/bin' }).catch((e) => e);
    expect(isSandboxError(dir, 'NOT_RUNNABLE')).toBe(true);
  });

  it('toolbox script; the container fs after exit has /tmp/x; the image is unchanged for the next container', async () => {
    const r = await runtime.run(toolbox, { args: ['sh', '-c', 'ls -l /; echo hi > /tmp/x; cat /tmp/x'] });
    expect(r.code).toBe(0);
    expect(text(r.stdout)).toMatch(/bin/);
    expect(text(r.stdout)).toMatch(/hi\n$/);
    const fs = await r.container.fs();
    const tmpDir = fs.lookup(fs.root(), 'tmp');
    const x = fs.lookup(tmpDir, 'x');
    expect(x).toBeDefined();
    const buf = new Uint8Array(16);
    expect(text(buf.subarray(0, fs.read(x, buf, 0)))).toBe('hi\n');
    expect(() => fs.unlink(tmpDir, 'x')).toThrow(/EROFS/);

    const next = await runtime.run(toolbox, { args: ['sh', '-c', 'cat /tmp/x'] });
    expect(next.code).not.toBe(0);
    expect(text(next.stdout)).toBe('');
  });

  it('--read-only: writes to the root fail with EROFS', async () => {
    const r = await runtime.run(toolbox, { args: ['sh', '-c', 'echo x > /tmp/y'], readOnly: true });
    expect(r.code).not.toBe(0);
    expect(text(r.stderr)).toMatch(/read-only/i);
  });

  it('-v HOST:GUEST mounts a host directory read-write, and :ro refuses writes with EROFS', async () => {
    const host = join(tmp, 'mnt');
    mkdirSync(host);
    writeFileSync(join(host, 'in.txt'), 'from host\n');
    const rw = await runtime.run(toolbox, {
      args: ['sh', '-c', 'cat /data/in.txt; echo from guest > /data/out.txt; ls / | grep -c data'],
      mounts: [{ guest: '/data', source: { type: 'host', path: host }, mode: 'rw' }],
    });
    expect(rw.code).toBe(0);
    expect(text(rw.stdout)).toBe('from host\n1\n'); // the mount point shows in its parent, as in docker
    expect(readFileSync(join(host, 'out.txt'), 'utf8')).toBe('from guest\n');

    const ro = await runtime.run(toolbox, {
      args: ['sh', '-c', 'cat /data/in.txt; echo no > /data/ro.txt'],
      mounts: [{ guest: '/data', source: { type: 'host', path: host }, mode: 'ro' }],
    });
    expect(text(ro.stdout)).toBe('from host\n');
    expect(ro.code).not.toBe(0);
    expect(text(ro.stderr)).toMatch(/read-only/i);
    expect(existsSync(join(host, 'ro.txt'))).toBe(false);
  });

  it('named in-memory volumes carry files from one container to the next', async () => {
    const vol = { guest: '/vol', source: { type: 'volume' as const, name: 'cache' }, mode: 'rw' as const };
    expect((await runtime.run(toolbox, { args: ['sh', '-c', 'echo kept > /vol/f'], mounts: [vol] })).code).toBe(0);
    const r = await runtime.run(toolbox, { args: ['sh', '-c', 'cat /vol/f'], mounts: [vol] });
    expect(text(r.stdout)).toBe('kept\n');
  });

  it('inline mode runs a guest with no limits on this thread, output going to the sinks; with a timeout it uses a Worker', async () => {
    const out: string[] = [];
    const inline = createRuntime({
      home: join(tmp, 'home'),
      inline: { stdout: (b) => out.push('1:' + text(b)), stderr: (b) => out.push('2:' + text(b)) },
    });
    const r = await inline.run(toolbox, { args: ['sh', '-c', 'echo to-out; echo to-err >&2; echo x > /tmp/f; cat /tmp/f'] });
    expect(r).toMatchObject({ code: 0, reason: 'exit' });
    const stream = (n: string) => out.filter((c) => c.startsWith(n)).map((c) => c.slice(2)).join('');
    expect(stream('1:')).toBe('to-out\nx\n');
    expect(stream('2:')).toBe('to-err\n');
    expect(r.stdout.length).toBe(0);
    const fs = await r.container.fs();
    const f = fs.lookup(fs.lookup(fs.root(), 'tmp'), 'f');
    const buf = new Uint8Array(8);
    expect(text(buf.subarray(0, fs.read(f, buf, 0)))).toBe('x\n');
    expect(() => fs.unlink(fs.lookup(fs.root(), 'tmp'), 'f')).toThrow(/EROFS/);
    let inlineBytes = 0;
    const big = createRuntime({ home: join(tmp, 'home'), inline: { stdout: (b) => { inlineBytes += b.length; }, stderr: () => {} } });
    expect((await big.run(toolbox, { args: ['seq', '1', '300000'] })).code).toBe(0); // more than the 1 MiB flow window
    expect(inlineBytes).toBe(1_988_895); // the bytes of "1\n".."300000\n"
    out.length = 0;
    const bounded = await inline.run(toolbox, { args: ['sh', '-c', 'echo worker'], limits: { timeoutMs: 10_000 } });
    expect(text(bounded.stdout)).toBe('worker\n');
    expect(out).toEqual([]);
  });

  it('a linux image gets BACKEND_UNAVAILABLE with a clear message', async () => {
    const img = await runtime.image(hello);
    const linux = { ...img, kind: 'linux' as const, platform: { os: 'linux', architecture: 'amd64' } };
    const wasiOnly = createRuntime({ home: join(tmp, 'home'), backends: [] });
    const e = await wasiOnly.create(linux).catch((x) => x);
    expect(isSandboxError(e, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect(e.message).toMatch(/linux\/amd64/);
  });
});

describe.skipIf(!hasWasiClang())('a host directory as the root (-v HOST:/)', () => {
  it('replaces the image root, read-write and :ro, and the program still comes from the image', async () => {
    const prog = await wasmFile('rootls', `
      #include <dirent.h>
      #include <stdio.h>
      #include <string.h>
      int main(void) {
        DIR *d = opendir("/");
        struct dirent *e;
        while ((e = readdir(d))) if (e->d_name[0] != '.') printf("%s\\n", e->d_name);
        closedir(d);
        FILE *f = fopen("/in.txt", "r");
        char buf[64] = {0};
        if (f) { fgets(buf, sizeof buf, f); fclose(f); }
        printf("read: %s", buf);
        FILE *w = fopen("/out.txt", "w");
        if (!w) { perror("write"); return 3; }
        fputs("written\\n", w);
        fclose(w);
        return 0;
      }`);
    const host = join(tmp, 'rootdir');
    mkdirSync(host);
    writeFileSync(join(host, 'in.txt'), 'host root\n');
    const rw = await runtime.run(prog, { mounts: [{ guest: '/', source: { type: 'host', path: host }, mode: 'rw' }] });
    expect(rw).toMatchObject({ code: 0, reason: 'exit' });
    expect(text(rw.stdout)).toBe('in.txt\nread: host root\n');
    expect(readFileSync(join(host, 'out.txt'), 'utf8')).toBe('written\n');
    rmSync(join(host, 'out.txt'));
    const ro = await runtime.run(prog, { mounts: [{ guest: '/', source: { type: 'host', path: host }, mode: 'ro' }] });
    expect(ro.code).toBe(3);
    expect(text(ro.stderr)).toMatch(/read-only/i);
    expect(existsSync(join(host, 'out.txt'))).toBe(false);
  });
});

describe.skipIf(!hasWasiClang())('limits and hostile guests', () => {
  it('an infinite loop under a timeout: reason timeout (124), and the host stays responsive', async () => {
    const loop = await wasmFile('loop', 'int main(void) { volatile unsigned long n = 0; for (;;) n++; }');
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 10);
    const r = await runtime.run(loop, { limits: { timeoutMs: 400 } });
    clearInterval(timer);
    expect(r).toMatchObject({ code: 124, reason: 'timeout' });
    expect(ticks).toBeGreaterThan(5);
  });

  it('kill() ends a running guest with 137', async () => {
    const loop = await wasmFile('loop2', 'int main(void) { volatile unsigned long n = 0; for (;;) n++; }');
    const c = await runtime.create(loop);
    await c.start();
    await c.kill();
    expect(await c.wait()).toMatchObject({ code: 137, reason: 'killed', signal: 'SIGKILL' });
    await expect(c.fs()).rejects.toThrow(/stopped/);
  });

  it('megabytes of output arrive whole and in order through a slow reader (flow control)', async () => {
    const big = await wasmFile('big', `
      #include <stdio.h>
      int main(void) {
        static char line[1024];
        for (int i = 0; i < 4096; i++) {
          int n = snprintf(line, sizeof line, "%06d ", i);
          for (int j = n; j < 1023; j++) line[j] = 'a' + (i + j) % 26;
          line[1023] = '\\n';
          fwrite(line, 1, 1024, stdout);
        }
        return 0;
      }`);
    const c = await runtime.create(big, { limits: { timeoutMs: 60_000 } });
    await c.start();
    const reader = c.stdout.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
      if (chunks.length % 16 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(await c.wait()).toMatchObject({ code: 0, reason: 'exit' });
    expect(total).toBe(4096 * 1024);
    const all = chunks.map((x) => text(x)).join('');
    const lines = all.split('\n');
    expect(lines[0]!.startsWith('000000 ')).toBe(true);
    expect(lines[4095]!.startsWith('004095 ')).toBe(true);
    expect(lines.every((l, i) => i === 4096 || l.startsWith(String(i).padStart(6, '0')))).toBe(true);
  });

  it('a timeout also ends a guest blocked reading stdin or sleeping (Atomics.wait in the Worker)', async () => {
    const blocked = await runtime.create(hello, { args: ['--stdin'], interactive: true, limits: { timeoutMs: 300 } });
    await blocked.start();
    expect(await blocked.wait()).toMatchObject({ code: 124, reason: 'timeout' });
    await blocked.stdin.getWriter().write(new TextEncoder().encode('too late')).catch(() => {});
    const sleeper = await runtime.run(toolbox, { args: ['sleep', '30'], limits: { timeoutMs: 300 } });
    expect(sleeper).toMatchObject({ code: 124, reason: 'timeout' });
  });

  it('a cancelled stdout drops output without holding the guest back', async () => {
    const c = await runtime.create(toolbox, { args: ['sh', '-c', 'seq 1 200000; echo done >&2'], limits: { timeoutMs: 60_000 } });
    const err = new Response(c.stderr).text();
    await c.stdout.cancel();
    await c.start();
    expect(await c.wait()).toMatchObject({ code: 0, reason: 'exit' });
    expect(await err).toBe('done\n');
  });

  it('kill() before start ends the container; start() afterwards is INVALID_STATE', async () => {
    const c = await runtime.create(hello);
    await c.kill('SIGTERM');
    expect(await c.wait()).toMatchObject({ code: 143, reason: 'signal', signal: 'SIGTERM' });
    await expect(c.start()).rejects.toThrow(/already/);
  });

  it('a trap is reason trap (134), not a host error', async () => {
    const trap = await wasmFile('trap', '#include <stdio.h>\nint main(void) { puts("before"); fflush(stdout); __builtin_trap(); }');
    const r = await runtime.run(trap);
    expect(r).toMatchObject({ code: 134, reason: 'trap' });
    expect(text(r.stdout)).toBe('before\n');
  });

  it('a memory bomb under -m: allocation fails inside the guest past the limit', async () => {
    const bomb = await wasmFile('bomb', `
      #include <stdio.h>
      #include <stdlib.h>
      #include <string.h>
      int main(void) {
        int mib = 0;
        void **head = 0;
        for (;;) {
          void **p = malloc(1 << 20);
          if (!p) break;
          memset(p, 1, 1 << 20);
          *p = head;
          head = p;
          if (++mib > 4000) break;
        }
        if (head && ((char *)head)[100] != 1) return 2;
        printf("%d\\n", mib);
        return 0;
      }`);
    const r = await runtime.run(bomb, { limits: { memoryBytes: 16 * 1024 * 1024 } });
    expect(r.reason).toBe('exit');
    const mib = Number(text(r.stdout).trim());
    expect(mib).toBeGreaterThan(8);
    expect(mib).toBeLessThan(16);
    const tooSmall = await runtime.create(bomb, { limits: { memoryBytes: 64 * 1024 } }).catch((e) => e);
    expect(isSandboxError(tooSmall, 'LIMIT_EXCEEDED')).toBe(true);
  });

  it('an output flood is cut at the output cap and the guest killed (137)', async () => {
    const flood = await wasmFile('flood', '#include <stdio.h>\nint main(void) { for (;;) fputs("flood flood flood flood\\n", stdout); }');
    const r = await runtime.run(flood, { limits: { outputBytes: 100_000, timeoutMs: 20_000 } });
    expect(r).toMatchObject({ code: 137, reason: 'output-limit' });
    expect(r.stdout.length).toBe(100_000);
  });

  it('huge iovec counts and out-of-bounds pointers are errnos for the guest, never a host crash', async () => {
    const iov = await wasmFile('iov', `
      #include <stdio.h>
      #include <wasi/api.h>
      int main(void) {
        __wasi_size_t n = 0;
        __wasi_errno_t a = __wasi_fd_write(1, (const __wasi_ciovec_t *)0, 0x7fffffff, &n);
        __wasi_errno_t b = __wasi_fd_write(1, (const __wasi_ciovec_t *)0xfffffff0, 4, &n);
        __wasi_ciovec_t big = { (const uint8_t *)16, 0xffffffff };
        __wasi_errno_t c = __wasi_fd_write(1, &big, 1, &n);
        __wasi_iovec_t many[1] = { { (uint8_t *)0xffff0000, 0x7fffffff } };
        __wasi_errno_t d = __wasi_fd_read(0, many, 1, &n);
        printf("%d %d %d %d\\n", a != 0, b != 0, c != 0, d != 0);
        return 0;
      }`);
    const r = await runtime.run(iov, { stdin: 'some input' });
    expect(r).toMatchObject({ code: 0, reason: 'exit' });
    expect(text(r.stdout)).toBe('1 1 1 1\n');
  });
});
