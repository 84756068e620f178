// Compiles C to a WASI preview1 module (or a native executable) at test time, cached by content.
//   const wasm = await compileWasi('int main(void) { return 3; }');
//   const wasm = await compileWasi(new URL('./fixtures/prog.c', import.meta.url));
// Uses Debian's clang-14 for wasm32-wasi (wasi-libc in /usr). Tests that need it should skip
// when `hasWasiClang()` is false, printing why.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const WASI_CLANG = process.env.WASI_CLANG ?? 'clang-14';
export const WASI_CFLAGS: readonly string[] = ['--target=wasm32-wasi', '--sysroot=/usr'];
export const wasiCacheDir = join(tmpdir(), 'wasmbox-wasi-cache');

export interface CompileOptions {
  /** Optimisation flag; default '-O2'. */
  optimize?: string;
  /** Extra compiler/linker flags, e.g. ['-Wl,-z,stack-size=1048576'] or ['-DN=3']. */
  flags?: string[];
  /** Compiler to use; default clang-14 (wasm) or gcc (native). */
  compiler?: string;
}

/** A C source text, or the path (string ending in `.c`, or file URL) of one. */
export type CSource = string | URL;

function isAvailable(command: string): boolean {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** True when clang-14 with wasi-libc can be run here. */
export function hasWasiClang(): boolean {
  return isAvailable(WASI_CLANG) && existsSync('/usr/lib/wasm32-wasi/libc.a');
}

/** True when gcc can be run here (native builds for comparisons). */
export function hasGcc(): boolean {
  return isAvailable('gcc');
}

async function loadSource(source: CSource): Promise<{ text: string; includeDir?: string }> {
  if (source instanceof URL) {
    const path = fileURLToPath(source);
    return { text: await readFile(path, 'utf8'), includeDir: dirname(path) };
  }
  if (!source.includes('\n') && source.endsWith('.c') && existsSync(source)) {
    return { text: await readFile(source, 'utf8'), includeDir: dirname(source) };
  }
  return { text: source };
}

/** Compiles once per (compiler, flags, source text); returns the cached output path. Headers a
 * path-given source includes are found next to it but are not part of the cache key. */
async function compileCached(source: CSource, target: 'wasm' | 'native', opts: CompileOptions): Promise<string> {
  const { text, includeDir } = await loadSource(source);
  const compiler = opts.compiler ?? (target === 'wasm' ? WASI_CLANG : 'gcc');
  const flags = [
    ...(target === 'wasm' ? WASI_CFLAGS : []),
    opts.optimize ?? '-O2',
    ...(includeDir ? [`-I${includeDir}`] : []),
    ...(opts.flags ?? []),
  ];
  const key = createHash('sha256').update(JSON.stringify([compiler, flags, target])).update('\0').update(text).digest('hex');
  const out = join(wasiCacheDir, `${key.slice(0, 32)}.${target === 'wasm' ? 'wasm' : 'bin'}`);
  if (existsSync(out)) return out;

  await mkdir(wasiCacheDir, { recursive: true });
  const unique = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const srcPath = join(wasiCacheDir, `${key.slice(0, 32)}-${unique}.c`);
  const tmpOut = `${out}.${unique}.tmp`;
  await writeFile(srcPath, text);
  try {
    await run(compiler, [...flags, '-o', tmpOut, srcPath, ...(target === 'native' ? ['-lm'] : [])]);
    await rename(tmpOut, out); // atomic: concurrent test files may compile the same source
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`${compiler} is not installed; cannot compile C for this test`);
    throw new Error(`${compiler} failed:\n${e.stderr ?? e.message}`);
  } finally {
    await rm(srcPath, { force: true });
    await rm(tmpOut, { force: true });
  }
  return out;
}

/** Compiles C to a wasm32-wasi (preview1) command module; cached under os.tmpdir()/wasmbox-wasi-cache. */
export async function compileWasi(source: CSource, opts: CompileOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await readFile(await compileCached(source, 'wasm', opts)));
}

/** Compiles the same C natively with gcc; returns the path of the (cached) executable. */
export async function compileNative(source: CSource, opts: CompileOptions = {}): Promise<string> {
  return compileCached(source, 'native', opts);
}
