import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.tar': 'application/x-tar',
  '.wasm': 'application/wasm',
};
const ALLOWED = ['/dist/', '/images/', '/test/browser/'];

/**
 * Serves the repository's dist/, images/ and test/browser/ on 127.0.0.1, by default with the headers
 * that make the page cross-origin isolated (COOP/COEP), so SharedArrayBuffer exists in it.
 */
export async function startServer(root: string, o: { isolated?: boolean } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const isolation = o.isolated === false ? {} : {
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
    'cross-origin-resource-policy': 'same-origin',
  };
  const server: Server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!ALLOWED.some((p) => path.startsWith(p)) || path.includes('..')) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(root, path));
      res.writeHead(200, {
        'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
        ...isolation,
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
