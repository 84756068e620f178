// -t/--tty for Linux images: native/pty itself (frames, sizes, signals, exit statuses), containers with
// a pseudo-terminal of their own through the API (interactive shell, window size, ^C, kill, non-root,
// read-only root, the spare launcher) and through the CLI on a real terminal (util-linux script).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSpec } from '../src/runtime/spec.ts';
import type { Container, ContainerSpec } from '../src/runtime/types.ts';
import { linuxTestBed, tempDir } from './helpers/linux-images.ts';
import { cliBin, ensureBuilt } from './helpers/cli.ts';

const root = path.resolve(import.meta.dirname, '..');
const hostArch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
const pty = hostArch && path.join(root, 'native', 'bin', `pty-${hostArch}`);
const bed = linuxTestBed('wasmbox-tty-', { beforeAll, afterAll });

const frame = (text: string): Buffer => {
  const b = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x64, b.length >> 8, b.length & 0xff]), b]);
};
const sizeFrame = (cols: number, rows: number) => Buffer.from([0x77, cols >> 8, cols & 0xff, rows >> 8, rows & 0xff]);

/** Collects a stream's text and waits for patterns in it. */
class Screen {
  text = '';
  #waiters: Array<() => void> = [];
  add(s: string): void {
    this.text += s;
    for (const w of this.#waiters.splice(0)) w();
  }
  async waitFor(pattern: RegExp, ms = 10_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = pattern.exec(this.text);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 200); });
    }
  }
}

