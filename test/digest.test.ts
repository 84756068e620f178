import { describe, expect, it } from 'vitest';
import { parseDigest, sha256Text } from '../src/loader/digest.ts';
import { SandboxError } from '../src/errors.ts';

describe('digest', () => {
  it('hashes and parses sha256 digests', () => {
    const d = sha256Text('');
    expect(d).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(parseDigest(d)).toBe(d);
  });
  it('rejects malformed digests with a typed error', () => {
    for (const bad of ['sha256:XYZ', 'md5:abc', '', 'sha256:' + 'a'.repeat(63)]) {
      expect(() => parseDigest(bad)).toThrow(SandboxError);
    }
  });
});
