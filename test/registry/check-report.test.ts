/**
 * checkRegistry as a library: the report's counts, each problem's message and the action a repair
 * took (or why it could not), the same damage the command's test makes; and an aborted check stops.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkRegistry, FilesystemStorage, startRegistry, type Problem } from '../../src/registry/index.js'
import { hasCode } from '../../src/errors/index.js'
import { tempDir } from '../helpers/cairn.js'
import { damageRegistry, type Damage } from './helpers.js'

describe('checkRegistry', () => {
  it('reports each problem in words, repairs what it can and says what it did', async (t) => {
    const { dir: root, cleanup } = await tempDir('cairn-check-report-')
    t.after(cleanup)
    const reg = await startRegistry({ root, port: 0 })
    const repo = 'dmg/lib'
    let d: Damage
    try {
      d = await damageRegistry(reg.url, root, repo)
    } finally {
      await reg.close()
    }

    const ro = new FilesystemStorage(root, { readOnly: true })
    const aborted = new AbortController()
    aborted.abort()
    await assert.rejects(checkRegistry(ro, { signal: aborted.signal }), (err: unknown) => hasCode(err, 'ABORTED'))
    const report = await checkRegistry(ro).finally(() => ro.close())
    assert.deepEqual({ ...report, problems: [] }, { repair: false, repositories: 1, tags: 8, manifests: 7, links: 17, uploads: 1, problems: [], repaired: 0, remaining: 11 })
    const messages = report.problems.map((p) => p.message).sort()
    assert.deepEqual(messages, [
      `${repo} links blob ${d.layer}, which is gone`,
      `${repo} links blob ${d.orphan}, which is gone`,
      `${repo} lists ${d.sig} as a referrer of ${d.subject}, and it is gone`,
      `blob ${d.trashedConfig} is in trash/ (left by a gc that was killed)`,
      `index ${repo}@${d.index} names manifest ${d.child}, which is not a manifest of ${repo}`,
      `manifest ${repo}@${d.nobytes}: its bytes (blob ${d.nobytes}) are gone`,
      `manifest ${repo}@${d.nolayer.digest} names blob ${d.layer}, which is gone`,
      `manifest ${repo}@${d.unlinked.digest} names blob ${d.unlinkedLayer}, which is not linked in ${repo}`,
      `tag ${repo}:gone names ${d.gone}, which is not a manifest of ${repo}`,
      `tag ${repo}:junk does not name a digest`,
      `upload ${d.upload} is not a usable session (its records are incomplete)`,
    ].sort())
    assert.ok(report.problems.every((p) => p.repaired === undefined && p.action === undefined))

    const rw = new FilesystemStorage(root)
    const fixed = await checkRegistry(rw, { repair: true }).finally(() => rw.close())
    assert.equal(fixed.repaired, 10)
    assert.equal(fixed.remaining, 1)
    const action = (kind: Problem['kind'], pick: (p: Problem) => boolean = () => true): string | undefined => fixed.problems.find((p) => p.kind === kind && pick(p))?.action
    assert.equal(action('trashed-blob'), 'brought back to blobs/')
    assert.equal(action('manifest-without-bytes'), 'removed the manifest and its tag nobytes: nothing can serve it (push the image again)')
    assert.equal(action('manifest-missing-blob', (p) => p.missing === d.unlinkedLayer), `linked blob ${d.unlinkedLayer} into ${repo}`)
    assert.equal(action('manifest-missing-blob', (p) => p.missing === d.layer), 'the blob\'s bytes are gone: push the image again')
    assert.equal(action('manifest-missing-child'), `recorded manifest ${d.child} in ${repo} (its bytes were there)`)
    assert.equal(action('tag-without-manifest'), 'removed the tag (push the image again to bring it back)')
    assert.equal(action('dangling-link'), 'removed the link')
    assert.equal(action('dangling-referrer'), 'removed the entry')
    assert.equal(action('orphan-upload'), 'removed it')

    const again = new FilesystemStorage(root, { readOnly: true })
    const after = await checkRegistry(again).finally(() => again.close())
    assert.deepEqual(after.problems.map((p) => [p.kind, p.missing]), [['manifest-missing-blob', d.layer]])
  })
})