describe('native/pty', () => {
  const available = () => (pty && fs.existsSync(pty) ? undefined : `no native/bin/pty for ${process.arch}`);

  function runPty(args: string[]) {
    const child = spawn(pty!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new Screen();
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => out.add(s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    return { child, out, exit, err: () => err };
  }

  it('gives the program a terminal of the size asked, takes input and sizes in frames split anywhere, and passes ^C as SIGINT', async (ctx) => {
    const skip = available();
    if (skip) return ctx.skip(skip);
    const p = runPty(['100', '30', '--', '/bin/sh', '-c', 'tty; stty size; read line; echo "got:$line"; read again; stty size; sleep 20']);
    await p.out.waitFor(/30 100/);
    expect(p.out.text).toMatch(/^\/dev\/pts\/\d+\r\n/);
    // a frame written one byte at a time, then a size frame and an input frame in one write
    for (const byte of frame('hello\n')) p.child.stdin.write(Buffer.of(byte));
    await p.out.waitFor(/got:hello/);
    p.child.stdin.write(Buffer.concat([sizeFrame(120, 40), frame('\n')]));
    await p.out.waitFor(/40 120/);
    p.child.stdin.write(frame('\x03'));
    expect(await p.exit).toBe(130);
    expect(p.err()).toBe('');
  });

  it('passes signals on to the program and exits with its status', async (ctx) => {
    const skip = available();
    if (skip) return ctx.skip(skip);
    const p = runPty(['80', '24', '--', '/bin/sh', '-c', 'trap "echo bye; exit 9" TERM; echo up; while :; do sleep 0.05; done']);
    await p.out.waitFor(/up/);
    p.child.kill('SIGTERM');
    expect(await p.exit).toBe(9);
    expect(p.out.text).toContain('bye');
    const signalled = runPty(['80', '24', '--', '/bin/sh', '-c', 'kill -KILL $$']);
    expect(await signalled.exit).toBe(137);
  });

  it('ends input at stdin\'s end but keeps the terminal, and refuses bad arguments and frames', async (ctx) => {
    const skip = available();
    if (skip) return ctx.skip(skip);
    const p = runPty(['80', '24', '--', '/bin/sh', '-c', 'sleep 0.3; echo still-here; exit 4']);
    p.child.stdin.end();
    expect(await p.exit).toBe(4);
    expect(p.out.text).toContain('still-here');

    for (const args of [[], ['80', '24', '/bin/true'], ['80', 'x', '--', '/bin/true'], ['65536', '24', '--', '/bin/true'], ['-1', '24', '--', '/bin/true']]) {
      const r = spawnSync(pty!, args, { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(125);
      expect(r.stderr).toMatch(/^(usage|pty): /);
    }
    const missing = runPty(['80', '24', '--', '/nonexistent/program']);
    expect(await missing.exit).toBe(127);
    expect(missing.out.text).toContain('/nonexistent/program: no such file or directory');
    const notProgram = runPty(['80', '24', '--', '/etc']);
    expect(await notProgram.exit).toBe(126);

    const bad = runPty(['80', '24', '--', '/bin/sh', '-c', 'sleep 20']);
    bad.child.stdin.write(Buffer.from('?'));
    expect(await bad.exit).toBe(125);
    expect(bad.err()).toContain('malformed input frame');
  });
});

describe('native/pty, the other arch', () => {
  const other = hostArch === 'x86_64' ? 'aarch64' : 'x86_64';
  it(`the ${other} build relays a terminal too (under qemu-user)`, async (ctx) => {
    const qemu = `qemu-${other}-static`;
    if (spawnSync(qemu, ['--version']).status !== 0) {
      console.warn(`pty-${other} not executed: ${qemu} is not installed (apt-get install qemu-user-static)`);
      return ctx.skip(`${qemu} is not installed`);
    }
    const child = spawn(qemu, [path.join(root, 'native', 'bin', `pty-${other}`), '90', '20', '--', '/bin/sh', '-c', 'tty; stty size; read x; echo "got:$x"; sleep 20'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new Screen();
    child.stdout.setEncoding('utf8').on('data', (s: string) => out.add(s));
    const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await out.waitFor(/20 90\r\n/);
    child.stdin.write(frame('hi\n'));
    await out.waitFor(/got:hi/);
    child.stdin.write(frame('\x03'));
    expect(await exit).toBe(130);
  });
});

describe('a Linux container with a terminal (API)', () => {
  const spec = (argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec => ({
    argv, env: ['PATH=/bin', 'TERM=xterm'], cwd: '/', tty: true, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
  });

  async function started(s: ContainerSpec): Promise<{ c: Container; screen: Screen; input: WritableStreamDefaultWriter<Uint8Array>; stderr: Promise<string> }> {
    const c = await bed.backend.create(bed.busybox, s);
    await c.start();
    const screen = new Screen();
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of c.stdout as unknown as AsyncIterable<Uint8Array>) screen.add(decoder.decode(chunk, { stream: true }));
    })();
    return { c, screen, input: c.stdin.getWriter(), stderr: new Response(c.stderr).text() };
  }

  it('runs an interactive shell on its own terminal: size, resize, ^C, exit status', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const { c, screen, input, stderr } = await started(spec(['sh'], { stdin: true, ttySize: { cols: 100, rows: 30 } }));
    const type = (s: string) => input.write(new TextEncoder().encode(s));
    await type('tty; stty size; echo "term=$TERM"\n');
    await screen.waitFor(/term=xterm\r\n/);
    expect(screen.text).toMatch(/\/dev\/pts\/\d+\r\n30 100\r\nterm=xterm\r\n/);
    c.resize!(120, 40);
    await type('stty size\n');
    await screen.waitFor(/40 120\r\n/);
    // ^C stops the foreground job, not the shell
    await type('sleep 30; echo after-sleep\n');
    // (the shell echoes the line as it reads it; the sleep starts right after)
    await screen.waitFor(/sleep 30; echo after-sleep\r\n/);
    await new Promise((r) => setTimeout(r, 300));
    await type('\x03');
    await type('echo "alive $?"\n');
    await screen.waitFor(/alive 130/);
    expect(screen.text).not.toMatch(/\nafter-sleep\r/);
    await type('exit 5\n');
    const status = await c.wait();
    expect(status).toMatchObject({ code: 5, reason: 'exit' });
    expect(await stderr).toBe('');
    expect(() => c.resize!(-1, 10)).toThrow(/terminal size/);
  });

  it('without -i: a terminal of 80 x 24 with no input; stderr shows on it; signals reach the program', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const { c, screen, input } = await started(spec(['sh', '-c', 'test -t 0 && test -t 1 && test -t 2 && stty size && echo to-stderr >&2 && read x; echo "read=$?"']));
    await input.write(new TextEncoder().encode('ignored\n'));
    await screen.waitFor(/24 80\r\nto-stderr\r\n/);
    c.resize!(90, 20); // (nothing reads it; it must not get in the way)
    const term = await started(spec(['sh', '-c', 'trap "echo bye; exit 9" TERM; echo up; while :; do sleep 0.05; done']));
    await term.screen.waitFor(/up/);
    await term.c.kill('SIGTERM');
    expect((await term.c.wait()).code).toBe(9);
    expect(term.screen.text).toContain('bye');
    await c.kill();
    expect(screen.text).toContain('to-stderr');
    expect(screen.text).not.toContain('read=0');
  });

  it('works for another user, with a read-only root, and one container after another (spare launchers)', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    for (const o of [{ user: '1000:1000' }, { readOnlyRoot: true }, {}, {}]) {
      const { c, screen, stderr } = await started(spec(['sh', '-c', 'id -u; tty; stty size'], o));
      const status = await c.wait();
      expect(status.code, `${JSON.stringify(o)}: ${screen.text} ${await stderr}`).toBe(0);
      await screen.waitFor(/24 80\r\n/);
      expect(screen.text).toMatch(new RegExp(`^${'user' in o ? 1000 : 0}\\r\\n/dev/pts/\\d+\\r\\n`));
    }
  });

  it('docker -t puts TERM=xterm in the environment unless the image or the options set it', () => {
    const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } } as never;
    expect(resolveSpec(config, { tty: true }).env).toContain('TERM=xterm');
    expect(resolveSpec(config, { tty: true, env: ['TERM=vt100'] }).env.filter((e) => e.startsWith('TERM='))).toEqual(['TERM=vt100']);
    expect(resolveSpec(config, {}).env.some((e) => e.startsWith('TERM='))).toBe(false);
    expect(resolveSpec(config, { tty: true, ttySize: { cols: 132, rows: 50 } }).ttySize).toEqual({ cols: 132, rows: 50 });
  });
});

