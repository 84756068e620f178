import { describe, expect, it } from 'vitest';
import { DEFAULT_PATH, parseDuration, parseEnvFile, parseSize, resolveSpec } from '../src/runtime/spec.ts';
import type { ImageConfig } from '../src/loader/types.ts';
import { isSandboxError } from '../src/errors.ts';
import { BARE_MODULE_LABEL } from '../src/loader/wasm-image.ts';

function config(c: NonNullable<ImageConfig['config']>): ImageConfig {
  return { os: 'wasi', architecture: 'wasm', rootfs: { type: 'layers', diff_ids: [] }, config: c };
}
const image = config({ Entrypoint: ['/bin/hello'], Cmd: ['--default'], Env: ['PATH=/bin', 'GREETING=hi', 'A=1'], WorkingDir: '/srv' });

describe('container spec from the image config (docker run rules)', () => {
  it('uses Entrypoint + Cmd, Env, WorkingDir when nothing is overridden', () => {
    const s = resolveSpec(image, {}, 'abcdef0123456789');
    expect(s.argv).toEqual(['/bin/hello', '--default']);
    expect(s.env).toEqual(['HOSTNAME=abcdef012345', 'PATH=/bin', 'GREETING=hi', 'A=1', 'HOME=/root']);
    expect(s.cwd).toBe('/srv');
    expect(s.stdin).toBe(false);
    expect(s.readOnlyRoot).toBe(false);
  });

  it('args replace Cmd; --entrypoint replaces Entrypoint and clears Cmd', () => {
    expect(resolveSpec(image, { args: ['x', 'y'] }).argv).toEqual(['/bin/hello', 'x', 'y']);
    expect(resolveSpec(image, { entrypoint: '/bin/other' }).argv).toEqual(['/bin/other']);
    expect(resolveSpec(image, { entrypoint: '/bin/other', args: ['z'] }).argv).toEqual(['/bin/other', 'z']);
    expect(resolveSpec(image, { entrypoint: '', args: ['sh', '-c', 'x'] }).argv).toEqual(['sh', '-c', 'x']);
    expect(() => resolveSpec(image, { entrypoint: '' })).toThrow(/no command/);
  });

  it('env overrides replace in place, append new keys, take a bare K from the host env only', () => {
    const s = resolveSpec(image, { env: ['A=2', 'NEW=v', 'FROMHOST', 'MISSING'], hostEnv: { FROMHOST: 'h' } }, 'id');
    expect(s.env).toEqual(['HOSTNAME=id', 'PATH=/bin', 'GREETING=hi', 'A=2', 'NEW=v', 'FROMHOST=h', 'HOME=/root']);
    const noHost = resolveSpec(image, { env: ['FROMHOST'] }, '');
    expect(noHost.env.some((e) => e.startsWith('FROMHOST'))).toBe(false);
    const bare = resolveSpec(config({ Cmd: ['x'] }), { env: { HOME: '/h' } }, '');
    expect(bare.env).toEqual([`PATH=${DEFAULT_PATH}`, 'HOME=/h']);
    expect(() => resolveSpec(image, { env: ['=x'] })).toThrow(/invalid environment/);
  });

  it('a bare .wasm module gets no docker defaults and no root preopen, only what is granted', () => {
    const bareModule = config({ Entrypoint: ['/m.wasm'], Labels: { [BARE_MODULE_LABEL]: 'true' } });
    const s = resolveSpec(bareModule, { env: ['K=V'] }, 'abcdef0123456789');
    expect(s.env).toEqual(['K=V']);
    expect(s.rootfsPreopen).toBe(false);
    expect(resolveSpec(image, {}, 'id').rootfsPreopen).toBeUndefined();
  });

  it('-w must be absolute and is normalised', () => {
    expect(resolveSpec(image, { workdir: '/a/./b/../c' }).cwd).toBe('/a/c');
    expect(resolveSpec(config({ Cmd: ['x'] })).cwd).toBe('/');
    let err: unknown;
    try { resolveSpec(image, { workdir: 'rel' }); } catch (e) { err = e; }
    expect(isSandboxError(err, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('mounts need absolute container paths; limits must be numbers', () => {
    expect(() => resolveSpec(image, { mounts: [{ guest: 'x', source: { type: 'volume', name: 'v' }, mode: 'rw' }] })).toThrow(/absolute/);
    expect(() => resolveSpec(image, { limits: { timeoutMs: -1 } })).toThrow(/non-negative/);
  });
});

describe('option parsing', () => {
  it('parses docker sizes', () => {
    expect(parseSize('64m')).toBe(64 * 1024 * 1024);
    expect(parseSize('1g')).toBe(1024 ** 3);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('100')).toBe(100);
    expect(parseSize('1.5M')).toBe(1.5 * 1024 * 1024);
    expect(parseSize('64mb')).toBe(64 * 1024 * 1024);
    expect(() => parseSize('lots')).toThrow(/invalid size/);
  });
  it('parses durations', () => {
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('2')).toBe(2000);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
    expect(() => parseDuration('')).toThrow();
  });
  it('parses env files', () => {
    expect(parseEnvFile('# comment\nA=1\n\n  B=two words\nC\r\n')).toEqual(['A=1', 'B=two words', 'C']);
    expect(() => parseEnvFile('BAD KEY=1')).toThrow(/whitespace/);
  });
});
