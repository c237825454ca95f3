/**
 * checkRegistry as a library: the report's counts, each problem's message and the action a repair
 * took (or why it could not), the same damage the command's test makes; and an aborted check stops.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { checkRegistry, FilesystemStorage, startRegistry, type Problem } from '../../src/registry/index.js'
import { hasCode } from '../../src/errors/index.js'
import { tempDir } from '../helpers/cairn.js'
import { pushBlob, pushImage, request, sha256 } from './helpers.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const hex = (d: string): string => d.slice(7)

describe('checkRegistry', () => {
  it('reports each problem in words, repairs what it can and says what it did', async (t) => {
    const { dir: root, cleanup } = await tempDir('cairn-check-report-')
    t.after(cleanup)
    const reg = await startRegistry({ root, port: 0 })
    const repo = 'dmg/lib'
    let broken = ''
    const d: Record<string, string> = {}
    try {
      d['gone'] = (await pushImage(reg.url, repo, 'gone')).digest
      await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(d['gone'])}`)
      await pushImage(reg.url, repo, 'junk')
      await writeFile(`${root}/repositories/${repo}/_manifests/tags/junk`, 'not a digest\n')
      d['nobytes'] = (await pushImage(reg.url, repo, 'nobytes')).digest
      await unlink(`${root}/blobs/sha256/${hex(d['nobytes'])}`)
      const layerGone = await pushImage(reg.url, repo, 'nolayer')
      d['nolayer'] = layerGone.digest
      d['layer'] = sha256(layerGone.layer)
      await unlink(`${root}/blobs/sha256/${hex(d['layer'])}`)
      const unlinked = await pushImage(reg.url, repo, 'unlinked')
      d['unlinked'] = unlinked.digest
      d['unlinkedLayer'] = sha256(unlinked.layer)
      await unlink(`${root}/repositories/${repo}/_layers/sha256/${hex(d['unlinkedLayer'])}`)
      const child = await pushImage(reg.url, repo, 'child')
      d['child'] = child.digest
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.manifest.length }] }))
      d['index'] = sha256(index)
      assert.equal((await request(reg.url, 'PUT', `/v2/${repo}/manifests/multi`, { headers: { 'Content-Type': OCI_INDEX }, body: index })).status, 201)
      assert.equal((await request(reg.url, 'DELETE', `/v2/${repo}/manifests/child`)).status, 202)
      await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(child.digest)}`)
      d['orphan'] = await pushBlob(reg.url, repo, 'orphan bytes')
      await unlink(`${root}/blobs/sha256/${hex(d['orphan'])}`)
      const subject = await pushImage(reg.url, repo, 'signed')
      const empty = await pushBlob(reg.url, repo, '{}')
      const sig = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
      }))
      d['sig'] = sha256(sig)
      d['subject'] = subject.digest
      assert.equal((await request(reg.url, 'PUT', `/v2/${repo}/manifests/${d['sig']}`, { headers: { 'Content-Type': OCI_MANIFEST }, body: sig })).status, 201)
      await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(d['sig'])}`)
      broken = randomUUID()
      await mkdir(`${root}/uploads/${broken}`)
      await writeFile(`${root}/uploads/${broken}/data`, 'partial')
      const trashed = await pushImage(reg.url, repo, 'trashed')
      d['trashedConfig'] = sha256(trashed.config)
      await rename(`${root}/blobs/sha256/${hex(d['trashedConfig'])}`, `${root}/trash/sha256-${hex(d['trashedConfig'])}`)
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
      `${repo} links blob ${d['layer']}, which is gone`,
      `${repo} links blob ${d['orphan']}, which is gone`,
      `${repo} lists ${d['sig']} as a referrer of ${d['subject']}, and it is gone`,
      `blob ${d['trashedConfig']} is in trash/ (left by a gc that was killed)`,
      `index ${repo}@${d['index']} names manifest ${d['child']}, which is not a manifest of ${repo}`,
      `manifest ${repo}@${d['nobytes']}: its bytes (blob ${d['nobytes']}) are gone`,
      `manifest ${repo}@${d['nolayer']} names blob ${d['layer']}, which is gone`,
      `manifest ${repo}@${d['unlinked']} names blob ${d['unlinkedLayer']}, which is not linked in ${repo}`,
      `tag ${repo}:gone names ${d['gone']}, which is not a manifest of ${repo}`,
      `tag ${repo}:junk does not name a digest`,
      `upload ${broken} is not a usable session (its records are incomplete)`,
    ].sort())
    assert.ok(report.problems.every((p) => p.repaired === undefined && p.action === undefined))

    const rw = new FilesystemStorage(root)
    const fixed = await checkRegistry(rw, { repair: true }).finally(() => rw.close())
    assert.equal(fixed.repaired, 10)
    assert.equal(fixed.remaining, 1)
    const action = (kind: Problem['kind'], pick: (p: Problem) => boolean = () => true): string | undefined => fixed.problems.find((p) => p.kind === kind && pick(p))?.action
    assert.equal(action('trashed-blob'), 'brought back to blobs/')
    assert.equal(action('manifest-without-bytes'), 'removed the manifest and its tag nobytes: nothing can serve it (push the image again)')
    assert.equal(action('manifest-missing-blob', (p) => p.missing === d['unlinkedLayer']), `linked blob ${d['unlinkedLayer']} into ${repo}`)
    assert.equal(action('manifest-missing-blob', (p) => p.missing === d['layer']), 'the blob\'s bytes are gone: push the image again')
    assert.equal(action('manifest-missing-child'), `recorded manifest ${d['child']} in ${repo} (its bytes were there)`)
    assert.equal(action('tag-without-manifest'), 'removed the tag (push the image again to bring it back)')
    assert.equal(action('dangling-link'), 'removed the link')
    assert.equal(action('dangling-referrer'), 'removed the entry')
    assert.equal(action('orphan-upload'), 'removed it')

    const again = new FilesystemStorage(root, { readOnly: true })
    const after = await checkRegistry(again).finally(() => again.close())
    assert.deepEqual(after.problems.map((p) => [p.kind, p.missing]), [['manifest-missing-blob', d['layer']]])
  })
})
