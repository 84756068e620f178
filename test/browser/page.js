// The browser test page: loads the sample images over HTTP into the in-memory loader, runs them in
// the WASI sandbox (Web Workers) and leaves the results on window for the test to read.
import * as wasmbox from '/dist/browser.js';

const decode = (b) => new TextDecoder().decode(b);

async function openOverHttp(url) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const source = await wasmbox.sourceFromBytes(bytes, url);
  const root = await source.resolve({ transport: 'oci-archive', path: url });
  return wasmbox.openImage(source, root, {});
}

async function main() {
  const runtime = wasmbox.createRuntime();
  const hello = await openOverHttp('/images/hello.tar');
  const toolbox = await openOverHttp('/images/toolbox.tar');

  const h = await runtime.run(hello, { args: ['from', 'the browser'], env: ['GREETING=hello, browser'], workdir: '/tmp' });
  const t = await runtime.run(toolbox, { args: ['sh', '-c', 'ls -l /; echo hi > /tmp/x; cat /tmp/x; echo abc | wc -c'] });
  const fs = await t.container.fs();
  const x = fs.lookup(fs.lookup(fs.root(), 'tmp'), 'x');
  const buf = new Uint8Array(16);
  const xText = decode(buf.subarray(0, fs.read(x, buf, 0)));

  const interactive = await runtime.run(hello, { args: ['--stdin', '--exit', '3'], stdin: 'typed in the browser\n' });
  const timeout = crossOriginIsolated
    ? await runtime.run(toolbox, { args: ['sh', '-c', 'while true; do true; done'], limits: { timeoutMs: 300 } })
    : undefined;

  await runtime.close();
  return {
    crossOriginIsolated,
    hello: { code: h.code, reason: h.reason, stdout: decode(h.stdout), stderr: decode(h.stderr) },
    toolbox: { code: t.code, reason: t.reason, stdout: decode(t.stdout), stderr: decode(t.stderr), x: xText },
    stdin: { code: interactive.code, stdout: decode(interactive.stdout) },
    timeout: timeout && { code: timeout.code, reason: timeout.reason },
  };
}

window.wasmboxResult = main().then(
  (r) => r,
  (e) => ({ error: `${e?.name}: ${e?.message}\n${e?.stack ?? ''}` }),
);
