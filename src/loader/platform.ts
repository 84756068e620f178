import { SandboxError } from '../errors.ts';
import type { Descriptor, Platform } from './types.ts';

const WASI_OSES = ['wasi', 'wasip1', 'wasip2'];

/** GOARCH names, the ones OCI platforms use. */
export function normalizeArch(arch: string): string {
  switch (arch) {
    case 'x64': case 'x86_64': case 'x86-64': return 'amd64';
    case 'aarch64': return 'arm64';
    case 'ia32': case 'x86': case 'i386': return '386';
    case 'wasm32': return 'wasm';
    default: return arch;
  }
}

/** "os/arch[/variant]", as docker's --platform. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9._-]+$/.test(p))) {
    throw new SandboxError('INVALID_ARGUMENT', `platform ${JSON.stringify(s)} is not os/arch[/variant] (e.g. linux/amd64, wasi/wasm)`);
  }
  const p: Platform = { os: parts[0]!.toLowerCase(), architecture: normalizeArch(parts[1]!.toLowerCase()) };
  if (parts[2]) p.variant = parts[2].toLowerCase();
  return p;
}

export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** The host's linux platform, from the JS runtime's arch; undefined in browsers. */
export function hostLinuxPlatform(): Platform | undefined {
  const arch = (globalThis as { process?: { arch?: string } }).process?.arch;
  if (!arch) return undefined;
  const p: Platform = { os: 'linux', architecture: normalizeArch(arch) };
  if (p.architecture === 'arm') p.variant = 'v7';
  return p;
}

/** What runs here, best first: WASI (everywhere), then native linux/<host arch>. */
export function defaultPlatforms(): Platform[] {
  const out: Platform[] = WASI_OSES.map((os) => ({ os, architecture: 'wasm' }));
  const host = hostLinuxPlatform();
  if (host) out.push(host);
  return out;
}

export function isWasiPlatform(p: Pick<Platform, 'os' | 'architecture'>): boolean {
  return WASI_OSES.includes(p.os) || p.architecture === 'wasm';
}

function variantMatches(have: string | undefined, want: string | undefined, arch: string): boolean {
  if (!want) return true;
  const norm = (v: string | undefined) => (arch === 'arm64' && (v === undefined || v === '') ? 'v8' : v);
  return norm(have) === norm(want);
}

/** Exact match on os, arch (normalized) and, when wanted, variant. */
export function platformMatches(have: Platform, want: Platform): boolean {
  const arch = normalizeArch(have.architecture);
  return have.os === want.os && arch === normalizeArch(want.architecture) && variantMatches(have.variant, want.variant, arch);
}

/** Looser: any wasi flavour satisfies a request for wasi (wasi/wasm matches wasip1/wasm). */
function platformCompatible(have: Platform, want: Platform): boolean {
  if (platformMatches(have, want)) return true;
  return want.os === 'wasi' && WASI_OSES.includes(have.os) && normalizeArch(have.architecture) === normalizeArch(want.architecture);
}

/**
 * Picks the manifest for the platform from an index. `wanted` (from --platform) overrides the default
 * preference list. PLATFORM_MISMATCH lists what the index holds when nothing fits.
 */
export function choosePlatform(manifests: Descriptor[], wanted: Platform | undefined, what: string): Descriptor {
  const candidates = manifests.filter((m) => !m.platform || (m.platform.os !== 'unknown' && m.platform.architecture !== 'unknown'));
  const withPlatform = candidates.filter((m) => m.platform);
  if (withPlatform.length === 0 && candidates.length === 1 && !wanted) return candidates[0]!;
  const prefs = wanted ? [wanted] : defaultPlatforms();
  for (const match of [platformMatches, platformCompatible]) {
    for (const want of prefs) {
      const hit = withPlatform.find((m) => match(m.platform!, want));
      if (hit) return hit;
    }
  }
  const available = withPlatform.map((m) => formatPlatform(m.platform!));
  const asked = prefs.map(formatPlatform).join(', ');
  throw new SandboxError(
    'PLATFORM_MISMATCH',
    `${what}: no manifest for ${asked}; the index has ${available.length ? available.join(', ') : 'no platform-tagged manifests'}`,
    { data: { wanted: prefs, available: withPlatform.map((m) => m.platform) } },
  );
}
