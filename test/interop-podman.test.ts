// What `wasmbox save` writes, podman loads; what `podman save` writes, wasmbox loads and runs.
// podman runs with its own storage in a temp dir (vfs driver), so the host's podman state is untouched.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBin, ensureBuilt, repoRoot } from './helpers/cli.ts';

const hasPodman = spawnSync('podman', ['--version']).status === 0;
if (!hasPodman) console.warn('podman interop skipped: podman is not installed (apt-get install podman)');

let tmp: string;
let home: string;
const wasmbox = (...args: string[]) => spawnSync(process.execPath, [cliBin, '--home', home, ...args], { encoding: 'utf8' });
const ok = (...args: string[]): string => {
  const r = wasmbox(...args);
  if (r.status !== 0) throw new Error(`wasmbox ${args.join(' ')} -> ${r.status}\n${r.stderr}`);
  return r.stdout;
};
const podman = (...args: string[]): string =>
  execFileSync('podman', ['--storage-driver', 'vfs', '--root', join(tmp, 'storage'), '--runroot', join(tmp, 'run'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'wasmbox-podman-'));
  home = join(tmp, 'home');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!hasPodman)('podman interop', () => {
  it('podman loads what wasmbox saves, in both formats, with the same image ID', () => {
    ok('load', '-i', join(repoRoot, 'images/toolbox.tar'));
    const id = JSON.parse(ok('inspect', 'toolbox'))[0].Id as string;
    for (const format of ['oci-archive', 'docker-archive']) {
      const file = join(tmp, `saved-${format}.tar`);
      ok('save', 'toolbox', '--format', format, '-o', file);
      expect(podman('load', '-i', file)).toMatch(/Loaded image.*toolbox:latest/);
      const inspected = JSON.parse(podman('image', 'inspect', 'toolbox:latest'))[0];
      expect(`sha256:${inspected.Id}`).toBe(id);
      expect(inspected.Os).toBe('wasi');
      podman('rmi', 'toolbox:latest');
    }
  });

  it('wasmbox loads and runs what podman saves, in both formats', () => {
    podman('load', '-i', join(repoRoot, 'images/toolbox.tar'));
    for (const format of ['docker-archive', 'oci-archive']) {
      const file = join(tmp, `podman-${format}.tar`);
      podman('save', '--format', format, '-o', file, 'toolbox:latest');
      home = mkdtempSync(join(tmp, 'home-'));
      // podman names an image loaded from an OCI archive under localhost/.
      const name = /Loaded image: ((?:localhost\/)?toolbox:latest)\n/.exec(ok('load', '-i', file))?.[1];
      expect(name).toBeDefined();
      const r = wasmbox('run', name!, 'sh', '-c', 'echo saved by podman; cat /etc/hostname | wc -l');
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('saved by podman\n1\n');
    }
  });
});
