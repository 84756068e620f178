import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createHash, type Hash } from 'node:crypto';

/** Below this many bytes a hash runs in JavaScript: loading node:crypto costs more (~10 ms here) than it saves. */
const SMALL = 64 * 1024;

export interface Sha256 { update(data: Uint8Array): void; digestHex(): string }

/** SHA-256 that starts in JavaScript (manifests, configs) and moves to node:crypto once the input is large. */
export function createSha256(): Sha256 {
  let pending: Uint8Array[] | undefined = [];
  let pendingBytes = 0;
  let native: Hash | undefined;
  return {
    update(d) {
      if (pending) {
        pending.push(d.slice());
        pendingBytes += d.length;
        if (pendingBytes <= SMALL) return;
        native = createHash('sha256');
        for (const p of pending) native.update(p);
        pending = undefined;
        return;
      }
      native!.update(d);
    },
    digestHex() {
      if (native) return native.digest('hex');
      const h = nobleSha256.create();
      for (const p of pending!) h.update(p);
      return bytesToHex(h.digest());
    },
  };
}
