// A page in headless Chromium pulls an image from a registry (cross-origin, with CORS headers) and runs it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../src/loader/registry/push.ts';
import { LayoutStore } from '../src/loader/store/layout-store.ts';
import { loadImage } from '../src/loader/store/load.ts';
import { startServer } from './browser/server.ts';
import { haveRegistry, removeRegistry, startRegistry, type TestRegistry } from './helpers/registry.ts';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The CORS a registry must be configured with for pages of another origin: preflights answered, the
 * headers the client reads exposed. A proxy in front of docker-registry adds them (its own `http.headers`
 * cannot answer OPTIONS preflights).
 */
async function corsProxy(target: string): Promise<{ host: string; close(): Promise<void>; seen: string[] }> {
  const seen: string[] = [];
  const server: Server = createServer(async (req, res) => {
    const cors = {
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'Docker-Content-Digest, Location, WWW-Authenticate, Content-Range, Content-Length',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE', 'access-control-allow-headers': 'authorization, accept, range, content-type', 'access-control-max-age': '600' }).end();
      return;
    }
    seen.push(`${req.method} ${req.url}`);
    const headers: Record<string, string> = {};
    for (const h of ['accept', 'range', 'authorization']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    const up = await fetch(`http://${target}${req.url}`, { method: req.method!, headers });
    const out: Record<string, string> = { ...cors };
    up.headers.forEach((v, k) => { if (k !== 'content-encoding' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v; });
    res.writeHead(up.status, out);
    res.end(new Uint8Array(await up.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { host: `127.0.0.1:${port}`, seen, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

describe.skipIf(!existsSync(CHROMIUM) || !haveRegistry)('registry pull in headless Chromium', () => {
  let reg: TestRegistry;
  let proxy: Awaited<ReturnType<typeof corsProxy>>;
  let page: Awaited<ReturnType<typeof startServer>>;
  let browser: import('playwright-core').Browser;
  let dir: string;

  beforeAll(async () => {
    if (!existsSync(`${root}/dist/browser.js`) || !existsSync(`${root}/dist/browser-worker.js`)) {
      execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'inherit' });
    }
    dir = mkdtempSync(join(tmpdir(), 'wasmbox-reg-browser-'));
    reg = await startRegistry();
    const store = await LayoutStore.open(join(dir, 'home'));
    await loadImage(store, join(root, 'images', 'hello.tar'), { names: ['hello:latest'] });
    await pushImage(store, 'hello:latest', `${reg.host}/web/hello:1`);
    proxy = await corsProxy(reg.host);
    page = await startServer(root, { isolated: false });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await page?.close();
    await proxy?.close();
    await removeRegistry(reg);
    rmSync(dir, { recursive: true, force: true });
  });

  it('openRegistryImage + runtime.run: pulls over fetch from another origin and runs hello', async () => {
    const tab = await browser.newPage();
    // Any page of the server gives the origin; the test code imports the browser bundle from there.
    await tab.goto(`${page.url}/dist/browser.js`);
    // A string, so vitest's transform leaves the page's dynamic import alone.
    const script = `(async (ref) => {
      try {
        const wasmbox = await import('/dist/browser.js');
        const image = await wasmbox.openRegistryImage(ref);
        const runtime = wasmbox.createRuntime();
        const r = await runtime.run(image, { args: ['from', 'a registry'] });
        await runtime.close?.();
        const missing = await wasmbox.openRegistryImage(ref.replace(':1', ':nope')).then(() => 'found', (e) => e.code);
        return { code: r.code, digest: image.digest, stdout: new TextDecoder().decode(r.stdout), missing };
      } catch (e) {
        return { error: e.name + ': ' + e.message };
      }
    })(${JSON.stringify(`${proxy.host}/web/hello:1`)})`;
    const result = (await tab.evaluate(script)) as { error?: string; code: number; stdout: string; missing: string };
    await tab.close();
    expect(result).not.toHaveProperty('error');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('argv[1]: from\nargv[2]: a registry\n');
    expect(result.missing).toBe('NOT_FOUND');
    expect(proxy.seen.some((s) => s.startsWith('GET /v2/web/hello/blobs/'))).toBe(true);
  }, 60_000);
});
