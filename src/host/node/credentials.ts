// Registry credentials on disk (Node): wasmbox's own `HOME/auth.json` (written by `wasmbox login`,
// mode 0600), then Docker's `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`): its credential
// helpers (`credHelpers`, `credsStore`: `docker-credential-NAME get`) and its `auths`.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { SandboxError } from '../../errors.ts';
import { credentialFromAuths, credentialHelperFor, credentialKeys, encodeAuthField, helperCredential, type Credential, type CredentialProvider } from '../../loader/registry/credentials.ts';

export const AUTH_FILE = 'auth.json';

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SandboxError('INVALID_STATE', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SandboxError('MALFORMED', `${file} is not valid JSON`, { cause: e });
  }
}

export function dockerConfigFile(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** Credentials for registries, from `home/auth.json` first, then Docker's config (helpers, then auths). */
export function hostCredentials(home: string): CredentialProvider {
  return {
    async get(registry: string): Promise<Credential | undefined> {
      const own = credentialFromAuths(await readJson(path.join(home, AUTH_FILE)), registry);
      if (own) return own;
      const docker = await readJson(dockerConfigFile());
      const helper = credentialHelperFor(docker, registry);
      return (helper ? await fromCredentialHelper(helper, registry) : undefined) ?? credentialFromAuths(docker, registry);
    },
  };
}

/**
 * Asks `docker-credential-NAME get` (Docker's credential-helper protocol: the server URL on stdin, JSON
 * `{Username, Secret}` on stdout) for each key Docker may have stored the registry under. A helper that
 * is missing, fails, or knows nothing of the registry gives undefined. Username `<token>` means the Secret
 * is an identity token.
 */
async function fromCredentialHelper(helper: string, registry: string): Promise<Credential | undefined> {
  for (const key of credentialKeys(registry)) {
    const out = await new Promise<string | undefined>((resolve) => {
      const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 10_000, maxBuffer: 1 << 20 }, (err, stdout) => resolve(err ? undefined : stdout));
      child.stdin?.end(key);
    });
    if (out === undefined) continue;
    let reply: { Username?: unknown; Secret?: unknown };
    try {
      reply = JSON.parse(out) as typeof reply;
    } catch {
      throw new SandboxError('MALFORMED', `docker-credential-${helper} answered something that is not JSON for ${registry}`);
    }
    if (typeof reply.Username === 'string' && typeof reply.Secret === 'string' && reply.Secret !== '') {
      return helperCredential(reply.Username, reply.Secret);
    }
  }
  return undefined;
}

async function writeAuths(home: string, doc: { auths: Record<string, unknown> }): Promise<void> {
  await fsp.mkdir(home, { recursive: true });
  const target = path.join(home, AUTH_FILE);
  const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  await fsp.chmod(tmp, 0o600);
  await fsp.rename(tmp, target);
}

async function readAuths(home: string): Promise<{ auths: Record<string, unknown> }> {
  const doc = (await readJson(path.join(home, AUTH_FILE))) as { auths?: unknown } | undefined;
  const auths = doc && typeof doc.auths === 'object' && doc.auths !== null ? (doc.auths as Record<string, unknown>) : {};
  return { ...(doc as object), auths };
}

/** Stores a credential for `registry` in `home/auth.json` (docker's `auth` field form), mode 0600. */
export async function saveCredential(home: string, registry: string, c: Credential): Promise<string> {
  const doc = await readAuths(home);
  for (const k of credentialKeys(registry)) delete doc.auths[k];
  doc.auths[registry] = { auth: encodeAuthField(c) };
  await writeAuths(home, doc);
  return path.join(home, AUTH_FILE);
}

/** Removes the credential for `registry`; false when there was none. */
export async function removeCredential(home: string, registry: string): Promise<boolean> {
  const doc = await readAuths(home);
  let found = false;
  for (const k of credentialKeys(registry)) {
    if (k in doc.auths) {
      delete doc.auths[k];
      found = true;
    }
  }
  if (found) await writeAuths(home, doc);
  return found;
}
