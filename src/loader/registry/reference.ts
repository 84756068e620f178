import { SandboxError } from '../../errors.ts';
import type { Digest } from '../digest.ts';
import { parseDockerName, parseRef } from '../ref.ts';
import type { ImageRef } from '../source.ts';

export type RegistryRef = Extract<ImageRef, { transport: 'registry' }>;

export const DOCKER_HUB = 'docker.io';

/**
 * A reference as docker writes it for a registry: `[REGISTRY[:PORT]/]REPO[:TAG][@DIGEST]` or
 * `docker://...`. A bare name means docker.io (`library/` added for one-component names); no tag and
 * no digest means `latest`. Parsing does no I/O.
 */
export function parseRegistryRef(input: string): RegistryRef {
  if (input.startsWith('docker://')) return parseRef(input) as RegistryRef;
  const n = parseDockerName(input, input);
  const registry = n.domain === 'index.docker.io' ? DOCKER_HUB : (n.domain ?? DOCKER_HUB);
  const repository = registry === DOCKER_HUB && !n.path.includes('/') ? `library/${n.path}` : n.path;
  const out: RegistryRef = { transport: 'registry', registry, repository };
  if (n.tag !== undefined) out.tag = n.tag;
  if (n.digest !== undefined) out.digest = n.digest;
  if (out.tag === undefined && out.digest === undefined) out.tag = 'latest';
  return out;
}

/** Whether a store name (`127.0.0.1:5000/hello`, `registry.example/app`) starts with a registry host. */
export function hasRegistryDomain(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** Loopback hosts, where plain HTTP is allowed without --insecure. */
export function isLoopback(registry: string): boolean {
  const host = hostOf(registry);
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(0, registry.indexOf(']') + 1);
  const colon = registry.lastIndexOf(':');
  return colon >= 0 ? registry.slice(0, colon) : registry;
}

/** The API endpoint for a registry name: docker.io's API lives at registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** The name the store keeps a pulled image under: docker's familiar form, `REGISTRY/REPO:TAG`. */
export function storeNameFor(ref: RegistryRef): { repository: string; tag: string } | undefined {
  if (ref.tag === undefined) return undefined;
  return { repository: storeRepositoryFor(ref), tag: ref.tag };
}

/** The store repository of a registry reference, as docker shows it: `REGISTRY/REPO`, docker.io's in short form. */
export function storeRepositoryFor(ref: RegistryRef): string {
  return ref.registry === DOCKER_HUB ? ref.repository.replace(/^library\//, '') : `${ref.registry}/${ref.repository}`;
}

export function formatRegistryRef(ref: RegistryRef): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The ref with only a digest (the manifest actually pulled). */
export function withDigest(ref: RegistryRef, digest: Digest): RegistryRef {
  return { transport: 'registry', registry: ref.registry, repository: ref.repository, digest };
}

export function invalidRegistryRef(input: string, why: string): SandboxError {
  return new SandboxError('INVALID_REFERENCE', `invalid reference ${JSON.stringify(input)}: ${why}`);
}
