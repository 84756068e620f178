import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from './browser/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser test skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

describe.skipIf(!haveChromium)('wasmbox in headless Chromium', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  let plainServer: Awaited<ReturnType<typeof startServer>>;
  let browser: import('playwright-core').Browser;

  beforeAll(async () => {
    // The page runs the browser bundles (built by `npm test`; built here when missing).
    if (!existsSync(`${root}/dist/browser.js`) || !existsSync(`${root}/dist/browser-worker.js`)) {
      execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'inherit' });
    }
    server = await startServer(root);
    plainServer = await startServer(root, { isolated: false });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await plainServer?.close();
  });

  async function runPage(url: string): Promise<Record<string, any>> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${url}/test/browser/index.html`);
    const result = await page.evaluate(() => (window as unknown as { wasmboxResult: Promise<unknown> }).wasmboxResult) as Record<string, any>;
    await page.close();
    expect(errors).toEqual([]);
    expect(result.error).toBeUndefined();
    return result;
  }

  it('loads OCI archives over HTTP and runs hello and a toolbox script in Web Workers', async () => {
    const result = await runPage(server.url);
    expect(result.crossOriginIsolated).toBe(true);

    expect(result.hello).toMatchObject({ code: 0, reason: 'exit', stderr: '' });
    expect(result.hello.stdout).toMatch(/^hello, browser\n/);
    expect(result.hello.stdout).toContain('cwd: /tmp\n');
    expect(result.hello.stdout).toContain('argv[1]: from\nargv[2]: the browser\n');

    expect(result.toolbox).toMatchObject({ code: 0, reason: 'exit', x: 'hi\n' });
    expect(result.toolbox.stdout).toMatch(/bin/);
    expect(result.toolbox.stdout).toMatch(/hi\n\s*4\s*$/);

    expect(result.stdin).toMatchObject({ code: 3 });
    expect(result.stdin.stdout).toMatch(/typed in the browser\n$/);
    expect(result.timeout).toEqual({ code: 124, reason: 'timeout' });
  });

  it('works without SharedArrayBuffer (no COOP/COEP): stdin is given up front', async () => {
    const result = await runPage(plainServer.url);
    expect(result.crossOriginIsolated).toBe(false);
    expect(result.hello).toMatchObject({ code: 0, reason: 'exit' });
    expect(result.hello.stdout).toMatch(/^hello, browser\n/);
    expect(result.toolbox).toMatchObject({ code: 0, x: 'hi\n' });
    expect(result.stdin).toMatchObject({ code: 3 });
    expect(result.stdin.stdout).toMatch(/typed in the browser\n$/);
  });
});
