/**
 * The four kinds of digest are not interchangeable: every `@ts-expect-error` line below must fail
 * to compile (tsc checks them in `npm run build`; an unused one is itself an error), and the
 * named constructors are the way from one kind, or from a string, to another.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  asChainId, asDiffId, asDigest, asImageId, chainId, chainIds, digestOf,
  type ChainId, type DiffId, type Digest, type ImageId,
} from '../../src/oci/digest.js'
import { hasCode } from '../../src/errors/index.js'

const blob = (_d: Digest): void => undefined
const layer = (_d: DiffId): void => undefined
const stack = (_d: ChainId): void => undefined
const image = (_d: ImageId): void => undefined

test('a blob digest, a diffID, a chain ID and an image ID are four types', () => {
  const d: Digest = digestOf('bytes')
  const diffId: DiffId = asDiffId(d)
  const chain: ChainId = chainIds([diffId])[0] ?? asChainId(d)
  const id: ImageId = asImageId(d)

  blob(d)
  layer(diffId)
  stack(chain)
  image(id)

  // @ts-expect-error a diffID is not a blob digest
  blob(diffId)
  // @ts-expect-error a blob digest is not a diffID
  layer(d)
  // @ts-expect-error a chain ID is not a diffID
  layer(chain)
  // @ts-expect-error a diffID is not a chain ID (even the bottom one, which has the same text)
  stack(diffId)
  // @ts-expect-error an image ID is not a blob digest (it is the config's, but named apart)
  blob(id)
  // @ts-expect-error a config's digest is not an image ID
  image(d)
  // @ts-expect-error a chain ID is not an image ID
  image(chain)
  // @ts-expect-error a plain string is none of them
  blob('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  // @ts-expect-error chain IDs are made of diffIDs, not blob digests
  chainId([d])

  // each is still its text
  assert.equal(diffId, d)
  assert.equal(id, d)
  assert.equal(chain, d)
  assert.equal(`${id}`.startsWith('sha256:'), true)
})

test('the constructors check what they are given', () => {
  for (const make of [asDigest, asDiffId, asChainId, asImageId]) {
    assert.throws(() => make('sha256:nope'), (e) => hasCode(e, 'DIGEST_INVALID'))
    assert.throws(() => make(`md5:${'a'.repeat(32)}`), (e) => hasCode(e, 'UNSUPPORTED'))
    assert.equal(make(`sha256:${'a'.repeat(64)}`), `sha256:${'a'.repeat(64)}`)
  }
})
