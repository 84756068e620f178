// Archives that cannot be read by range where they are: a stream on stdin (`wasmbox load < x.tar`) and
// gzip-compressed archives (`docker save | gzip`). Both are written out as a plain tar in the store's
// private tmp directory first, bounded, and removed afterwards.
import { createReadStream, createWriteStream, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { SandboxError } from '../errors.ts';

export interface MaterialisedInput {
  path: string;
  cleanup(): void;
}

const GZIP_MAGIC = [0x1f, 0x8b];

function startsWithGzip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  } finally {
    closeSync(fd);
  }
}

function isRegularFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function bounded(maxBytes: number, what: string): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length;
      if (total > maxBytes) done(new SandboxError('LIMIT_EXCEEDED', `${what} is larger than ${maxBytes} bytes uncompressed (see --max-layer-size)`));
      else done(null, chunk);
    },
  });
}

async function writeTemp(tmpDir: string, source: Readable, gzip: boolean, maxBytes: number, what: string): Promise<string> {
  const path = join(tmpDir, `${process.pid}-input-${randomBytes(6).toString('hex')}.tar`);
  try {
    const out = createWriteStream(path, { mode: 0o600 });
    if (gzip) await pipeline(source, createGunzip(), bounded(maxBytes, what), out);
    else await pipeline(source, bounded(maxBytes, what), out);
  } catch (e) {
    rmSync(path, { force: true });
    if (e instanceof SandboxError) throw e;
    throw new SandboxError('MALFORMED', `cannot read ${what}: ${(e as Error).message}`, { cause: e });
  }
  return path;
}

/**
 * `input` as a path the loader can open: stdin when undefined, a gunzipped copy of a gzip file, or the
 * reference itself. `maxBytes` bounds what is written (a gzip bomb on stdin must not fill the disk).
 */
export async function materialiseInput(input: string | undefined, tmpDir: string, maxBytes: number): Promise<MaterialisedInput> {
  const keep = (path: string): MaterialisedInput => ({ path, cleanup: () => {} });
  const temp = (path: string): MaterialisedInput => ({ path, cleanup: () => rmSync(path, { force: true }) });
  if (input === undefined) {
    if (process.stdin.isTTY) {
      throw new SandboxError('INVALID_ARGUMENT', 'requested load from stdin, but stdin is a terminal: use -i FILE or redirect an archive');
    }
    const raw = await writeTemp(tmpDir, process.stdin, false, maxBytes, 'the archive on stdin');
    if (!startsWithGzip(raw)) return temp(raw);
    try {
      return temp(await writeTemp(tmpDir, createReadStream(raw), true, maxBytes, 'the gzip archive on stdin'));
    } finally {
      rmSync(raw, { force: true });
    }
  }
  if (isRegularFile(input) && startsWithGzip(input)) {
    return temp(await writeTemp(tmpDir, createReadStream(input), true, maxBytes, input));
  }
  return keep(input);
}
