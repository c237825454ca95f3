// load refuses archives whose JSON has the wrong shapes with INVALID_ARCHIVE, never a TypeError
// (each case a crash the load fuzz target found: test/fuzz/load.test.ts).
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { importImage } from '../../src/api/import.js'
import { loadImages } from '../../src/api/load.js'
import { saveImages } from '../../src/api/save.js'
import { ImageStore } from '../../src/image/store.js'
import { collect, filesOf, rejectsWithCode, tarOf } from '../layer/helpers.js'


function archiveOf(files: Map<string, Buffer>, replace: Record<string, string | Buffer>): Promise<Buffer> {
  const all = new Map([...files, ...Object.entries(replace).map(([k, v]) => [k, Buffer.from(v)] as const)])
  return tarOf([...all].map(([path, body]) => ({ header: { path, type: 'file' as const, size: body.length }, body })))
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

describe('load: malformed archive JSON', () => {
  it('refuses wrong shapes in manifest.json, index.json, oci-layout and OCI manifests with INVALID_ARCHIVE', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-load-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const store = await ImageStore.open(root)
    t.after(() => store.close())
    const layer = await tarOf([{ header: { path: 'hello', type: 'file', size: 2 }, body: 'hi' }])
    await importImage(store, Readable.from([layer]), { reference: 'load:1' })
    const saved = async (format: 'docker' | 'oci'): Promise<Map<string, Buffer>> => {
      const out = new PassThrough()
      const bytes = collect(out)
      await saveImages(store, ['load:1'], out, { format })
      return filesOf(await bytes)
    }
    const docker = await saved('docker')
    const manifest = JSON.parse(docker.get('manifest.json')?.toString() ?? '') as [{ Config: string; Layers: string[] }]
    const entry = manifest[0]
    const dockerCases = [
      [{ ...entry, Layers: [1] }],
      [{ ...entry, RepoTags: 'load:2' }],
      [{ ...entry, RepoTags: [1] }],
    ]
    for (const c of dockerCases) {
      await rejectsWithCode(loadImages(store, Readable.from([await archiveOf(docker, { 'manifest.json': JSON.stringify(c) })])), 'INVALID_ARCHIVE')
    }

    const oci = await saved('oci')
    const index = JSON.parse(oci.get('index.json')?.toString() ?? '') as { manifests: [{ digest: string }] }
    const top = index.manifests[0]
    const ociManifest = JSON.parse(oci.get(`blobs/sha256/${top.digest.slice(7)}`)?.toString() ?? '') as { layers: object[] }
    const badManifest = JSON.stringify({ ...ociManifest, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 1, size: 2 }] })
    const ociCases: Record<string, string>[] = [
      { 'oci-layout': 'null' },
      { 'index.json': 'null' },
      { 'index.json': JSON.stringify({ schemaVersion: 2, manifests: [null] }) },
      { 'index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: 'x' }] }) },
      {
        [`blobs/sha256/${sha(badManifest)}`]: badManifest,
        'index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(badManifest)}`, size: badManifest.length }] }),
      },
    ]
    for (const c of ociCases) {
      await rejectsWithCode(loadImages(store, Readable.from([await archiveOf(oci, c)])), 'INVALID_ARCHIVE')
    }
    // an image name that is not a string is no name: the image loads untagged
    const unnamed = { 'index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ ...top, annotations: { 'io.containerd.image.name': 1 } }] }) }
    assert.deepEqual((await loadImages(store, Readable.from([await archiveOf(oci, unnamed)]))).images.map((i) => i.tags), [[]])
    // the good archives still load
    assert.equal((await loadImages(store, Readable.from([await archiveOf(docker, {})]))).images.length, 1)
    assert.equal((await loadImages(store, Readable.from([await archiveOf(oci, {})]))).images.length, 1)
  })
})
