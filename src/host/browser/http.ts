// Browsers reach registries through fetch (the registry client's fetch transport): no host transport here.
import type { HttpTransport } from '../../loader/registry/transport.ts';

export function hostTransport(): HttpTransport | undefined {
  return undefined;
}
