/**
 * Checks that a registry root is consistent: every blob's bytes hash to its name; every tag names a
 * revision whose manifest and referenced blobs exist and are served; what a client was told was
 * stored (a 201) is still there.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { references } from '../../src/registry/index.js'
import { request } from './helpers.js'

export async function checkBlobFiles(root: string): Promise<number> {
  let n = 0
  for (const alg of ['sha256', 'sha512'] as const) {
    const dir = `${root}/blobs/${alg}`
    for (const hex of await readdir(dir).catch(() => [] as string[])) {
      const h = createHash(alg)
      for await (const chunk of createReadStream(`${dir}/${hex}`)) h.update(chunk as Buffer)
      assert.equal(h.digest('hex'), hex, `blobs/${alg}/${hex} holds other bytes than its name says`)
      n++
    }
  }
  return n
}

/** Every tag of every repository pulls completely, with verified bytes. Returns the number of tags. */
export async function checkPullable(url: string, headers: Record<string, string> = {}): Promise<number> {
  const repos = (await request(url, 'GET', '/v2/_catalog', { headers })).json<{ repositories: string[] }>().repositories
  let tags = 0
  for (const repo of repos) {
    const list = await request(url, 'GET', `/v2/${repo}/tags/list`, { headers })
    for (const tag of list.json<{ tags: string[] }>().tags) {
      tags++
      await checkManifest(url, repo, tag, headers)
    }
  }
  return tags
}

export async function checkManifest(url: string, repo: string, ref: string, headers: Record<string, string> = {}): Promise<void> {
  const m = await request(url, 'GET', `/v2/${repo}/manifests/${ref}`, { headers })
  assert.equal(m.status, 200, `${repo}:${ref} → ${m.status} ${m.text()}`)
  const digest = m.headers.get('docker-content-digest') ?? ''
  const malg = digest.split(':')[0] as string
  assert.equal(`${malg}:${createHash(malg).update(m.body).digest('hex')}`, digest, `${repo}:${ref} served with other bytes than its digest`)
  const doc = JSON.parse(m.body.toString()) as { manifests?: unknown }
  for (const d of references(m.body)) {
    if (Array.isArray(doc.manifests)) {
      await checkManifest(url, repo, d, headers)
      continue
    }
    const b = await request(url, 'GET', `/v2/${repo}/blobs/${d}`, { headers })
    assert.equal(b.status, 200, `${repo}:${ref} references ${d}, which answers ${b.status}`)
    const alg = d.split(':')[0] as string
    assert.equal(`${alg}:${createHash(alg).update(b.body).digest('hex')}`, d, `${d} served with other bytes`)
  }
}
