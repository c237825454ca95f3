// Fuzzing the client's reading of WWW-Authenticate challenges, and of the token endpoint's answer.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { Authorizer, parseChallenges } from '../../src/remote/auth.js'
import { defaultRemoteConfig } from '../../src/remote/config.js'
import { Transport } from '../../src/remote/http.js'
import { fuzzTest } from './helpers.js'

describe('fuzz: WWW-Authenticate', () => {
  it('challenges parse, and a bearer challenge gets its token, or a CairnError, never a crash', async (t) => {
    // the token endpoint (on loopback only) answers with what the input says after its first newline
    let answer: Buffer = Buffer.alloc(0)
    const server = createServer((req, res) => {
      res.writeHead(answer[0] === 0x34 ? 401 : 200, { 'Content-Type': 'application/json' })
      res.end(answer)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
    // loopback is always plain HTTP; no proxy (an empty environment)
    const transport = new Transport(defaultRemoteConfig(), {})
    t.after(() => transport.close())
    await fuzzTest(t, 'auth', async (data) => {
      const text = data.toString('latin1')
      const cut = text.indexOf('\n')
      const header = cut < 0 ? text : text.slice(0, cut)
      answer = cut < 0 ? Buffer.from('{"token":"t"}') : data.subarray(cut + 1)
      const challenges = parseChallenges(header)
      for (const c of challenges) {
        assert.match(c.scheme, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/)
        for (const [k, v] of Object.entries(c.params)) assert.equal(typeof v, 'string', k)
      }
      const auth = new Authorizer(transport, () => Promise.resolve({ username: 'u', password: 'p' }))
      auth.learn(header)
      const bearer = challenges.find((c) => c.scheme === 'bearer')
      // only ever the loopback endpoint: the challenge's realm is replaced, its other parameters kept
      if (bearer) await auth.fetchToken({ scheme: 'bearer', params: { ...bearer.params, realm } }, ['repository:a/b:pull'], { username: 'u', password: 'p' })
    }, {
      seeds: [
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"\n{"token":"abc","expires_in":300}',
        'Basic realm="Registry Realm", Bearer realm=x, error="invalid_token"\n{"access_token":"x"}',
        'Bearer realm="a\\"b",scope="repository:x:pull,push"\n4{"errors":[{"code":"UNAUTHORIZED"}]}',
        // found by this fuzzer: a token answer that is JSON but not an object (a crash until 12-04)
        'Bearer realm="a\\"b",scope="repository:x:pull,push"\nnull',
        'Bearer realm=x\n[{"token":"t"}]',
        'Bearer realm=x\n{"token":5,"access_token":"y","expires_in":"300"}',
      ],
      dictionary: ['Bearer ', 'Basic ', 'realm=', 'service=', 'scope=', '"', '\\', ',', '=', '\n', '{"token":', '"expires_in":', '1e309', 'null'],
    })
  })
})
