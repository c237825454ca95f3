/**
 * One snapshotter test suite, run for every driver (overlay and native): real mounts, real
 * layers, whiteouts, deep stacks, and the rule that a write above never changes what is below.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, lstatSync, readFileSync, readdirSync, writeFileSync, unlinkSync, mkdirSync, rmSync } from 'node:fs'

import { Cairn } from '../../src/index.js'
import { mountAll, unmount, isMounted, overlaySupported } from '../../src/mount/index.js'
import { openSnapshotter, unpackImage, pruneSnapshots, snapshotChanges, snapshotLayer, type FsSnapshotter, type StorageDriver } from '../../src/snapshot/index.js'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'
import { buffer } from 'node:stream/consumers'
import { buildManifest, serializeConfig, serializeManifest } from '../../src/image/manifest.js'
import { asDiffId, asImageId, chainIds } from '../../src/oci/digest.js'
import type { ImageConfig } from '../../src/oci/types.js'
import { parseReference } from '../../src/oci/reference.js'
import { requireRoot } from '../helpers/root.js'
import { tempDir } from '../helpers/cairn.js'

/** path → file content, or 'dir', for every entry below `root`. */
function treeOf(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(`${root}/${rel}`).sort()) {
    const r = rel ? `${rel}/${name}` : name
    const st = lstatSync(`${root}/${r}`)
    if (st.isDirectory()) {
      out[r] = 'dir'
      Object.assign(out, treeOf(root, r))
    } else out[r] = readFileSync(`${root}/${r}`, 'utf8')
  }
  return out
}

type Entry = { path: string; type?: 'file' | 'directory'; content?: string }

async function layerTar(entries: Entry[]): Promise<Buffer> {
  const input: TarEntryInput[] = entries.map((e) => {
    if (e.type === 'directory') return { header: { path: e.path, type: 'directory', mode: 0o755, mtime: 1 } }
    const body = Buffer.from(e.content ?? '')
    return { header: { path: e.path, type: 'file', mode: 0o644, size: body.length, mtime: 1 }, body }
  })
  return buffer(writeTar(input))
}

/** Records an image made of the given layer tars (uncompressed) directly in the store. */
async function makeImage(cairn: Cairn, tag: string, layers: Buffer[]): Promise<string> {
  const store = cairn.store
  const staged = await Promise.all(layers.map((l) => store.content.stageBytes(l)))
  const diffIds = staged.map((s) => asDiffId(s.digest))
  const cfg: ImageConfig = { architecture: 'amd64', os: 'linux', created: new Date(0).toISOString(), rootfs: { type: 'layers', diff_ids: diffIds }, history: diffIds.map(() => ({ created_by: 'test' })) }
  const cfgStaged = await store.content.stageBytes(serializeConfig(cfg))
  const descs = staged.map((s) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: s.digest, size: s.size }))
  const man = await store.content.stageBytes(serializeManifest(buildManifest('oci', cfgStaged, descs)))
  return store.addImage({
    manifest: man, manifestMediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfgStaged, configJson: cfg,
    layers: staged.map((s, i) => ({ descriptor: descs[i]!, diffId: asDiffId(s.digest), size: s.size, diffSize: s.size, staged: s })),
    tags: [parseReference(tag)],
  }).id
}

