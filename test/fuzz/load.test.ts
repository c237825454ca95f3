// Fuzzing `load`: docker save archives and OCI layouts as whole archives, and their manifest.json
// and image config as JSON inside an otherwise good archive.
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { loadImages } from '../../src/api/load.js'
import { importImage } from '../../src/api/import.js'
import { saveImages } from '../../src/api/save.js'
import { ImageStore } from '../../src/image/store.js'
import { collect, filesOf, tarOf } from '../layer/helpers.js'
import { jsonMutator } from './engine.js'
import { fuzzTest } from './helpers.js'

async function saved(store: ImageStore, format: 'docker' | 'oci'): Promise<Buffer> {
  const out = new PassThrough()
  const bytes = collect(out)
  await saveImages(store, ['fuzz:1'], out, { format })
  return bytes
}


describe('fuzz: docker save archives', () => {
  it('load refuses bad archives, manifests and configs with a CairnError and never crashes', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-fuzz-load-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const store = await ImageStore.open(join(root, 'store'))
    t.after(() => store.close())
    const layer = await tarOf([{ header: { path: 'hello', type: 'file', size: 2 }, body: 'hi' }])
    await importImage(store, Readable.from([layer]), { reference: 'fuzz:1', changes: ['CMD ["/hello"]'] })
    const docker = await saved(store, 'docker')
    const oci = await saved(store, 'oci')
    const files = await filesOf(docker)
    const manifestJson = files.get('manifest.json')
    const configName = [...files.keys()].find((n) => n.endsWith('.json') && n !== 'manifest.json' && !n.includes('/'))
    if (!manifestJson || !configName) throw new Error(`unexpected docker archive: ${[...files.keys()].join(', ')}`)
    const configJson = files.get(configName) ?? Buffer.alloc(0)
    const withFiles = (from: Map<string, Buffer>, replace: Record<string, Buffer>): Promise<Buffer> => {
      const all = new Map([...from, ...Object.entries(replace)])
      return tarOf([...all].map(([path, body]) => ({ header: { path, type: 'file' as const, size: body.length }, body })))
    }
    // the OCI layout: its index.json, and its manifest and config (blobs named by their digests)
    const ociFiles = await filesOf(oci)
    const ociIndexJson = ociFiles.get('index.json') ?? Buffer.alloc(0)
    const ociIndex = JSON.parse(ociIndexJson.toString()) as { manifests: { digest: string }[] }
    const blob = (digest: string | undefined): string => `blobs/sha256/${(digest ?? '').slice('sha256:'.length)}`
    const ociManifestJson = ociFiles.get(blob(ociIndex.manifests[0]?.digest)) ?? Buffer.alloc(0)
    const ociManifest = JSON.parse(ociManifestJson.toString()) as { config: { digest: string } }
    const ociConfigJson = ociFiles.get(blob(ociManifest.config.digest)) ?? Buffer.alloc(0)
    const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
    const indexOf = (manifest: Buffer): Buffer => Buffer.from(JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/fuzz:1' } }],
    }))
    const withManifest = (manifest: Buffer, extra: Record<string, Buffer> = {}): Promise<Buffer> =>
      withFiles(ociFiles, { ...extra, [blob(sha(manifest))]: manifest, 'index.json': indexOf(manifest) })

    // the first byte picks what the rest is: a whole archive; a docker archive's manifest.json or
    // config; an OCI layout's index.json, manifest or config (the harness names blobs by digest)
    await fuzzTest(t, 'load', async (data) => {
      const rest = data.subarray(1)
      let archive: Buffer
      switch ((data[0] ?? 0) % 6) {
        case 0: archive = rest; break
        case 1: archive = await withFiles(files, { 'manifest.json': rest }); break
        case 2: archive = await withFiles(files, { [configName]: rest }); break
        case 3: archive = await withFiles(ociFiles, { 'index.json': rest }); break
        case 4: archive = await withManifest(rest); break
        default: {
          const manifest = JSON.parse(ociManifestJson.toString()) as { config: { digest: string; size: number } }
          manifest.config.digest = sha(rest)
          manifest.config.size = rest.length
          archive = await withManifest(Buffer.from(JSON.stringify(manifest)), { [blob(sha(rest))]: rest })
        }
      }
      await loadImages(store, Readable.from([archive]))
    }, {
      seeds: [
        Buffer.concat([Buffer.from([0]), docker]),
        Buffer.concat([Buffer.from([0]), oci]),
        Buffer.concat([Buffer.from([1]), manifestJson]),
        Buffer.concat([Buffer.from([2]), configJson]),
        Buffer.concat([Buffer.from([3]), ociIndexJson]),
        Buffer.concat([Buffer.from([4]), ociManifestJson]),
        Buffer.concat([Buffer.from([5]), ociConfigJson]),
      ],
      maxLength: 64 * 1024,
      mutate: jsonMutator(1),
      dictionary: ['"Config":', '"Layers":', '"RepoTags":', '"manifests":', '"layers":', '"config":', '"annotations":', '"digest":', '"platform":', '"mediaType":', 'application/vnd.oci.image.index.v1+json', '1', '[1]', '[{}]', '[null]', 'null', '{}', '"diff_ids":', '"rootfs":', configName, '../', '"sha256:', 'index.json', 'oci-layout', 'blobs/sha256/'],
    })
  })
})
