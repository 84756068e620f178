// Supplementary groups of a Linux container's user, as docker gives them (the primary gid, the /etc/group
// entries that list the user, --group-add): native/setid itself, plans as data, the image's /etc/group,
// and containers through the API (whole spawn and spare launcher) and the CLI, as a root caller.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapArgs, buildInvocation, createLinuxBackend, planContainer, validatePlan, type PlanHost } from '../src/linux-backend/index.ts';
import { SETID_PATH, SWITCH_PATH, type Plan } from '../src/linux-backend/plan.ts';
import { rootfsLookup } from '../src/linux-backend/rootfs-lookup.ts';
import { findNativeBinary } from '../src/linux-backend/native-binary.ts';
import { TRAMPOLINE_ENV } from '../src/linux-backend/invocation.ts';
import { isSandboxError } from '../src/errors.ts';
import type { Backend, ContainerSpec } from '../src/runtime/types.ts';
import type { Image } from '../src/loader/source.ts';
import {
  BUSYBOX, busyboxAvailable, busyboxEntries, layerTar, openOciDir, runToEnd, tempDir, writeOciLayout, type Entry,
} from './helpers/linux-images.ts';

const root = path.resolve(import.meta.dirname, '..');
const isRoot = process.getuid?.() === 0;
const hostArch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : undefined;
const otherArch = hostArch === 'x86_64' ? 'aarch64' : 'x86_64';
const setidOf = (arch: string) => path.join(root, 'native', 'bin', `setid-${arch}`);

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'solo:x:1001:1001:solo:/:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
].join('\n');
const GROUP = [
  'root:x:0:',
  'wheel:x:10:root',
  'audio:x:29:',
  'staff:x:50:other,app',
  'dev:x:60:app',
  'app:x:1000:',
  'solo:x:1001:',
  'nogroup:x:65534:',
].join('\n');
/** GROUP with lines a parser must pass over: a comment, no fields, no gid, a gid out of range, no name, too few fields. */
const GROUP_MALFORMED = [
  '# comment:x:61:app', 'junk line without fields', 'broken:x:notanumber:app', 'huge:x:99999999999:app', ':x:70:app', 'short:x', '',
  GROUP, 'dev:x:62:app', 'trailing:x:63:app,',
].join('\n');

/** busybox, this /etc/passwd and /etc/group, and /data/staff-only (0640 root:staff). */
function groupsImageEntries(): Entry[] {
  return [
    ...busyboxEntries().filter((e) => e.name !== 'etc/passwd' && e.name !== 'etc/group'),
    { type: 'file', name: 'etc/passwd', data: `${PASSWD}\n` },
    { type: 'file', name: 'etc/group', data: `${GROUP}\n` },
    { type: 'dir', name: 'data' },
    { type: 'file', name: 'data/staff-only', data: 'for staff\n', mode: 0o640, uid: 0, gid: 50 },
  ];
}

const work = tempDir('wasmbox-linux-groups-');
fs.chmodSync(work, 0o755); // (setid's tests run programs in it as uid 1000)
let ociDir = '';
let image: Image;
let whole: Backend;
let launched: Backend;
let skipReason = busyboxAvailable() ?? (isRoot ? undefined : 'supplementary groups need the identity map, here a root caller\'s');

