// Properties of whiteout conversion: an OCI layer unpacked in overlay mode (whiteouts become 0/0
// character devices, opaque markers the trusted.overlay.opaque xattr) and read back as an
// overlayfs upper directory gives the same layer entries, whatever the mix of files, whiteouts
// and opaque directories.
import assert from 'node:assert/strict'
import { lstat, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { applyLayer } from '../../src/layer/apply.js'
import { tarDirectory } from '../../src/layer/diff.js'
import { readXattrsOf } from '../../src/layer/sys.js'
import { readTar } from '../../src/layer/tar.js'
import { requireRoot } from '../helpers/root.js'
import { tarOf } from '../layer/helpers.js'

const DIRS = ['a', 'a/b', 'c'] as const
const entry = fc.record({
  dir: fc.constantFrom('', ...DIRS),
  name: fc.string({ unit: fc.constantFrom(...'xyz.-_'), minLength: 1, maxLength: 4 }).filter((n) => n !== '.' && n !== '..' && !n.startsWith('.wh.')),
  kind: fc.constantFrom('file', 'whiteout', 'opaque'),
})

/** A layer: the directories, then files, whiteouts and opaque markers that do not contradict each other. */
function layerOf(generated: { dir: string; name: string; kind: string }[]): string[] {
  const taken = new Set<string>(DIRS)
  const out: string[] = DIRS.map((d) => `${d}/`)
  for (const e of generated) {
    const at = (p: string): string => (e.dir === '' ? p : `${e.dir}/${p}`)
    if (e.kind === 'opaque') {
      if (e.dir !== '' && !out.includes(at('.wh..wh..opq'))) out.push(at('.wh..wh..opq'))
      continue
    }
    if (taken.has(at(e.name))) continue
    taken.add(at(e.name))
    out.push(e.kind === 'file' ? at(e.name) : at(`.wh.${e.name}`))
  }
  return out
}

describe('whiteouts, OCI and overlay (properties)', () => {
  it('OCI → overlay upper dir → OCI gives the same entries', async (t) => {
    if (!requireRoot(t, 'overlay whiteouts are 0/0 character devices and trusted.* xattrs')) return
    const root = await mkdtemp(join(tmpdir(), 'cairn-prop-whiteout-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    let n = 0
    await fc.assert(fc.asyncProperty(fc.array(entry, { maxLength: 12 }), async (generated) => {
      const paths = layerOf(generated)
      const tar = await tarOf(paths.map((p) => p.endsWith('/')
        ? { header: { path: p, type: 'directory' as const } }
        : { header: { path: p, type: 'file' as const, size: p.includes('.wh.') ? 0 : 1 }, body: p.includes('.wh.') ? '' : 'x' }))
      const dir = join(root, String(n++))
      await mkdir(dir)
      await applyLayer(Readable.from([tar]), dir, { whiteouts: 'overlay' })
      // on disk, the overlay form
      for (const p of paths) {
        const base = p.slice(p.lastIndexOf('/') + 1)
        const parent = p.slice(0, Math.max(0, p.lastIndexOf('/')))
        if (base === '.wh..wh..opq') {
          const xattrs = await readXattrsOf([join(dir, parent)], 'trusted.overlay.opaque')
          assert.deepEqual(xattrs.get(join(dir, parent))?.get('trusted.overlay.opaque'), Buffer.from('y'), p)
        } else if (base.startsWith('.wh.')) {
          const st = await lstat(join(dir, parent, base.slice(4)))
          assert.ok(st.isCharacterDevice() && st.rdev === 0, `${p}: a 0/0 character device`)
        }
      }
      // read back as an upper directory: the same entries
      const back: string[] = []
      for await (const { header } of readTar(tarDirectory(dir, { whiteouts: 'overlay-upper' }))) back.push(header.path)
      assert.deepEqual(back.toSorted(), paths.toSorted())
      await rm(dir, { recursive: true, force: true })
    }), { numRuns: 40 })
  })
})
