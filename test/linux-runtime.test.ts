// Linux images through the public runtime API (createRuntime picks the Linux backend by probe).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { buildBusyboxImage, buildLayeredImage, busyboxAvailable, tempDir } from './helpers/linux-images.ts';

const work = tempDir('wasmbox-linux-rt-');
let runtime: Runtime;
let busybox = '';
let layered = '';
let skipReason = busyboxAvailable();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  if (skipReason) return;
  busybox = `oci:${await buildBusyboxImage(path.join(work, 'busybox'), { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo from-cmd'], Env: ['PATH=/bin', 'FROM_IMAGE=1'], WorkingDir: '/etc' })}`;
  layered = `oci:${await buildLayeredImage(path.join(work, 'layered'))}`;
  runtime = createRuntime({ home: path.join(work, 'home') });
  const backend = await runtime.backendFor(await runtime.image(busybox)).catch((e: Error) => e);
  if (backend instanceof Error) skipReason = backend.message;
  else if (backend.name !== 'linux') skipReason = `picked the ${backend.name} backend`;
  if (skipReason) console.warn(`linux runtime tests skipped: ${skipReason}`);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('createRuntime with linux images', () => {
  it('runs the image config (entrypoint, cmd, env, workdir) and the overrides', async (ctx) => {
    if (skipReason) return ctx.skip();
    const r = await runtime.run(busybox);
    expect([r.code, r.reason, text(r.stdout)]).toEqual([0, 'exit', 'from-cmd\n']);
    const o = await runtime.run(busybox, { args: ['echo $FROM_IMAGE $EXTRA; pwd; cat'], env: ['EXTRA=x'], stdin: 'in\n' });
    expect(text(o.stdout)).toBe('1 x\n/etc\nin\n');
  });

  it('exit codes, limits and read-only root through the runtime', async (ctx) => {
    if (skipReason) return ctx.skip();
    expect((await runtime.run(busybox, { args: ['exit 9'] })).code).toBe(9);
    const t = await runtime.run(busybox, { args: ['sleep 10'], limits: { timeoutMs: 300 } });
    expect([t.reason, t.code]).toEqual(['timeout', 124]);
    const ro = await runtime.run(layered, { entrypoint: ['sh', '-c'], args: ['cat /data/keep.txt; touch /x'], readOnly: true });
    expect(text(ro.stdout)).toBe('v2\n');
    expect(text(ro.stderr)).toMatch(/Read-only/);
    expect(ro.code).toBe(1);
  });
});
