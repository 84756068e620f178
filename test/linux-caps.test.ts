// --cap-add / --cap-drop for Linux images: docker's default set changed as data, and for real in a root
// container's own user namespace (CapEff, chown, an interface of its own network), through the API and CLI.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_CAPS, DOCKER_DEFAULT_CAPS, containerCapabilities, planContainer, validatePlan } from '../src/linux-backend/plan.ts';
import { isSandboxError } from '../src/errors.ts';
import { resolveSpec } from '../src/runtime/spec.ts';
import type { ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import { cliHomeWithBusybox, linuxTestBed, planHostFixture, runToEnd } from './helpers/linux-images.ts';
import { cliBin, ensureBuilt } from './helpers/cli.ts';

const bed = linuxTestBed('wasmbox-caps-', { beforeAll, afterAll });
const spec = (argv: string[], o: Partial<ContainerSpec> = {}): ContainerSpec => ({
  argv, env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
});
/** The CapEff mask /proc shows for these capabilities (ALL_CAPS is in the kernel's numbering). */
const mask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(ALL_CAPS.indexOf(c as (typeof ALL_CAPS)[number]))), 0n);
const capEff = (status: string) => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)![1]}`);

describe('capabilities as data', () => {
  it('docker\'s set, then --cap-drop, then --cap-add; names with or without CAP_, any case; ALL', () => {
    expect(containerCapabilities()).toEqual([...DOCKER_DEFAULT_CAPS]);
    expect(containerCapabilities([], ['ALL'])).toEqual([]);
    expect(containerCapabilities(['net_admin'], ['CAP_NET_RAW', 'chown'])).toEqual([...DOCKER_DEFAULT_CAPS.filter((c) => c !== 'CAP_NET_RAW' && c !== 'CAP_CHOWN'), 'CAP_NET_ADMIN']);
    expect(containerCapabilities(['KILL'], ['ALL'])).toEqual(['CAP_KILL']);
    expect(new Set(containerCapabilities(['ALL']))).toEqual(new Set(ALL_CAPS));
    for (const [add, drop] of [[['NET_SUPERPOWER'], []], [[], ['cap_']], [[''], []]]) {
      try {
        containerCapabilities(add, drop);
        expect.unreachable();
      } catch (e) {
        expect(isSandboxError(e) && e.code).toBe('INVALID_ARGUMENT');
        expect((e as Error).message).toMatch(/--cap-(add|drop): unknown capability/);
      }
    }
  });

  it('in the plan: root gets them, another user none; root without SETUID/SETGID skips the switch for its groups', () => {
    const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
    const host = planHostFixture({ idMap: 'identity', setid: '/wb/setid', supplementaryGroups: () => [10] });
    const plan = (o: Partial<ContainerSpec>) => validatePlan(planContainer(image, spec(['sh'], o), host, 'ab'.repeat(32)), host);
    expect(plan({ capAdd: ['NET_ADMIN'] }).capabilities).toContain('CAP_NET_ADMIN');
    expect(plan({ capAdd: ['NET_ADMIN'], user: 'app' }).capabilities).toEqual([]);
    expect(plan({}).userSwitch?.groups).toEqual([0, 10]);
    expect(plan({ capDrop: ['SETGID'] }).userSwitch).toBeUndefined();
    expect(plan({ capDrop: ['ALL'] }).capabilities).toEqual([]);
  });

  it('the run options carry them', () => {
    const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [] } } as never;
    expect(resolveSpec(config, { capAdd: ['NET_ADMIN'], capDrop: ['ALL'] })).toMatchObject({ capAdd: ['NET_ADMIN'], capDrop: ['ALL'] });
  });
});

describe('capabilities for real', () => {
  it('a root container holds exactly the set asked for', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const status = async (o: Partial<ContainerSpec>) => (await runToEnd(bed.backend, bed.busybox, spec(['cat', '/proc/self/status'], o))).stdout;
    expect(capEff(await status({}))).toBe(mask([...DOCKER_DEFAULT_CAPS]));
    expect(capEff(await status({ capDrop: ['ALL'] }))).toBe(0n);
    expect(capEff(await status({ capDrop: ['ALL'], capAdd: ['KILL', 'NET_ADMIN'] }))).toBe(mask(['CAP_KILL', 'CAP_NET_ADMIN']));
  });

  it('what they allow: chown with CAP_CHOWN only, an interface of its own network with CAP_NET_ADMIN only', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const chown = ['sh', '-c', 'touch /tmp/f && chown 1000 /tmp/f'];
    expect((await runToEnd(bed.backend, bed.busybox, spec(chown))).status.code).toBe(0);
    const refused = await runToEnd(bed.backend, bed.busybox, spec(chown, { capDrop: ['CHOWN'] }));
    expect(refused.status.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Operation not permitted/);
    const mtu = ['sh', '-c', 'ip link set lo mtu 1280 && ip link show lo'];
    const plain = await runToEnd(bed.backend, bed.busybox, spec(mtu));
    expect(plain.status.code).not.toBe(0);
    expect(plain.stderr).toMatch(/Operation not permitted/);
    const admin = await runToEnd(bed.backend, bed.busybox, spec(mtu, { capAdd: ['NET_ADMIN'] }));
    expect(admin.status.code, admin.stderr).toBe(0);
    expect(admin.stdout).toMatch(/mtu 1280/);
  });

  it('--cap-add ALL still cannot mount, unshare or write a read-only root: the seccomp filter stays', async (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    const r = await runToEnd(bed.backend, bed.busybox, spec(['sh', '-c', [
      'grep ^CapEff /proc/self/status',
      'mount -o remount,rw / 2>/dev/null && echo remounted',
      'mount -t tmpfs none /mnt 2>/dev/null && echo mounted',
      'unshare -m true 2>/dev/null && echo unshared',
      'umount /proc/sys 2>/dev/null && echo unmounted',
      'touch /x 2>/dev/null && echo wrote',
      'echo done',
    ].join('; ')], { capAdd: ['ALL'], readOnlyRoot: true }));
    expect(capEff(r.stdout)).toBe(mask([...ALL_CAPS]));
    expect(r.stdout.split('\n').slice(1)).toEqual(['done', '']);
  });

  it('through the CLI, and an unknown capability refused', (ctx) => {
    if (bed.skipReason) return ctx.skip(bed.skipReason);
    ensureBuilt();
    const { home, remove } = cliHomeWithBusybox(bed, 'caps-busybox', cliBin);
    try {
      const run = (args: string[]) => spawnSync(process.execPath, [cliBin, '--home', home, 'run', ...args], { encoding: 'utf8' });
      const none = run(['--cap-drop', 'ALL', 'caps-busybox', 'grep', '^CapEff', '/proc/self/status']);
      expect(none.status, none.stderr).toBe(0);
      expect(capEff(none.stdout)).toBe(0n);
      const bad = run(['--cap-add', 'SUPERPOWER', 'caps-busybox', 'true']);
      expect(bad.status).toBe(125);
      expect(bad.stderr).toContain('--cap-add: unknown capability "SUPERPOWER"');
    } finally {
      remove();
    }
  });
});
