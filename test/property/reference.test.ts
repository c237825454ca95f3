// Properties of the reference grammar: parse/format round trips, familiar names, refusals.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { hasCode } from '../../src/errors/index.js'
import { familiarName, familiarString, formatReference, isTagValid, parseReference, repositoryName, type Reference } from '../../src/oci/reference.js'

const alnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 8 })
const separator = fc.constantFrom('.', '_', '__', '-', '--')
const component = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 2 }))
  .map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''))
const path = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join('/')).filter((p) => p.length <= 255)
const label = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'), minLength: 1, maxLength: 10 })
// a domain Docker takes for a host: a dot, a port, or localhost
const domain = fc.oneof(
  fc.tuple(label, fc.array(label, { minLength: 1, maxLength: 3 })).map(([a, b]) => [a, ...b].join('.')),
  fc.tuple(label, fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
  fc.constant('localhost'),
  fc.constant('[::1]:5000'),
).filter((d) => d !== 'index.docker.io' && d !== 'docker.io')
const tag = fc.tuple(
  fc.constantFrom(...'abcXYZ019_'),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019_.-'), maxLength: 20 }),
).map(([a, b]) => a + b)
const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 })
const digest = hex.map((h) => `sha256:${h}` as const)

const reference = fc.record({
  domain: fc.option(domain, { nil: undefined }),
  path,
  tag: fc.option(tag, { nil: undefined }),
  digest: fc.option(digest, { nil: undefined }),
})

function text(r: { domain: string | undefined; path: string; tag: string | undefined; digest: string | undefined }): string {
  return `${r.domain === undefined ? '' : `${r.domain}/`}${r.path}${r.tag === undefined ? '' : `:${r.tag}`}${r.digest === undefined ? '' : `@${r.digest}`}`
}

describe('reference grammar (properties)', () => {
  it('parses what the grammar makes into its parts, normalised as docker pull does', () => {
    fc.assert(fc.property(reference, (r) => {
      const ref = parseReference(text(r))
      let [want, wantPath] = [r.domain, r.path]
      if (want === undefined) {
        // without a domain, a first component with a dot is taken for one (Docker's rule)
        const slash = r.path.indexOf('/')
        const first = r.path.slice(0, slash)
        // (and one that is not a valid host name, such as a__a.b, leaves the domain empty)
        if (slash > 0 && first.includes('.')) [want, wantPath] = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(first) ? [first, r.path.slice(slash + 1)] : ['', r.path]
        else [want, wantPath] = ['docker.io', slash < 0 ? `library/${r.path}` : r.path]
      }
      assert.equal(ref.domain, want)
      assert.equal(ref.path, wantPath)
      assert.equal(ref.tag, r.tag)
      assert.equal(ref.digest, r.digest)
    }))
  })

  it('formatReference and familiarString parse back to the same reference', () => {
    fc.assert(fc.property(reference, (r) => {
      const ref = parseReference(text(r))
      assert.deepEqual(parseReference(formatReference(ref)), ref)
      assert.deepEqual(parseReference(familiarString(ref)), ref)
      assert.ok(formatReference(ref).startsWith(repositoryName(ref)))
      // a familiar name is never longer than the full one, and says docker.io only by omission
      assert.ok(familiarName(ref).length <= repositoryName(ref).length)
      if (ref.domain === 'docker.io') assert.ok(!familiarName(ref).startsWith('docker.io/'))
    }))
  })

  it('any string either parses to a reference that round-trips or is refused with INVALID_REFERENCE', () => {
    const anyText = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: fc.constantFrom(...'aA0:/@._-[]'), maxLength: 40 }),
      reference.map(text).chain((s) => fc.tuple(fc.nat(s.length), fc.string({ maxLength: 3 })).map(([i, ins]) => s.slice(0, i) + ins + s.slice(i))),
    )
    fc.assert(fc.property(anyText, (s) => {
      let ref: Reference
      try {
        ref = parseReference(s)
      } catch (err) {
        assert.ok(hasCode(err, 'INVALID_REFERENCE'), String(err))
        return
      }
      assert.deepEqual(parseReference(formatReference(ref)), ref)
    }), { numRuns: 2000 })
  })

  it('a tag is accepted in a reference exactly when isTagValid says so', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'aZ9_.-+ '), maxLength: 130 }), (t) => {
      let parsed = true
      try {
        parseReference(`busybox:${t}`)
      } catch (err) {
        assert.ok(hasCode(err, 'INVALID_REFERENCE'))
        parsed = false
      }
      assert.equal(parsed, isTagValid(t))
    }))
  })
})
