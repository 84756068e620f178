import { SandboxError } from '../../errors.ts';
import { isDigest, type Digest } from '../digest.ts';

/** The annotation the OCI image layout uses for a manifest's name; the store writes `NAME:TAG` there. */
export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd / docker 25+ write the full name here; read when loading. */
export const CONTAINERD_NAME = 'io.containerd.image.name';

export interface ImageName {
  /** Repository in docker's familiar form: `hello`, `user/app`, `registry.example:5000/app`. */
  repository: string;
  tag: string;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?';
const REPOSITORY = new RegExp(`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Drops docker.io's implied parts, as docker shows names: `docker.io/library/x` -> `x`. */
export function familiarRepository(repo: string): string {
  for (const prefix of ['docker.io/library/', 'index.docker.io/library/', 'docker.io/', 'index.docker.io/']) {
    if (repo.startsWith(prefix)) return repo.slice(prefix.length);
  }
  return repo;
}

/**
 * Parses `NAME[:TAG][@DIGEST]` as docker does (`NAME` alone means `NAME:latest`).
 * Throws INVALID_REFERENCE for anything that is not a valid image name.
 */
export function parseImageName(input: string): ImageName & { digest?: Digest } {
  let rest = input.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new SandboxError('INVALID_REFERENCE', `invalid reference format: bad digest in ${JSON.stringify(input)}`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag = 'latest';
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new SandboxError('INVALID_REFERENCE', `invalid reference format: bad tag in ${JSON.stringify(input)}`);
  }
  if (rest === '' || rest.length > 255 || !REPOSITORY.test(rest)) {
    throw new SandboxError(
      'INVALID_REFERENCE',
      `invalid reference format: ${JSON.stringify(input)} (repository names must be lowercase: [a-z0-9] separated by '.', '_', '-' or '/')`,
    );
  }
  const name: ImageName & { digest?: Digest } = { repository: familiarRepository(rest), tag };
  if (digest) name.digest = digest;
  return name;
}

/** A name by digest alone (`docker pull REPO@sha256:...`): index.json names it `REPO@DIGEST`, docker lists it as `REPO <none>`. */
export interface DigestName {
  repository: string;
  byDigest: true;
}

export function formatImageName(n: ImageName): string {
  return `${n.repository}:${n.tag}`;
}

/** Whether a string is a (prefix of a) hex image id, `sha256:` optional, at least 4 hex digits as docker needs. */
export function asIdPrefix(input: string): string | undefined {
  const s = input.startsWith('sha256:') ? input.slice(7) : input;
  return /^[a-f0-9]{4,64}$/.test(s) ? s : undefined;
}