for (const driver of ['overlay', 'native'] as StorageDriver[]) {
  describe(`snapshotter: ${driver}`, () => {
    let dir = ''
    let cleanup: () => Promise<void> = async () => undefined
    let cairn: Cairn
    let snap: FsSnapshotter
    const mounted: string[] = []
    const mnt = async (mounts: Awaited<ReturnType<FsSnapshotter['prepare']>>, name: string): Promise<string> => {
      const target = `${dir}/mnt/${name}`
      await mountAll(mounts, target)
      mounted.push(target)
      return target
    }

    before(async () => {
      ;({ dir, cleanup } = await tempDir(`cairn-snap-${driver}-`))
      cairn = await Cairn.open({ root: `${dir}/store` })
      if (process.getuid?.() === 0) snap = await openSnapshotter(cairn.store, driver, { overlaySupported })
    })
    after(async () => {
      for (const m of mounted.reverse()) await unmount(m).catch(() => undefined)
      cairn.close()
      await cleanup()
    })

    test('prepare, write, commit, stack: a write above never changes the layer below', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const base = await mnt(await snap.prepare('base-key'), 'base')
      writeFileSync(`${base}/shared`, 'from base')
      mkdirSync(`${base}/dir`)
      writeFileSync(`${base}/dir/inner`, 'inner')
      await unmount(base)
      await snap.commit('base', 'base-key')
      assert.equal((await snap.stat('base')).kind, 'committed')
      await assert.rejects(snap.stat('base-key'))

      const c1 = await mnt(await snap.prepare('c1', 'base'), 'c1')
      const c2 = await mnt(await snap.prepare('c2', 'base'), 'c2')
      assert.equal(readFileSync(`${c1}/shared`, 'utf8'), 'from base')
      writeFileSync(`${c1}/shared`, 'changed in c1')
      writeFileSync(`${c1}/new`, 'new in c1')
      unlinkSync(`${c1}/dir/inner`)
      assert.equal(readFileSync(`${c2}/shared`, 'utf8'), 'from base', 'a second container does not see the first one\'s writes')
      assert.ok(existsSync(`${c2}/dir/inner`))
      assert.ok(!existsSync(`${c2}/new`))
      const view = await mnt(await snap.view('v', 'base'), 'view')
      assert.equal(readFileSync(`${view}/shared`, 'utf8'), 'from base', 'the committed layer is unchanged')
      assert.throws(() => writeFileSync(`${view}/x`, 'x'), /EROFS|read-only/i)

      const changes = await snap.changesDir('c1')
      if (driver === 'overlay') {
        assert.ok(changes)
        assert.deepEqual(readdirSync(changes).sort(), ['dir', 'new', 'shared'], 'the upper dir holds only the change')
        const wh = lstatSync(`${changes}/dir/inner`)
        assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a deletion is an overlay whiteout')
      } else {
        assert.equal(changes, undefined)
      }
      await assert.rejects(snap.remove('base'), /parent/)
      // by prefix: only the keys that start with it, none that merely sort near it
      assert.deepEqual((await snap.list({ prefix: 'c' })).map((s) => s.name).sort(), ['c1', 'c2'])
      assert.deepEqual((await snap.list({ prefix: 'c1' })).map((s) => s.name), ['c1'])
      assert.deepEqual(await snap.list({ prefix: 'c3' }), [])
      assert.deepEqual((await snap.list({ prefix: '' })).length, (await snap.list()).length)
      for (const m of [c1, c2, view]) await unmount(m)
      await snap.remove('c1')
      await snap.remove('c2')
      await snap.remove('v')
      await snap.remove('base')
      assert.deepEqual(await snap.list(), [])
    })

    test('commit with a parent: the layers between are left out (overlay only), labels replaced; anything else refused', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const low = await mnt(await snap.prepare('rp-low-key'), 'rp-low')
      writeFileSync(`${low}/low`, 'low')
      await unmount(low)
      await snap.commit('rp-low', 'rp-low-key')
      const mid = await mnt(await snap.prepare('rp-mid-key', 'rp-low'), 'rp-mid')
      writeFileSync(`${mid}/init`, 'between')
      await unmount(mid)
      await snap.commit('rp-mid', 'rp-mid-key')
      const top = await mnt(await snap.prepare('rp-top-key', 'rp-mid', { labels: { container: 'x' } }), 'rp-top')
      writeFileSync(`${top}/top`, 'top')
      await unmount(top)
      if (driver === 'native') {
        await assert.rejects(snap.commit('rp-top', 'rp-top-key', { parent: 'rp-low' }), /overlay/)
        for (const k of ['rp-top-key', 'rp-mid', 'rp-low']) await snap.remove(k)
        return
      }
      await assert.rejects(snap.commit('rp-top', 'rp-top-key', { parent: 'elsewhere' }), /not below/)
      await snap.commit('rp-top', 'rp-top-key', { parent: 'rp-low', labels: { kept: 'yes' } })
      const info = await snap.stat('rp-top')
      assert.equal(info.parent, 'rp-low')
      assert.deepEqual(info.labels, { kept: 'yes' })
      const view = await mnt(await snap.view('rp-view', 'rp-top'), 'rp-view')
      assert.deepEqual(readdirSync(view).sort(), ['low', 'top'], 'what the layer between held is gone, the rest stays')
      await unmount(view)
      for (const k of ['rp-view', 'rp-top', 'rp-mid', 'rp-low']) await snap.remove(k)
    })

    test('images unpack once per chain ID, with whiteouts and opaque directories applied', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const l1 = await layerTar([{ path: 'etc/', type: 'directory' }, { path: 'etc/keep', content: 'keep' }, { path: 'etc/gone', content: 'gone' },
        { path: 'opq/', type: 'directory' }, { path: 'opq/old', content: 'old' }])
      const l2 = await layerTar([{ path: 'etc/.wh.gone' }, { path: 'opq/', type: 'directory' }, { path: 'opq/.wh..wh..opq' }, { path: 'opq/fresh', content: 'fresh' }])
      const l3 = await layerTar([{ path: 'top', content: 'top' }])
      const a = await makeImage(cairn, 'a:1', [l1, l2])
      const b = await makeImage(cairn, 'b:1', [l1, l2, l3])
      const topA = await unpackImage(cairn.store, snap, cairn.store.get(asImageId(a))!)
      const before = (await snap.list()).length
      const topB = await unpackImage(cairn.store, snap, cairn.store.get(asImageId(b))!)
      assert.equal((await snap.list()).length, before + 1, 'the shared layers are not unpacked again')
      assert.equal(topA, chainIds(cairn.store.get(asImageId(a))!.id ? (await cairn.store.config(cairn.store.get(asImageId(a))!)).rootfs.diff_ids : []).at(-1))
      const root = await mnt(await snap.prepare('ctr', topB), 'ctr')
      assert.equal(readFileSync(`${root}/etc/keep`, 'utf8'), 'keep')
      assert.ok(!existsSync(`${root}/etc/gone`), 'the whiteout hides the lower file')
      assert.deepEqual(readdirSync(`${root}/opq`), ['fresh'], 'the opaque directory hides the lower content')
      assert.equal(readFileSync(`${root}/top`, 'utf8'), 'top')
      assert.ok(!existsSync(`${root}/etc/.wh.gone`))
      await unmount(root)
      await snap.remove('ctr')
      // with the images gone, their snapshots can be pruned
      await cairn.rmi(['a:1', 'b:1'])
      const removed = await pruneSnapshots(cairn.store, snap)
      assert.equal(removed.length, 3)
      assert.deepEqual(await snap.list(), [])
    })

    test('diff lists the changes as Docker does, and the layer of those changes rebuilds the tree', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const l1 = await layerTar([{ path: 'etc/', type: 'directory' }, { path: 'etc/keep', content: 'keep' }, { path: 'etc/gone', content: 'gone' },
        { path: 'dir/', type: 'directory' }, { path: 'dir/a', content: 'a' }, { path: 'opq/', type: 'directory' }, { path: 'opq/old', content: 'old' }])
      const id = await makeImage(cairn, 'diffbase:1', [l1])
      const top = await unpackImage(cairn.store, snap, cairn.store.get(asImageId(id))!)
      const root = await mnt(await snap.prepare('changer', top), 'changer')
      writeFileSync(`${root}/new`, 'added')
      writeFileSync(`${root}/etc/keep`, 'modified content')
      unlinkSync(`${root}/etc/gone`)
      rmSync(`${root}/dir`, { recursive: true })
      writeFileSync(`${root}/dir`, 'a file where a directory was')
      rmSync(`${root}/opq`, { recursive: true })
      mkdirSync(`${root}/opq`)
      writeFileSync(`${root}/opq/fresh`, 'fresh')
      writeFileSync(`${root}/opq/old`, 'recreated in an emptied directory')
      mkdirSync(`${root}/newdir`)
      writeFileSync(`${root}/newdir/x`, 'x')
      const changes = (await snapshotChanges(snap, 'changer')).map((c) => `${c.kind} /${c.path}`)
      for (const line of ['A /new', 'C /etc', 'C /etc/keep', 'D /etc/gone', 'C /dir', 'A /newdir', 'A /newdir/x', 'A /opq/fresh']) {
        assert.ok(changes.includes(line), `${line} in ${JSON.stringify(changes)}`)
      }
      assert.ok(!changes.some((c) => c.endsWith('/dir/a')), 'nothing below a replaced directory is listed')
      if (driver === 'overlay') assert.ok(changes.includes('A /opq/old'), 'below an opaque directory a name the lower layer had is new')
      // the layer of the changes, on top of the image, gives the container's tree
      const layer = await buffer(await snapshotLayer(snap, 'changer'))
      const next = await makeImage(cairn, 'diffnext:1', [l1, layer])
      const nextTop = await unpackImage(cairn.store, snap, cairn.store.get(asImageId(next))!)
      const view = await mnt(await snap.view('check', nextTop), 'check')
      assert.deepEqual(treeOf(view), treeOf(root))
      assert.deepEqual(readdirSync(`${view}/opq`).sort(), ['fresh', 'old'])
      await unmount(view)
      await unmount(root)
      await snap.remove('check')
      await snap.remove('changer')
    })

    test('a snapshot without a parent: everything in it is new', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const root = await mnt(await snap.prepare('scratch'), 'scratch')
      writeFileSync(`${root}/a`, 'a')
      mkdirSync(`${root}/d`)
      writeFileSync(`${root}/d/b`, 'b')
      const changes = (await snapshotChanges(snap, 'scratch')).map((c) => `${c.kind} /${c.path}`)
      assert.deepEqual(changes, ['A /a', 'A /d', 'A /d/b'])
      await unmount(root)
      await snap.remove('scratch')
    })

    test('a 125-layer image mounts and shows every layer', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const layers: Buffer[] = []
      for (let i = 0; i < 125; i++) layers.push(await layerTar([{ path: `f${i}`, content: String(i) }]))
      const id = await makeImage(cairn, 'deep:1', layers)
      const top = await unpackImage(cairn.store, snap, cairn.store.get(asImageId(id))!)
      const mounts = await snap.prepare('deep', top)
      if (driver === 'overlay') assert.ok(mounts[0]!.options.join(',').length < 4096, 'mount options fit in a page')
      const root = await mnt(mounts, 'deep')
      assert.equal(readdirSync(root).length, 125)
      assert.equal(readFileSync(`${root}/f0`, 'utf8'), '0')
      assert.equal(readFileSync(`${root}/f124`, 'utf8'), '124')
      await unmount(root)
      assert.equal(await isMounted(root), false)
      await snap.remove('deep')
    })

    test('a layer whose content does not match its diffID is refused and leaves no snapshot', async (t) => {
      if (!requireRoot(t, 'mounting snapshots')) return
      const good = await layerTar([{ path: 'x', content: 'x' }])
      const id = await makeImage(cairn, 'tampered:1', [good])
      const img = cairn.store.get(asImageId(id))!
      const m = await cairn.store.manifest(img)
      // corrupt the stored blob behind the store's back
      writeFileSync(cairn.store.content.path(m.layers[0]!.digest), await layerTar([{ path: 'x', content: 'evil' }]))
      const before = (await snap.list()).length
      await assert.rejects(unpackImage(cairn.store, snap, img), /diffID/)
      assert.equal((await snap.list()).length, before)
    })
  })
}

