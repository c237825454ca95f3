/**
 * `cairn registry check` on roots damaged by hand: each kind of problem is found (and only real ones),
 * nothing is changed without --repair, --repair fixes what can be fixed and says what it could not, the
 * exit status tells which, and the registry answers 404 for a tag whose manifest is gone.
 */
import assert from 'node:assert/strict'
import { readdir, stat, unlink } from 'node:fs/promises'
import { describe, it, type TestContext } from 'node:test'
import { startRegistry, type CheckReport, type ProblemKind, type RunningRegistry } from '../../src/registry/index.js'
import { cairn, tempDir } from '../helpers/cairn.js'
import { checkManifest } from './consistency.js'
import { damageRegistry, pushImage, request, sha256, tinyImage } from './helpers.js'

const hex = (d: string): string => d.slice(7)

async function withRegistry(t: TestContext): Promise<{ reg: RunningRegistry; root: string }> {
  const { dir, cleanup } = await tempDir('cairn-registry-check-')
  t.after(cleanup)
  const reg = await startRegistry({ root: dir, port: 0 })
  t.after(() => reg.close())
  return { reg, root: dir }
}

/** Every file under root with its size and mtime: what a read-only check must leave as it was. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = `${dir}/${e.name}`
      if (e.isDirectory()) {
        out.push(`${p}/`)
        await walk(p)
      } else {
        const st = await stat(p)
        out.push(`${p} ${st.size} ${st.mtimeMs}`)
      }
    }
  }
  await walk(root)
  return out.sort()
}

async function check(root: string, ...args: string[]): Promise<{ code: number | null; report: CheckReport; stderr: string }> {
  const r = await cairn(root, ['registry', 'check', '--root', root, '--format', 'json', ...args])
  assert.equal(r.stderr, '')
  return { code: r.code, report: JSON.parse(r.stdout) as CheckReport, stderr: r.stderr }
}

const kinds = (r: CheckReport): ProblemKind[] => r.problems.map((p) => p.kind).sort()

describe('cairn registry check', () => {
  it('finds nothing on a sound registry (exit 0), and refuses a folder that is not one (exit 1)', async (t) => {
    const { reg, root } = await withRegistry(t)
    await pushImage(reg.url, 'ok/app', 'v1')
    const r = await cairn(root, ['registry', 'check', '--root', root])
    assert.equal(r.code, 0, r.stdout)
    assert.match(r.stdout, /^No problems found \(1 repository, 1 tag, 1 manifest, 2 links, 0 uploads\)$/m)
    const { dir, cleanup } = await tempDir('cairn-registry-check-none-')
    t.after(cleanup)
    const bad = await cairn(dir, ['registry', 'check', '--root', `${dir}/nothing`])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^Error: .* is not a registry root/)
  })

  it('lists each kind of damage without changing anything, then --repair fixes what can be fixed', async (t) => {
    const { reg, root } = await withRegistry(t)
    const repo = 'dmg/app'
    const dmg = await damageRegistry(reg.url, root, repo)

    // the registry already answers 404 for the tags whose manifest is gone
    for (const method of ['HEAD', 'GET']) {
      for (const tag of ['gone', 'junk', 'nobytes']) {
        const r = await request(reg.url, method, `/v2/${repo}/manifests/${tag}`)
        assert.equal(r.status, 404, `${method} ${tag}`)
        if (method === 'GET') assert.equal(r.json<{ errors: { code: string }[] }>().errors[0]?.code, 'MANIFEST_UNKNOWN')
      }
    }

    // read-only: everything found, nothing changed
    const before = await snapshot(root)
    const ro = await check(root)
    assert.equal(ro.code, 2)
    assert.deepEqual(kinds(ro.report), [
      'dangling-link', 'dangling-link', 'dangling-referrer', 'manifest-missing-blob', 'manifest-missing-blob',
      'manifest-missing-child', 'manifest-without-bytes', 'orphan-upload', 'tag-without-manifest', 'tag-without-manifest', 'trashed-blob',
    ].sort())
    assert.deepEqual(await snapshot(root), before, 'a check without --repair changes nothing')
    const missing = ro.report.problems.filter((p) => p.kind === 'manifest-missing-blob').map((p) => p.missing).sort()
    assert.deepEqual(missing, [dmg.layer, dmg.unlinkedLayer].sort(), 'a trashed blob counts as there (the server brings it back)')
    const text = await cairn(root, ['registry', 'check', '--root', root])
    assert.equal(text.code, 2)
    assert.match(text.stdout, new RegExp(`^tag-without-manifest: tag ${repo}:gone names ${dmg.gone}, which is not a manifest of ${repo}$`, 'm'))
    assert.match(text.stdout, /^11 problems found \(.*\); --repair fixes what can be fixed$/m)

    // repair: all but the layer whose bytes are gone
    const fixed = await check(root, '--repair')
    assert.equal(fixed.code, 3, 'a problem is left')
    const left = fixed.report.problems.filter((p) => p.repaired === false)
    assert.deepEqual(left.map((p) => [p.kind, p.missing]), [['manifest-missing-blob', dmg.layer]])
    assert.match(left[0]?.action ?? '', /push the image again/)
    assert.equal(fixed.report.remaining, 1)
    assert.equal(fixed.report.repaired, 10)
    const textRepair = await cairn(root, ['registry', 'check', '--root', root, '--repair'])
    assert.equal(textRepair.code, 3)
    assert.match(textRepair.stdout, /^ {2}not repaired: the blob's bytes are gone: push the image again$/m)
    assert.match(textRepair.stdout, /^1 problem found \(.*\): 0 repaired, 1 left$/m)

    // what was repaired works again, or is gone for good
    await checkManifest(reg.url, repo, 'unlinked')
    await checkManifest(reg.url, repo, 'multi')
    await checkManifest(reg.url, repo, 'trashed')
    assert.deepEqual((await request(reg.url, 'GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags, ['multi', 'nolayer', 'signed', 'trashed', 'unlinked'])
    assert.equal((await request(reg.url, 'GET', `/v2/${repo}/referrers/${dmg.subject}`)).json<{ manifests: unknown[] }>().manifests.length, 0)
    assert.deepEqual(await readdir(`${root}/trash`), [])
    assert.ok(!(await readdir(`${root}/uploads`)).includes(dmg.upload))
    // once the image is pushed again, nothing is left
    await pushImage(reg.url, repo, 'nolayer', dmg.nolayer)
    const after = await check(root)
    assert.equal(after.code, 0, JSON.stringify(after.report.problems))
  })

  it('a problem a push fixed is not reported any more', async (t) => {
    const { reg, root } = await withRegistry(t)
    const img = tinyImage()
    await pushImage(reg.url, 'dmg/race', 'v1', img)
    await unlink(`${root}/repositories/dmg/race/_layers/sha256/${hex(sha256(img.layer))}`)
    assert.deepEqual(kinds((await check(root)).report), ['manifest-missing-blob'])
    // the push comes again (it uploads and links the layer): nothing to repair any more
    await pushImage(reg.url, 'dmg/race', 'v1', img)
    const r = await check(root, '--repair')
    assert.equal(r.code, 0)
    assert.deepEqual(r.report.problems, [])
  })
})
