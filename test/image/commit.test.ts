/**
 * Commit at the snapshot level, for both drivers: the change becomes one layer on the parent,
 * with Docker's history and config; empty changes and SOURCE_DATE_EPOCH as Docker and the issue
 * describe them.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { Readable } from 'node:stream'
import { Cairn } from '../../src/index.js'
import { commitSnapshot } from '../../src/api/commit.js'
import { mountAll, unmount, overlaySupported } from '../../src/mount/index.js'
import { openSnapshotter, unpackImage, type FsSnapshotter, type StorageDriver } from '../../src/snapshot/index.js'
import type { ImageId } from '../../src/oci/digest.js'
import { requireRoot } from '../helpers/root.js'
import { tarOf, tempDir } from '../helpers/cairn.js'

for (const driver of ['overlay', 'native'] as StorageDriver[]) {
  describe(`commit (${driver})`, () => {
    let dir = ''
    let cleanup: () => Promise<void> = async () => undefined
    let cairn: Cairn
    let snap: FsSnapshotter
    let baseId: ImageId
    const mounted: string[] = []

    before(async () => {
      ;({ dir, cleanup } = await tempDir(`cairn-commit-${driver}-`))
      cairn = await Cairn.open({ root: `${dir}/store` })
      if (process.getuid?.() !== 0) return
      snap = await openSnapshotter(cairn.store, driver, { overlaySupported })
      baseId = (await cairn.import(Readable.from([await tarOf({ 'etc/keep': 'keep', 'etc/gone': 'gone', 'srv/dir/a': 'a', 'big': 'x'.repeat(10_000) })]), { reference: 'ubuntu:latest', message: 'base' })).id
    })
    after(async () => {
      for (const m of mounted.reverse()) await unmount(m).catch(() => undefined)
      cairn.close()
      await cleanup()
    })

    /** A "container": an active snapshot on the base image, mounted; `change` edits its tree. */
    async function container(name: string, change: (root: string) => void): Promise<string> {
      const top = await unpackImage(cairn.store, snap, cairn.store.get(baseId)!)
      const root = `${dir}/mnt/${name}`
      await mountAll(await snap.prepare(name, top), root)
      mounted.push(root)
      change(root)
      return root
    }

    test('the article\'s commit: -m and -a, one more layer, history, size, the change and nothing else', async (t) => {
      if (!requireRoot(t, 'snapshots')) return
      await container('vim', (root) => {
        mkdirSync(`${root}/usr/bin`, { recursive: true })
        writeFileSync(`${root}/usr/bin/vim`, 'v'.repeat(100_000))
        writeFileSync(`${root}/etc/keep`, 'changed')
        unlinkSync(`${root}/etc/gone`)
        rmSync(`${root}/srv/dir`, { recursive: true })
        writeFileSync(`${root}/srv/dir`, 'now a file')
      })
      const res = await commitSnapshot(cairn.store, {
        image: cairn.store.get(baseId)!, snapshotter: snap, key: 'vim',
        container: { Cmd: ['/bin/bash'], Env: ['PATH=/usr/bin:/bin'], Hostname: 'eba4a23b97c9' }, createdBy: '/bin/bash',
      }, { message: 'ubuntu install vim', author: 'huzd', reference: 'ubuntuwithvim:1.0.0' })
      assert.match(res.id, /^sha256:[a-f0-9]{64}$/)
      const [row] = cairn.images({ reference: 'ubuntuwithvim:1.0.0' })
      assert.ok(row)
      assert.equal(row.size, cairn.store.get(baseId)!.size + res.size)
      assert.ok(res.size >= 100_000 + 'changed'.length)
      const hist = await cairn.history('ubuntuwithvim:1.0.0')
      assert.equal(hist.length, 2)
      assert.equal(hist[0]!.id, res.id)
      assert.equal(hist[0]!.comment, 'ubuntu install vim')
      assert.equal(hist[0]!.author, 'huzd')
      assert.equal(hist[0]!.createdBy, '/bin/bash')
      assert.equal(hist[0]!.size, res.size)
      assert.equal(hist[1]!.id, baseId, 'the parent row carries the parent image ID')
      const inspect = await cairn.inspect('ubuntuwithvim:1.0.0')
      assert.equal(inspect.RootFS.Layers.length, 2)
      assert.equal(inspect.Author, 'huzd')
      assert.equal(inspect.Parent, baseId)
      assert.deepEqual(inspect.Config?.Cmd, ['/bin/bash'])
      // a new container of the new image sees exactly the changes
      const top = await unpackImage(cairn.store, snap, cairn.store.get(res.id)!)
      const view = `${dir}/mnt/vim-view`
      await mountAll(await snap.view('vim-view', top), view)
      mounted.push(view)
      assert.equal(readFileSync(`${view}/usr/bin/vim`, 'utf8').length, 100_000)
      assert.equal(readFileSync(`${view}/etc/keep`, 'utf8'), 'changed')
      assert.ok(!existsSync(`${view}/etc/gone`))
      assert.equal(readFileSync(`${view}/srv/dir`, 'utf8'), 'now a file')
      assert.equal(readFileSync(`${view}/big`, 'utf8').length, 10_000)
      // the parent cannot be removed while its child exists
      const refused = await cairn.rmi('ubuntu:latest')
      assert.deepEqual(refused.errors, [], 'untagging is allowed')
      const forced = await cairn.rmi(baseId, { force: true })
      assert.match(forced.errors[0]?.error.message ?? '', /dependent child images/)
      cairn.tag(baseId, 'ubuntu:latest')
    })

    test('an empty change still commits, with an empty_layer history entry', async (t) => {
      if (!requireRoot(t, 'snapshots')) return
      await container('empty', () => undefined)
      const res = await commitSnapshot(cairn.store, { image: cairn.store.get(baseId)!, snapshotter: snap, key: 'empty', container: {}, createdBy: 'sh' }, {})
      assert.equal(res.diffId, undefined)
      const cfg = await cairn.store.config(cairn.store.get(res.id)!)
      assert.equal(cfg.rootfs.diff_ids.length, 1)
      assert.equal(cfg.history?.at(-1)?.empty_layer, true)
      assert.equal(cairn.images({ all: true }).find((i) => i.id === res.id)?.repoTags.length, 0, 'no repository: dangling')
    })

    test('SOURCE_DATE_EPOCH: the same change committed twice gives the same layer and image ID', async (t) => {
      if (!requireRoot(t, 'snapshots')) return
      const ids: ImageId[] = []
      for (const name of ['same1', 'same2']) {
        await container(name, (root) => {
          writeFileSync(`${root}/added`, 'same content')
          unlinkSync(`${root}/etc/gone`)
        })
        await new Promise((r) => setTimeout(r, 1100)) // different wall-clock mtimes
        ids.push((await commitSnapshot(cairn.store, { image: cairn.store.get(baseId)!, snapshotter: snap, key: name, container: {}, createdBy: 'sh' }, { timestamp: 1_700_000_000, message: 'm' })).id)
      }
      assert.equal(ids[0], ids[1])
    })

    test('--squash makes one layer of the whole tree and keeps the history', async (t) => {
      if (!requireRoot(t, 'snapshots')) return
      const root = await container('sq', (r) => writeFileSync(`${r}/squashed`, 'yes'))
      const res = await commitSnapshot(cairn.store, { image: cairn.store.get(baseId)!, snapshotter: snap, key: 'sq', container: {}, createdBy: 'sh', mergedDir: root }, { squash: true, reference: 'squashed:1' })
      const cfg = await cairn.store.config(cairn.store.get(res.id)!)
      assert.equal(cfg.rootfs.diff_ids.length, 1)
      assert.equal(cfg.history?.length, 2)
      assert.equal(cfg.history?.[0]?.empty_layer, true)
      const top = await unpackImage(cairn.store, snap, cairn.store.get(res.id)!)
      const view = `${dir}/mnt/sq-view`
      await mountAll(await snap.view('sq-view', top), view)
      mounted.push(view)
      assert.deepEqual(readdirSync(view).sort(), readdirSync(root).sort())
    })
  })
}