describe('wasmbox run -t (CLI)', () => {
  const hasScript = spawnSync('script', ['--version']).status === 0;

  function loadBusybox(home: string): void {
    const oci = path.join(bed.work, 'busybox');
    const r = spawnSync(process.execPath, [cliBin, '--home', home, 'load', '-q', '-t', 'tty-busybox', '-i', oci], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }

  it('-it on a real terminal: the container gets a terminal of our window\'s size, raw keys, and its exit status', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    if (!hasScript) return ctx.skip('util-linux script is not installed');
    ensureBuilt();
    const home = tempDir('wasmbox-tty-cli-');
    try {
      loadBusybox(home);
      // script gives the CLI a terminal (its own pty, 90 x 20 here); what we write to script is typed at it
      const command = `stty cols 90 rows 20; exec ${process.execPath} ${cliBin} --home ${home} run -it tty-busybox sh`;
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const screen = new Screen();
      child.stdout.setEncoding('utf8').on('data', (s: string) => screen.add(s));
      const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      child.stdin.write('stty size; tty\n');
      // (libuv's raw mode keeps ONLCR: our terminal adds its own \r before the container's \r\n)
      await screen.waitFor(/20 90\r+\n/);
      child.stdin.write('sleep 30; echo after-sleep\n');
      await screen.waitFor(/sleep 30; echo after-sleep\r+\n/);
      await new Promise((r) => setTimeout(r, 500));
      child.stdin.write('\x03');
      child.stdin.write('echo "alive $?"\n');
      await screen.waitFor(/alive 130/);
      child.stdin.write('exit 3\n');
      expect(await exit).toBe(3);
      expect(screen.text).not.toMatch(/\nafter-sleep\r/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('-t with output to a pipe, -it without a terminal refused, and -t for a WASI image', (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    ensureBuilt();
    const home = tempDir('wasmbox-tty-cli-');
    try {
      loadBusybox(home);
      const run = (args: string[]) => spawnSync(process.execPath, [cliBin, '--home', home, 'run', ...args], { encoding: 'utf8', input: '' });
      const t = run(['-t', 'tty-busybox', 'sh', '-c', 'tty; stty size; echo "$TERM"; echo err >&2; exit 6']);
      expect(t.status, t.stderr).toBe(6);
      expect(t.stdout).toMatch(/^\/dev\/pts\/\d+\r\n24 80\r\nxterm\r\nerr\r\n$/);
      const it2 = run(['-it', 'tty-busybox', 'true']);
      expect(it2.status).toBe(125);
      expect(it2.stderr).toContain('the input device is not a TTY');
      const wasi = run(['-t', 'hello']);
      expect(wasi.status, wasi.stderr).toBe(0);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

