import { SandboxError } from '../errors.ts';
import { isDigest, type Digest } from './digest.ts';
import type { ImageRef } from './source.ts';

// docker/distribution reference grammar.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;
// OCI image layout ref.name: components of alphanumerics joined by -._:@+ or --, separated by '/'.
const OCI_REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

function invalid(input: string, why: string): SandboxError {
  return new SandboxError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${why}`, { data: { reference: input } });
}

/** Splits `[domain/]path[:tag][@digest]` and checks each part by docker's rules. */
export function parseDockerName(input: string, s: string): { domain?: string; path: string; tag?: string; digest?: Digest } {
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw invalid(input, `digest ${JSON.stringify(d)} is not sha256:<64 hex>`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, `tag ${JSON.stringify(tag)} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -`);
  }
  if (rest === '') throw invalid(input, 'empty name');
  if (rest.length > MAX_NAME) throw invalid(input, `name longer than ${MAX_NAME} characters`);
  const parts = rest.split('/');
  let domain: string | undefined;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost' || /[A-Z]/.test(parts[0]!))) {
    domain = parts.shift()!;
    const [host, port, extra] = domain.split(':');
    if (extra !== undefined || !host!.split('.').every((c) => DOMAIN_COMPONENT.test(c)) || (port !== undefined && !/^\d{1,5}$/.test(port))) {
      throw invalid(input, `bad registry host ${JSON.stringify(domain)}`);
    }
  }
  for (const p of parts) {
    if (/[A-Z]/.test(p)) throw invalid(input, 'repository name must be lowercase');
    if (!PATH_COMPONENT.test(p)) throw invalid(input, `name component ${JSON.stringify(p)} must be lowercase letters and digits separated by . _ __ or -`);
  }
  const out: { domain?: string; path: string; tag?: string; digest?: Digest } = { path: parts.join('/') };
  if (domain !== undefined) out.domain = domain;
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

function looksLikePath(s: string): boolean {
  return s === '.' || s === '..' || s.startsWith('/') || s.startsWith('./') || s.startsWith('../')
    || /\.(tar|wasm|tar\.gz|tgz)$/i.test(s) || s.endsWith('/');
}

function splitLayoutRef(input: string, rest: string, withDigest: boolean): { path: string; tag?: string; digest?: Digest } {
  let path = rest;
  let digest: Digest | undefined;
  const at = rest.lastIndexOf('@sha256:');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!withDigest) throw invalid(input, 'a digest is not accepted here');
    if (!isDigest(d)) throw invalid(input, `digest ${JSON.stringify(d)} is not sha256:<64 hex>`);
    digest = d;
    path = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = path.indexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!OCI_REF_NAME.test(tag)) throw invalid(input, `tag ${JSON.stringify(tag)} is not a valid OCI ref name`);
  }
  if (path === '') throw invalid(input, 'empty path');
  if (tag !== undefined && digest !== undefined) throw invalid(input, 'give a tag or a digest, not both');
  const out: { path: string; tag?: string; digest?: Digest } = { path };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/**
 * Parses an image reference without I/O:
 * `oci:DIR[:TAG|@DIGEST]`, `oci-archive:FILE[:TAG|@DIGEST]`, `docker-archive:FILE[:NAME[:TAG]]`,
 * `docker://[REGISTRY/]REPO[:TAG][@DIGEST]`, a `.wasm` path, another path (`/..`, `./..`, `../..`, `*.tar`,
 * ending in `/`: format found from content by detectLocalRef), otherwise a name in the local store
 * (`name[:tag][@sha256:...]`, docker's rules; no tag and no digest means the store's default tag).
 */
export function parseRef(input: string): ImageRef {
  if (typeof input !== 'string' || input.trim() === '') throw invalid(String(input), 'empty reference');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(input)) throw invalid(input, 'control characters');
  const colon = input.indexOf(':');
  const scheme = colon > 0 ? input.slice(0, colon) : '';
  const rest = input.slice(colon + 1);
  switch (scheme) {
    case 'oci': return { transport: 'oci', ...splitLayoutRef(input, rest, true) };
    case 'oci-archive': return { transport: 'oci-archive', ...splitLayoutRef(input, rest, true) };
    case 'docker-archive': {
      const c = rest.indexOf(':');
      const path = c >= 0 ? rest.slice(0, c) : rest;
      if (path === '') throw invalid(input, 'empty path');
      if (c < 0) return { transport: 'docker-archive', path };
      const name = rest.slice(c + 1);
      parseDockerName(input, name);
      if (name.includes('@')) throw invalid(input, 'docker-archive takes NAME:TAG, not a digest');
      return { transport: 'docker-archive', path, tag: name };
    }
    case 'wasm': {
      if (rest === '') throw invalid(input, 'empty path');
      return { transport: 'wasm', path: rest };
    }
    case 'docker': {
      if (!rest.startsWith('//')) throw invalid(input, 'write docker://[REGISTRY/]REPO[:TAG]');
      const n = parseDockerName(input, rest.slice(2));
      const registry = n.domain ?? 'docker.io';
      const repository = n.domain === undefined && !n.path.includes('/') ? `library/${n.path}` : n.path;
      const out: ImageRef = { transport: 'registry', registry, repository };
      if (n.tag !== undefined) out.tag = n.tag;
      if (n.digest !== undefined) out.digest = n.digest;
      if (out.tag === undefined && out.digest === undefined) out.tag = 'latest';
      return out;
    }
    default:
      break;
  }
  if (looksLikePath(input)) {
    return /\.wasm$/i.test(input) ? { transport: 'wasm', path: input } : { transport: 'path', path: input };
  }
  const n = parseDockerName(input, input);
  const out: ImageRef = { transport: 'store', name: n.domain ? `${n.domain}/${n.path}` : n.path };
  if (n.tag !== undefined) out.tag = n.tag;
  if (n.digest !== undefined) out.digest = n.digest;
  return out;
}

/** The reference written back as a string parseRef accepts. */
export function formatRef(ref: ImageRef): string {
  const suffix = (r: { tag?: string; digest?: Digest }) => (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
  switch (ref.transport) {
    case 'oci': case 'oci-archive': return `${ref.transport}:${ref.path}${suffix(ref)}`;
    case 'docker-archive': return `docker-archive:${ref.path}${ref.tag !== undefined ? `:${ref.tag}` : ''}`;
    case 'wasm': return ref.path.toLowerCase().endsWith('.wasm') ? ref.path : `wasm:${ref.path}`;
    case 'path': return ref.path;
    case 'store': return `${ref.name}${suffix(ref)}`;
    case 'registry': return `docker://${ref.registry}/${ref.repository}${suffix(ref)}`;
  }
}
