/**
 * The registry API beyond the conformance suite, against `startRegistry` in-process: ranges, sha512,
 * verification before visibility, bounded bodies, repository isolation, pagination, indexes, errors for
 * bad input (never a 500), read-only mode, rate limiting, health, metrics, access log, graceful shutdown.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { readdir } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { startRegistry, type AccessLogEntry, type RunningRegistry } from '../../src/registry/index.js'
import { tempDir } from '../helpers/cairn.js'
import { pushBlob, pushImage, request, sha256, sha512, tinyImage } from './helpers.js'

type Errors = { errors: { code: string; message: string; detail?: { digest?: string } }[] }
const codeOf = (body: Buffer): string | undefined => (JSON.parse(body.toString()) as Errors).errors[0]?.code

describe('registry API', () => {
  let reg: RunningRegistry
  let cleanup: () => Promise<void>
  let root: string
  const log: AccessLogEntry[] = []
  const internal: unknown[] = []
  const go = (method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer | string } = {}) => request(reg.url, method, path, opts)

  before(async () => {
    const t = await tempDir('cairn-registry-api-')
    cleanup = t.cleanup
    root = t.dir
    reg = await startRegistry({ root, port: 0, accessLog: (e) => log.push(e), onError: (e) => internal.push(e), manifestLimit: 64 << 10 })
  })
  after(async () => {
    await reg.close()
    await cleanup()
    assert.deepEqual(internal, [], 'no request was the server\'s fault')
  })

  it('serves byte ranges of a blob, and 416 for a range past its end', async () => {
    const data = randomBytes(1000)
    const d = await pushBlob(reg.url, 'ranges/app', data)
    const get = async (range: string) => go('GET', `/v2/ranges/app/blobs/${d}`, { headers: { Range: range } })
    let r = await get('bytes=0-0')
    assert.equal(r.status, 206)
    assert.equal(r.headers.get('content-range'), 'bytes 0-0/1000')
    assert.deepEqual(r.body, data.subarray(0, 1))
    r = await get('bytes=990-')
    assert.deepEqual(r.body, data.subarray(990))
    r = await get('bytes=-10')
    assert.deepEqual(r.body, data.subarray(990))
    r = await get('bytes=100-199')
    assert.equal(r.headers.get('content-length'), '100')
    assert.deepEqual(r.body, data.subarray(100, 200))
    r = await get('bytes=1000-1001')
    assert.equal(r.status, 416)
    assert.equal(r.headers.get('content-range'), 'bytes */1000')
    const head = await go('HEAD', `/v2/ranges/app/blobs/${d}`)
    assert.equal(head.headers.get('accept-ranges'), 'bytes')
    assert.equal(head.headers.get('etag'), `"${d}"`)
    const cached = await go('GET', `/v2/ranges/app/blobs/${d}`, { headers: { 'If-None-Match': `"${d}"` } })
    assert.equal(cached.status, 304)
  })

  it('stores and serves sha512 blobs and manifests', async () => {
    const data = randomBytes(3000)
    const d = sha512(data)
    const start = await go('POST', '/v2/sha/app/blobs/uploads/')
    const loc = start.headers.get('location') ?? ''
    assert.equal((await go('PATCH', loc, { headers: { 'Content-Range': '0-999' }, body: data.subarray(0, 1000) })).status, 202)
    const put = await go('PUT', `${loc}?digest=${d}`, { headers: { 'Content-Range': '1000-2999' }, body: data.subarray(1000) })
    assert.equal(put.status, 201, put.text())
    assert.equal(put.headers.get('docker-content-digest'), d)
    const got = await go('GET', `/v2/sha/app/blobs/${d}`)
    assert.deepEqual(got.body, data)
    // a manifest addressed by its sha512
    const img = tinyImage()
    await pushBlob(reg.url, 'sha/app', img.config)
    await pushBlob(reg.url, 'sha/app', img.layer)
    const md = sha512(img.manifest)
    const r = await go('PUT', `/v2/sha/app/manifests/${md}`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
    assert.equal(r.status, 201, r.text())
    assert.equal(r.headers.get('docker-content-digest'), md)
    assert.deepEqual((await go('GET', `/v2/sha/app/manifests/${md}`)).body, img.manifest)
    // the body must match the digest it is put under
    const wrong = await go('PUT', `/v2/sha/app/manifests/${sha512('x')}`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
    assert.equal(wrong.status, 400)
    assert.equal(codeOf(wrong.body), 'DIGEST_INVALID')
  })

  it('never makes visible a blob whose digest or size is wrong', async () => {
    const data = randomBytes(500)
    const start = await go('POST', '/v2/verify/app/blobs/uploads/')
    const loc = start.headers.get('location') ?? ''
    const bad = sha256('something else')
    const r = await go('PUT', `${loc}?digest=${bad}`, { body: data })
    assert.equal(r.status, 400)
    assert.equal(codeOf(r.body), 'DIGEST_INVALID')
    assert.equal((await go('HEAD', `/v2/verify/app/blobs/${bad}`)).status, 404)
    assert.equal((await go('HEAD', `/v2/verify/app/blobs/${sha256(data)}`)).status, 404)
    assert.equal((await go('GET', loc)).status, 404, 'the failed session is gone')
    // monolithic POST with a wrong digest
    const p = await go('POST', `/v2/verify/app/blobs/uploads/?digest=${bad}`, { body: data })
    assert.equal(p.status, 400)
    // PUT without a digest
    const s2 = await go('POST', '/v2/verify/app/blobs/uploads/')
    const nodigest = await go('PUT', s2.headers.get('location') ?? '', { body: data })
    assert.equal(nodigest.status, 400)
    assert.equal(codeOf(nodigest.body), 'DIGEST_INVALID')
    // a chunk whose Content-Range disagrees with its length is refused before anything is written
    const s3 = await go('POST', '/v2/verify/app/blobs/uploads/')
    const mismatch = await go('PATCH', s3.headers.get('location') ?? '', { headers: { 'Content-Range': '0-9' }, body: randomBytes(5) })
    assert.equal(mismatch.status, 416)
    assert.equal(mismatch.headers.get('range'), '0-0')
    // nothing half-written reached blobs/
    const names = await readdir(`${root}/blobs/sha256`)
    for (const n of names) assert.match(n, /^[a-f0-9]{64}$/)
  })

  it('bounds manifests (413) and refuses manifests with missing or mis-sized blobs', async () => {
    const big = Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [], pad: 'x'.repeat(70 << 10) }))
    let r = await go('PUT', '/v2/limits/app/manifests/big', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: big })
    assert.equal(r.status, 413)
    assert.equal(codeOf(r.body), 'SIZE_INVALID')
    const img = tinyImage()
    await pushBlob(reg.url, 'limits/app', img.config)
    r = await go('PUT', '/v2/limits/app/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
    assert.equal(r.status, 400)
    const e = r.json<Errors>().errors[0]
    assert.equal(e?.code, 'MANIFEST_BLOB_UNKNOWN')
    assert.equal(e?.detail?.digest, sha256(img.layer))
    assert.equal((await go('GET', '/v2/limits/app/manifests/v1')).status, 404)
    // a layer pushed to another repository does not count here
    await pushBlob(reg.url, 'limits/other', img.layer)
    r = await go('PUT', '/v2/limits/app/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
    assert.equal(codeOf(r.body), 'MANIFEST_BLOB_UNKNOWN')
    // wrong size
    await pushBlob(reg.url, 'limits/app', img.layer)
    const m = JSON.parse(img.manifest.toString()) as { layers: { size: number }[] }
    ;(m.layers[0] as { size: number }).size += 1
    r = await go('PUT', '/v2/limits/app/manifests/v1', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: JSON.stringify(m) })
    assert.equal(codeOf(r.body), 'MANIFEST_INVALID')
    for (const body of ['not json', '[]', '{"schemaVersion":1}', '{"schemaVersion":2}', '{"schemaVersion":2,"config":{"digest":"sha256:x","size":1,"mediaType":"a/b"},"layers":[]}']) {
      r = await go('PUT', '/v2/limits/app/manifests/v2', { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body })
      assert.equal(r.status, 400, body)
      assert.equal(codeOf(r.body), 'MANIFEST_INVALID', body)
    }
    // mediaType and Content-Type must agree
    r = await go('PUT', '/v2/limits/app/manifests/v3', { headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: img.manifest })
    assert.equal(codeOf(r.body), 'MANIFEST_INVALID')
  })

  it('keeps repositories apart: a blob is readable only where it was pushed or mounted', async () => {
    const d = await pushBlob(reg.url, 'iso/a', randomBytes(64))
    assert.equal((await go('HEAD', `/v2/iso/a/blobs/${d}`)).status, 200)
    assert.equal((await go('HEAD', `/v2/iso/b/blobs/${d}`)).status, 404)
    assert.equal((await go('GET', `/v2/iso/b/blobs/${d}`)).status, 404)
    // an upload session started in one repository cannot be used through another
    const s = await go('POST', '/v2/iso/a/blobs/uploads/')
    const id = (s.headers.get('location') ?? '').split('/').pop() ?? ''
    const r = await go('PATCH', `/v2/iso/b/blobs/uploads/${id}`, { body: 'x' })
    assert.equal(r.status, 404)
    assert.equal(codeOf(r.body), 'BLOB_UPLOAD_UNKNOWN')
    // mount makes it readable in b
    const m = await go('POST', `/v2/iso/b/blobs/uploads/?mount=${d}&from=iso/a`)
    assert.equal(m.status, 201)
    assert.equal((await go('HEAD', `/v2/iso/b/blobs/${d}`)).status, 200)
    // cancel
    assert.equal((await go('DELETE', `/v2/iso/a/blobs/uploads/${id}`)).status, 204)
    assert.equal((await go('GET', `/v2/iso/a/blobs/uploads/${id}`)).status, 404)
  })

  it('paginates the catalog and tags in lexical order with Link headers', async () => {
    for (const name of ['page/c', 'page/a', 'page/b/x', 'page/b']) await pushImage(reg.url, name, 'v1')
    const cat = (await go('GET', '/v2/_catalog')).json<{ repositories: string[] }>().repositories
    const pages = cat.filter((r) => r.startsWith('page/'))
    assert.deepEqual(pages, ['page/a', 'page/b', 'page/b/x', 'page/c'])
    let r = await go('GET', '/v2/_catalog?n=2')
    assert.equal(r.json<{ repositories: string[] }>().repositories.length, 2)
    const link = r.headers.get('link') ?? ''
    assert.match(link, /^<\/v2\/_catalog\?n=2&last=[^>]+>; rel="next"$/)
    const collected: string[] = []
    let next: string | undefined = '/v2/_catalog?n=3'
    while (next !== undefined) {
      r = await go('GET', next)
      collected.push(...r.json<{ repositories: string[] }>().repositories)
      next = /<([^>]+)>/.exec(r.headers.get('link') ?? '')?.[1]
    }
    assert.deepEqual(collected, cat)
    const img = await pushImage(reg.url, 'page/tags', 'v10')
    for (const t of ['v2', 'latest', 'V1', 'v1.0', 'a_b']) {
      const put = await go('PUT', `/v2/page/tags/manifests/${t}`, { headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest })
      assert.equal(put.status, 201)
    }
    const all = (await go('GET', '/v2/page/tags/tags/list')).json<{ tags: string[] }>().tags
    assert.deepEqual(all, ['V1', 'a_b', 'latest', 'v1.0', 'v10', 'v2'])
    r = await go('GET', '/v2/page/tags/tags/list?n=2&last=latest')
    assert.deepEqual(r.json<{ tags: string[] }>().tags, ['v1.0', 'v10'])
    r = await go('GET', '/v2/page/tags/tags/list?n=0')
    assert.deepEqual(r.json<{ tags: string[] }>().tags, [])
    assert.equal((await go('GET', '/v2/page/tags/tags/list?n=-1')).status, 400)
    assert.equal((await go('GET', '/v2/page/tags/tags/list?n=abc')).status, 400)
    const unknown = await go('GET', '/v2/no/such/repo/tags/list')
    assert.equal(unknown.status, 404)
    assert.equal(codeOf(unknown.body), 'NAME_UNKNOWN')
  })

  it('accepts indexes (OCI and Docker manifest lists) whose entries are present, refuses the others', async () => {
    const a = await pushImage(reg.url, 'multi/app', 'amd64')
    const b = await pushImage(reg.url, 'multi/app', 'arm64')
    for (const mediaType of ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']) {
      const entries = [a, b].map((x, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: x.digest, size: x.manifest.length, platform: { os: 'linux', architecture: i ? 'arm64' : 'amd64' } }))
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }))
      const r = await go('PUT', '/v2/multi/app/manifests/latest', { headers: { 'Content-Type': mediaType }, body: index })
      assert.equal(r.status, 201, r.text())
      const got = await go('GET', '/v2/multi/app/manifests/latest')
      assert.equal(got.headers.get('content-type'), mediaType)
      assert.deepEqual(got.body, index)
    }
    const missing = tinyImage()
    const index = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: missing.digest, size: missing.manifest.length }] })
    const r = await go('PUT', '/v2/multi/app/manifests/broken', { headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: index })
    assert.equal(r.status, 400)
    assert.equal(codeOf(r.body), 'MANIFEST_BLOB_UNKNOWN')
  })

  it('answers bad input with the spec\'s errors, never a 500', async () => {
    const cases: [string, string, number, string?][] = [
      ['GET', '/v2/UPPER/blobs/sha256:' + 'a'.repeat(64), 400, 'NAME_INVALID'],
      ['GET', '/v2/a..b/tags/list', 400, 'NAME_INVALID'],
      ['GET', '/v2/team%2fsecret/tags/list', 400, 'NAME_INVALID'],
      ['GET', '/v2/team//secret/tags/list', 400, 'NAME_INVALID'],
      ['GET', `/v2/${'a'.repeat(300)}/tags/list`, 400, 'NAME_INVALID'],
      ['GET', '/v2/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/app/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/app/blobs/notadigest', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/app/referrers/sha256:zz', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/app/manifests/sha256:totallywrong', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/app/manifests/-bad-tag', 404, 'MANIFEST_UNKNOWN'],
      ['PUT', '/v2/app/manifests/-bad-tag', 400, 'MANIFEST_INVALID'],
      ['GET', '/v2/app/blobs/uploads/not-a-uuid', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['PATCH', '/v2/app/blobs/uploads/00000000-0000-4000-8000-000000000000', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['PUT', '/v2/app/blobs/uploads/00000000-0000-4000-8000-000000000000?digest=sha256:' + 'a'.repeat(64), 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['DELETE', '/v2/app/blobs/sha256:' + 'a'.repeat(64), 404, 'BLOB_UNKNOWN'],
      ['DELETE', '/v2/app/manifests/nosuchtag', 404, 'MANIFEST_UNKNOWN'],
      ['POST', '/v2/app/manifests/x', 405, 'UNSUPPORTED'],
      ['PUT', '/v2/_catalog', 405, 'UNSUPPORTED'],
      ['GET', '/v3/', 404, 'NAME_UNKNOWN'],
      ['GET', '/v2/app/unknown/endpoint', 404, 'NAME_UNKNOWN'],
      ['POST', '/v2/app/blobs/uploads/?digest=sha256:nothex', 400, 'DIGEST_INVALID'],
    ]
    for (const [method, path, status, code] of cases) {
      const r = await go(method, path, method === 'PUT' || method === 'PATCH' || method === 'POST' ? { body: 'x' } : {})
      assert.equal(r.status, status, `${method} ${path}: ${r.text()}`)
      if (code !== undefined) assert.equal(codeOf(r.body), code, `${method} ${path}`)
    }
    // raw requests: fetch would normalise the dot segments away before sending them
    for (const raw of ['GET /v2/team/../secret/tags/list HTTP/1.1', 'GET /v2/team/%2e%2e/secret/tags/list HTTP/1.1', 'GET /v2/..%2f..%2fetc/passwd HTTP/1.1',
      'GET /v2/team/./app/tags/list HTTP/1.1', 'GET /v2/app/blobs/sha256:%00 HTTP/1.1', 'GET /v2/%ZZ/tags/list HTTP/1.1', 'GET /v2/app\\..\\x/tags/list HTTP/1.1']) {
      const status = await rawStatus(reg.port, raw)
      assert.equal(status, 400, raw)
    }
  })

  it('logs every request as a JSON line with status, route, bytes and duration', async () => {
    const before = log.length
    await go('GET', '/v2/')
    const e = log.slice(before).find((x) => x.path === '/v2/')
    assert.ok(e)
    assert.equal(e.status, 200)
    assert.equal(e.route, 'ping')
    assert.equal(e.remote, '127.0.0.1')
    assert.ok(e.durationMs >= 0)
    assert.match(e.requestId, /^[0-9a-f]{16}$/)
  })

  it('serves /healthz and Prometheus /metrics', async () => {
    const h = await go('GET', '/healthz')
    assert.equal(h.status, 200)
    assert.equal(h.json<{ status: string }>().status, 'ok')
    const m = await go('GET', '/metrics')
    assert.equal(m.status, 200)
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = m.text()
    assert.match(text, /^# TYPE cairn_registry_http_requests_total counter$/m)
    assert.match(text, /^cairn_registry_http_requests_total\{method="GET",route="ping",status="200"\} \d+$/m)
    assert.match(text, /^cairn_registry_blobs_pushed_total \d+$/m)
    assert.match(text, /^cairn_registry_http_request_duration_seconds_bucket\{method="GET",route="blob",le="\+Inf"\} \d+$/m)
  })
})

describe('registry modes', () => {
  it('read-only mode serves pulls and refuses every write with 405 UNSUPPORTED', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-ro-')
    t.after(cleanup)
    const rw = await startRegistry({ root: dir, port: 0 })
    const img = await pushImage(rw.url, 'ro/app', 'v1')
    await rw.close()
    const ro = await startRegistry({ root: dir, port: 0, readOnly: true })
    t.after(() => ro.close())
    assert.deepEqual((await request(ro.url, 'GET', '/v2/ro/app/manifests/v1')).body, img.manifest)
    for (const [method, path] of [['POST', '/v2/ro/app/blobs/uploads/'], ['PUT', '/v2/ro/app/manifests/v2'], ['DELETE', `/v2/ro/app/manifests/${img.digest}`], ['DELETE', `/v2/ro/app/blobs/${sha256(img.layer)}`]] as const) {
      const r = await request(ro.url, method, path, method === 'PUT' ? { body: img.manifest } : {})
      assert.equal(r.status, 405, `${method} ${path}`)
      assert.equal(codeOf(r.body), 'UNSUPPORTED')
    }
  })

  it('rate-limits each client with 429 TOOMANYREQUESTS and Retry-After', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-rl-')
    t.after(cleanup)
    const reg = await startRegistry({ root: dir, port: 0, rateLimit: { rate: 1, burst: 5 } })
    t.after(() => reg.close())
    const responses = []
    for (let i = 0; i < 8; i++) responses.push(await request(reg.url, 'GET', '/v2/'))
    assert.deepEqual(responses.slice(0, 5).map((r) => r.status), [200, 200, 200, 200, 200], 'the burst passes')
    const limited = responses.slice(5).find((r) => r.status === 429)
    assert.ok(limited, 'beyond the burst, faster than the rate: 429')
    assert.equal(codeOf(limited.body), 'TOOMANYREQUESTS')
    assert.ok(Number(limited.headers.get('retry-after')) >= 1)
    assert.equal((await request(reg.url, 'GET', '/healthz')).status, 200, 'health checks are not limited')
  })

  it('shuts down gracefully: a request in flight finishes, new connections are refused', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-shutdown-')
    t.after(cleanup)
    const reg = await startRegistry({ root: dir, port: 0 })
    const start = await request(reg.url, 'POST', '/v2/slow/app/blobs/uploads/')
    const loc = start.headers.get('location') ?? ''
    const data = randomBytes(64 << 10)
    // a PATCH whose body trickles in
    const inflight = new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${reg.url}${loc}`, { method: 'PATCH', headers: { 'Content-Length': String(data.length) } }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.write(data.subarray(0, 1024))
      setTimeout(() => req.end(data.subarray(1024)), 300)
    })
    await new Promise((r) => setTimeout(r, 100))
    const closing = reg.close()
    await new Promise((r) => setTimeout(r, 50))
    await assert.rejects(request(reg.url, 'GET', '/v2/'), 'no new connections while draining')
    assert.equal(await inflight, 202)
    await closing
  })

  it('shutdown does not wait on a client that already went away', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-gone-')
    t.after(cleanup)
    const reg = await startRegistry({ root: dir, port: 0, shutdownTimeoutMs: 30_000 })
    const start = await request(reg.url, 'POST', '/v2/gone/app/blobs/uploads/')
    const loc = start.headers.get('location') ?? ''
    // a PATCH that promises 1 MiB, sends 1 KiB, and whose client then vanishes; and a GET left half-read
    const { connect } = await import('node:net')
    const patch = connect(reg.port, '127.0.0.1')
    await new Promise((r) => patch.once('connect', r))
    patch.write(`PATCH ${loc} HTTP/1.1\r\nHost: x\r\nContent-Length: ${1 << 20}\r\n\r\n`)
    patch.write(randomBytes(1024))
    // a streamed upload (chunked, as cairn push sends a layer it compresses on the way)
    const start2 = await request(reg.url, 'POST', '/v2/gone/app/blobs/uploads/')
    const chunked = connect(reg.port, '127.0.0.1')
    await new Promise((r) => chunked.once('connect', r))
    chunked.write(`PATCH ${start2.headers.get('location') ?? ''} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n`)
    chunked.write(randomBytes(1024))
    chunked.write('\r\n')
    await new Promise((r) => setTimeout(r, 100))
    patch.destroy()
    chunked.destroy()
    await new Promise((r) => setTimeout(r, 100))
    const t0 = Date.now()
    await reg.close()
    assert.ok(Date.now() - t0 < 5000, `close took ${Date.now() - t0} ms`)
  })
})

function rawStatus(port: number, line: string): Promise<number> {
  return new Promise((resolve, reject) => {
    import('node:net').then(({ connect }) => {
      const s = connect(port, '127.0.0.1', () => s.write(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`))
      let buf = ''
      s.on('data', (b: Buffer) => {
        buf += b.toString()
      })
      s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(buf)?.[1] ?? 0)))
      s.on('error', reject)
    }, reject)
  })
}
