/** Sizes as docker/go-units reads them: the cases of its size_test.go (TestRAMInBytes, TestFromHumanSize). */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { fromHumanSize, ramInBytes, type SizeResult } from '../../src/util/bytes.js'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB
const PiB = 1024 * TiB

function bytes(r: SizeResult): number | string {
  return 'bytes' in r ? r.bytes : r.error
}

describe('ramInBytes (go-units RAMInBytes: powers of 1024)', () => {
  const cases: Array<[string, number]> = [
    ['32', 32], ['32b', 32], ['32B', 32], ['32k', 32 * KiB], ['32K', 32 * KiB], ['32kb', 32 * KiB], ['32Kb', 32 * KiB],
    ['32Kib', 32 * KiB], ['32KIB', 32 * KiB], ['32Mb', 32 * MiB], ['32Gb', 32 * GiB], ['32Tb', 32 * TiB], ['32Pb', 32 * PiB],
    ['32PB', 32 * PiB], ['32P', 32 * PiB], ['32.3', 32], ['32.3 mb', Math.trunc(32.3 * MiB)], ['32.3 MiB', Math.trunc(32.3 * MiB)],
    ['0', 0], ['1e3', 1000],
  ]
  for (const [text, want] of cases) it(`${text} is ${want}`, () => assert.equal(bytes(ramInBytes(text)), want))

  const errors: Array<[string, string]> = [
    ['', "invalid size: ''"], ['hello', "invalid size: 'hello'"], ['-32', "invalid size: '-32'"], [' 32 ', 'strconv.ParseFloat: parsing " 32": invalid syntax'],
    ['32m b', 'strconv.ParseFloat: parsing "32m": invalid syntax'],
    ['32bm', "invalid suffix: 'bm'"], ['32mbi', "invalid suffix: 'mbi'"], ['32kbytes', "invalid suffix: 'kbytes'"], ['32x', "invalid suffix: 'x'"],
  ]
  for (const [text, want] of errors) it(`${JSON.stringify(text)}: ${want}`, () => assert.equal(bytes(ramInBytes(text)), want))
})

describe('fromHumanSize (go-units FromHumanSize: powers of 1000)', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['0b', 0], ['0B', 0], ['0 B', 0], ['32', 32], ['32b', 32], ['32B', 32], ['32k', 32e3], ['32K', 32e3], ['32kb', 32e3],
    ['32Kb', 32e3], ['32Mb', 32e6], ['32Gb', 32e9], ['32Tb', 32e12], ['32Pb', 32e15], ['32.5kB', 32_500], ['32.5 kB', 32_500],
    ['32.5 KiB', 32_500], ['0.3k', 300], ['.3kB', 300],
  ]
  for (const [text, want] of cases) it(`${text} is ${want}`, () => assert.equal(bytes(fromHumanSize(text)), want))

  for (const text of ['', 'hello', '-32', '32.3.3', ' 32 ', '32m b', '32bm']) {
    it(`${JSON.stringify(text)} is not one`, () => assert.equal(typeof bytes(fromHumanSize(text)), 'string'))
  }
})
