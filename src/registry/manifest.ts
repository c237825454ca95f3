/**
 * Validation of pushed manifests: what the server must know before storing one (its media type, the
 * blobs and manifests it references, its subject for the referrers API), and nothing it can refuse
 * wrongly: unknown fields and artifact types are accepted, as OCI v1.1 asks.
 */
import { CairnError } from '../errors/index.js'
import { asDigest, type Digest } from '../oci/digest.js'
import { MediaTypes } from '../oci/mediatype.js'
import { checkDescriptor, checkImageIndex, checkImageManifest, isMediaType } from '../oci/validate.js'
import type { Descriptor } from '../oci/types.js'

export type ManifestKind = 'manifest' | 'index'

export interface ParsedManifest {
  kind: ManifestKind
  mediaType: string
  /** Blobs that must be present in the repository (config, layers; not foreign layers). */
  blobs: Descriptor[]
  /** Manifests that must be present in the repository (an index's entries). */
  manifests: Descriptor[]
  subject?: Descriptor
  artifactType?: string
  annotations?: Record<string, string>
}

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.OciIndex, MediaTypes.DockerManifestList])
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaTypes.OciManifest, MediaTypes.DockerManifest])
/** Schema 1 manifests (signed JSON) are obsolete: Docker stopped pushing them years ago. */
const SCHEMA1_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
])

function invalid(message: string): CairnError {
  return new CairnError('MANIFEST_INVALID', `manifest invalid: ${message}`)
}

/** The media type without parameters (`; charset=…`), or undefined when absent. */
export function baseMediaType(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const t = header.split(';')[0]?.trim().toLowerCase()
  return t === '' ? undefined : t
}

/**
 * Parses and checks a manifest body. `contentType` is the request's Content-Type (without parameters).
 * Throws MANIFEST_INVALID for anything that is not a well-formed image manifest or index.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw invalid('not valid JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('not a JSON object')
  const m = doc as Record<string, unknown>
  const declared = m['mediaType']
  if (declared !== undefined && typeof declared !== 'string') throw invalid('mediaType must be a string')
  if (contentType !== undefined && SCHEMA1_TYPES.has(contentType)) throw invalid('schema 1 manifests are not supported')
  if (m['schemaVersion'] !== 2) throw invalid('schemaVersion must be 2')
  if (declared !== undefined && contentType !== undefined && contentType !== 'application/json' && declared !== contentType) {
    throw invalid(`mediaType ${declared} does not match Content-Type ${contentType}`)
  }
  const hasConfig = m['config'] !== undefined
  const hasManifests = m['manifests'] !== undefined
  const typeHint = declared ?? (contentType === 'application/json' ? undefined : contentType)
  let kind: ManifestKind
  if (typeHint !== undefined && INDEX_TYPES.has(typeHint)) kind = 'index'
  else if (typeHint !== undefined && MANIFEST_TYPES.has(typeHint)) kind = 'manifest'
  else if (hasManifests && !hasConfig) kind = 'index'
  else if (hasConfig && !hasManifests) kind = 'manifest'
  else throw invalid('neither an image manifest (config, layers) nor an index (manifests)')
  const mediaType = typeHint ?? (kind === 'index' ? MediaTypes.OciIndex : MediaTypes.OciManifest)
  if (!isMediaType(mediaType)) throw invalid(`invalid media type ${JSON.stringify(mediaType)}`)

  const out: ParsedManifest = { kind, mediaType, blobs: [], manifests: [] }
  if (kind === 'manifest') {
    const checked = checkImageManifest(m)
    if (!checked.ok) throw invalid(checked.problem.message)
    const config = trimmed(checked.value.config)
    out.blobs.push(config)
    for (const d of checked.value.layers.map(trimmed)) {
      // foreign (non-distributable) layers live elsewhere, at their urls
      if (d.urls !== undefined && d.urls.length > 0 && /nondistributable|foreign/.test(d.mediaType)) continue
      out.blobs.push(d)
    }
    const at = m['artifactType']
    if (at !== undefined) {
      if (!isMediaType(at)) throw invalid('artifactType must be a media type')
      out.artifactType = at
    } else if (config.mediaType !== MediaTypes.OciConfig || m['subject'] !== undefined) {
      // the referrers API reports the config's media type when there is no artifactType
      out.artifactType = config.mediaType
    }
  } else {
    const checked = checkImageIndex(m)
    if (!checked.ok) throw invalid(checked.problem.message)
    out.manifests.push(...checked.value.manifests.map(trimmed))
    const at = m['artifactType']
    if (at !== undefined) {
      if (!isMediaType(at)) throw invalid('artifactType must be a media type')
      out.artifactType = at
    }
  }
  if (m['subject'] !== undefined) out.subject = descriptor(m['subject'], 'subject')
  const ann = m['annotations']
  if (ann !== undefined) {
    if (typeof ann !== 'object' || ann === null || Array.isArray(ann) || Object.values(ann).some((v) => typeof v !== 'string')) {
      throw invalid('annotations must map strings to strings')
    }
    out.annotations = ann as Record<string, string>
  }
  return out
}

function descriptor(value: unknown, where: string): Descriptor {
  const checked = checkDescriptor(value, where)
  if (!checked.ok) throw invalid(checked.problem.message)
  return trimmed(checked.value)
}

/** What the server keeps of a descriptor: its media type, digest, size and urls. */
function trimmed(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size }
  if (d.urls !== undefined) out.urls = d.urls
  return out
}

/** The referrers API entry of a manifest with a subject. */
export function referrerDescriptor(parsed: ParsedManifest, digest: Digest, size: number): Descriptor {
  const d: Descriptor = { mediaType: parsed.mediaType, digest, size }
  if (parsed.artifactType !== undefined) d.artifactType = parsed.artifactType
  if (parsed.annotations !== undefined) d.annotations = parsed.annotations
  return d
}

/** The subject of a stored manifest (referrers API), if it has one; undefined for anything unreadable. */
export function subjectOf(bytes: Buffer): Digest | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as { subject?: { digest?: unknown } }
    const d = v.subject?.digest
    if (typeof d !== 'string') return undefined
    return asDigest(d)
  } catch {
    return undefined
  }
}
