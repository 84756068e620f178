// -p/--publish for Linux images: the host listens on each published port and relays every connection
// through a Unix socket to native/publish.c in the container, which connects it to the container's
// loopback. As plans (data) and for real, through the API and the CLI, against busybox nc servers.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapArgs, planContainer, validatePlan, type PlanHost } from '../src/linux-backend/index.ts';
import { PTY_PATH, PUBLISH_DIR, PUBLISH_PATH, PUBLISH_SOCKET, SWITCH_PATH } from '../src/linux-backend/plan.ts';
import { isSandboxError } from '../src/errors.ts';
import { parsePublish, resolveSpec } from '../src/runtime/spec.ts';
import { createRuntime } from '../src/runtime/runtime.ts';
import type { Container, ContainerSpec, PublishedPort } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { bundleRunner, entriesOnceRemoved, linuxTestBed, planHostFixture, runnerPrelude, tempDir } from './helpers/linux-images.ts';
import { cliAsync, cliBin, ensureBuilt } from './helpers/cli.ts';

const bed = linuxTestBed('wasmbox-publish-', { beforeAll, afterAll });
const spec = (argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv, env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
});

function fails(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(isSandboxError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a SandboxError');
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(isSandboxError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).toBe(code);
  expect((e as Error).message).toMatch(message);
}

/** A TCP port nothing listens on right now. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Sends `data` (then ends the writing side: a half-close) and reads until the other side ends; `closed`
 * when the connection ended without a byte (what a client of a port nothing serves sees).
 */
function exchange(port: number, data: Uint8Array): Promise<{ reply: Buffer; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('close', () => {
      const reply = Buffer.concat(chunks);
      resolve({ reply, closed: reply.length === 0, ...(error ? { error } : {}) });
    });
    sock.on('end', () => sock.end());
    sock.end(data);
  });
}

/** The first exchange the container's server answers (it may still be starting). */
async function whenServing(port: number, data: Uint8Array): Promise<Buffer> {
  for (let i = 0; i < 200; i++) {
    const r = await exchange(port, data);
    if (!r.closed) return r.reply;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`nothing answered on port ${port}`);
}

/** Whether something listens on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('connect', () => { sock.destroy(); resolve(true); });
    sock.on('error', () => resolve(false));
  });
}

const root = path.resolve(import.meta.dirname, '..');
const hostArch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
const otherArch = hostArch === 'x86_64' ? 'aarch64' : 'x86_64';

/** Connects to a relay's socket, sends `header` (in pieces, a while apart, when asked), then `data` and its end. */
function throughSocket(sock: string, header: Uint8Array, data: Uint8Array, pieces = false): Promise<{ reply: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ path: sock, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    s.on('end', () => s.end());
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), ...(error ? { error } : {}) }));
    s.on('connect', async () => {
      if (pieces) {
        for (const b of header) {
          s.write(Uint8Array.of(b));
          await new Promise((r) => setTimeout(r, 30));
        }
      } else s.write(header);
      s.end(data);
    });
  });
}

const header = (port: number, type = 0x70) => Uint8Array.of(type, port >> 8, port & 0xff);

