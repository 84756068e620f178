// Browsers have no credential files: pages pass credentials in code (staticCredentials).
import { SandboxError } from '../../errors.ts';
import type { Credential, CredentialProvider } from '../../loader/registry/credentials.ts';

export const AUTH_FILE = 'auth.json';

export function dockerConfigFile(): string {
  throw new SandboxError('CAPABILITY_DENIED', 'no docker config in this environment');
}

export function hostCredentials(_home: string): CredentialProvider {
  return { async get(): Promise<Credential | undefined> { return undefined; } };
}

export async function saveCredential(_home: string, _registry: string, _c: Credential): Promise<string> {
  throw new SandboxError('CAPABILITY_DENIED', 'credentials cannot be stored in this environment (pass them in code)');
}

export async function removeCredential(_home: string, _registry: string): Promise<boolean> {
  throw new SandboxError('CAPABILITY_DENIED', 'credentials cannot be stored in this environment');
}
