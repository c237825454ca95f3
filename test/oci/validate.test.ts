/** The image model's checks (src/oci/validate.ts), which the registry server, pull and load share. */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { digestOf } from '../../src/oci/digest.js'
import { checkDescriptor, checkDiffIds, checkImageIndex, checkImageManifest, isMediaType, type Checked } from '../../src/oci/validate.js'

const d1 = digestOf('one')
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d1, size: 3 }
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('{}'), size: 2 }

function problem<T>(c: Checked<T>): string {
  return c.ok ? 'ok' : `${c.problem.at}: ${c.problem.message}`
}

describe('checkDescriptor', () => {
  it('keeps a good descriptor whole, platform and annotations included', () => {
    const d = { ...layer, platform: { os: 'linux', architecture: 'amd64' }, annotations: { a: 'b' }, extra: 1 }
    const c = checkDescriptor(d, 'layers[0]')
    assert.ok(c.ok)
    assert.equal(c.value, d)
  })
  it('says what is wrong, and where', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'x: x must be a descriptor'],
      [[layer], 'x: x must be a descriptor'],
      [{ ...layer, mediaType: 'nope' }, 'x.mediaType: x.mediaType is missing or invalid'],
      [{ ...layer, digest: undefined }, 'x.digest: x.digest is missing'],
      [{ ...layer, digest: 'sha256:abc' }, 'x.digest: x.digest "sha256:abc" is not a valid sha256 or sha512 digest'],
      [{ ...layer, size: -1 }, 'x.size: x.size must be a non-negative integer'],
      [{ ...layer, size: 1.5 }, 'x.size: x.size must be a non-negative integer'],
      [{ ...layer, urls: [1] }, 'x.urls: x.urls must be a list of strings'],
      [{ ...layer, data: '!!' }, 'x.data: x.data must be base64'],
      [{ ...layer, data: Buffer.from('two').toString('base64') }, 'x.data: x.data does not match its digest and size'],
      [{ ...layer, annotations: 'x' }, 'x.annotations: x.annotations must be a mapping'],
    ]
    for (const [value, want] of cases) assert.equal(problem(checkDescriptor(value, 'x')), want, JSON.stringify(value))
    assert.equal(problem(checkDescriptor({ ...layer, data: Buffer.from('one').toString('base64') }, 'x')), 'ok')
  })
})

describe('checkImageManifest and checkImageIndex', () => {
  it('an image manifest: schemaVersion 2, a config, layers; no manifests', () => {
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, config, layers: [layer] })), 'ok')
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, config, layers: [] })), 'ok')
    assert.equal(problem(checkImageManifest('x')), ': not a JSON object')
    assert.equal(problem(checkImageManifest({ schemaVersion: 1, config, layers: [] })), 'schemaVersion: schemaVersion must be 2')
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, config, layers: [], manifests: [] })), 'manifests: an image manifest has no manifests field')
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, layers: [] })), 'config: config must be a descriptor')
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, config, layers: {} })), 'layers: layers must be a list')
    assert.equal(problem(checkImageManifest({ schemaVersion: 2, config, layers: [layer, { ...layer, digest: 1 }] })), 'layers[1].digest: layers[1].digest is missing')
  })
  it('an index: schemaVersion 2, manifests; no config', () => {
    const entry = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d1, size: 3, platform: { os: 'linux', architecture: 'arm64' } }
    const c = checkImageIndex({ schemaVersion: 2, manifests: [entry] })
    assert.ok(c.ok)
    assert.equal(c.value.manifests[0]?.platform?.architecture, 'arm64')
    assert.equal(problem(checkImageIndex(null)), ': not a JSON object')
    assert.equal(problem(checkImageIndex({ schemaVersion: 2 })), 'manifests: manifests must be a list')
    assert.equal(problem(checkImageIndex({ schemaVersion: 2, manifests: [null] })), 'manifests[0]: manifests[0] must be a descriptor')
    assert.equal(problem(checkImageIndex({ schemaVersion: 2, manifests: [], config })), 'config: an index has no config field')
  })
})

describe('checkDiffIds', () => {
  it('an image config\'s rootfs.diff_ids, as diffIDs', () => {
    const c = checkDiffIds({ rootfs: { type: 'layers', diff_ids: [d1] } })
    assert.ok(c.ok)
    assert.deepEqual(c.value, [d1])
    assert.equal(problem(checkDiffIds({ rootfs: { diff_ids: [d1, 'sha256:x'] } })), 'rootfs.diff_ids[1]: rootfs.diff_ids[1] is not a digest')
    assert.equal(problem(checkDiffIds({ rootfs: null })), 'rootfs.diff_ids: rootfs.diff_ids is missing')
    assert.equal(problem(checkDiffIds(undefined)), 'rootfs.diff_ids: rootfs.diff_ids is missing')
  })
})

it('media types follow the distribution grammar', () => {
  assert.equal(isMediaType('application/vnd.oci.image.manifest.v1+json'), true)
  assert.equal(isMediaType('application'), false)
  assert.equal(isMediaType(3), false)
})
