// Fuzzing `load`: docker save archives and OCI layouts as whole archives, and their manifest.json
// and image config as JSON inside an otherwise good archive.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { loadImages } from '../../src/api/load.js'
import { importImage } from '../../src/api/import.js'
import { saveImages } from '../../src/api/save.js'
import { ImageStore } from '../../src/image/store.js'
import { readTar } from '../../src/layer/tar.js'
import { collect, tarOf } from '../layer/helpers.js'
import { fuzzTest } from './helpers.js'

async function saved(store: ImageStore, format: 'docker' | 'oci'): Promise<Buffer> {
  const out = new PassThrough()
  const bytes = collect(out)
  await saveImages(store, ['fuzz:1'], out, { format })
  return bytes
}

/** The files of a tar archive, by name. */
async function filesOf(archive: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for await (const { header, body } of readTar(Readable.from([archive]))) {
    const data = await collect(body)
    if (header.type === 'file') files.set(header.path, data)
  }
  return files
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
    const withFiles = (replace: Record<string, Buffer>): Promise<Buffer> =>
      tarOf([...files].map(([path, body]) => ({ header: { path, type: 'file' as const, size: (replace[path] ?? body).length }, body: replace[path] ?? body })))

    // the first byte picks what the rest is: a whole archive, its manifest.json, or its config
    await fuzzTest(t, 'load', async (data) => {
      const rest = data.subarray(1)
      const kind = (data[0] ?? 0) % 3
      const archive = kind === 0 ? rest : await withFiles(kind === 1 ? { 'manifest.json': rest } : { [configName]: rest })
      await loadImages(store, Readable.from([archive]))
    }, {
      seeds: [
        Buffer.concat([Buffer.from([0]), docker]),
        Buffer.concat([Buffer.from([0]), oci]),
        Buffer.concat([Buffer.from([1]), manifestJson]),
        Buffer.concat([Buffer.from([2]), configJson]),
      ],
      maxLength: 64 * 1024,
      dictionary: ['"Config":', '"Layers":', '"RepoTags":', '[1]', '[{}]', 'null', '"diff_ids":', '"rootfs":', configName, '../', '"sha256:', 'index.json', 'oci-layout', 'blobs/sha256/'],
    })
  })
})
