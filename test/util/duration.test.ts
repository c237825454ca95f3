/**
 * Go's durations: the examples of Go's time package documentation and the cases of its own
 * tests (time_test.go's parseDurationTests and durationTests), then a round trip.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { formatDuration, formatDurationMs, parseDurationMs, parseDurationNs } from '../../src/util/duration.js'

const µs = 1e3
const ms = 1e6
const s = 1e9
const m = 60 * s
const h = 60 * m

describe('parseDurationNs (Go time.ParseDuration)', () => {
  const valid: Array<[string, number]> = [
    // the package documentation's examples
    ['10h', 10 * h], ['1h10m10s', h + 10 * m + 10 * s], ['1µs', µs], ['1us', µs], ['300ms', 300 * ms], ['-1.5h', -1.5 * h],
    // Go's own test cases
    ['0', 0], ['5s', 5 * s], ['30s', 30 * s], ['1478s', 1478 * s], ['-5s', -5 * s], ['+5s', 5 * s], ['-0', 0], ['+0', 0],
    ['5.0s', 5 * s], ['5.6s', 5.6 * s], ['5.s', 5 * s], ['.5s', 0.5 * s], ['1.0s', s], ['1.00s', s], ['1.004s', 1.004 * s],
    ['1.0040s', 1.004 * s], ['100.00100s', 100.001 * s], ['10ns', 10], ['11us', 11 * µs], ['12µs', 12 * µs], ['12μs', 12 * µs],
    ['13ms', 13 * ms], ['14s', 14 * s], ['15m', 15 * m], ['16h', 16 * h], ['3h30m', 3 * h + 30 * m], ['10.5s4m', 4 * m + 10.5 * s],
    ['-2m3.4s', -(2 * m + 3.4 * s)], ['1h2m3s4ms5us6ns', h + 2 * m + 3 * s + 4 * ms + 5 * µs + 6], ['39h9m14.425s', 39 * h + 9 * m + 14.425 * s],
    ['52763797000ns', 52763797000], ['9007199254740991ns', 9007199254740991],
  ]
  for (const [text, want] of valid) it(`${text} is ${want} ns`, () => assert.equal(parseDurationNs(text), want))

  const invalid = ['', '3', '-', 's', '.', '-.', '.s', '+.s', '1d', '\x85\x85', '\xffff', 'hello \xffff world', '1.5', '5 s', ' 5s', '1h-2m']
  for (const text of invalid) it(`${JSON.stringify(text)} is not one`, () => assert.equal(parseDurationNs(text), undefined))

  it('in milliseconds, fractions kept', () => {
    assert.equal(parseDurationMs('1.5s'), 1500)
    assert.equal(parseDurationMs('2µs'), 0.002)
    assert.equal(parseDurationMs('1h2m3s4ms5us6ns'), 3_723_004.005006)
    assert.equal(parseDurationMs('x'), undefined)
  })

  it('the variants callers ask for', () => {
    assert.equal(parseDurationNs('-5s', { sign: false }), undefined)
    assert.equal(parseDurationNs('.5s', { looseFraction: false }), undefined)
    assert.equal(parseDurationNs('5.s', { looseFraction: false }), undefined)
    assert.equal(parseDurationNs('5.5s', { looseFraction: false }), 5.5 * s)
    assert.equal(parseDurationNs('1h30m', { compound: false }), undefined)
    assert.equal(parseDurationNs('90', { bareUnit: 's' }), 90 * s)
    assert.equal(parseDurationNs('90s5', { bareUnit: 's' }), undefined)
    assert.equal(parseDurationNs('2d', { units: { d: 24 * h } }), 48 * h)
    assert.equal(parseDurationNs('2s', { units: { d: 24 * h } }), undefined)
  })
})

describe('formatDuration (Go time.Duration.String)', () => {
  const cases: Array<[number | bigint, string]> = [
    // the package documentation's examples
    [h + 2 * m + 300 * ms, '1h2m0.3s'], [300 * ms, '300ms'], [10 * h, '10h0m0s'], [h + 10 * m + 10 * s, '1h10m10s'], [µs, '1µs'],
    // Go's own test cases
    [0, '0s'], [1, '1ns'], [1100, '1.1µs'], [2200 * µs, '2.2ms'], [3300 * ms, '3.3s'], [4 * m + 5 * s, '4m5s'],
    [4 * m + 5001 * ms, '4m5.001s'], [5 * h + 6 * m + 7001 * ms, '5h6m7.001s'], [8 * m + 1, '8m0.000000001s'],
    [(1n << 63n) - 1n, '2562047h47m16.854775807s'], [-(1n << 63n), '-2562047h47m16.854775808s'],
    [-1.5 * h, '-1h30m0s'], [-1, '-1ns'],
  ]
  for (const [ns, want] of cases) it(`${ns} ns is ${want}`, () => assert.equal(formatDuration(ns), want))

  it('of milliseconds', () => {
    assert.equal(formatDurationMs(30_000), '30s')
    assert.equal(formatDurationMs(1500), '1.5s')
    assert.equal(formatDurationMs(500), '500ms')
    assert.equal(formatDurationMs(0.5), '500µs')
  })

  it('parses back to what it printed (any whole number of nanoseconds a double holds exactly)', () => {
    fc.assert(fc.property(fc.maxSafeInteger(), (ns) => {
      assert.equal(parseDurationNs(formatDuration(ns)), ns)
    }), { numRuns: 2000 })
    fc.assert(fc.property(fc.integer({ min: -9e9, max: 9e9 }), (n) => {
      assert.equal(parseDurationMs(formatDurationMs(n)), n)
    }))
  })
})
