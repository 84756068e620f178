// /etc/subuid and /etc/subgid parsing and the rootless id map built from them (no root needed).
import { describe, expect, it } from 'vitest';
import { buildInvocation, helperInvocation, USERNS_FD } from '../src/linux-backend/invocation.ts';
import { planContainer, validatePlan, type PlanHost } from '../src/linux-backend/plan.ts';
import type { Image } from '../src/loader/source.ts';
import { buildIdMap, describeMapping, hostIdOf, MAX_EXTENTS, newIdMapArgs, parseSubIdFile, rangesFor, subIdMapping } from '../src/linux-backend/subids.ts';

describe('parseSubIdFile', () => {
  it('keeps well-formed lines in order and skips everything else', () => {
    const text = [
      '# a comment',
      'alice:100000:65536',
      '',
      '  bob:200000:1000  ',
      'carol:300000',              // two fields
      'dave:1:2:3',                // four fields
      ':400000:10',                // no owner
      'erin:-5:10',                // negative
      'frank:0x10:10',             // not decimal
      'gina:500000:0',             // count 0
      'hank:4294967295:1',         // past the id space
      'ivan:4294967000:296',       // ends exactly at 4294967296: past it
      'judy:4294967000:295',       // ends at 4294967294: fine
      'kim:99999999999:1',         // more than 10 digits
      '1001:600000:5',             // numeric owner
      'alice:700000:10',           // a second range for alice
      'x:1.5:2',
    ].join('\n');
    expect(parseSubIdFile(text)).toEqual([
      { owner: 'alice', start: 100000, count: 65536 },
      { owner: 'bob', start: 200000, count: 1000 },
      { owner: 'judy', start: 4294967000, count: 295 },
      { owner: '1001', start: 600000, count: 5 },
      { owner: 'alice', start: 700000, count: 10 },
    ]);
  });

  it('an empty or binary file gives nothing', () => {
    expect(parseSubIdFile('')).toEqual([]);
    expect(parseSubIdFile('\0\0\n\u00ff:1:2\n')).toEqual([{ owner: '\u00ff', start: 1, count: 2 }]);
  });
});

describe('rangesFor', () => {
  const entries = parseSubIdFile('alice:100000:65536\n1001:600000:5\nbob:200000:10\nalice:700000:10\n');
  it('matches the user name and the numeric uid, in file order', () => {
    expect(rangesFor(entries, { name: 'alice', uid: 1001 })).toEqual([
      { start: 100000, count: 65536 }, { start: 600000, count: 5 }, { start: 700000, count: 10 },
    ]);
    expect(rangesFor(entries, { uid: 1001 })).toEqual([{ start: 600000, count: 5 }]);
    expect(rangesFor(entries, { name: 'bob', uid: 5 })).toEqual([{ start: 200000, count: 10 }]);
    expect(rangesFor(entries, { name: 'zed', uid: 6 })).toEqual([]);
    // an empty name matches nothing (not a line with an empty owner either)
    expect(rangesFor(entries, { name: '', uid: 7 })).toEqual([]);
  });
});

describe('buildIdMap', () => {
  it('maps 0 to the caller and 1..count to the range (podman\'s layout)', () => {
    const m = buildIdMap(1000, [{ start: 100000, count: 65536 }])!;
    expect(m.extents).toEqual([{ inside: 0, outside: 1000, count: 1 }, { inside: 1, outside: 100000, count: 65536 }]);
    expect(m.max).toBe(65536);
    expect(hostIdOf(m, 0)).toBe(1000);
    expect(hostIdOf(m, 1)).toBe(100000);
    expect(hostIdOf(m, 1000)).toBe(100999);
    expect(hostIdOf(m, 65534)).toBe(165533);
    expect(hostIdOf(m, 65536)).toBe(165535);
    expect(hostIdOf(m, 65537)).toBeUndefined();
    expect(newIdMapArgs(4242, m)).toEqual(['4242', '0', '1000', '1', '1', '100000', '65536']);
  });

  it('several ranges follow each other inside', () => {
    const m = buildIdMap(1000, [{ start: 100000, count: 10 }, { start: 300000, count: 5 }])!;
    expect(m.extents.slice(1)).toEqual([{ inside: 1, outside: 100000, count: 10 }, { inside: 11, outside: 300000, count: 5 }]);
    expect(m.max).toBe(15);
    expect(hostIdOf(m, 11)).toBe(300000);
    expect(newIdMapArgs(1, m)).toEqual(['1', '0', '1000', '1', '1', '100000', '10', '11', '300000', '5']);
  });

  it('drops ranges that overlap an earlier one or hold the caller\'s own id', () => {
    const m = buildIdMap(100005, [{ start: 100000, count: 10 }, { start: 200000, count: 10 }, { start: 200005, count: 10 }, { start: 199995, count: 6 }, { start: 300000, count: 1 }])!;
    expect(m.extents.slice(1).map((e) => e.outside)).toEqual([200000, 300000]);
    expect(m.max).toBe(11);
  });

  it('no usable range: no map', () => {
    expect(buildIdMap(1000, [])).toBeUndefined();
    expect(buildIdMap(1000, [{ start: 1000, count: 1 }])).toBeUndefined();
    expect(buildIdMap(1000, [{ start: 5, count: 0 }])).toBeUndefined();
    expect(buildIdMap(1000, [{ start: -1, count: 3 }])).toBeUndefined();
    expect(buildIdMap(1000, [{ start: 4294967290, count: 10 }])).toBeUndefined(); // would overflow
  });

  it('container ids stop below 4294967295 and the extents at the kernel\'s limit', () => {
    const m = buildIdMap(0, [{ start: 1, count: 4294967294 }])!;
    expect(m.max).toBe(4294967294);
    const many = buildIdMap(1, Array.from({ length: 500 }, (_, i) => ({ start: 1000 + i * 10, count: 10 })))!;
    expect(many.extents).toHaveLength(MAX_EXTENTS);
    expect(many.max).toBe((MAX_EXTENTS - 1) * 10);
    // two huge ranges: the second is cut where the id space ends
    const big = buildIdMap(0, [{ start: 1, count: 3000000000 }, { start: 3000000001, count: 1294967294 }])!;
    expect(big.max).toBe(4294967294);
    expect(big.extents[2]!.count).toBe(4294967294 - 3000000000);
  });
});

