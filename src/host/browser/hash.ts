import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export interface Sha256 { update(data: Uint8Array): void; digestHex(): string }

export function createSha256(): Sha256 {
  const h = sha256.create();
  return { update: (d) => { h.update(d); }, digestHex: () => bytesToHex(h.digest()) };
}
