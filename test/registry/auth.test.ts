/**
 * Authentication and access rules: htpasswd Basic auth, the token flow (challenge → /token → JWT),
 * forged and foreign tokens, access rules with groups and patterns, and the bypass attempts an attacker
 * would try (path tricks, mounting from a repository they cannot read, another repository's upload
 * session). Also TLS.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createPrivateKey, sign } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import {
  AccessPolicy,
  generateSigningKeyPem,
  Htpasswd,
  htpasswdLine,
  parseScopes,
  privateKeyFromPem,
  startRegistry,
  startTokenServer,
  TokenSigner,
  TokenVerifier,
  type AccessConfig,
  type RunningRegistry,
} from '../../src/registry/index.js'
import { tempDir } from '../helpers/cairn.js'
import { basic, pushBlob, pushImage, request, type Resp } from './helpers.js'

const ACCESS: AccessConfig = {
  groups: { dev: ['alice', 'bob'], ops: ['carol'] },
  rules: [
    { repositories: ['team/*'], groups: ['dev'], actions: ['pull'] },
    { repositories: ['team/*'], users: ['alice'], actions: ['push'] },
    { repositories: ['**'], groups: ['ops'], actions: ['pull', 'push', 'delete'] },
    { repositories: ['public/**'], anonymous: true, actions: ['pull'] },
  ],
}

const codeOf = (r: Resp): string | undefined => r.json<{ errors: { code: string }[] }>().errors[0]?.code

async function writeHtpasswd(path: string): Promise<void> {
  const lines = await Promise.all([['alice', 'apw'], ['bob', 'bpw'], ['carol', 'cpw']].map(([u, p]) => htpasswdLine(u as string, p as string, 4)))
  await writeFile(path, `${lines.join('\n')}\n`)
}

describe('access rules', () => {
  it('grant by user, group and pattern; * stays in one component, ** crosses them', () => {
    const p = new AccessPolicy(ACCESS, true)
    assert.deepEqual([...p.allowed({ user: 'alice' }, 'team/app')].sort(), ['pull', 'push'])
    assert.deepEqual([...p.allowed({ user: 'bob' }, 'team/app')], ['pull'])
    assert.deepEqual([...p.allowed({ user: 'bob' }, 'team/app/sub')], [])
    assert.deepEqual([...p.allowed({ user: 'alice' }, 'other')], [])
    assert.deepEqual([...p.allowed({ user: 'carol' }, 'a/b/c')].sort(), ['delete', 'pull', 'push'])
    assert.deepEqual([...p.allowed({}, 'public/x/y')], ['pull'])
    assert.deepEqual([...p.allowed({}, 'team/app')], [])
    assert.deepEqual([...p.allowed({ user: 'mallory' }, 'team/app')], [])
  })

  it('defaults: open without auth; authenticated users only with auth; anonymousPull adds pulls', () => {
    assert.ok(new AccessPolicy({}, false).can({}, 'x', 'delete'))
    assert.ok(!new AccessPolicy({}, true).can({}, 'x', 'pull'))
    assert.ok(new AccessPolicy({}, true).can({ user: 'u' }, 'x', 'delete'))
    const anon = new AccessPolicy({ anonymousPull: true }, true)
    assert.ok(anon.can({}, 'x', 'pull') && !anon.can({}, 'x', 'push'))
  })

  it('parses scopes as token servers do', () => {
    assert.deepEqual(parseScopes(['repository:team/app:pull,push', 'repository:a:pull registry:catalog:*']), [
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ])
    assert.deepEqual(parseScopes(['repository:localhost:5000/x:pull']), [{ type: 'repository', name: 'localhost:5000/x', actions: ['pull'] }])
    assert.deepEqual(parseScopes(['garbage', 'repository::pull']), [])
  })
})

describe('Basic auth (htpasswd) with access rules', () => {
  let reg: RunningRegistry
  let cleanup: () => Promise<void>
  const alice = basic('alice', 'apw')
  const bob = basic('bob', 'bpw')
  const carol = basic('carol', 'cpw')

  before(async () => {
    const t = await tempDir('cairn-registry-basic-')
    cleanup = t.cleanup
    await writeHtpasswd(`${t.dir}/htpasswd`)
    reg = await startRegistry({ root: `${t.dir}/root`, port: 0, htpasswd: await Htpasswd.load(`${t.dir}/htpasswd`), access: ACCESS })
  })
  after(async () => {
    await reg.close()
    await cleanup()
  })

  it('challenges on /v2/ without credentials and with wrong ones', async () => {
    let r = await request(reg.url, 'GET', '/v2/')
    assert.equal(r.status, 401)
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="Cairn Registry"')
    assert.equal(codeOf(r), 'UNAUTHORIZED')
    r = await request(reg.url, 'GET', '/v2/', { headers: basic('alice', 'wrong') })
    assert.equal(r.status, 401)
    r = await request(reg.url, 'GET', '/v2/', { headers: basic('nobody', 'apw') })
    assert.equal(r.status, 401)
    r = await request(reg.url, 'GET', '/v2/', { headers: { Authorization: 'Basic !!!' } })
    assert.equal(r.status, 401)
    assert.equal((await request(reg.url, 'GET', '/v2/', { headers: alice })).status, 200)
  })

  it('lets alice push team/*, bob only pull it (denied), and nobody anonymous', async () => {
    const img = await pushImage(reg.url, 'team/app', 'v1', undefined, alice)
    assert.deepEqual((await request(reg.url, 'GET', '/v2/team/app/manifests/v1', { headers: bob })).body, img.manifest)
    const denied = await request(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: bob })
    assert.equal(denied.status, 403)
    assert.equal(codeOf(denied), 'DENIED')
    const anon = await request(reg.url, 'GET', '/v2/team/app/manifests/v1')
    assert.equal(anon.status, 401)
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic /)
    // alice may not delete, carol may
    assert.equal((await request(reg.url, 'DELETE', '/v2/team/app/manifests/v1', { headers: alice })).status, 403)
    assert.equal((await request(reg.url, 'DELETE', '/v2/team/app/manifests/v1', { headers: carol })).status, 202)
    // anonymous pulls of public/**
    await pushImage(reg.url, 'public/tools/x', 'v1', undefined, carol)
    assert.equal((await request(reg.url, 'GET', '/v2/public/tools/x/manifests/v1')).status, 200)
    assert.equal((await request(reg.url, 'POST', '/v2/public/tools/x/blobs/uploads/')).status, 401)
  })

  it('filters the catalog by what the user may pull', async () => {
    await pushImage(reg.url, 'secret/stuff', 'v1', undefined, carol)
    const cat = (await request(reg.url, 'GET', '/v2/_catalog', { headers: bob })).json<{ repositories: string[] }>().repositories
    assert.ok(cat.includes('team/app'))
    assert.ok(!cat.includes('secret/stuff'))
  })

  it('refuses bypass attempts: mount from an unreadable repository, another repository\'s session, path tricks', async () => {
    const d = await pushBlob(reg.url, 'secret/stuff', Buffer.from('top secret'), carol)
    // alice can push team/app but cannot read secret/stuff: the mount falls back to an upload (202), nothing leaks
    const m = await request(reg.url, 'POST', `/v2/team/app/blobs/uploads/?mount=${d}&from=secret/stuff`, { headers: alice })
    assert.equal(m.status, 202)
    assert.equal((await request(reg.url, 'HEAD', `/v2/team/app/blobs/${d}`, { headers: alice })).status, 404)
    // carol's session in secret/stuff, driven through team/app where alice may push
    const s = await request(reg.url, 'POST', '/v2/secret/stuff/blobs/uploads/', { headers: carol })
    const id = (s.headers.get('location') ?? '').split('/').pop() ?? ''
    const hijack = await request(reg.url, 'PATCH', `/v2/team/app/blobs/uploads/${id}`, { headers: alice, body: 'x' })
    assert.equal(hijack.status, 404)
    assert.equal(codeOf(hijack), 'BLOB_UPLOAD_UNKNOWN')
    // encoded separators never reach the routing
    for (const path of [`/v2/team%2F..%2Fsecret%2Fstuff/blobs/${d}`, `/v2/team/app%2f..%2f..%2fsecret/stuff/blobs/${d}`, `/v2/team/%2e%2e%2fsecret/stuff/blobs/${d}`]) {
      const r = await request(reg.url, 'GET', path, { headers: alice })
      assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`)
      assert.notEqual(r.status, 200)
    }
  })
})

describe('token auth', () => {
  let reg: RunningRegistry
  let cleanup: () => Promise<void>
  let signer: TokenSigner

  before(async () => {
    const t = await tempDir('cairn-registry-token-')
    cleanup = t.cleanup
    await writeHtpasswd(`${t.dir}/htpasswd`)
    signer = new TokenSigner(privateKeyFromPem(generateSigningKeyPem('ec')), 'test-issuer')
    reg = await startRegistry({
      root: `${t.dir}/root`,
      port: 0,
      htpasswd: await Htpasswd.load(`${t.dir}/htpasswd`),
      access: ACCESS,
      token: { service: 'test-registry', issuer: 'test-issuer', publicKey: signer.publicKey, signer },
    })
  })
  after(async () => {
    await reg.close()
    await cleanup()
  })

  const token = async (scope: string, creds?: Record<string, string>): Promise<string> => {
    const r = await request(reg.url, 'GET', `/token?service=test-registry&scope=${encodeURIComponent(scope)}`, creds ? { headers: creds } : {})
    assert.equal(r.status, 200, r.text())
    const body = r.json<{ token: string; access_token: string; expires_in: number; issued_at: string }>()
    assert.equal(body.token, body.access_token)
    assert.equal(body.expires_in, 300)
    return body.token
  }
  const bearer = (t: string): Record<string, string> => ({ Authorization: `Bearer ${t}` })

  it('answers with a Bearer challenge naming realm, service and scope', async () => {
    let r = await request(reg.url, 'GET', '/v2/')
    assert.equal(r.status, 401)
    assert.equal(r.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="test-registry"`)
    r = await request(reg.url, 'POST', '/v2/team/app/blobs/uploads/')
    assert.equal(r.headers.get('www-authenticate'), `Bearer realm="${reg.url}/token",service="test-registry",scope="repository:team/app:pull,push"`)
  })

  it('issues tokens with the granted actions only, and the registry honours them', async () => {
    const t = await token('repository:team/app:pull,push', basic('alice', 'apw'))
    const claims = new TokenVerifier(signer.publicKey, 'test-issuer', 'test-registry').verify(t)
    assert.equal(claims.sub, 'alice')
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }])
    assert.equal((await request(reg.url, 'GET', '/v2/', { headers: bearer(t) })).status, 200)
    await pushImage(reg.url, 'team/app', 'v1', undefined, bearer(t))
    // bob asks for push, gets pull only: the push is refused with insufficient_scope and DENIED
    const tb = await token('repository:team/app:pull,push', basic('bob', 'bpw'))
    assert.deepEqual(new TokenVerifier(signer.publicKey, 'test-issuer', 'test-registry').verify(tb).access[0]?.actions, ['pull'])
    assert.equal((await request(reg.url, 'GET', '/v2/team/app/manifests/v1', { headers: bearer(tb) })).status, 200)
    const denied = await request(reg.url, 'POST', '/v2/team/app/blobs/uploads/', { headers: bearer(tb) })
    assert.equal(denied.status, 401)
    assert.equal(codeOf(denied), 'DENIED')
    assert.match(denied.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/)
    // a token for one repository does not open another
    assert.equal((await request(reg.url, 'GET', '/v2/team/other/tags/list', { headers: bearer(t) })).status, 401)
    // anonymous tokens: only the anonymous rules
    const ta = await token('repository:public/x:pull repository:team/app:pull')
    assert.deepEqual(new TokenVerifier(signer.publicKey, 'test-issuer', 'test-registry').verify(ta).access.map((a) => a.actions), [['pull'], []])
    // wrong password: 401 at the token endpoint
    const bad = await request(reg.url, 'GET', '/token?service=test-registry&scope=repository:team/app:pull', { headers: basic('alice', 'nope') })
    assert.equal(bad.status, 401)
    // the OAuth2 password grant
    const form = await request(reg.url, 'POST', '/token', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=alice&password=apw&service=test-registry&scope=repository%3Ateam%2Fapp%3Apull&client_id=test',
    })
    assert.equal(form.status, 200)
    assert.ok((await request(reg.url, 'GET', '/v2/team/app/tags/list', { headers: bearer(form.json<{ access_token: string }>().access_token) })).status === 200)
  })

  it('refuses forged, foreign, expired and unsigned tokens', async () => {
    const good = await token('repository:team/app:pull', basic('alice', 'apw'))
    const [h, p] = good.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    const elevated = enc({ ...claims, access: [{ type: 'repository', name: 'secret/stuff', actions: ['pull', 'push', 'delete'] }] })
    const other = createPrivateKey(generateSigningKeyPem('ec'))
    const signWith = (header: string, payload: string): string => `${header}.${payload}.${sign('sha256', Buffer.from(`${header}.${payload}`), { key: other, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
    const forged = [
      `${h}.${elevated}.${good.split('.')[2] ?? ''}`, // claims changed, signature kept
      `${enc({ alg: 'none', typ: 'JWT' })}.${elevated}.`, // alg none
      signWith(h, elevated), // signed by another key
      `${enc({ alg: 'HS256', typ: 'JWT' })}.${elevated}.${Buffer.from('x').toString('base64url')}`,
      signer.sign('alice', 'another-service', [{ type: 'repository', name: 'team/app', actions: ['pull'] }], 300).token,
      signer.sign('alice', 'test-registry', [{ type: 'repository', name: 'team/app', actions: ['pull'] }], 300, Date.now() - 3_600_000).token,
      'not.a.token',
      'garbage',
    ]
    for (const t of forged) {
      const r = await request(reg.url, 'GET', '/v2/team/app/tags/list', { headers: bearer(t) })
      assert.equal(r.status, 401, t)
      assert.equal(codeOf(r), 'UNAUTHORIZED', t)
    }
  })

  it('works with a separate token server (cairn registry token-server) and a verifying-only registry', async (t) => {
    const dir = await tempDir('cairn-registry-tokensrv-')
    t.after(dir.cleanup)
    await writeHtpasswd(`${dir.dir}/htpasswd`)
    const key = privateKeyFromPem(generateSigningKeyPem('rsa'))
    const ts = await startTokenServer({ port: 0, signer: new TokenSigner(key, 'iss'), service: 'svc', htpasswd: await Htpasswd.load(`${dir.dir}/htpasswd`), access: ACCESS })
    t.after(() => ts.close())
    const reg2 = await startRegistry({ root: `${dir.dir}/root`, port: 0, token: { service: 'svc', issuer: 'iss', publicKey: new TokenSigner(key, 'iss').publicKey, realm: ts.realm } })
    t.after(() => reg2.close())
    const challenge = await request(reg2.url, 'GET', '/v2/team/app/tags/list')
    assert.match(challenge.headers.get('www-authenticate') ?? '', new RegExp(`^Bearer realm="${ts.realm}",service="svc",scope="repository:team/app:pull"$`))
    const r = await request(ts.url, 'GET', '/token?service=svc&scope=repository:team/app:pull,push', { headers: basic('alice', 'apw') })
    const tok = r.json<{ token: string }>().token
    await pushImage(reg2.url, 'team/app', 'v1', undefined, { Authorization: `Bearer ${tok}` })
    assert.equal((await request(reg2.url, 'GET', '/token')).status, 404, 'the verifying registry issues no tokens')
  })
})

describe('TLS', () => {
  it('serves HTTPS with --tls-cert/--tls-key', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-tls-')
    t.after(cleanup)
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`], { stdio: 'pipe' })
    if (r.status !== 0) {
      t.skip('openssl is not available to make a test certificate')
      return
    }
    const cert = await readFile(`${dir}/cert.pem`)
    const reg = await startRegistry({ root: `${dir}/root`, port: 0, tls: { cert, key: await readFile(`${dir}/key.pem`) } })
    t.after(() => reg.close())
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    const { request: httpsRequest } = await import('node:https')
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpsRequest(`${reg.url}/v2/`, { ca: cert }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(status, 200)
  })
})