test('the overlay driver describes mounts without needing root', async () => {
  const { dir, cleanup } = await tempDir()
  const cairn = await Cairn.open({ root: `${dir}/store` })
  try {
    const { FsSnapshotter } = await import('../../src/snapshot/snapshotter.js')
    const snap = new FsSnapshotter(cairn.store.db, cairn.store.root, 'overlay')
    await snap.prepare('l1-key')
    await snap.commit('l1', 'l1-key')
    await snap.prepare('l2-key', 'l1')
    await snap.commit('l2', 'l2-key')
    const [m] = await snap.prepare('ctr', 'l2')
    assert.equal(m?.type, 'overlay')
    assert.match(m?.options.find((o) => o.startsWith('lowerdir=')) ?? '', /^lowerdir=l\/[A-Z0-9]+:l\/[A-Z0-9]+$/)
    assert.ok(m?.options.includes(`upperdir=${m.options.find((o) => o.startsWith('upperdir='))!.slice(9)}`))
    assert.equal(m?.cwd, snap.home)
    const [v] = await snap.view('v', 'l1')
    assert.deepEqual(v?.type, 'bind', 'a one-layer view is a read-only bind')
    assert.ok(v?.options.includes('ro'))
    assert.ok(!m?.options.includes('volatile'), 'a writable snapshot syncs on unmount unless it was asked not to')
  } finally {
    cairn.close()
    await cleanup()
  }
})