beforeAll(async () => {
  ociDir = writeOciLayout(path.join(work, 'groups'), [await layerTar(groupsImageEntries())], { Cmd: ['id'] });
  if (skipReason) return;
  image = await openOciDir(ociDir);
  whole = createLinuxBackend({ home: path.join(work, 'home-whole'), spareLaunchers: false });
  launched = createLinuxBackend({ home: path.join(work, 'home-launched') });
  const probe = await whole.probe(image);
  if (!probe.ok) skipReason = probe.reason;
  else if ((await (whole as unknown as { idMapping(): Promise<{ mode: string; detail: string }> }).idMapping()).mode !== 'identity') {
    skipReason = 'this host gives containers no identity map';
  }
  if (skipReason) console.warn(`linux groups tests skipped: ${skipReason}`);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

// -----------------------------------------------------------------------------------------------
describe('native/setid', () => {
  const setid = (args: string[], o: { env?: Record<string, string>; arch?: string } = {}) => {
    const bin = setidOf(o.arch ?? hostArch!);
    const [cmd, argv] = o.arch && o.arch !== hostArch ? ['qemu-aarch64-static', [bin, ...args]] : [bin, args];
    const r = spawnSync(cmd, argv, { encoding: 'utf8', env: o.env ?? { PATH: '/usr/bin:/bin' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('is a small static executable for x86_64 and aarch64, found from the sources as from the bundles', () => {
    for (const arch of ['x86_64', 'aarch64']) {
      const bin = fs.readFileSync(setidOf(arch));
      expect(bin.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect(bin.readUInt16LE(18)).toBe(arch === 'x86_64' ? 62 : 183); // e_machine
      expect(bin.length).toBeLessThan(16 * 1024);
      expect(fs.statSync(setidOf(arch)).mode & 0o111).toBe(0o111);
    }
    expect(findNativeBinary('setid', 'x86_64')).toBe(setidOf('x86_64'));
    // dist/index.js and dist/cli.cjs sit one level below the package root, the sources two
    expect(findNativeBinary('setid', 'aarch64', `file://${root}/dist/index.js`)).toBe(setidOf('aarch64'));
    // a package without the binary: none, and the walk stops at the package root
    const pkg = path.join(work, 'pkg');
    fs.mkdirSync(path.join(pkg, 'dist'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), '{}');
    expect(findNativeBinary('setid', 'x86_64', `file://${pkg}/dist/cli.cjs`)).toBeUndefined();
  });

  it('rejects malformed arguments with exit 125 before it changes anything', (ctx) => {
    if (!hostArch) return ctx.skip(`no setid for ${process.arch}`);
    const bad: Array<[string[], RegExp]> = [
      [[], /too few arguments/],
      [['1000', '1000', '', '--'], /too few arguments/],
      [['x', '0', '', '--', 'id'], /UID must be/],
      [['-1', '0', '', '--', 'id'], /UID must be/],
      [['4294967295', '0', '', '--', 'id'], /UID must be/],
      [['99999999999', '0', '', '--', 'id'], /UID must be/],
      [['0', '1a', '', '--', 'id'], /GID must be/],
      [['0', '0', '1,,2', '--', 'id'], /GROUPS must be/],
      [['0', '0', '1,', '--', 'id'], /GROUPS must be/],
      [['0', '0', '+1', '--', 'id'], /GROUPS must be/],
      [['0', '0', '4294967295', '--', 'id'], /GROUPS must be/],
      [['0', '0', '--', 'id', 'x'], /expected UID GID GROUPS -- PROG/],
      [['0', '0', '1', '2', '3', '4'], /expected UID GID GROUPS -- PROG/],
      [['0', '0', '1', '2', '--'], /no program after --/],
      [['0', '0', ...Array<string>(9).fill(Array<string>(8192).fill('7').join(',')), '--', 'id'], /at most 65536/],
    ];
    for (const [args, message] of bad) {
      const r = setid(args);
      expect(r.code, args.join(' ').slice(0, 80)).toBe(125);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/^setid: .*\nusage: setid UID GID GROUPS/);
      expect(r.stdout).toBe('');
    }
  });

  it('sets the uid, gid and groups, then runs the program found as execvp finds it (127 not found, 126 not executable)', (ctx) => {
    if (!hostArch) return ctx.skip(`no setid for ${process.arch}`);
    if (!isRoot) return ctx.skip('setting ids needs root');
    if (busyboxAvailable()) return ctx.skip(busyboxAvailable()!);
    const status = 'cat /proc/self/status | grep -E "^(Uid|Gid|Groups|CapEff):" | tr -s "\\t " " "';
    const r = setid(['1000', '1001', '50,29,1001', '7', '--', BUSYBOX, 'sh', '-c', status]);
    expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe('Uid: 1000 1000 1000 1000\nGid: 1001 1001 1001 1001\nGroups: 7 29 50 1001 \nCapEff: 0000000000000000\n');
    expect(setid(['0', '0', '', '--', BUSYBOX, 'sh', '-c', 'grep ^Groups: /proc/self/status']).stdout).toMatch(/^Groups:\s*$/m);
    // the group list may come in several arguments (one argument of the kernel's is at most 128 KiB)
    const many = Array.from({ length: 20000 }, (_, i) => i + 100);
    const big = setid(['0', '0', many.slice(0, 10000).join(','), many.slice(10000).join(','), '--', BUSYBOX, 'sh', '-c', 'grep ^Groups: /proc/self/status']);
    expect(big.code, big.stderr).toBe(0);
    expect(big.stdout.trim().split(/\s+/).slice(1).map(Number)).toEqual(many);

    // PATH from the environment: entries that do not hold it (or cannot: longer than PATH_MAX) are passed over
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.symlinkSync(BUSYBOX, path.join(bin, 'echo'));
    const longDir = `/${'x'.repeat(5000)}`;
    // (argv[0] stays as given: busybox runs the applet it names)
    expect(setid(['1000', '1000', '', '--', 'echo', 'found'], { env: { PATH: `/nonexistent:${longDir}:${bin}` } })).toMatchObject({ code: 0, stdout: 'found\n' });
    // no PATH: /bin:/usr/bin
    expect(setid(['1000', '1000', '', '--', 'busybox', 'echo', 'default'], { env: {} })).toMatchObject({ code: 0, stdout: 'default\n' });
    // a file without #! runs through /bin/sh
    const script = path.join(bin, 'script');
    fs.writeFileSync(script, 'echo "script $0 $*"\n', { mode: 0o755 });
    expect(setid(['1000', '1000', '', '--', script, 'a', 'b'])).toMatchObject({ code: 0, stdout: `script ${script} a b\n` });

    expect(setid(['1000', '1000', '', '--', 'no-such-program'], { env: { PATH: `/nonexistent:${bin}` } }))
      .toMatchObject({ code: 127, stdout: '', stderr: "setid: can't execute 'no-such-program': No such file or directory\n" });
    expect(setid(['1000', '1000', '', '--', `${bin}/missing`])).toMatchObject({ code: 127, stderr: `setid: can't execute '${bin}/missing': No such file or directory\n` });
    expect(setid(['1000', '1000', '', '--', ''])).toMatchObject({ code: 127 });
    const plain = path.join(bin, 'plain');
    fs.writeFileSync(plain, 'not a program\n', { mode: 0o644 });
    expect(setid(['1000', '1000', '', '--', plain])).toMatchObject({ code: 126, stderr: `setid: can't execute '${plain}': Permission denied\n` });
    // found only where it cannot run: permission denied (126), as execvp says
    expect(setid(['1000', '1000', '', '--', 'plain'], { env: { PATH: `/nonexistent:${bin}` } })).toMatchObject({ code: 126, stderr: "setid: can't execute 'plain': Permission denied\n" });
    expect(setid(['1000', '1000', '', '--', bin])).toMatchObject({ code: 126 });

    // ids it cannot set (a user namespace without a map: setgroups is not permitted) end it with 125, before the program
    const denied = spawnSync('unshare', ['-U', setidOf(hostArch!), '0', '0', '5', '--', BUSYBOX, 'echo', 'ran'], { encoding: 'utf8' });
    expect([denied.status, denied.stdout, denied.stderr]).toEqual([125, '', 'setid: setgroups failed: Operation not permitted (errno 1)\n']);
  });

  it(`the ${otherArch} build sets the ids too (under qemu-user when installed)`, (ctx) => {
    if (!hostArch || !isRoot) return ctx.skip('needs root on x86_64 or aarch64');
    if (busyboxAvailable()) return ctx.skip(busyboxAvailable()!);
    if (otherArch === 'aarch64' && spawnSync('qemu-aarch64-static', ['--version']).status !== 0) {
      console.warn('setid-aarch64 not executed: qemu-aarch64-static is not installed (apt-get install qemu-user-static)');
      return ctx.skip('qemu-aarch64-static is not installed');
    }
    if (otherArch === 'x86_64') return ctx.skip('an x86_64 binary is not run on an aarch64 host');
    const r = setid(['1000', '1001', '29,50', '--', BUSYBOX, 'sh', '-c', 'grep -E "^(Uid|Groups):" /proc/self/status | tr -s "\\t " " "'], { arch: otherArch });
    expect(r).toMatchObject({ code: 0, stdout: 'Uid: 1000 1000 1000 1000\nGroups: 29 50 \n' });
    expect(setid(['1000', '1000', '', '--', 'no-such-program'], { arch: otherArch }).code).toBe(127);
    expect(setid(['1', '2'], { arch: otherArch }).code).toBe(125);
  });
});

// -----------------------------------------------------------------------------------------------
describe('the image\'s /etc/group', () => {
  it('gives the groups that list the user, by its passwd name, only when no group is named; --group-add by name or gid', () => {
    const dir = path.join(work, 'rootfs');
    fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'etc', 'passwd'), PASSWD);
    fs.writeFileSync(path.join(dir, 'etc', 'group'), GROUP_MALFORMED);
    const l = rootfsLookup(dir);
    expect(l.supplementaryGroups(undefined, [])).toEqual([10]); // root: wheel
    expect(l.supplementaryGroups('app', [])).toEqual([50, 60, 62, 63]);
    expect(l.supplementaryGroups('1000', [])).toEqual([50, 60, 62, 63]); // the uid's passwd name
    expect(l.supplementaryGroups('1001', [])).toEqual([]);
    expect(l.supplementaryGroups('4242', [])).toEqual([]); // no passwd entry
    expect(l.supplementaryGroups('app:staff', [])).toEqual([]); // a named group: the primary only (runc)
    expect(l.supplementaryGroups('app:1000', ['audio', '777', 'dev'])).toEqual([29, 777, 60]); // (the first entry of a name)
    expect(l.supplementaryGroups('app', ['0'])).toEqual([50, 60, 62, 63, 0]);
    for (const bad of ['nosuch', 'broken', 'huge', '4294967295', '-1', '']) {
      let err: unknown;
      try { l.supplementaryGroups('app', [bad]); } catch (e) { err = e; }
      expect(isSandboxError(err) && err.code, bad).toBe('NOT_FOUND');
      expect((err as Error).message).toBe(`unable to find group ${bad}: no matching entries in group file`);
    }
    // no /etc/group: member groups none, gids as given, names unknown
    const bare = path.join(work, 'bare');
    fs.mkdirSync(bare);
    expect(rootfsLookup(bare).supplementaryGroups('app', ['5'])).toEqual([5]);
    expect(() => rootfsLookup(bare).supplementaryGroups(undefined, ['wheel'])).toThrow(/unable to find group wheel/);
  });
});

// -----------------------------------------------------------------------------------------------
describe('plans', () => {
  const planImage = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
  const member: Record<string, number[]> = { root: [10], app: [50, 60] };
  const host = (o: Partial<PlanHost> = {}): PlanHost => ({
    arch: 'x86_64', idMap: 'identity', switcher: '/usr/bin/busybox', setid: '/pkg/native/bin/setid-x86_64',
    procPresent: [], emptyDir: '/wb/empty', rootfsDir: '/wb/layers/aa', containerDir: '/wb/containers/c1', rootMapped: true,
    cgroups: {},
    resolveCommand: (name) => (name === 'sh' ? { path: '/bin/sh', executable: true } : undefined),
    statGuest: () => ({ kind: 'file', executable: true }),
    resolveUser: (u) => (u.startsWith('app') ? { uid: 1000, gid: u === 'app:50' ? 50 : 1000 } : { uid: Number(u.split(':')[0]), gid: 0 }),
    supplementaryGroups: (u, add) => [...(u?.includes(':') ? [] : member[u ?? 'root'] ?? []), ...add.map(Number)],
    canonicalGuestPath: (p) => p,
    ...o,
  });
  const spec = (o: Partial<ContainerSpec> = {}): ContainerSpec => ({
    argv: ['sh', '-c', 'true'], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
  });
  const plan = (s: Partial<ContainerSpec> = {}, h = host()) => validatePlan(planContainer(planImage, spec(s), h, 'ab'.repeat(32)), h);
  const invalid = (p: Plan, re: RegExp) => {
    let err: unknown;
    try { validatePlan(p, host()); } catch (e) { err = e; }
    expect(isSandboxError(err) && err.code).toBe('INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(re);
  };

  it('a user\'s primary gid, member groups and --group-add go to setid, bound read-only on the container\'s /dev', () => {
    const p = plan({ user: 'app', groupAdd: ['29', '50'] });
    expect(p.userSwitch).toEqual({ binary: '/pkg/native/bin/setid-x86_64', uid: 1000, gid: 1000, groups: [1000, 50, 60, 29] });
    const a = bwrapArgs(p);
    expect(a.join(' ')).toContain(`--ro-bind /pkg/native/bin/setid-x86_64 ${SETID_PATH}`);
    expect(a.indexOf('--dev')).toBeLessThan(a.indexOf(SETID_PATH));
    expect(a).not.toContain(SWITCH_PATH);
    expect(a.slice(a.indexOf('--'))).toEqual(['--', SETID_PATH, '1000', '1000', '1000,50,60,29', '--', '/bin/sh', '-c', 'true']);
    expect(a.join(' ')).toMatch(/--cap-add CAP_SETUID --cap-add CAP_SETGID/);
    expect(plan({ user: 'app:50' }).userSwitch!.groups).toEqual([50]);
    expect(plan({ user: '4242' }).userSwitch).toMatchObject({ uid: 4242, gid: 0, groups: [0] });
  });

  it('root switches only when it has groups to set; without setid, busybox switches uid and gid and sets none', () => {
    expect(plan({}, host({ supplementaryGroups: () => [] })).userSwitch).toBeUndefined();
    expect(plan({ groupAdd: ['0'] }, host({ supplementaryGroups: (_u, add) => add.map(Number) })).userSwitch).toBeUndefined();
    const rootPlan = plan();
    expect(rootPlan.userSwitch).toMatchObject({ uid: 0, gid: 0, groups: [0, 10] });
    expect(rootPlan.capabilities).toContain('CAP_SYS_CHROOT'); // root keeps docker's capabilities
    expect(bwrapArgs(rootPlan).slice(bwrapArgs(rootPlan).indexOf('--'))).toEqual(['--', SETID_PATH, '0', '0', '0,10', '--', '/bin/sh', '-c', 'true']);
    const noSetid = host({ setid: undefined });
    expect(plan({}, noSetid).userSwitch).toBeUndefined();
    expect(plan({ user: 'app' }, noSetid).userSwitch).toEqual({ binary: '/usr/bin/busybox', uid: 1000, gid: 1000 });
    expect(bwrapArgs(plan({ user: 'app' }, noSetid)).join(' ')).toContain(`${SWITCH_PATH} nsenter -S 1000 -G 1000 -- /bin/sh`);
    // setid alone is enough for the identity map; bwrap's single-uid map sets no groups
    expect(plan({ user: 'app' }, host({ switcher: undefined })).idMap).toBe('identity');
    const single = plan({ user: 'app' }, host({ idMap: 'single', rootMapped: false }));
    expect(single.userSwitch).toBeUndefined();
    expect(bwrapArgs(single).join(' ')).toContain('--uid 1000 --gid 1000');
  });

  it('the launcher\'s trampoline (busybox at its place) execs setid with the container\'s argv', () => {
    const h = host();
    const inv = buildInvocation(plan({ user: 'app' }, h), { bwrap: '/usr/bin/bwrap', unshare: '/usr/bin/unshare', sh: '/bin/sh', mount: '/bin/mount', busybox: '/usr/bin/busybox' }, {
      privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/42/ns/mnt' }, staticBusybox: true,
    });
    const o = inv.launch!.options;
    const binds = o.flatMap((w, i) => (w === '--ro-bind' ? [`${o[i + 1]} ${o[i + 2]}`] : []));
    expect(binds).toEqual(expect.arrayContaining([`/pkg/native/bin/setid-x86_64 ${SETID_PATH}`, `/usr/bin/busybox ${SWITCH_PATH}`]));
    const words = o.flatMap((w, i) => (o[i - 1] === '--setenv' && w.startsWith(TRAMPOLINE_ENV) && w !== `${TRAMPOLINE_ENV}C` ? [o[i + 1]!] : []));
    expect(words.slice(words.indexOf(SETID_PATH))).toEqual([SETID_PATH, '1000', '1000', '1000,50,60', '--', '/bin/sh', '-c', 'true']);
  });

  it('long group lists are split over arguments; validatePlan bounds the list and checks every gid', () => {
    const many = Array.from({ length: 20000 }, (_, i) => i + 30000);
    const p = plan({ user: 'app' }, host({ supplementaryGroups: () => many }));
    const a = bwrapArgs(p);
    const lists = a.slice(a.lastIndexOf(SETID_PATH) + 3, a.lastIndexOf('--'));
    expect(lists.length).toBe(3);
    expect(lists.join(',').split(',').map(Number)).toEqual([1000, ...many]);
    for (const l of lists) expect(l.length).toBeLessThan(128 * 1024);

    const ok = plan({ user: 'app' });
    const sw = ok.userSwitch!;
    invalid({ ...ok, userSwitch: { ...sw, groups: Array.from({ length: 65537 }, (_, i) => i) } }, /at most 65536 supplementary groups/);
    for (const g of [-1, 1.5, 0xffffffff, NaN, '5' as unknown as number]) invalid({ ...ok, userSwitch: { ...sw, groups: [1000, g] } }, /invalid supplementary gid/);
    expect(validatePlan({ ...ok, userSwitch: { ...sw, groups: Array.from({ length: 65536 }, (_, i) => i) } }, host()).userSwitch!.groups).toHaveLength(65536);
    invalid({ ...ok, userSwitch: { ...sw, binary: 'setid' } }, /absolute host path/);
  });
});

// -----------------------------------------------------------------------------------------------
describe('containers (root caller: identity map)', () => {
  const status = 'id; id -G; grep ^Groups: /proc/self/status | tr -s "\\t " " "; cat /data/staff-only 2>/dev/null || echo staff-only:denied';
  const spec = (o: Partial<ContainerSpec> = {}): ContainerSpec => ({
    argv: ['sh', '-c', status], env: ['PATH=/bin'], cwd: '/', tty: false, stdin: false, readOnlyRoot: false, mounts: [], network: 'none', limits: {}, ...o,
  });
  // what docker's `id` shows in the same image (groups sorted: the kernel keeps the list so)
  const cases: Array<[string, Partial<ContainerSpec>, string]> = [
    ['root', {}, 'uid=0(root) gid=0(root) groups=0(root),10(wheel)\n0 10\nGroups: 0 10 \nfor staff\n'],
    ['-u app', { user: 'app' }, 'uid=1000(app) gid=1000(app) groups=50(staff),60(dev),1000(app)\n1000 50 60\nGroups: 50 60 1000 \nfor staff\n'],
    ['-u 1000', { user: '1000' }, 'uid=1000(app) gid=1000(app) groups=50(staff),60(dev),1000(app)\n1000 50 60\nGroups: 50 60 1000 \nfor staff\n'],
    ['-u 1001 (no member groups)', { user: '1001' }, 'uid=1001(solo) gid=1001(solo) groups=1001(solo)\n1001\nGroups: 1001 \nstaff-only:denied\n'],
    ['-u 4242 (no passwd entry)', { user: '4242' }, 'uid=4242 gid=0(root) groups=0(root)\n0\nGroups: 0 \nstaff-only:denied\n'],
    ['-u app:staff', { user: 'app:staff' }, 'uid=1000(app) gid=50(staff) groups=50(staff)\n50\nGroups: 50 \nfor staff\n'],
    ['-u app:1000', { user: 'app:1000' }, 'uid=1000(app) gid=1000(app) groups=1000(app)\n1000\nGroups: 1000 \nstaff-only:denied\n'],
    ['-u solo --group-add staff --group-add 777', { user: 'solo', groupAdd: ['staff', '777'] }, 'uid=1001(solo) gid=1001(solo) groups=50(staff),777,1001(solo)\n1001 50 777\nGroups: 50 777 1001 \nfor staff\n'],
    ['root --group-add audio', { groupAdd: ['audio'] }, 'uid=0(root) gid=0(root) groups=0(root),10(wheel),29(audio)\n0 10 29\nGroups: 0 10 29 \nfor staff\n'],
  ];

  it.each(cases)('%s, whole spawn and through a spare launcher', async (_name, o, expected) => {
    if (skipReason) return;
    const w = await runToEnd(whole, image, spec(o));
    expect(w, w.stderr).toMatchObject({ stdout: expected, stderr: '', status: { code: 0 } });
    // the first container of a shape spawns whole and leaves a spare; the next one takes it
    await runToEnd(launched, image, spec(o));
    await new Promise((r) => setTimeout(r, 50));
    expect(spareLaunchers()).toBeGreaterThan(0);
    const l = await runToEnd(launched, image, spec(o));
    expect(l, l.stderr).toMatchObject({ stdout: expected, stderr: '', status: { code: 0 } });
  });

  it('root with nothing to set (no member groups) starts without the switch', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    // (setid would have set the one group 0)
    const plainRoot = await runToEnd(whole, image, spec({ argv: ['sh', '-c', 'id -u; grep ^Groups: /proc/self/status'], user: '0:0' }));
    expect(plainRoot.status.code).toBe(0);
    expect(plainRoot.stdout).toMatch(/^0\nGroups:\s*$/);
    // root that goes through setid for its groups keeps docker's capabilities
    const caps = async (o: Partial<ContainerSpec>) => (await runToEnd(whole, image, spec({ argv: ['sh', '-c', 'grep -E "^Cap(Eff|Prm|Bnd):" /proc/self/status'], ...o }))).stdout;
    const withGroups = await caps({});
    expect(withGroups).toMatch(/^CapPrm:\s+0*[1-9a-f]/m);
    expect(withGroups).toBe(await caps({ user: '0:0' }));
  });

  it('an unknown --group-add name is refused before anything runs', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const err = await whole.create(image, spec({ user: 'app', groupAdd: ['nosuch'] })).catch((e: Error) => e);
    expect(isSandboxError(err) && err.code).toBe('NOT_FOUND');
    expect((err as Error).message).toBe('unable to find group nosuch: no matching entries in group file');
  });
});

/** This process's children that are bwrap waiting for options (spare launchers). */
function spareLaunchers(): number {
  const children = fs.readdirSync(`/proc/${process.pid}/task`).flatMap((t) => {
    try { return fs.readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { return []; }
  });
  return children.filter((pid) => {
    try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--args'); } catch { return false; }
  }).length;
}

// -----------------------------------------------------------------------------------------------
describe('wasmbox run -u / --group-add (CLI)', () => {
  const wasmbox = (args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(root, 'bin', 'wasmbox.cjs'), '--home', path.join(work, 'home-cli'), ...args], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  beforeAll(() => {
    if (skipReason) return;
    const b = spawnSync(process.execPath, ['build.mjs'], { cwd: root, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`node build.mjs failed: ${b.stderr}`);
  });

  it('gives docker\'s groups to root, a named user, a uid, and what --group-add adds; an unknown group is exit 125', (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const img = `oci:${ociDir}`;
    expect(wasmbox(['run', img])).toMatchObject({ code: 0, stdout: 'uid=0(root) gid=0(root) groups=0(root),10(wheel)\n' });
    expect(wasmbox(['run', '-u', 'app', img, 'id'])).toMatchObject({ code: 0, stdout: 'uid=1000(app) gid=1000(app) groups=50(staff),60(dev),1000(app)\n' });
    expect(wasmbox(['run', '-u', '1000', img, 'id', '-G'])).toMatchObject({ code: 0, stdout: '1000 50 60\n' });
    expect(wasmbox(['run', '-u', '4242', img, 'id', '-G'])).toMatchObject({ code: 0, stdout: '0\n' });
    expect(wasmbox(['run', '-u', 'app:staff', img, 'id', '-G'])).toMatchObject({ code: 0, stdout: '50\n' });
    expect(wasmbox(['run', '-u', 'solo', '--group-add', 'staff', '--group-add', '777', img, 'sh', '-c', 'id -G; cat /data/staff-only']))
      .toMatchObject({ code: 0, stdout: '1001 50 777\nfor staff\n' });
    const unknown = wasmbox(['run', '-u', 'app', '--group-add', 'nosuch', img, 'id']);
    expect(unknown.code).toBe(125);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/unable to find group nosuch: no matching entries in group file/);
  });
});
