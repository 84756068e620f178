import { SandboxError } from '../errors.ts';
import { createSha256 } from '#host/hash';

/** A content digest, parsed once: `sha256:<64 lowercase hex>`. */
export type Digest = string & { readonly __digest: unique symbol };

const SHA256 = /^sha256:[a-f0-9]{64}$/;

export function parseDigest(s: string): Digest {
  if (typeof s !== 'string' || !SHA256.test(s)) {
    // sha512 is valid OCI but nothing in the wild uses it for images; say so clearly.
    throw new SandboxError('MALFORMED', `not a sha256 digest: ${JSON.stringify(String(s).slice(0, 100))}`);
  }
  return s as Digest;
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256.test(s);
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256(data: Uint8Array): Digest {
  const h = createSha256();
  h.update(data);
  return `sha256:${h.digestHex()}` as Digest;
}

export function sha256Text(text: string): Digest {
  return sha256(new TextEncoder().encode(text));
}

export { createSha256 };