test('overlay has volatile mounts from Linux 5.10', async () => {
  const { volatileSupported } = await import('../../src/snapshot/snapshotter.js')
  assert.equal(volatileSupported('5.10.0-23-amd64'), true)
  assert.equal(volatileSupported('6.1.0'), true)
  assert.equal(volatileSupported('5.4.0-150-generic'), false)
  assert.equal(volatileSupported('4.19.0'), false)
  assert.equal(volatileSupported('garbage'), false)
})

test('a snapshot prepared volatile is mounted without syncs, again after an unmount, and committed as any other', async (t) => {
  if (!requireRoot(t, 'mounts')) return
  if (!(await overlaySupported())) return t.skip('no overlayfs')
  const { volatileSupported } = await import('../../src/snapshot/snapshotter.js')
  if (!volatileSupported()) return t.skip('a kernel before 5.10 has no volatile overlay mounts')
  const { dir, cleanup } = await tempDir()
  const cairn = await Cairn.open({ root: `${dir}/store` })
  const target = `${dir}/mnt`
  mkdirSync(target)
  try {
    const { FsSnapshotter } = await import('../../src/snapshot/snapshotter.js')
    const snap = new FsSnapshotter(cairn.store.db, cairn.store.root, 'overlay')
    const base = await snap.prepare('base-key')
    await mountAll(base, target)
    writeFileSync(`${target}/below`, 'below')
    await unmount(target)
    await snap.commit('base', 'base-key')
    const mounts = await snap.prepare('scratch', 'base', { labels: { mine: 'yes' }, volatile: true })
    assert.ok(mounts[0]?.options.includes('volatile'))
    assert.equal((await snap.stat('scratch')).labels['mine'], 'yes')
    for (const round of [1, 2]) {
      // overlay refuses a second mount of folders a volatile mount used, unless they are cleared
      await mountAll(await snap.mounts('scratch'), target)
      writeFileSync(`${target}/round${round}`, String(round))
      assert.equal(readFileSync(`${target}/below`, 'utf8'), 'below')
      await unmount(target)
    }
    await snap.commit('top', 'scratch')
    assert.deepEqual((await snap.stat('top')).labels, { mine: 'yes' }, 'a committed snapshot is never mounted writable: the mark goes')
    await snap.view('v', 'top')
    await mountAll(await snap.mounts('v'), target)
    assert.deepEqual(readdirSync(target).sort(), ['below', 'round1', 'round2'])
    await unmount(target)
  } finally {
    await unmount(target).catch(() => undefined)
    cairn.close()
    await cleanup()
  }
})
