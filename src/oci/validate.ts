/**
 * The image model's documents checked once, for every edge that reads them from outside: the
 * registry server (a pushed manifest or index), pull (a registry's manifest, index and config)
 * and load (an archive's index, manifests and configs). A check returns the value, typed, or
 * what is wrong with it (where, and in words); each edge turns that into its own error
 * (MANIFEST_INVALID and the distribution spec's words, INVALID_ARCHIVE, …). Unknown fields are
 * accepted, as OCI v1.1 asks.
 */
import { asDiffId, digestOf, isDigest, parseDigest, type DiffId } from './digest.js'
import type { Descriptor, ImageIndex, ImageManifest } from './types.js'

/** What is wrong: `at` is the field (`config`, `layers[2].digest`, `rootfs.diff_ids`), `message` says it. */
export interface Problem {
  readonly at: string
  readonly message: string
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: Problem }

/** RFC 6838 media type names (`type/subtype`), as the distribution spec's grammar has them. */
const MEDIA_TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

export function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && MEDIA_TYPE_RE.test(value)
}

function bad(at: string, message: string): { readonly ok: false; readonly problem: Problem } {
  return { ok: false, problem: { at, message } }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * A descriptor: a media type, a sha256 or sha512 digest, a size (a non-negative integer); urls a
 * list of strings; embedded `data` base64 and matching digest and size; annotations a mapping.
 * The value itself is returned (its other fields, platform included, kept).
 */
export function checkDescriptor(value: unknown, where: string): Checked<Descriptor> {
  if (!isObject(value)) return bad(where, `${where} must be a descriptor`)
  if (!isMediaType(value['mediaType'])) return bad(`${where}.mediaType`, `${where}.mediaType is missing or invalid`)
  const digest = value['digest']
  if (typeof digest !== 'string') return bad(`${where}.digest`, `${where}.digest is missing`)
  if (!isDigest(digest)) return bad(`${where}.digest`, `${where}.digest ${JSON.stringify(digest)} is not a valid sha256 or sha512 digest`)
  const size = value['size']
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return bad(`${where}.size`, `${where}.size must be a non-negative integer`)
  const urls = value['urls']
  if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string'))) return bad(`${where}.urls`, `${where}.urls must be a list of strings`)
  const data = value['data']
  if (data !== undefined) {
    // embedded content must be what the descriptor says
    if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) return bad(`${where}.data`, `${where}.data must be base64`)
    const bytes = Buffer.from(data, 'base64')
    if (bytes.length !== size || digestOf(bytes, parseDigest(digest).algorithm) !== digest) {
      return bad(`${where}.data`, `${where}.data does not match its digest and size`)
    }
  }
  if (value['annotations'] !== undefined && !isObject(value['annotations'])) return bad(`${where}.annotations`, `${where}.annotations must be a mapping`)
  return { ok: true, value: value as unknown as Descriptor }
}

function checkDescriptorList(value: unknown, where: string): Checked<Descriptor[]> {
  if (!Array.isArray(value)) return bad(where, `${where} must be a list`)
  const out: Descriptor[] = []
  for (const [i, x] of value.entries()) {
    const d = checkDescriptor(x, `${where}[${i}]`)
    if (!d.ok) return d
    out.push(d.value)
  }
  return { ok: true, value: out }
}

/** An image manifest (OCI's or Docker's schema 2): schemaVersion 2, a config and a list of layers, no `manifests`. */
export function checkImageManifest(doc: unknown): Checked<ImageManifest> {
  if (!isObject(doc)) return bad('', 'not a JSON object')
  if (doc['schemaVersion'] !== 2) return bad('schemaVersion', 'schemaVersion must be 2')
  if (doc['manifests'] !== undefined) return bad('manifests', 'an image manifest has no manifests field')
  const config = checkDescriptor(doc['config'], 'config')
  if (!config.ok) return config
  const layers = checkDescriptorList(doc['layers'], 'layers')
  if (!layers.ok) return layers
  return { ok: true, value: doc as unknown as ImageManifest }
}

/** An image index (or Docker's manifest list): schemaVersion 2, a list of manifests, no `config`. */
export function checkImageIndex(doc: unknown): Checked<ImageIndex> {
  if (!isObject(doc)) return bad('', 'not a JSON object')
  if (doc['schemaVersion'] !== 2) return bad('schemaVersion', 'schemaVersion must be 2')
  if (doc['config'] !== undefined) return bad('config', 'an index has no config field')
  const manifests = checkDescriptorList(doc['manifests'], 'manifests')
  if (!manifests.ok) return manifests
  return { ok: true, value: doc as unknown as ImageIndex }
}

/** An image config's layers: `rootfs.diff_ids`, a list of digests. */
export function checkDiffIds(config: unknown): Checked<DiffId[]> {
  const rootfs = isObject(config) ? config['rootfs'] : undefined
  const ids = isObject(rootfs) ? rootfs['diff_ids'] : undefined
  if (!Array.isArray(ids)) return bad('rootfs.diff_ids', 'rootfs.diff_ids is missing')
  const out: DiffId[] = []
  for (const [i, d] of ids.entries()) {
    if (typeof d !== 'string' || !isDigest(d)) return bad(`rootfs.diff_ids[${i}]`, `rootfs.diff_ids[${i}] is not a digest`)
    out.push(asDiffId(d))
  }
  return { ok: true, value: out }
}
