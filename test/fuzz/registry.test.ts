// Fuzzing the registry server's request paths, query strings and Range headers over HTTP.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { startRegistry } from '../../src/registry/index.js'
import { fuzzTest } from './helpers.js'

const METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS']

function send(url: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Bytes as a request target: printable ASCII kept, everything else percent-encoded. */
function target(bytes: Buffer): string {
  let s = ''
  for (const b of bytes) s += b > 0x20 && b < 0x7f && b !== 0x23 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`
  return s.startsWith('/') ? s : `/v2/${s}`
}

describe('fuzz: registry request paths', () => {
  it('the server answers every request path, query and Range with a status below 500', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-fuzz-registry-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    const internal: unknown[] = []
    const registry = await startRegistry({ root, host: '127.0.0.1', port: 0, accessLog: () => {}, onError: (err) => internal.push(err) })
    t.after(() => registry.close())
    // something to find: a config blob and a manifest under lib/app:v1
    const config = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}')
    const cd = `sha256:${createHash('sha256').update(config).digest('hex')}`
    assert.equal(await send(registry.url, 'POST', `/v2/lib/app/blobs/uploads/?digest=${cd}`, { 'Content-Type': 'application/octet-stream' }, config), 201)
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length }, layers: [] }))
    assert.equal(await send(registry.url, 'PUT', '/v2/lib/app/manifests/v1', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, manifest), 201)

    // byte 0: method; byte 1: which headers; then the path, and after a newline a header value
    await fuzzTest(t, 'registry', async (data) => {
      const method = METHODS[(data[0] ?? 0) % METHODS.length] ?? 'GET'
      const flags = data[1] ?? 0
      const rest = data.subarray(2)
      const nl = rest.indexOf(0x0a)
      const path = target(nl < 0 ? rest : rest.subarray(0, nl))
      const value = nl < 0 ? '' : rest.subarray(nl + 1).toString('latin1').replace(/[^\x20-\x7e]/g, '')
      const headers: Record<string, string> = {}
      if (flags & 1) headers['Range'] = value
      if (flags & 2) headers['Content-Range'] = value
      if (flags & 4) headers['Content-Type'] = value
      if (flags & 8) headers['Authorization'] = value
      const body = method === 'PUT' || method === 'PATCH' || method === 'POST' ? Buffer.from(value) : undefined
      const status = await send(registry.url, method, path, headers, body)
      if (status >= 500 || internal.length > 0) throw new Error(`${method} ${path} (${JSON.stringify(headers)}): status ${status}; ${String(internal.shift())}`)
    }, {
      seeds: [
        '\x00\x00lib/app/manifests/v1',
        `\x00\x01lib/app/blobs/${cd}\nbytes=0-4`,
        `\x01\x00lib/app/blobs/${cd}`,
        '\x00\x00_catalog?n=1&last=a',
        '\x00\x00lib/app/tags/list?n=0&last=',
        `\x00\x00lib/app/referrers/${cd}?artifactType=a%2Fb`,
        `\x04\x00lib/app/blobs/uploads/?mount=${cd}&from=lib/other`,
        '\x03\x02lib/app/blobs/uploads/abc\n0-3',
        `\x02\x04lib/app/manifests/v2\napplication/vnd.oci.image.manifest.v1+json`,
        '\x05\x00lib/app/manifests/v1',
        '\x00\x08\nBearer abc',
      ],
      dictionary: ['/v2/', 'manifests/', 'blobs/', 'uploads/', 'tags/list', '_catalog', 'referrers/', '?n=', '&last=', '?digest=', '?mount=', '&from=', 'sha256:', cd, '%2F', '%00', '..', '//', 'bytes=', '-', '/healthz', '/metrics', '/token'],
    })
  })
})
