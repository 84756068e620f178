import { createHash } from 'node:crypto';

export interface Sha256 { update(data: Uint8Array): void; digestHex(): string }

export function createSha256(): Sha256 {
  const h = createHash('sha256');
  return { update: (d) => { h.update(d); }, digestHex: () => h.digest('hex') };
}
