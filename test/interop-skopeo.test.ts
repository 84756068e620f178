// What wasmbox writes, skopeo reads; what skopeo writes, wasmbox loads. Both directions, through the CLI.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Layout, hex, tagged } from './helpers/image-fixtures.ts';
import { ensureBuilt, cliBin } from './helpers/cli.ts';

const bin = cliBin;
const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

let tmp: string;
let home: string;
const ok = (...args: string[]): string => {
  const r = spawnSync(process.execPath, [bin, '--home', home, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wasmbox ${args.join(' ')} -> ${r.status}\n${r.stderr}`);
  return r.stdout;
};
const skopeo = (...args: string[]): string => execFileSync('skopeo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const skopeoInspect = (ref: string) => JSON.parse(skopeo('inspect', ref));
const skopeoConfig = (ref: string) => JSON.parse(skopeo('inspect', '--config', ref));

/** A linux/arm64 image with a gzip and an uncompressed layer, as an OCI archive named app:2. */
async function fixture() {
  const layout = new Layout();
  const img = await layout.image({
    architecture: 'arm64',
    variant: 'v8',
    layers: [
      { entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/tool', data: 'T'.repeat(5000), mode: 0o755 }], compression: 'gzip' },
      { entries: [{ path: 'etc/motd', data: 'interop' }], compression: 'none' },
    ],
  });
  layout.finish([tagged(img.manifest, 'app:2')]);
  const file = join(tmp, `fixture-${Math.random().toString(16).slice(2)}.tar`);
  writeFileSync(file, await layout.toTar());
  return { file, img, diffIds: img.layers.map((l) => l.diffId) };
}

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-skopeo-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  home = mkdtempSync(join(tmp, 'home-'));
});

describe.skipIf(!hasSkopeo)('skopeo interop', () => {
  it('skopeo reads the store itself as oci:$WASMBOX_HOME:NAME:TAG', async () => {
    const { file, img, diffIds } = await fixture();
    ok('load', '-i', file);
    ok('tag', 'app:2', 'registry.example:5000/team/app:v3');
    for (const ref of [`oci:${home}:app:2`, `oci:${home}:registry.example:5000/team/app:v3`]) {
      const info = skopeoInspect(ref);
      expect(info.Digest).toBe(img.manifest.digest);
      expect(info.Architecture).toBe('arm64');
      expect(skopeoConfig(ref).rootfs.diff_ids).toEqual(diffIds);
    }
    // skopeo can copy out of the store (it reads every blob)
    skopeo('copy', '-q', `oci:${home}:app:2`, `oci:${join(tmp, 'copied')}:x`);
    expect(JSON.parse(skopeo('inspect', '--raw', `oci:${join(tmp, 'copied')}:x`)).config.digest).toBe(img.config.digest);
    expect(skopeoConfig(`oci:${join(tmp, 'copied')}:x`).rootfs.diff_ids).toEqual(diffIds);
  });

  it('skopeo reads what `save` writes, in both formats', async () => {
    const { file, img, diffIds } = await fixture();
    ok('load', '-i', file);
    const oci = join(tmp, 'out.oci.tar');
    const docker = join(tmp, 'out.docker.tar');
    ok('save', 'app:2', '-o', oci);
    ok('save', 'app:2', '-o', docker, '--format', 'docker-archive');

    expect(skopeoInspect(`oci-archive:${oci}`).Digest).toBe(img.manifest.digest);
    expect(skopeoInspect(`oci-archive:${oci}:app:2`).Digest).toBe(img.manifest.digest);
    const fromOci = join(tmp, 'from-oci');
    skopeo('copy', '-q', `oci-archive:${oci}`, `oci:${fromOci}:y`);
    expect(JSON.parse(skopeo('inspect', '--raw', `oci:${fromOci}:y`)).config.digest).toBe(img.config.digest);
    expect(skopeoConfig(`oci:${fromOci}:y`).rootfs.diff_ids).toEqual(diffIds);

    const dockerInfo = skopeoInspect(`docker-archive:${docker}`);
    expect(dockerInfo.Architecture).toBe('arm64');
    // docker-archive carries uncompressed layers: their digests are the diffIDs
    expect(dockerInfo.Layers).toEqual(diffIds);
    const fromDocker = join(tmp, 'from-docker');
    // naming the image by its RepoTag makes skopeo look it up in manifest.json
    skopeo('copy', '-q', `docker-archive:${docker}:app:2`, `oci:${fromDocker}:z`);
    expect(skopeoConfig(`oci:${fromDocker}:z`).rootfs.diff_ids).toEqual(diffIds);
    expect(skopeoConfig(`oci:${fromDocker}:z`).architecture).toBe('arm64');
  });

  it('a multi-platform index skopeo copies into the store is listed, opened per platform, and collected whole by rmi', async () => {
    const layout = new Layout();
    const amd = await layout.image({ architecture: 'amd64', layers: [{ entries: [{ path: 'amd', data: 'a' }] }] });
    const arm = await layout.image({ architecture: 'arm64', layers: [{ entries: [{ path: 'arm', data: 'b' }] }] });
    const index = layout.index([
      { ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    layout.finish([tagged(index, 'multi')]);
    const src = await layout.writeDir(join(tmp, 'multi-src'));
    skopeo('copy', '-q', '--all', `oci:${src}:multi`, `oci:${home}:multi:1`);
    expect(ok('images')).toMatch(/multi\s+1\s+[0-9a-f]{12}\s+multi\s+/);
    const rootfs = join(tmp, 'arm-rootfs.tar');
    ok('export', '--platform', 'linux/arm64', 'multi:1', '-o', rootfs);
    const names = execFileSync('tar', ['-tf', rootfs], { encoding: 'utf8' });
    expect(names).toContain('arm');
    expect(names).not.toContain('amd');
    ok('rmi', 'multi:1');
    expect(readdirSync(join(home, 'blobs/sha256'))).toEqual([]);
  });

  it('loads what skopeo writes: docker-archive (legacy form), oci-archive, oci layout, and a copy into the store', async () => {
    const { file, img, diffIds } = await fixture();
    const src = `oci-archive:${file}:app:2`;
    const dockerTar = join(tmp, 'sk.docker.tar');
    const ociTar = join(tmp, 'sk.oci.tar');
    const ociDir = join(tmp, 'sk-layout');
    skopeo('copy', '-q', src, `docker-archive:${dockerTar}:made/by-skopeo:d1`);
    skopeo('copy', '-q', src, `oci-archive:${ociTar}:from-skopeo:o1`);
    skopeo('copy', '-q', src, `oci:${ociDir}:l1`);

    expect(ok('load', '-i', dockerTar)).toContain('Loaded image: made/by-skopeo:d1');
    expect(ok('load', '-i', ociTar)).toContain('Loaded image: from-skopeo:o1');
    expect(ok('load', '-i', ociDir)).toContain('Loaded image: sk-layout:l1');
    for (const name of ['made/by-skopeo:d1', 'from-skopeo:o1', 'sk-layout:l1']) {
      const [info] = JSON.parse(ok('inspect', name));
      expect(info.Id, name).toBe(img.config.digest);
      expect(info.RootFS.Layers, name).toEqual(diffIds);
      expect(info.Architecture).toBe('arm64');
    }

    // skopeo copying straight into the store: wasmbox lists it, reads it and can remove it.
    skopeo('copy', '-q', src, `oci:${home}:straight:in`);
    expect(ok('images')).toMatch(new RegExp(`straight\\s+in\\s+${hex(img.config.digest).slice(0, 12)}\\s+linux/arm64/v8`));
    expect(JSON.parse(ok('inspect', 'straight:in'))[0].RootFS.Layers).toEqual(diffIds);
    const roundTrip = join(tmp, 'roundtrip.tar');
    ok('save', 'straight:in', '-o', roundTrip);
    expect(skopeoInspect(`oci-archive:${roundTrip}`).Architecture).toBe('arm64');
    ok('rmi', 'straight:in');
    expect(ok('images', '-q')).toContain(hex(img.config.digest).slice(0, 12)); // the other names keep it
  });
});
