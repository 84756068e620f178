import type { Command } from 'commander';
import type { TransferEvent, TransferListener } from '../../loader/registry/progress.ts';
import { print, storeFor } from '../program.ts';

export interface RegistryFlags {
  insecure?: boolean;
  timeout?: string;
}

/** Client options from the flags every registry command takes; credentials are read next to the store when asked for. */
export async function clientOptions(flags: RegistryFlags, store: { dir: string } | Promise<{ dir: string }>): Promise<{ insecure: boolean; timeoutMs?: number; credentials: import('../../loader/registry/credentials.ts').CredentialProvider }> {
  const { hostCredentials } = await import('#host/credentials');
  const credentials = { get: async (registry: string) => hostCredentials((await store).dir).get(registry) };
  const out: Awaited<ReturnType<typeof clientOptions>> = { insecure: flags.insecure ?? false, credentials };
  if (flags.timeout !== undefined) {
    const { parseDuration } = await import('../../runtime/spec.ts');
    out.timeoutMs = parseDuration(flags.timeout);
  }
  return out;
}

const short = (d: string) => d.slice(7, 19);

function mb(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)}MB` : `${(n / 1024).toFixed(1)}kB`;
}

/**
 * Per-blob progress: bars (cli-progress) on a terminal, one plain line per state change otherwise,
 * nothing when quiet. `verb` is docker's: Pull / Push. `run` reports its implicit pull on stderr, so
 * that the container's stdout stays its own.
 */
export async function progressReporter(
  mode: 'pull' | 'push',
  quiet: boolean,
  stream?: NodeJS.WriteStream,
): Promise<{ listener?: TransferListener; stop(): void }> {
  if (quiet) return { stop() {} };
  // process.stdout is made on first use (it loads node:net's stream machinery): a quiet pull makes it last.
  const out = stream ?? process.stdout;
  const done = mode === 'pull' ? 'Pull complete' : 'Pushed';
  const print = (line: string) => out.write(`${line}\n`);
  if (!out.isTTY) {
    const listener = (e: TransferEvent) => {
      if (e.type === 'start') print(`${short(e.digest)}: ${mode === 'pull' ? 'Pulling' : 'Pushing'} (${mb(e.size)})`);
      else if (e.type === 'skip') print(`${short(e.digest)}: ${e.reason === 'mounted' ? 'Mounted' : mode === 'pull' ? 'Already exists' : 'Layer already exists'}`);
      else if (e.type === 'done') print(`${short(e.digest)}: ${done}`);
    };
    return { listener, stop() {} };
  }
  const { default: cliProgress } = await import('cli-progress');
  const multi = new cliProgress.MultiBar({
    format: '{id}: [{bar}] {percentage}% {status}',
    hideCursor: true,
    stream: out,
    clearOnComplete: false,
    stopOnComplete: false,
    barsize: 30,
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, ReturnType<typeof multi.create>>();
  const listener = (e: TransferEvent) => {
    const id = short(e.digest);
    let bar = bars.get(e.digest);
    if (!bar) {
      bar = multi.create(Math.max(1, e.size), 0, { id, status: '' });
      bars.set(e.digest, bar);
    }
    if (e.type === 'start') bar.update(0, { status: mb(e.size) });
    else if (e.type === 'bytes') bar.update(e.done, { status: `${mb(e.done)}/${mb(e.size)}` });
    else if (e.type === 'skip') bar.update(Math.max(1, e.size), { status: e.reason === 'mounted' ? 'Mounted' : 'Already exists' });
    else bar.update(Math.max(1, e.size), { status: done });
  };
  let stopped = false;
  return { listener, stop: () => { if (!stopped) { stopped = true; multi.stop(); } } };
}

export function register(program: Command): void {
  program
    .command('pull')
    .description('Download an image from a registry into the store')
    .argument('<ref>', '[REGISTRY[:PORT]/]REPO[:TAG|@DIGEST] (docker.io when no registry is named)')
    .option('--platform <os/arch>', 'image of a multi-platform index to pull (default: wasi/wasm, then the host)')
    .option('-q, --quiet', 'print only the image reference')
    .option('--insecure', 'allow plain HTTP to a registry that is not on loopback')
    .option('--timeout <duration>', 'time allowed for each registry response or read (default 30s)')
    .action(async (refText: string, o: RegistryFlags & { platform?: string; quiet?: boolean }, cmd: Command) => {
      // Each blob's size and digest are checked as it streams into the store; a layer's diff_id and its tar
      // entries when it is unpacked (run, export, save), as containerd does.
      const [{ pullImage }, { parseRegistryRef, formatRegistryRef }] = await Promise.all([
        import('../../loader/registry/pull.ts'),
        import('../../loader/registry/reference.ts'),
      ]);
      const ref = parseRegistryRef(refText);
      // The manifest request goes out first. The store opens (a fresh one writes its layout files), stdout
      // and the progress display are made while the registry answers; events wait for the display.
      let open!: (store: ReturnType<typeof storeFor>) => void;
      const store = new Promise<Awaited<ReturnType<typeof storeFor>>>((resolve) => { open = resolve; });
      store.catch(() => {});
      const client = await clientOptions(o, store);
      const early: TransferEvent[] = [];
      // Quiet: stdout, needed only at the end, is made once a layer is done (while the others still arrive).
      let listener: TransferListener | undefined = o.quiet ? (e) => { if (e.type === 'done') { listener = undefined; void process.stdout; } } : (e) => early.push(e);
      const pulling = pullImage(store, ref, {
        ...client,
        ...(o.platform ? { platform: o.platform } : {}),
        onProgress: (e: TransferEvent) => listener?.(e),
      });
      pulling.catch(() => {});
      // The event loop's next turn writes the request; then the rest.
      await new Promise<void>((resolve) => setImmediate(resolve));
      open(storeFor(cmd));
      if (!o.quiet) print(`${ref.tag ?? ref.digest}: Pulling from ${ref.repository}`);
      const progress = await progressReporter('pull', o.quiet ?? false);
      if (!o.quiet) listener = progress.listener;
      for (const e of early.splice(0)) listener?.(e);
      try {
        const r = await pulling;
        progress.stop();
        if (o.quiet) {
          print(formatRegistryRef(ref));
          return;
        }
        print(`Digest: ${r.image.digest}`);
        print(`Status: Downloaded image for ${formatRegistryRef(ref)}`);
        print(formatRegistryRef(ref));
      } finally {
        progress.stop();
      }
    });
}
