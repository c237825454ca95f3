/** Choosing an image manifest from an index (manifest list) by platform, as containerd and Docker do. */
import { CairnError } from '../errors/index.js'
import { hostPlatform, type Descriptor, type ImageIndex, type Platform } from '../oci/types.js'

/** `linux/arm64/v8` → a Platform; os and architecture required. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, ...rest] = s.split('/')
  if (!os || !architecture || rest.length > 0) throw new CairnError('INVALID_ARGUMENT', `invalid platform ${JSON.stringify(s)}: want os/arch[/variant]`)
  const p: Platform = { os: os.toLowerCase(), architecture: normalizeArch(architecture.toLowerCase()) }
  if (variant) p.variant = variant.toLowerCase()
  return p
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
}

function normalizeArch(a: string): string {
  const map: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' }
  return map[a] ?? a
}

/** The platform images for this machine are for (default variant for arm64: v8). */
export function defaultPlatform(): Platform {
  return hostPlatform()
}

/**
 * The best manifest for `want` in an index: same os and architecture; the same variant when one
 * is asked for (arm64 without a variant matches v8, arm without one matches v7, as containerd
 * does); otherwise the first. Undefined when none fits.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter((m) => m.platform && m.platform.os === want.os && normalizeArch(m.platform.architecture) === want.architecture)
  if (candidates.length === 0) return undefined
  const defaultVariant = want.architecture === 'arm64' ? 'v8' : want.architecture === 'arm' ? 'v7' : undefined
  const wantVariant = want.variant ?? defaultVariant
  if (wantVariant !== undefined) {
    const exact = candidates.find((m) => (m.platform?.variant ?? defaultVariant) === wantVariant)
    if (exact) return exact
    if (want.variant !== undefined) return undefined
  }
  return candidates[0]
}
