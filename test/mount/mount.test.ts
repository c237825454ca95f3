/**
 * The mount module both ways: through Cairn's addon (mount(2) and umount2(2)) and through mount(8)
 * (`CAIRN_MOUNT=mount8`, in a child process, since the choice is made once per process): a
 * read-only bind mount, an overlay whose paths are relative to the snapshotter's folder, stacked
 * mounts unmounted together, and unmounting what is not mounted.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { isMounted, mountAddon, mountAll, unmount } from '../../src/mount/index.js'
import { requireRoot } from '../helpers/root.js'
import { tempDir } from '../helpers/cairn.js'

const run = promisify(execFile)
const SELF = fileURLToPath(import.meta.url)

/** The scenario, in `dir`; throws on the first thing that is not as it should be. */
async function scenario(dir: string): Promise<void> {
  mkdirSync(`${dir}/src`)
  writeFileSync(`${dir}/src/f`, 'bound\n')
  // a read-only bind mount
  await mountAll([{ type: 'bind', source: `${dir}/src`, options: ['ro', 'rbind'] }], `${dir}/ro`)
  assert.equal(readFileSync(`${dir}/ro/f`, 'utf8'), 'bound\n')
  assert.throws(() => writeFileSync(`${dir}/ro/g`, 'x'), /EROFS/)
  // stacked on it: both go with one unmount
  await mountAll([{ type: 'bind', source: `${dir}/src`, options: ['rw', 'rbind'] }], `${dir}/ro`)
  await unmount(`${dir}/ro`)
  assert.equal(await isMounted(`${dir}/ro`), false)
  await unmount(`${dir}/ro`) // not mounted: nothing to do
  await unmount(`${dir}/missing`)
  // an overlay with relative paths, as the snapshotter gives them (relative to cwd)
  for (const d of ['home/l1', 'home/l2', 'home/up', 'home/work']) mkdirSync(`${dir}/${d}`, { recursive: true })
  writeFileSync(`${dir}/home/l1/a`, 'lower 1\n')
  writeFileSync(`${dir}/home/l2/a`, 'lower 2\n')
  writeFileSync(`${dir}/home/l2/b`, 'only in 2\n')
  await mountAll([{ type: 'overlay', source: 'overlay', cwd: `${dir}/home`, options: ['index=off', 'lowerdir=l1:l2', 'upperdir=up', 'workdir=work'] }], `${dir}/merged`)
  try {
    assert.equal(readFileSync(`${dir}/merged/a`, 'utf8'), 'lower 1\n')
    assert.equal(readFileSync(`${dir}/merged/b`, 'utf8'), 'only in 2\n')
    writeFileSync(`${dir}/merged/c`, 'written\n')
    assert.equal(readFileSync(`${dir}/home/up/c`, 'utf8'), 'written\n')
  } finally {
    await unmount(`${dir}/merged`, { lazy: true })
  }
  assert.equal(await isMounted(`${dir}/merged`), false)
  // a store whose path holds a character the option syntax uses (here a comma) mounts all the same
  for (const d of ['ho,me/l1', 'ho,me/up', 'ho,me/work']) mkdirSync(`${dir}/${d}`, { recursive: true })
  writeFileSync(`${dir}/ho,me/l1/a`, 'comma\n')
  await mountAll([{ type: 'overlay', source: 'overlay', cwd: `${dir}/ho,me`, options: ['index=off', 'lowerdir=l1', 'upperdir=up', 'workdir=work'] }], `${dir}/merged2`)
  assert.equal(readFileSync(`${dir}/merged2/a`, 'utf8'), 'comma\n')
  await unmount(`${dir}/merged2`)
  assert.equal(await isMounted(`${dir}/merged2`), false)
  // a mount that fails says what failed
  await assert.rejects(mountAll([{ type: 'overlay', source: 'overlay', options: ['lowerdir=/nonexistent-lower'] }], `${dir}/bad`), /overlay/)
}

if (process.argv[2] === '--scenario') {
  // the child: the scenario with mount(8)
  await scenario(process.argv[3] as string)
} else {
  describe('mounts', () => {
    test('through the addon (mount(2), umount2(2))', async (t) => {
      if (!requireRoot(t, 'mounting')) return
      if (process.env['CI'] !== undefined) assert.ok(mountAddon(), 'the mount addon is built (scripts/build-native.sh)')
      if (!mountAddon()) return t.skip('the mount addon was not built')
      const { dir, cleanup } = await tempDir('cairn-mount-')
      try {
        await scenario(dir)
      } finally {
        await cleanup()
      }
    })

    test('through mount(8) (CAIRN_MOUNT=mount8)', async (t) => {
      if (!requireRoot(t, 'mounting')) return
      const { dir, cleanup } = await tempDir('cairn-mount8-')
      try {
        await run(process.execPath, [SELF, '--scenario', dir], { env: { ...process.env, CAIRN_MOUNT: 'mount8' } })
      } finally {
        await cleanup()
      }
    })
  })
}