describe('native/publish on its own', () => {
  let echo: net.Server;
  let echoPort = 0;
  let work = '';
  beforeAll(async () => {
    work = tempDir('wasmbox-publish-native-');
    echo = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s); });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    echoPort = (echo.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => echo.close(() => r()));
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs the relay of `arch` (under qemu-user for the other one) with `program`; resolves once its socket is there. */
  async function start(arch: string, ports: string, program: string[], name: string) {
    const binary = path.join(root, 'native', 'bin', `publish-${arch}`);
    const sock = path.join(work, name);
    const argv = [binary, sock, ports, '--', ...program];
    const child = arch === hostArch ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn(`qemu-${arch}-static`, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; stderr: string }>((r) => child.on('close', (code) => r({ code, stderr })));
    for (let i = 0; i < 400 && !fs.existsSync(sock) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
    return { child, sock, exited };
  }

  async function relays(arch: string, ctx: { skip(reason: string): void }) {
    if (arch !== hostArch && spawnSync(`qemu-${arch}-static`, ['--version']).status !== 0) {
      console.warn(`publish-${arch} not executed: qemu-${arch}-static is not installed (apt-get install qemu-user-static)`);
      return ctx.skip(`qemu-${arch}-static is not installed`);
    }
    const { child, sock, exited } = await start(arch, `1,${echoPort},65535`, ['/bin/sh', '-c', 'trap "exit 42" TERM; while :; do sleep 0.05; done'], `relay-${arch}`);
    // bad headers drop their connection only: another type, a port not listed, a header cut short
    expect((await throughSocket(sock, header(echoPort, 0x71), Buffer.from('x'))).reply.length).toBe(0);
    expect((await throughSocket(sock, header(echoPort + 1), Buffer.from('x'))).reply.length).toBe(0);
    expect((await throughSocket(sock, Uint8Array.of(0x70), new Uint8Array(0))).reply.length).toBe(0);
    expect((await throughSocket(sock, randomBytes(64), randomBytes(1000))).reply.length).toBe(0);
    // a listed port nothing serves: closed at once
    expect((await throughSocket(sock, header(1), Buffer.from('x'))).reply.length).toBe(0);
    // a header in pieces, then data both ways at once on several connections
    expect((await throughSocket(sock, header(echoPort), Buffer.from('slow'), true)).reply.toString()).toBe('slow');
    const payloads = [0, 1, 2].map(() => randomBytes(1024 * 1024));
    const replies = await Promise.all(payloads.map((p) => throughSocket(sock, header(echoPort), p)));
    replies.forEach((r, i) => expect(r.reply.equals(payloads[i]!)).toBe(true));
    // a signal is passed on to the program, whose status is the relay's
    child.kill('SIGTERM');
    const end = await exited;
    expect(end.code, end.stderr).toBe(42);
    expect(fs.existsSync(sock)).toBe(true);
  }

  it(`the ${hostArch} build: relays, drops bad headers only, passes signals on, exits with the program`, async (ctx) => {
    if (!hostArch) return ctx.skip('not x86_64 or aarch64');
    await relays(hostArch, ctx);
  });

  it(`the ${otherArch} build relays too (under qemu-user)`, async (ctx) => {
    await relays(otherArch, ctx);
  }, 60_000);

  it('refuses bad arguments (125) and reports a program it cannot run (127)', async (ctx) => {
    if (!hostArch) return ctx.skip('not x86_64 or aarch64');
    const binary = path.join(root, 'native', 'bin', `publish-${hostArch}`);
    const run = (args: string[]) => spawnSync(binary, args, { encoding: 'utf8' });
    expect(run([path.join(work, 'a'), '80']).status).toBe(125);
    for (const ports of ['', '0', '80,', '70000', '8o', '1,,2']) {
      const r = run([path.join(work, 'b'), ports, '--', '/bin/true']);
      expect(r.status, ports).toBe(125);
      expect(r.stderr).toContain('PORTS must be comma-separated numbers from 1 to 65535');
    }
    expect(run([path.join(work, 'no', 'such', 'dir'), '80', '--', '/bin/true']).stderr).toMatch(/cannot bind the socket \(errno 2\)/);
    const missing = run([path.join(work, 'c'), '80', '--', '/no/such/program']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toContain('publish: cannot execute /no/such/program: no such file or directory');
    expect(run([path.join(work, 'd'), '80', '--', '/bin/sh', '-c', 'exit 9']).status).toBe(9);
  });
});

describe('-p as data', () => {
  const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
  const host = (o: Partial<PlanHost> = {}): PlanHost => planHostFixture({ publish: '/opt/wb/native/bin/publish-x86_64', ...o });
  const plan = (s: Partial<ContainerSpec>, h = host()) => validatePlan(planContainer(image, spec(['sh', '-c', 'true'], s), h, 'ab'.repeat(32)), h);
  const ports: PublishedPort[] = [{ hostPort: 8080, containerPort: 80 }, { hostIp: '127.0.0.1', hostPort: 0, containerPort: 443 }, { hostPort: 8081, containerPort: 80 }];

  it('parses docker\'s -p syntax; UDP, ranges and bad ports are refused', () => {
    expect(parsePublish('8080:80')).toEqual({ hostPort: 8080, containerPort: 80 });
    expect(parsePublish('127.0.0.1:8080:80/tcp')).toEqual({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 });
    expect(parsePublish('127.0.0.1::80')).toEqual({ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 });
    expect(parsePublish('80')).toEqual({ hostPort: 0, containerPort: 80 });
    expect(parsePublish('0:80')).toEqual({ hostPort: 0, containerPort: 80 });
    expect(parsePublish('[::1]:8080:80')).toEqual({ hostIp: '::1', hostPort: 8080, containerPort: 80 });
    fails(() => parsePublish('8080:80/udp'), 'INVALID_ARGUMENT', /only TCP ports are published here, not udp/);
    fails(() => parsePublish('8000-8001:80-81'), 'INVALID_ARGUMENT', /port ranges are not supported/);
    fails(() => parsePublish('8080:0'), 'INVALID_ARGUMENT', /container port must be a number from 1 to 65535/);
    fails(() => parsePublish('70000:80'), 'INVALID_ARGUMENT', /host port must be a number from 0 to 65535/);
    fails(() => parsePublish('x:8080:80'), 'INVALID_ARGUMENT', /hostIp must be an IPv4 or IPv6 address/);
    fails(() => parsePublish('1:2:3:4'), 'INVALID_ARGUMENT', /use \[ip:\]hostPort:containerPort/);
    fails(() => parsePublish('8080:80/sctp'), 'INVALID_ARGUMENT', /not sctp/);
    const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } } as never;
    expect(resolveSpec(config, { publish: [{ hostPort: 1, containerPort: 2 }] }).publish).toEqual([{ hostPort: 1, containerPort: 2 }]);
    expect(resolveSpec(config, {}).publish).toBeUndefined();
    expect(() => resolveSpec(config, { publish: [{ hostPort: 1.5, containerPort: 2 }] })).toThrow(/hostPort must be a whole number/);
  });

  it('runs the relay after the user switch and before the terminal program, with the relay directory bound', () => {
    const p = plan({ publish: ports });
    expect(p.publish).toEqual({
      binary: '/opt/wb/native/bin/publish-x86_64',
      hostDir: '/wb/containers/c1/ports',
      ports: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 }, { hostIp: '127.0.0.1', hostPort: 0, containerPort: 443 }, { hostIp: '0.0.0.0', hostPort: 8081, containerPort: 80 }],
    });
    const a = bwrapArgs(p);
    expect(a.slice(a.indexOf('--'))).toEqual(['--', PUBLISH_PATH, PUBLISH_SOCKET, '80,443', '--', '/bin/sh', '-c', 'true']);
    const dir = PUBLISH_PATH.slice(0, PUBLISH_PATH.lastIndexOf('/'));
    expect(a.join(' ')).toContain(`--perms 0711 --dir ${dir} --ro-bind /opt/wb/native/bin/publish-x86_64 ${PUBLISH_PATH} --bind /wb/containers/c1/ports ${PUBLISH_DIR}`);
    expect(a.join(' ')).toContain('--unshare-net');
    const both = plan({ publish: ports, tty: true, user: 'app' }, host({ idMap: 'identity', switcher: '/bin/busybox', pty: '/opt/wb/pty' }));
    const b = bwrapArgs(both);
    expect(b.slice(b.indexOf('--'))).toEqual(['--', SWITCH_PATH, 'nsenter', '-S', '1000', '-G', '1000', '--', PUBLISH_PATH, PUBLISH_SOCKET, '80,443', '--', PTY_PATH, '80', '24', '--', '/bin/sh', '-c', 'true']);
    expect(b.filter((x) => x === dir)).toHaveLength(1);
    expect(bwrapArgs(plan({})).join(' ')).not.toContain(PUBLISH_PATH);
  });

  it('the host\'s network discards published ports (as docker does); without the relay program they are refused', () => {
    const p = plan({ publish: ports, network: 'host' });
    expect(p.publish).toBeUndefined();
    expect(bwrapArgs(p).join(' ')).not.toContain(PUBLISH_PATH);
    fails(() => plan({ publish: ports }, host({ publish: undefined })), 'CAPABILITY_DENIED', /need wasmbox's port relay for x86_64 \(native\/bin\/publish-x86_64\)/);
    expect(plan({ network: 'host' }, host({ publish: undefined })).publish).toBeUndefined();
  });

  it('validates the published ports as data', () => {
    const h = host();
    const p = plan({ publish: ports }, h);
    const pub = p.publish!;
    const twice = { ...p, publish: { ...pub, ports: [...pub.ports, { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 81 }] } };
    fails(() => validatePlan(twice, h), 'INVALID_ARGUMENT', /host port 0\.0\.0\.0:8080 is published twice/);
    // (port 0 twice is two ports the host picks)
    validatePlan({ ...p, publish: { ...pub, ports: [...pub.ports, { hostIp: '127.0.0.1', hostPort: 0, containerPort: 81 }] } }, h);
    fails(() => validatePlan({ ...p, publish: { ...pub, ports: [{ hostIp: '0.0.0.0', hostPort: 1, containerPort: 0 }] } }, h), 'INVALID_ARGUMENT', /invalid container port 0/);
    fails(() => validatePlan({ ...p, publish: { ...pub, ports: [{ hostIp: '0.0.0.0', hostPort: 65536, containerPort: 1 }] } }, h), 'INVALID_ARGUMENT', /invalid host port 65536/);
    fails(() => validatePlan({ ...p, publish: { ...pub, ports: [{ hostIp: 'a b', hostPort: 1, containerPort: 1 }] } }, h), 'INVALID_ARGUMENT', /invalid host address "a b"/);
    fails(() => validatePlan({ ...p, publish: { ...pub, ports: [] } }, h), 'INVALID_ARGUMENT', /no published port/);
    fails(() => validatePlan({ ...p, publish: { ...pub, binary: 'publish' } }, h), 'INVALID_ARGUMENT', /port relay must be an absolute host path/);
    fails(() => validatePlan({ ...p, publish: { ...pub, hostDir: '/wb/../etc' } }, h), 'INVALID_ARGUMENT', /relay directory must be an absolute host path/);
    fails(() => validatePlan({ ...p, namespaces: { ...p.namespaces, net: false } }, h), 'INVALID_ARGUMENT', /published ports need a network namespace/);
  });
});

