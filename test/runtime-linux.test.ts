// The runtime over both backends: a native Linux image goes to the Linux backend, a WASI image to the
// sandbox, from one createRuntime() and one layer cache.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../src/runtime/runtime.ts';
import { buildBusyboxImage, busyboxAvailable } from './helpers/linux-images.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const skipReason = busyboxAvailable();
if (skipReason) console.warn(`runtime-linux skipped: ${skipReason}`);
let tmp: string;
let runtime: Runtime;
let busyboxDir: string;

describe.skipIf(skipReason !== undefined)('one runtime, both backends', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'wasmbox-runtime-linux-'));
    runtime = createRuntime({ home: join(tmp, 'home') });
    busyboxDir = await buildBusyboxImage(join(tmp, 'busybox'), { Cmd: ['sh'], Env: ['PATH=/bin'] });
  });
  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('picks the Linux backend for a linux image and the WASI backend for a wasi image', async () => {
    const linux = await runtime.image(`oci:${busyboxDir}`);
    expect(linux.kind).toBe('linux');
    expect((await runtime.backendFor(linux)).name).not.toBe('wasi');
    const r = await runtime.run(linux, { args: ['sh', '-c', 'echo from linux; echo "$GREETING"; pwd; exit 5'], env: ['GREETING=hi'], workdir: '/etc' });
    if (r.code !== 5) console.warn(new TextDecoder().decode(r.stderr));
    expect(r).toMatchObject({ code: 5, reason: 'exit' });
    expect(new TextDecoder().decode(r.stdout)).toBe('from linux\nhi\n/etc\n');

    const wasi = await runtime.image(join(root, 'images/hello.tar'));
    expect((await runtime.backendFor(wasi)).name).toBe('wasi');
    const h = await runtime.run(wasi, { args: ['x'], limits: { timeoutMs: 30_000 } });
    expect(h.code).toBe(0);
    expect(new TextDecoder().decode(h.stdout)).toContain('argv[1]: x\n');
  });
});
