// Properties of the registry's HTTP Range and Content-Range parsing.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parseContentRange, parseRange } from '../../src/registry/index.js'

const size = fc.integer({ min: 1, max: 2 ** 40 })
/** A size and a satisfiable range within it. */
const within = size.chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 })).chain(([m, a]) =>
  fc.tuple(fc.constant(m), fc.constant(a), fc.integer({ min: a, max: m - 1 }))))

describe('HTTP Range parsing (properties)', () => {
  it('bytes=a-b within the blob is exactly [a, b]; an end past it is clamped', () => {
    fc.assert(fc.property(within, fc.nat(1000), ([n, a, b], extra) => {
      assert.deepEqual(parseRange(`bytes=${a}-${b}`, n), { start: a, end: b })
      assert.deepEqual(parseRange(` bytes=${a}-${b + extra} `, n), { start: a, end: Math.min(b + extra, n - 1) })
      assert.deepEqual(parseRange(`bytes=${a}-`, n), { start: a, end: n - 1 })
    }))
  })

  it('bytes=-k is the last k bytes (all of them when k is larger)', () => {
    fc.assert(fc.property(size, fc.integer({ min: 1, max: 2 ** 41 }), (n, k) => {
      assert.deepEqual(parseRange(`bytes=-${k}`, n), { start: Math.max(0, n - k), end: n - 1 })
    }))
  })

  it('a start at or past the end, a reversed range, and an empty blob are unsatisfiable', () => {
    fc.assert(fc.property(size, fc.nat(1000), fc.nat(1000), (n, past, d) => {
      assert.equal(parseRange(`bytes=${n + past}-`, n), undefined)
      assert.equal(parseRange(`bytes=${n + past}-${n + past + d}`, n), undefined)
      if (n > 1) assert.equal(parseRange(`bytes=${n - 1}-${n - 2}`, n), undefined)
      assert.equal(parseRange('bytes=0-', 0), undefined)
      assert.equal(parseRange('bytes=-0', n), undefined)
    }))
  })

  it('whatever the header, the answer is undefined or a range inside the blob', () => {
    const header = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.constantFrom('bytes=', 'bytes =', 'Bytes=', ''), fc.string({ unit: fc.constantFrom(...'0123456789-, '), maxLength: 30 })).map(([a, b]) => a + b),
    )
    fc.assert(fc.property(header, fc.nat(10 ** 6), (h, n) => {
      const r = parseRange(h, n)
      if (r === undefined) return
      assert.ok(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end))
      assert.ok(r.start >= 0 && r.start <= r.end && r.end < n, JSON.stringify({ h, n, r }))
    }), { numRuns: 3000 })
  })

  it('Content-Range reads start-end with or without the bytes prefix and total', () => {
    const n15 = fc.integer({ min: 0, max: 10 ** 15 - 1 })
    fc.assert(fc.property(n15, n15, fc.constantFrom('', 'bytes ', 'bytes='), fc.constantFrom('', '/*', '/12345'), (x, y, pre, post) => {
      const [a, b] = x <= y ? [x, y] : [y, x]
      assert.deepEqual(parseContentRange(`${pre}${a}-${b}${post}`), { start: a, end: b })
      if (a !== b) assert.equal(parseContentRange(`${pre}${b}-${a}${post}`), undefined)
    }))
    fc.assert(fc.property(fc.string({ maxLength: 30 }), (h) => {
      const r = parseContentRange(h)
      if (r !== undefined) assert.ok(r.start >= 0 && r.start <= r.end && Number.isSafeInteger(r.end))
    }), { numRuns: 3000 })
  })
})
