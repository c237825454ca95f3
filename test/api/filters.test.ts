/** Docker's `--filter` syntax and matching (images, ps, prune), with Docker's errors. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { danglingFilter, matchLabels, matchRegexp, parseFilterArgs, parseUntil, pathMatch, validateFilterKeys, ImageFilterKeys } from '../../src/api/filters.js'
import { parseDurationMs as parseGoDuration } from '../../src/util/duration.js'

describe('filters', () => {
  test('key=value arguments: keys trimmed and lower-cased, values kept per key; no = is Docker\'s error', () => {
    assert.deepEqual(parseFilterArgs([' Label =a=b', 'label=c', 'dangling=true']), { label: ['a=b', 'c'], dangling: ['true'] })
    assert.throws(() => parseFilterArgs(['dangling']), { message: 'invalid argument "dangling" for "-f, --filter" flag: bad format of filter (expected name=value)' })
    assert.throws(() => validateFilterKeys({ label: ['x'], foo: ['1'] }, ImageFilterKeys), { message: 'invalid filter \'foo\'' })
    validateFilterKeys({ reference: ['a'] }, ImageFilterKeys)
  })

  test('dangling takes true/false (or 1/0) and nothing else', () => {
    assert.equal(danglingFilter({}), undefined)
    assert.equal(danglingFilter({ dangling: ['TRUE'] }), true)
    assert.equal(danglingFilter({ dangling: ['0'] }), false)
    assert.throws(() => danglingFilter({ dangling: ['maybe', 'no'] }), { message: 'invalid filter \'dangling=[maybe no]\'' })
  })

  test('labels: every k or k=v must hold; regexps: any value matches any source, a bad one never', () => {
    const labels = { a: '1', b: '' }
    assert.equal(matchLabels({}, 'label', null), true)
    assert.equal(matchLabels({ label: ['a', 'b='] }, 'label', labels), true)
    assert.equal(matchLabels({ label: ['a=2'] }, 'label', labels), false)
    assert.equal(matchLabels({ label: ['c'] }, 'label', null), false)
    assert.equal(matchRegexp({}, 'name', 'x'), true)
    assert.equal(matchRegexp({ name: ['(', '^we'] }, 'name', 'db', 'web'), true)
    assert.equal(matchRegexp({ name: ['('] }, 'name', '('), false)
  })

  test('reference= uses Go\'s path.Match', () => {
    assert.equal(pathMatch('busy*', 'busybox'), true)
    assert.equal(pathMatch('*', 'library/busybox'), false)
    assert.equal(pathMatch('*/busybox', 'library/busybox'), true)
    assert.equal(pathMatch('b?sybox', 'busybox'), true)
    assert.equal(pathMatch('[a-c]usybox', 'busybox'), true)
    assert.equal(pathMatch('[^a-c]usybox', 'busybox'), false)
    assert.equal(pathMatch('\\*', '*'), true)
    assert.equal(pathMatch('a\\', 'a'), false)
    assert.equal(pathMatch('[ab', 'a'), false)
  })

  test('until=: Go durations, Unix seconds, RFC 3339 times and dates; else Docker\'s error', () => {
    const now = Date.UTC(2024, 0, 2)
    assert.equal(parseUntil('1h30m', now), now - 5_400_000)
    assert.equal(parseUntil('1700000000', now), 1_700_000_000_000)
    assert.equal(parseUntil('1700000000.5', now), 1_700_000_000_500)
    assert.equal(parseUntil('2024-01-01', now), Date.UTC(2024, 0, 1))
    assert.equal(parseUntil('2024-01-01T10:00:00Z', now), Date.UTC(2024, 0, 1, 10))
    assert.equal(parseUntil('2024-01-01T10:00:00+01:00', now), Date.UTC(2024, 0, 1, 9))
    assert.throws(() => parseUntil('yesterday', now), { message: 'failed to parse value as time or duration: "yesterday"' })
    assert.throws(() => parseUntil('2024-13-45', now), { message: 'failed to parse value as time or duration: "2024-13-45"' })
    assert.equal(parseGoDuration('0'), 0)
    assert.equal(parseGoDuration('5'), undefined)
    assert.equal(parseGoDuration('-1.5s'), -1500)
    assert.equal(parseGoDuration('1h2m3s4ms5us6ns'), 3_723_004.005006)
    assert.equal(parseGoDuration('2µs'), 0.002)
    assert.equal(parseGoDuration('1d'), undefined)
  })
})
