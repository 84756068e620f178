/** A user name and password for one registry, or an identity token (an OAuth2 refresh token). */
export interface Credential {
  username: string;
  password: string;
  /**
   * Docker's identity token (a credential helper answering Username `<token>`, or `identitytoken` in
   * config.json): exchanged at the token server with `grant_type=refresh_token`, never sent as a password.
   */
  identityToken?: string;
}

/** The user name credential helpers answer when their Secret is an identity token. */
export const IDENTITY_TOKEN_USER = '<token>';

/** A helper's `{Username, Secret}` as a Credential: `<token>` marks an identity token. */
export function helperCredential(username: string, secret: string): Credential {
  return username === IDENTITY_TOKEN_USER ? { username, password: '', identityToken: secret } : { username, password: secret };
}

/** Where a client finds credentials for a registry host (`registry.example:5000`, `docker.io`). */
export interface CredentialProvider {
  get(registry: string): Promise<Credential | undefined>;
}

/** Keys a credential file may use for a registry: `host:port`, `https://host:port`, docker.io's legacy URL. */
export function credentialKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v2/`, `https://${registry}/v1/`];
  if (registry === 'docker.io') keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

/** Decodes docker's `auth` field: base64 of `user:password`. */
export function decodeAuthField(auth: string): Credential | undefined {
  let text: string;
  try {
    text = new TextDecoder().decode(Uint8Array.from(atob(auth), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export function encodeAuthField(c: Credential): string {
  const bytes = new TextEncoder().encode(`${c.username}:${c.password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Looks a registry up in a docker-style `{auths: {KEY: {auth | username + password}}}` document. */
export function credentialFromAuths(doc: unknown, registry: string): Credential | undefined {
  const auths = (doc as { auths?: unknown } | undefined)?.auths;
  if (typeof auths !== 'object' || auths === null) return undefined;
  const table = auths as Record<string, unknown>;
  for (const key of credentialKeys(registry)) {
    const entry = table[key] as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown } | undefined;
    if (!entry || typeof entry !== 'object') continue;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
      const user = typeof entry.auth === 'string' ? decodeAuthField(entry.auth)?.username : undefined;
      return { username: user ?? IDENTITY_TOKEN_USER, password: '', identityToken: entry.identitytoken };
    }
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const c = decodeAuthField(entry.auth);
      if (c) return c;
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/**
 * The credential helper Docker's config names for a registry: `credHelpers[KEY]` for one of its keys,
 * else `credsStore`. Only plain names (`docker-credential-NAME` on PATH), never paths.
 */
export function credentialHelperFor(doc: unknown, registry: string): string | undefined {
  const d = doc as { credHelpers?: unknown; credsStore?: unknown } | undefined;
  const helpers = typeof d?.credHelpers === 'object' && d.credHelpers !== null ? (d.credHelpers as Record<string, unknown>) : {};
  const named = credentialKeys(registry).map((k) => helpers[k]).find((h) => typeof h === 'string') ?? d?.credsStore;
  return typeof named === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(named) ? named : undefined;
}

/** Credentials given in code (a browser page, tests). */
export function staticCredentials(table: Record<string, Credential>): CredentialProvider {
  return { async get(registry) { return table[registry]; } };
}
