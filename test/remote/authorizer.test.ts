/**
 * The registry client's Authorizer against a token endpoint on loopback: which challenge it
 * follows, how it asks for a token (GET with Basic credentials, POST with a refresh token, or
 * anonymously), the cache per scope set, and the errors when the realm refuses or answers junk.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, test, type TestContext } from 'node:test'
import { hasCode } from '../../src/errors/index.js'
import { Authorizer } from '../../src/remote/auth.js'
import { defaultRemoteConfig } from '../../src/remote/config.js'
import type { Credentials } from '../../src/remote/credentials.js'
import { Transport } from '../../src/remote/http.js'

interface Seen {
  method: string
  url: URL
  authorization: string | undefined
  body: string
}

/** A token endpoint answering `answer()`; every request it saw in `seen`. */
async function tokenServer(t: TestContext, answer: () => { status: number; body: string }): Promise<{ realm: string; seen: Seen[]; transport: Transport }> {
  const seen: Seen[] = []
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: new URL(req.url ?? '/', 'http://x'), authorization: req.headers.authorization, body: Buffer.concat(chunks).toString() })
      const a = answer()
      res.writeHead(a.status, { 'Content-Type': 'application/json' }).end(a.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const transport = new Transport(defaultRemoteConfig(), {})
  t.after(() => transport.close())
  return { realm: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, seen, transport }
}

const creds = (c: Credentials | undefined) => (): Promise<Credentials | undefined> => Promise.resolve(c)

describe('Authorizer', () => {
  test('learns Bearer over Basic, ignores other schemes, and says when the challenge changed', async (t) => {
    const { transport } = await tokenServer(t, () => ({ status: 200, body: '{}' }))
    const a = new Authorizer(transport, creds({ username: 'u', password: 'p' }))
    assert.equal(await a.header(['repository:a:pull']), undefined, 'no challenge yet: anonymous')
    assert.equal(a.learn(undefined), false)
    assert.equal(a.learn('Digest realm="x"'), false)
    assert.equal(a.learn('Basic realm="r"'), true)
    assert.equal(a.learn('Basic realm="r"'), false)
    assert.equal(a.scheme, 'basic')
    assert.equal(await a.header(['repository:a:pull']), `Basic ${Buffer.from('u:p').toString('base64')}`)
    assert.equal(await new Authorizer(transport, creds(undefined)).header([]), undefined)
    assert.equal(a.learn('Basic realm="r", Bearer realm="http://127.0.0.1:1/t"'), true)
    assert.equal(a.scheme, 'bearer')
  })

  test('a bearer token: GET with service, scopes and Basic credentials, cached per scope set until invalidated', async (t) => {
    let n = 0
    const { realm, seen, transport } = await tokenServer(t, () => ({ status: 200, body: JSON.stringify({ token: `t${++n}`, expires_in: 300 }) }))
    const a = new Authorizer(transport, creds({ username: 'u', password: 'p' }))
    a.learn(`Bearer realm="${realm}",service="reg"`)
    assert.equal(await a.header(['repository:b:push', 'repository:b:pull']), 'Bearer t1')
    assert.equal(await a.header(['repository:b:pull,push']), 'Bearer t1', 'the same scopes merged: the cached token')
    assert.equal(seen.length, 1)
    const q = seen[0] as Seen
    assert.equal(q.method, 'GET')
    assert.deepEqual(q.url.searchParams.getAll('scope'), ['repository:b:pull,push'])
    assert.equal(q.url.searchParams.get('service'), 'reg')
    assert.equal(q.url.searchParams.get('account'), 'u')
    assert.equal(q.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`)
    assert.equal(await a.header(['repository:c:pull']), 'Bearer t2', 'other scopes: another token')
    a.invalidate(['repository:b:pull', 'repository:b:push'])
    assert.equal(await a.header(['repository:b:pull,push']), 'Bearer t3')
  })

  test('a refresh token is POSTed as a form; anonymous asks without credentials; access_token is taken too', async (t) => {
    const { realm, seen, transport } = await tokenServer(t, () => ({ status: 200, body: '{"access_token":"at"}' }))
    const c = { scheme: 'bearer', params: { realm, service: 'reg' } }
    const a = new Authorizer(transport, creds(undefined))
    assert.equal((await a.fetchToken(c, ['repository:x:pull'], { username: 'u', password: '', identityToken: 'refresh' })).token, 'at')
    const post = seen[0] as Seen
    assert.equal(post.method, 'POST')
    assert.deepEqual(Object.fromEntries(new URLSearchParams(post.body)), { grant_type: 'refresh_token', refresh_token: 'refresh', client_id: 'cairn', service: 'reg', scope: 'repository:x:pull' })
    await a.fetchToken(c, [], undefined)
    const anon = seen[1] as Seen
    assert.equal(anon.authorization, undefined)
    assert.equal(anon.url.searchParams.get('account'), null)
  })

  test('refusals and junk from the realm, a challenge without a usable realm', async (t) => {
    let answer = { status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"bad"}]}' }
    const { realm, transport } = await tokenServer(t, () => answer)
    const a = new Authorizer(transport, creds(undefined))
    const c = { scheme: 'bearer', params: { realm } }
    const what = `token from ${new URL(realm).origin}/token`
    await assert.rejects(a.fetchToken(c, [], { username: 'u', password: 'p' }), (e: unknown) => hasCode(e, 'UNAUTHORIZED') && (e as Error).message === 'unauthorized: incorrect username or password')
    await assert.rejects(a.fetchToken(c, [], undefined), (e: unknown) => hasCode(e, 'UNAUTHORIZED') && (e as Error).message.startsWith('unauthorized: '))
    answer = { status: 200, body: 'not json' }
    await assert.rejects(a.fetchToken(c, [], undefined), { message: `${what}: the answer is not JSON` })
    answer = { status: 200, body: '{"expires_in":10}' }
    await assert.rejects(a.fetchToken(c, [], undefined), { message: `${what}: the answer holds no token` })
    answer = { status: 500, body: 'oops' }
    await assert.rejects(a.fetchToken(c, [], undefined), (e: unknown) => !hasCode(e, 'UNAUTHORIZED'))
    await assert.rejects(a.fetchToken({ scheme: 'bearer', params: {} }, [], undefined), { message: 'the registry asked for a bearer token but named no realm' })
    await assert.rejects(a.fetchToken({ scheme: 'bearer', params: { realm: 'not a url' } }, [], undefined), { message: 'invalid token realm "not a url"' })
  })
})
