import { describe, expect, it } from 'vitest';
import { isSandboxError } from '../src/errors.ts';
import { parseChallenge } from '../src/loader/registry/challenge.ts';
import { withDigest } from '../src/loader/registry/client.ts';
import { credentialFromAuths, decodeAuthField, encodeAuthField } from '../src/loader/registry/credentials.ts';
import { hasRegistryDomain, isLoopback, parseRegistryRef, storeNameFor } from '../src/loader/registry/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isSandboxError(e) ? e.code : 'untyped';
  }
  return undefined;
}

describe('registry references', () => {
  it('docker defaults: docker.io, library/ for one component, latest', () => {
    expect(parseRegistryRef('alpine')).toEqual({ transport: 'registry', registry: 'docker.io', repository: 'library/alpine', tag: 'latest' });
    expect(parseRegistryRef('user/app:1.0')).toEqual({ transport: 'registry', registry: 'docker.io', repository: 'user/app', tag: '1.0' });
    expect(parseRegistryRef('index.docker.io/library/x')).toMatchObject({ registry: 'docker.io', repository: 'library/x' });
  });

  it('registry hosts with ports, localhost, digests', () => {
    expect(parseRegistryRef('127.0.0.1:5000/team/app:v2')).toEqual({ transport: 'registry', registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v2' });
    expect(parseRegistryRef('localhost/app')).toMatchObject({ registry: 'localhost', repository: 'app', tag: 'latest' });
    expect(parseRegistryRef(`ghcr.io/o/app@${D}`)).toEqual({ transport: 'registry', registry: 'ghcr.io', repository: 'o/app', digest: D });
    expect(parseRegistryRef(`docker://registry.example:443/a/b:c`)).toMatchObject({ registry: 'registry.example:443', repository: 'a/b', tag: 'c' });
  });

  it('bad references are INVALID_REFERENCE before any I/O', () => {
    expect(code(() => parseRegistryRef('app/UPPER'))).toBe('INVALID_REFERENCE');
    expect(code(() => parseRegistryRef('host:5000/app:bad tag'))).toBe('INVALID_REFERENCE');
    expect(code(() => parseRegistryRef('app@sha256:short'))).toBe('INVALID_REFERENCE');
    expect(code(() => parseRegistryRef(''))).toBe('INVALID_REFERENCE');
  });

  it('loopback detection, store names, registry-domain names', () => {
    expect(isLoopback('127.0.0.1:5000')).toBe(true);
    expect(isLoopback('127.1.2.3')).toBe(true);
    expect(isLoopback('localhost:80')).toBe(true);
    expect(isLoopback('registry.example')).toBe(false);
    expect(isLoopback('127.0.0.1.nip.io')).toBe(false);
    expect(storeNameFor(parseRegistryRef('alpine'))).toEqual({ repository: 'alpine', tag: 'latest' });
    expect(storeNameFor(parseRegistryRef('127.0.0.1:5000/a/b:1'))).toEqual({ repository: '127.0.0.1:5000/a/b', tag: '1' });
    expect(storeNameFor(parseRegistryRef(`h.example/a@${D}`))).toBeUndefined();
    expect(hasRegistryDomain('127.0.0.1:5000/hello')).toBe(true);
    expect(hasRegistryDomain('user/app')).toBe(false);
    expect(hasRegistryDomain('hello')).toBe(false);
  });
});

describe('WWW-Authenticate challenges', () => {
  it('Bearer with quoted params (escapes, commas inside quotes)', () => {
    const c = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push",error="x\\"y"');
    expect(c.scheme).toBe('bearer');
    expect(c.params).toEqual({ realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push', error: 'x"y' });
  });

  it('Basic, case-insensitive scheme, token values', () => {
    expect(parseChallenge('basic realm=Registry')).toEqual({ scheme: 'basic', params: { realm: 'Registry' } });
  });

  it('malformed challenges are MALFORMED; unsupported schemes UNAUTHORIZED', () => {
    expect(code(() => parseChallenge('Bearer realm="https://x'))).toBe('MALFORMED');
    expect(code(() => parseChallenge('Bearer service="x"'))).toBe('MALFORMED');
    expect(code(() => parseChallenge('Bearer realm="file:///etc/passwd"'))).toBe('MALFORMED');
    expect(code(() => parseChallenge('Bearer realm="https://x" junk'))).toBe('MALFORMED');
    expect(code(() => parseChallenge(''))).toBe('MALFORMED');
    expect(code(() => parseChallenge('Negotiate abc'))).toBe('UNAUTHORIZED');
  });
});

describe('credentials and upload URLs', () => {
  it('docker config auths: host keys, https:// keys, docker.io legacy key; base64 auth or username/password', () => {
    const auth = encodeAuthField({ username: 'u', password: 'p:ä' });
    expect(decodeAuthField(auth)).toEqual({ username: 'u', password: 'p:ä' });
    expect(credentialFromAuths({ auths: { 'reg.example:5000': { auth } } }, 'reg.example:5000')).toEqual({ username: 'u', password: 'p:ä' });
    expect(credentialFromAuths({ auths: { 'https://reg.example': { username: 'a', password: 'b' } } }, 'reg.example')).toEqual({ username: 'a', password: 'b' });
    expect(credentialFromAuths({ auths: { 'https://index.docker.io/v1/': { auth } } }, 'docker.io')).toEqual({ username: 'u', password: 'p:ä' });
    expect(credentialFromAuths({ auths: { other: { auth } } }, 'reg.example')).toBeUndefined();
    expect(credentialFromAuths({ auths: { 'reg.example': { auth: '!!!' } } }, 'reg.example')).toBeUndefined();
    expect(credentialFromAuths(undefined, 'reg.example')).toBeUndefined();
  });

  it('digest= is added to an upload Location that already has a query', () => {
    expect(withDigest('http://r/v2/a/blobs/uploads/u?_state=abc%3D', D as never)).toBe(`http://r/v2/a/blobs/uploads/u?_state=abc%3D&digest=sha256%3A${'a'.repeat(64)}`);
    expect(withDigest('http://r/v2/a/blobs/uploads/u', D as never)).toBe(`http://r/v2/a/blobs/uploads/u?digest=sha256%3A${'a'.repeat(64)}`);
  });
});
