import { describe, expect, it } from 'vitest';
import { formatRef, parseRef } from '../src/loader/ref.ts';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseRef', () => {
  it.each([
    ['oci:/images/app', { transport: 'oci', path: '/images/app' }],
    ['oci:/images/app:v1.2', { transport: 'oci', path: '/images/app', tag: 'v1.2' }],
    ['oci:dir:docker.io/library/x:y', { transport: 'oci', path: 'dir', tag: 'docker.io/library/x:y' }],
    [`oci:./app@${D}`, { transport: 'oci', path: './app', digest: D }],
    ['oci-archive:app.tar', { transport: 'oci-archive', path: 'app.tar' }],
    ['oci-archive:/t/app.tar:latest', { transport: 'oci-archive', path: '/t/app.tar', tag: 'latest' }],
    ['docker-archive:b.tar', { transport: 'docker-archive', path: 'b.tar' }],
    ['docker-archive:b.tar:x:y', { transport: 'docker-archive', path: 'b.tar', tag: 'x:y' }],
    ['docker-archive:b.tar:busybox', { transport: 'docker-archive', path: 'b.tar', tag: 'busybox' }],
    ['hello.wasm', { transport: 'wasm', path: 'hello.wasm' }],
    ['/opt/x/Hello.WASM', { transport: 'wasm', path: '/opt/x/Hello.WASM' }],
    ['images/app.tar', { transport: 'path', path: 'images/app.tar' }],
    ['./layout', { transport: 'path', path: './layout' }],
    ['saved.tar.gz', { transport: 'path', path: 'saved.tar.gz' }],
    ['/abs/dir', { transport: 'path', path: '/abs/dir' }],
    ['busybox', { transport: 'store', name: 'busybox' }],
    ['busybox:1.36', { transport: 'store', name: 'busybox', tag: '1.36' }],
    ['library/my_app-x.y:v1', { transport: 'store', name: 'library/my_app-x.y', tag: 'v1' }],
    ['localhost:5000/app:dev', { transport: 'store', name: 'localhost:5000/app', tag: 'dev' }],
    [`app@${D}`, { transport: 'store', name: 'app', digest: D }],
    [`app:v1@${D}`, { transport: 'store', name: 'app', tag: 'v1', digest: D }],
    ['docker://busybox', { transport: 'registry', registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker://ghcr.io/o/r:t', { transport: 'registry', registry: 'ghcr.io', repository: 'o/r', tag: 't' }],
  ])('%s', (input, expected) => {
    const ref = parseRef(input);
    expect(ref).toEqual(expected);
    expect(parseRef(formatRef(ref))).toEqual(ref);
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['Busybox', 'lowercase'],
    ['busybox:', 'tag'],
    ['busybox:-x', 'tag'],
    [`busybox:${'a'.repeat(129)}`, 'tag'],
    ['busy box', 'name component'],
    ['a__-b', 'name component'],
    ['app@sha256:abc', 'digest'],
    ['app@md5:abc', 'digest'],
    ['oci:', 'empty path'],
    ['oci:dir:', 'tag'],
    ['oci:dir:bad tag', 'tag'],
    ['docker-archive::x', 'empty path'],
    ['docker-archive:f.tar:UPPER:t', 'lowercase'],
    ['docker:busybox', 'docker://'],
    ['x\u0000y', 'control'],
    [`${'a'.repeat(256)}`, 'longer'],
  ])('rejects %j with INVALID_REFERENCE', (input, why) => {
    expect(() => parseRef(input)).toThrowError(expect.objectContaining({ code: 'INVALID_REFERENCE', message: expect.stringContaining(why) }));
  });
});