/** A container that echoes on port 80 (several connections at once) and answers the byte count of what it read on 81. */
const SERVERS = ['sh', '-c', 'nc -ll -p 81 -e sh -c "wc -c" & exec nc -ll -p 80 -e cat'];

describe('-p for real (API)', () => {
  const started: Container[] = [];
  afterAll(async () => {
    for (const c of started) { await c.kill().catch(() => {}); }
  });
  const run = async (argv: string[], publish: PublishedPort[], o: Partial<ContainerSpec> = {}) => {
    const c = await bed.backend.create(bed.busybox, spec(argv, { publish, ...o }));
    started.push(c);
    await c.start();
    return c;
  };

  it('a server in the container, reached at the host port: connections at once, large transfers both ways, half-close, port 0', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const echoPort = await freePort();
    const c = await run(SERVERS, [{ hostPort: echoPort, containerPort: 80 }, { hostIp: '127.0.0.1', hostPort: 0, containerPort: 81 }]);
    expect(c.ports).toHaveLength(2);
    expect(c.ports![0]).toEqual({ hostIp: '0.0.0.0', hostPort: echoPort, containerPort: 80 });
    const countPort = c.ports![1]!.hostPort;
    expect(c.ports![1]).toEqual({ hostIp: '127.0.0.1', hostPort: countPort, containerPort: 81 });
    expect(countPort).toBeGreaterThan(0);
    expect((await whenServing(echoPort, Buffer.from('ping\n'))).toString()).toBe('ping\n');
    // four at once, 3 MiB each way, each its own content
    const payloads = [0, 1, 2, 3].map(() => randomBytes(3 * 1024 * 1024));
    const replies = await Promise.all(payloads.map((p) => exchange(echoPort, p)));
    replies.forEach((r, i) => {
      expect(r.error).toBeUndefined();
      expect(r.reply.length).toBe(payloads[i]!.length);
      expect(r.reply.equals(payloads[i]!)).toBe(true);
    });
    // half-close: the server answers only once it read the end of what was sent
    await whenServing(countPort, Buffer.from('x'));
    const counted = await Promise.all([5_000_000, 1, 123_457].map((n) => exchange(countPort, randomBytes(n))));
    expect(counted.map((r) => r.reply.toString().trim())).toEqual(['5000000', '1', '123457']);
    await c.kill();
    await c.wait();
    // the host's servers closed with the container
    expect(await listening(echoPort)).toBe(false);
    expect(await listening(countPort)).toBe(false);
  });

  it('a port nothing serves in the container: the client sees the connection closed, with nothing', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const port = await freePort();
    const c = await run(['sh', '-c', 'echo started; exec sleep 30'], [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80 }]);
    const reader = c.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('started\n');
    const r = await exchange(port, Buffer.from('hello?'));
    expect(r.closed).toBe(true);
    expect(await listening(port)).toBe(true);
    await c.kill();
    await c.wait();
    expect(await listening(port)).toBe(false);
  });

  it('the program\'s exit status is the container\'s; what a server sent just before it exited still arrives', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const port = await freePort();
    const c = await run(['sh', '-c', 'nc -l -p 80 -e sh -c "head -c 3; seq 1 100000"; exit 3'], [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80 }]);
    const reply = await whenServing(port, Buffer.from('go!'));
    const expected = `go!${Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join('')}`;
    expect(reply.toString()).toBe(expected);
    expect((await c.wait()).code).toBe(3);
  });

  it('a host port in use fails the start with a clear error and leaves nothing listening or running', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = (busy.address() as AddressInfo).port;
    const other = await freePort();
    try {
      const c = await bed.backend.create(bed.busybox, spec(['sleep', '30'], {
        publish: [{ hostIp: '127.0.0.1', hostPort: other, containerPort: 80 }, { hostIp: '127.0.0.1', hostPort: busyPort, containerPort: 81 }],
      }));
      await rejects(c.start(), 'NETWORK', new RegExp(`cannot publish container port 81 on 127\\.0\\.0\\.1:${busyPort}: the address is already in use \\(EADDRINUSE\\)`));
      expect(await listening(other)).toBe(false);
      expect(fs.existsSync(path.join(bed.home, 'linux', 'containers', c.id))).toBe(false);
      expect(c.ports).toEqual([]);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });

  it('killed while its ports are being bound: it never starts, and nothing listens', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const port = await freePort();
    const mark = tempDir('wasmbox-publish-mark-');
    try {
      const c = await bed.backend.create(bed.busybox, spec(['touch', '/mark/ran'], {
        readOnlyRoot: true, publish: [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 80 }], mounts: [{ guest: '/mark', source: { type: 'host', path: mark }, mode: 'rw' }],
      }));
      const starting = c.start();
      await c.kill();
      await starting;
      expect((await c.wait()).code).toBe(137);
      await new Promise((r) => setTimeout(r, 300));
      expect(fs.readdirSync(mark)).toEqual([]);
      expect(await listening(port)).toBe(false);
      expect(c.ports).toEqual([]);
    } finally {
      fs.rmSync(mark, { recursive: true, force: true });
    }
  });

  it('a container of another user, with a read-only root: its relay still serves', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    // (a port above 1024: the user has no capabilities)
    const c = await run(['sh', '-c', 'id -u; exec nc -ll -p 8080 -e cat'], [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 8080 }], { user: 'app', readOnlyRoot: true });
    const reader = c.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('1000\n');
    const data = randomBytes(1 << 20);
    expect((await whenServing(c.ports![0]!.hostPort, data)).equals(data)).toBe(true);
    await c.kill();
    await c.wait();
    expect(fs.existsSync(path.join(bed.home, 'linux', 'containers', c.id))).toBe(false);
  });

  it('a container that puts a link to a host socket in place of its relay\'s cannot make the host connect to it', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const work = tempDir('wasmbox-publish-link-');
    const target = path.join(work, 'host.sock');
    let reached = 0;
    const hostServer = net.createServer((s) => { reached++; s.end('host secret\n'); });
    await new Promise<void>((r) => hostServer.listen(target, r));
    try {
      // (a link that is followed on the host names a host path; and a regular file in its place)
      for (const replace of [`ln -s ${target} /dev/.wasmbox/ports/relay`, 'echo not-a-socket > /dev/.wasmbox/ports/relay']) {
        const c = await run(['sh', '-c', `while [ ! -S /dev/.wasmbox/ports/relay ]; do sleep 0.01; done; rm /dev/.wasmbox/ports/relay; ${replace}; echo replaced; exec sleep 30`], [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 }]);
        const reader = c.stdout.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toBe('replaced\n');
        const r = await exchange(c.ports![0]!.hostPort, Buffer.from('hello?'));
        expect(r.closed).toBe(true);
        await c.kill();
        await c.wait();
      }
      expect(reached).toBe(0);
    } finally {
      await new Promise<void>((r) => hostServer.close(() => r()));
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('with a terminal too: the relay starts the terminal program, which starts the server', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const c = await run(['sh', '-c', 'exec nc -ll -p 80 -e cat'], [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 }], { tty: true });
    const data = randomBytes(256 * 1024);
    expect((await whenServing(c.ports![0]!.hostPort, data)).equals(data)).toBe(true);
    await c.kill();
    await c.wait();
  });

  it('WASI images refuse published ports: a WASI guest has no sockets', async () => {
    const home = tempDir('wasmbox-publish-wasi-');
    try {
      const wasm = path.join(home, 'start.wasm');
      fs.writeFileSync(wasm, MINIMAL_WASM);
      const runtime = createRuntime({ home });
      await rejects(runtime.create(wasm, { publish: [{ hostPort: 8080, containerPort: 80 }] }), 'CAPABILITY_DENIED', /WASI guest has no sockets/);
      await runtime.close();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

/** A module that exports an empty _start. */
const MINIMAL_WASM = Uint8Array.of(
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
  0x03, 0x02, 0x01, 0x00,
  0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00,
  0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
);

describe('-p through the CLI', () => {
  // (not spawnSync: this process is the network client while the CLI runs)
  const cli = (home: string, args: string[]) => cliAsync(home, ['run', ...args]);

  it('publishes, refuses UDP and a port in use (125), and discards -p with --network host with docker\'s warning', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    ensureBuilt();
    const home = tempDir('wasmbox-publish-cli-');
    const busy = net.createServer();
    try {
      const load = spawnSync(process.execPath, [cliBin, '--home', home, 'load', '-q', '-t', 'pub-busybox', '-i', path.join(bed.work, 'busybox')], { encoding: 'utf8' });
      expect(load.status, load.stderr).toBe(0);
      const port = await freePort();
      // one connection served, then the container exits by itself (and the CLI with its status)
      const running = cli(home, ['-p', `127.0.0.1:${port}:80`, 'pub-busybox', 'sh', '-c', 'nc -l -p 80 -e cat; echo served; exit 4']);
      const data = randomBytes(2 * 1024 * 1024);
      expect((await whenServing(port, data)).equals(data)).toBe(true);
      const done = await running;
      expect(done.status, done.stderr).toBe(4);
      expect(done.stdout).toBe('served\n');
      expect(await listening(port)).toBe(false);

      const udp = await cli(home, ['-p', '8080:80/udp', 'pub-busybox', 'true']);
      expect(udp.status).toBe(125);
      expect(udp.stderr).toContain("invalid -p/--publish '8080:80/udp': only TCP ports are published here, not udp");

      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      const busyPort = (busy.address() as AddressInfo).port;
      const inUse = await cli(home, ['-p', `127.0.0.1:${busyPort}:80`, 'pub-busybox', 'echo', 'never']);
      expect(inUse.status).toBe(125);
      expect(inUse.stdout).toBe('');
      expect(inUse.stderr).toContain(`127.0.0.1:${busyPort}: the address is already in use`);

      const hostNet = await cli(home, ['--network', 'host', '-p', `127.0.0.1:${busyPort}:80`, 'pub-busybox', 'echo', 'ran']);
      expect(hostNet.status, hostNet.stderr).toBe(0);
      expect(hostNet.stdout).toBe('ran\n');
      expect(hostNet.stderr).toContain('WARNING: Published ports are discarded when using host network mode');

      const wasm = path.join(home, 'start.wasm');
      fs.writeFileSync(wasm, MINIMAL_WASM);
      const wasi = await cli(home, ['-p', '8080:80', wasm]);
      expect(wasi.status).toBe(125);
      expect(wasi.stderr).toContain('WASI guest has no sockets');
    } finally {
      busy.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

/** Runs as another user: echoes through a published port from containers of root, of app, and of app on a read-only root. */
const UNPRIVILEGED_RUNNER = (root: string) => `
${runnerPrelude(root)}
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
const spec = (o = {}) => ({ argv: ['sh', '-c', 'exec nc -ll -p 8080 -e cat'], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, publish: [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 8080 }], ...o });
const out = { probe: await backend.probe(image), ids: await backend.idMapping(), runs: {} };
const exchange = (port, data) => new Promise((resolve) => {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks = [];
  s.on('data', (d) => chunks.push(d));
  s.on('error', () => {});
  s.on('end', () => s.end());
  s.on('close', () => resolve(Buffer.concat(chunks)));
  s.end(data);
});
async function serve(name, o) {
  try {
    const c = await backend.create(image, spec(o));
    await c.start();
    const data = randomBytes(512 * 1024);
    let reply = Buffer.alloc(0);
    for (let i = 0; i < 200 && reply.length === 0; i++) {
      reply = await exchange(c.ports[0].hostPort, data);
      if (reply.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    await c.kill();
    await c.wait();
    out.runs[name] = { same: reply.equals(data), length: reply.length };
  } catch (e) {
    out.runs[name] = { error: { code: e.code, message: e.message } };
  }
}
if (out.probe.ok) {
  await serve('root', {});
  await serve('app', { user: 'app' });
  await serve('app-ro', { user: 'app', readOnlyRoot: true });
}
console.log(JSON.stringify(out));
`;

describe('-p for an unprivileged caller', () => {
  const work = tempDir('wasmbox-publish-unpriv-');
  const subUser = `wbp${randomBytes(4).toString('hex')}`;
  const START = 2_100_000_000 + Math.floor(Math.random() * 1000) * 65536;
  const line = `${subUser}:${START}:65536`;
  let skipReason: string | undefined;
  let runner = '';
  let userAdded = false;
  const restore = () => {
    for (const f of ['/etc/subuid', '/etc/subgid']) {
      try {
        const text = fs.readFileSync(f, 'utf8');
        if (text.includes(`${line}\n`)) fs.writeFileSync(f, text.replace(`${line}\n`, ''));
      } catch { /* nothing of ours there */ }
    }
    if (userAdded) spawnSync('userdel', [subUser], { stdio: 'ignore' });
    userAdded = false;
  };
  beforeAll(async () => {
    if (bed.skipReason || process.getuid?.() !== 0) { skipReason = bed.skipReason ?? 'switching users needs root'; return; }
    for (const tool of ['setpriv', 'useradd', 'newuidmap', 'newgidmap']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) { skipReason = `${tool} is missing`; return; }
    }
    process.once('exit', restore);
    execFileSync('useradd', ['-M', '-r', '-s', '/usr/sbin/nologin', '-d', '/nonexistent', subUser]);
    userAdded = true;
    fs.appendFileSync('/etc/subuid', `${line}\n`);
    fs.appendFileSync('/etc/subgid', `${line}\n`);
    fs.chmodSync(work, 0o755);
    runner = await bundleRunner(work, UNPRIVILEGED_RUNNER(root));
    fs.chmodSync(runner, 0o644);
    // (the bundle finds this package's programs next to it, as an installed package has them)
    fs.symlinkSync(path.join(root, 'native'), path.join(work, 'native'));
    execFileSync('chmod', ['-R', 'a+rX', path.join(bed.work, 'busybox')]);
    fs.chmodSync(bed.work, 0o755);
  }, 60_000);
  afterAll(() => {
    restore();
    process.off('exit', restore);
    fs.rmSync(work, { recursive: true, force: true });
  });

  for (const [who, mode] of [['nobody', 'single'], ['a user with /etc/subuid ranges', 'subids']] as const) {
    it(`${who} (${mode} id map): the relay serves containers of root and of app, read-only too, and leaves nothing behind`, async (ctx) => {
      if (skipReason) return ctx.skip(skipReason);
      const ids = mode === 'single' ? { uid: 65534, gid: 65534 } : {
        uid: Number(execFileSync('id', ['-u', subUser], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', subUser], { encoding: 'utf8' })),
      };
      const home = path.join(work, `home-${mode}`);
      fs.mkdirSync(home, { mode: 0o755 });
      fs.chownSync(home, ids.uid, ids.gid);
      const r = spawnSync('setpriv', [`--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', process.execPath, runner, path.join(bed.work, 'busybox'), home], {
        encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, timeout: 120_000,
      });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as { probe: { ok: boolean; reason?: string }; ids: { mode: string }; runs: Record<string, unknown> };
      if (!out.probe.ok) return ctx.skip(`unprivileged containers unavailable here: ${out.probe.reason}`);
      expect(out.ids.mode).toBe(mode);
      const echoed = { same: true, length: 512 * 1024 };
      expect(out.runs).toEqual({ root: echoed, app: echoed, 'app-ro': echoed });
      expect(await entriesOnceRemoved(path.join(home, 'linux', 'containers'))).toEqual([]);
    });
  }
});