describe('subIdMapping', () => {
  it('needs a range in both files, found by name or uid', () => {
    const user = { name: 'alice', uid: 1001, gid: 1002 };
    const m = subIdMapping(user, 'alice:100000:65536\n', '1001:200000:65536\n')!;
    expect(m.uid.extents[1]).toEqual({ inside: 1, outside: 100000, count: 65536 });
    expect(m.gid.extents[0]).toEqual({ inside: 0, outside: 1002, count: 1 });
    expect(m.gid.extents[1]).toEqual({ inside: 1, outside: 200000, count: 65536 });
    expect(describeMapping(m)).toBe('uids 0 -> 1001, 1..65536 -> 100000..165535; gids 0 -> 1002, 1..65536 -> 200000..265535');
    expect(subIdMapping(user, 'alice:100000:65536\n', 'bob:200000:65536\n')).toBeUndefined();
    expect(subIdMapping(user, '', '1001:200000:65536\n')).toBeUndefined();
    expect(subIdMapping(user, 'alice:100000:0\n', 'alice:100000:5\n')).toBeUndefined();
  });
});

describe('the invocation with a subordinate id map (not root)', () => {
  const host: PlanHost = {
    arch: 'x86_64', idMap: 'identity', switcher: '/usr/bin/busybox', procPresent: [], emptyDir: '/h/empty', rootfsDir: '/h/layers/aa',
    containerDir: '/h/containers/c1', rootMapped: false, cgroups: {},
    resolveCommand: () => ({ path: '/bin/sh', executable: true }),
    statGuest: () => ({ kind: 'file', executable: true }),
    resolveUser: () => ({ uid: 1000, gid: 1000 }),
    canonicalGuestPath: (p) => p,
  };
  const image = { platform: { os: 'linux', architecture: 'amd64' } } as Image;
  const plan = (o: { readOnlyRoot?: boolean; user?: string } = {}) => validatePlan(planContainer(image, {
    argv: ['sh', '-c', 'true'], env: [], cwd: '/', tty: false, stdin: false, readOnlyRoot: o.readOnlyRoot ?? false,
    mounts: [], network: 'none', limits: {}, ...(o.user ? { user: o.user } : {}),
  }, host, 'ab'.repeat(32)), host);
  const tools = { bwrap: '/usr/bin/bwrap', unshare: '/usr/bin/unshare', sh: '/bin/sh', mount: '/bin/mount', busybox: '/usr/bin/busybox' };
  const helper = { mountNs: '/proc/7/ns/mnt', userNs: '/proc/7/ns/user' };

  it('enters the helper\'s user and mount namespaces with nsenter, writable root or not; bwrap joins nothing, passes no fd', () => {
    for (const readOnlyRoot of [false, true]) {
      const p = plan({ readOnlyRoot, user: 'app' });
      expect(p.idMap).toBe('identity');
      expect(p.hostDevNodes).toBe('as-is');
      const inv = buildInvocation(p, tools, { privileged: false, cgroupProcs: [], helper });
      expect(inv.userns).toBe(false);
      expect([inv.command, ...inv.args.slice(0, 5)]).toEqual(['/usr/bin/busybox', 'nsenter', '-U/proc/7/ns/user', '--preserve-credentials', '-m/proc/7/ns/mnt', '/usr/bin/bwrap']);
      const bwrap = inv.args.slice(5);
      expect(bwrap).toContain('--assert-userns-disabled');
      for (const absent of ['--userns', String(USERNS_FD), '--unshare-user', '--uid']) expect(bwrap).not.toContain(absent);
      expect(bwrap.join(' ')).toContain('nsenter -S 1000 -G 1000 -- /bin/sh');
    }
    // root's identity map still joins through the descriptor
    const root = buildInvocation(plan(), tools, { privileged: true, cgroupProcs: [], helper: { mountNs: '/proc/7/ns/mnt' } });
    expect(root.userns).toBe(true);
    expect(root.args).toContain('--userns');
  });

  it('the helper waits for its map and caps user namespaces, leaving the host\'s /dev alone', () => {
    const inv = helperInvocation('/bin/busybox', false, true);
    expect(inv.writeMaps).toBe(true);
    expect(inv.args.slice(0, 4)).toEqual(['unshare', '-U', '-m', '--propagation']);
    expect(inv.args).not.toContain('-r');
    expect(inv.args.at(-1)).toMatch(/^echo 0 > \/proc\/sys\/user\/max_user_namespaces && echo ok && trap '' PIPE; while /);
    expect(inv.args.join(' ')).not.toContain('--rbind');
    expect(helperInvocation('/bin/busybox', false).args.slice(0, 4)).toEqual(['unshare', '-U', '-r', '-m']);
  });
});
