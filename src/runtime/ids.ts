/**
 * A container ID of `hexChars` hex digits. IDs name containers; they are not secrets, so Math.random
 * serves (the Web Crypto getter costs a few milliseconds on a CLI start, before any guest asks for it).
 */
export function newContainerId(hexChars = 64): string {
  let out = '';
  while (out.length < hexChars) out += Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  return out.slice(0, hexChars);
}
