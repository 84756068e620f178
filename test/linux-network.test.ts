// --network for Linux images: 'none' (the default: a network namespace of the container's own, loopback
// only) and 'host' (docker --network host: the host's network and resolver), as plans and for real
// through the API and the CLI against a server on the host's loopback.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapArgs, planContainer, validatePlan, type PlanHost } from '../src/linux-backend/index.ts';
import type { ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { resolveSpec } from '../src/runtime/spec.ts';
import { cliHomeWithBusybox, linuxTestBed, planHostFixture, runToEnd } from './helpers/linux-images.ts';
import { cliAsync, cliBin, ensureBuilt } from './helpers/cli.ts';

const bed = linuxTestBed('wasmbox-network-', { beforeAll, afterAll });
const spec = (argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv, env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
});

let server: http.Server;
let port = 0;
beforeAll(async () => {
  server = http.createServer((_req, res) => res.end('hello from the host'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('--network as data', () => {
  const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
  const host = (o: Partial<PlanHost> = {}): PlanHost => planHostFixture({
    resolvConf: '/etc/resolv.conf', statGuest: (p) => (p === '/bin/sh' ? { kind: 'file', executable: true } : undefined), ...o,
  });
  const args = (s: Partial<ContainerSpec>, h = host()) => bwrapArgs(validatePlan(planContainer(image, spec(['sh'], s), h, 'ab'.repeat(32)), h)).join(' ');

  it('none: a network namespace of its own and no resolver; host: the host\'s, with its resolv.conf read-only', () => {
    expect(args({})).toContain('--unshare-net');
    expect(args({})).not.toContain('resolv.conf');
    expect(args({ network: 'host' })).not.toContain('--unshare-net');
    expect(args({ network: 'host' })).toContain('--ro-bind /etc/resolv.conf /etc/resolv.conf');
    // a read-only root takes it only over a file of its own; a -v of its own wins; a host without one gives none
    expect(args({ network: 'host', readOnlyRoot: true })).not.toContain('resolv.conf');
    expect(args({ network: 'host', readOnlyRoot: true }, host({ statGuest: (p) => (p === '/etc/resolv.conf' ? { kind: 'file', executable: false } : { kind: 'file', executable: true }) }))).toContain('--ro-bind /etc/resolv.conf /etc/resolv.conf');
    expect(args({ network: 'host', mounts: [{ guest: '/etc/resolv.conf', source: { type: 'host', path: '/tmp/r' }, mode: 'ro' }] })).not.toContain('--ro-bind /etc/resolv.conf');
    expect(args({ network: 'host' }, host({ resolvConf: undefined }))).not.toContain('resolv.conf');
  });

  it('the run options carry it, none by default', () => {
    const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } } as never;
    expect(resolveSpec(config, {}).network).toBe('none');
    expect(resolveSpec(config, { network: 'host' }).network).toBe('host');
  });
});

describe('--network for real', () => {
  // (Debian's static busybox wget crashes in its resolver: a request by hand through nc instead)
  const fetchCmd = () => ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 127.0.0.1 ${port}`];

  it('none (the default): the host\'s loopback server is out of reach; host: reached, with the host\'s resolver', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const isolated = await runToEnd(bed.backend, bed.busybox, spec(fetchCmd()));
    expect(isolated.status.code).not.toBe(0);
    expect(isolated.stdout).toBe('');
    const shared = await runToEnd(bed.backend, bed.busybox, spec(fetchCmd(), { network: 'host' }));
    expect(shared.status.code, shared.stderr).toBe(0);
    expect(shared.stdout).toMatch(/^HTTP\/1\.[01] 200 [^]*\r\n\r\nhello from the host$/);
    if (fs.existsSync('/etc/resolv.conf')) {
      const resolv = await runToEnd(bed.backend, bed.busybox, spec(['cat', '/etc/resolv.conf'], { network: 'host' }));
      expect(resolv.stdout).toBe(fs.readFileSync('/etc/resolv.conf', 'utf8'));
      // and the container cannot change the host's
      const write = await runToEnd(bed.backend, bed.busybox, spec(['sh', '-c', 'echo nameserver 6.6.6.6 > /etc/resolv.conf'], { network: 'host' }));
      expect(write.status.code).not.toBe(0);
    }
  });

  it('host: a server in the container listens on the host\'s network', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port2 = (free.address() as AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    const c = await bed.backend.create(bed.busybox, spec(['sh', '-c', `echo from-the-container | busybox nc -l -p ${port2}`], { network: 'host' }));
    await c.start();
    let got = '';
    for (let i = 0; i < 100 && !got; i++) {
      got = await new Promise<string>((resolve) => {
        const sock = net.connect(port2, '127.0.0.1');
        let text = '';
        sock.setTimeout(2000, () => sock.destroy());
        sock.on('data', (d) => {
          text += d;
          if (text.endsWith('\n')) sock.destroy();
        });
        sock.on('close', () => (text ? resolve(text) : setTimeout(() => resolve(''), 50)));
        sock.on('error', () => {});
      });
    }
    expect(got).toBe('from-the-container\n');
    await c.kill();
    await c.wait();
  });

  it('through the CLI, and an unknown mode refused', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    ensureBuilt();
    const { home, remove } = cliHomeWithBusybox(bed, 'net-busybox', cliBin);
    try {
      // (not spawnSync: the server the container reaches answers from this process's event loop)
      const run = (args: string[]) => cliAsync(home, ['run', ...args]);
      const shared = await run(['--network', 'host', 'net-busybox', ...fetchCmd()]);
      expect(shared.status, shared.stderr).toBe(0);
      expect(shared.stdout).toMatch(/\r\n\r\nhello from the host$/);
      expect((await run(['--network', 'none', 'net-busybox', ...fetchCmd()])).status).not.toBe(0);
      const bad = await run(['--network', 'bridge', 'net-busybox', 'true']);
      expect(bad.status).toBe(125);
      expect(bad.stderr).toContain("invalid --network 'bridge'");
    } finally {
      remove();
    }
  });
});
