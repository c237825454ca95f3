// Fuzzing the registry's manifest and index validation (what a push hands the server).
import { describe, it } from 'node:test'
import { parseManifest } from '../../src/registry/manifest.js'
import { jsonMutator } from './engine.js'
import { fuzzTest } from './helpers.js'

const D = `sha256:${'a'.repeat(64)}`
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 7 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D, size: 32, annotations: { a: 'b' } }],
  subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 100 },
})
const index = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 10, platform: { os: 'linux', architecture: 'amd64' } }],
})
const docker = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: D, size: 7 },
  layers: [],
})
const TYPES = [
  undefined,
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/json; charset=utf-8',
]

describe('fuzz: manifest JSON', () => {
  it('parseManifest refuses bad manifests with a CairnError and never crashes', async (t) => {
    // the first byte picks the Content-Type the manifest comes with
    await fuzzTest(t, 'manifest', (data) => parseManifest(data.subarray(1), TYPES[(data[0] ?? 0) % TYPES.length]), {
      seeds: [manifest, index, docker].flatMap((m) => [`\x00${m}`, `\x01${m}`, `\x02${m}`, `\x03${m}`]),
      mutate: jsonMutator(1),
      dictionary: ['"schemaVersion":', '"mediaType":', '"config":', '"layers":', '"manifests":', '"digest":', '"size":', '"subject":', '"artifactType":', 'null', '[]', '{}', '-1', '1e400', `"${D}"`, '"sha512:', '"\\u0000"'],
    })
  })
})
