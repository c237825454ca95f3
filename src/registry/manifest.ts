/**
 * Validation of pushed manifests: what the server must know before storing one (its media type, the
 * blobs and manifests it references, its subject for the referrers API), and nothing it can refuse
 * wrongly: unknown fields and artifact types are accepted, as OCI v1.1 asks.
 */
import { CairnError } from '../errors/index.js'
import { asDigest, digestOf, isDigest, parseDigest, type Digest } from '../oci/digest.js'
import { MediaTypes } from '../oci/mediatype.js'
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

const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

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
  if (!MEDIA_TYPE_RE.test(mediaType)) throw invalid(`invalid media type ${JSON.stringify(mediaType)}`)

  const out: ParsedManifest = { kind, mediaType, blobs: [], manifests: [] }
  if (kind === 'manifest') {
    if (hasManifests) throw invalid('an image manifest has no manifests field')
    const config = descriptor(m['config'], 'config')
    out.blobs.push(config)
    const layers = m['layers']
    if (!Array.isArray(layers)) throw invalid('layers must be a list')
    layers.forEach((l, i) => {
      const d = descriptor(l, `layers[${i}]`)
      // foreign (non-distributable) layers live elsewhere, at their urls
      if (d.urls !== undefined && d.urls.length > 0 && /nondistributable|foreign/.test(d.mediaType)) return
      out.blobs.push(d)
    })
    if (mediaType === MediaTypes.DockerManifest && layers.length === 0) {
      // Docker accepts this too; nothing to refuse
    }
    const at = m['artifactType']
    if (at !== undefined) {
      if (typeof at !== 'string' || !MEDIA_TYPE_RE.test(at)) throw invalid('artifactType must be a media type')
      out.artifactType = at
    } else if (config.mediaType !== MediaTypes.OciConfig || m['subject'] !== undefined) {
      // the referrers API reports the config's media type when there is no artifactType
      out.artifactType = config.mediaType
    }
  } else {
    if (hasConfig) throw invalid('an index has no config field')
    const list = m['manifests']
    if (!Array.isArray(list)) throw invalid('manifests must be a list')
    list.forEach((x, i) => out.manifests.push(descriptor(x, `manifests[${i}]`)))
    const at = m['artifactType']
    if (at !== undefined) {
      if (typeof at !== 'string' || !MEDIA_TYPE_RE.test(at)) throw invalid('artifactType must be a media type')
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
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} must be a descriptor`)
  const d = value as Record<string, unknown>
  const mediaType = d['mediaType']
  if (typeof mediaType !== 'string' || !MEDIA_TYPE_RE.test(mediaType)) throw invalid(`${where}.mediaType is missing or invalid`)
  const digest = d['digest']
  if (typeof digest !== 'string') throw invalid(`${where}.digest is missing`)
  if (!isDigest(digest)) throw invalid(`${where}.digest ${JSON.stringify(digest)} is not a valid sha256 or sha512 digest`)
  const size = d['size']
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}.size must be a non-negative integer`)
  const out: Descriptor = { mediaType, digest, size }
  const urls = d['urls']
  if (urls !== undefined) {
    if (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string')) throw invalid(`${where}.urls must be a list of strings`)
    out.urls = urls as string[]
  }
  const data = d['data']
  if (data !== undefined) {
    // embedded content must be what the descriptor says
    if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw invalid(`${where}.data must be base64`)
    const bytes = Buffer.from(data, 'base64')
    if (bytes.length !== size || digestOf(bytes, parseDigest(digest).algorithm) !== digest) {
      throw invalid(`${where}.data does not match its digest and size`)
    }
  }
  const ann = d['annotations']
  if (ann !== undefined && (typeof ann !== 'object' || ann === null || Array.isArray(ann))) throw invalid(`${where}.annotations must be a mapping`)
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
