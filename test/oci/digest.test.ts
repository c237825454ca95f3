/** Digests and chain IDs. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { asDiffId, chainIds, digestOf, isDigest, parseDigest, HashingStream, VerifyingStream } from '../../src/oci/digest.js'
import { hasCode } from '../../src/errors/index.js'

const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() })

test('parseDigest accepts sha256 and sha512 and refuses everything else clearly', () => {
  const hex = 'a'.repeat(64)
  assert.deepEqual(parseDigest(`sha256:${hex}`), { algorithm: 'sha256', hex })
  assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm, 'sha512')
  for (const bad of ['', 'sha256', `sha256:${'a'.repeat(63)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'g'.repeat(64)}`, `:${hex}`, `sha256:${hex}\n`]) {
    assert.throws(() => parseDigest(bad), (e) => hasCode(e, 'DIGEST_INVALID'), JSON.stringify(bad))
  }
  assert.throws(() => parseDigest(`md5:${'a'.repeat(32)}`), (e) => hasCode(e, 'UNSUPPORTED'))
  assert.throws(() => parseDigest(`constructor:${hex}`), (e) => hasCode(e, 'UNSUPPORTED'))
  assert.equal(isDigest(`sha256:${hex}`), true)
  assert.equal(isDigest('latest'), false)
})

test('chain IDs follow the OCI definition: the first is the diffID, then sha256(parent + " " + diffID)', () => {
  const a = asDiffId(digestOf('layer a'))
  const b = asDiffId(digestOf('layer b'))
  const c = asDiffId(digestOf('layer c'))
  const ids = chainIds([a, b, c])
  assert.equal(ids[0], a)
  const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`
  assert.equal(ids[1], ab)
  assert.equal(ids[2], `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`)
  assert.deepEqual(chainIds([]), [])
  // the same layer on another base has another chain ID
  assert.notEqual(chainIds([c, b])[1], ids[1])
})

test('HashingStream hashes and counts what flows through; VerifyingStream refuses a mismatch', async () => {
  const data = [Buffer.from('hello '), Buffer.from('world')]
  const h = new HashingStream()
  await pipeline(Readable.from(data), h, sink())
  assert.equal(h.digest, digestOf('hello world'))
  assert.equal(h.size, 11)
  await pipeline(Readable.from(data), new VerifyingStream(digestOf('hello world'), 11), sink())
  await assert.rejects(pipeline(Readable.from(data), new VerifyingStream(digestOf('hello'), 11), sink()), (e) => hasCode(e, 'DIGEST_INVALID'))
  await assert.rejects(pipeline(Readable.from(data), new VerifyingStream(digestOf('hello world'), 5), sink()), (e) => hasCode(e, 'SIZE_INVALID'))
  await assert.rejects(pipeline(Readable.from(data), new VerifyingStream(digestOf('hello world'), 20), sink()), (e) => hasCode(e, 'SIZE_INVALID'))
})
