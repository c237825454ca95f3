/** What the fuzz targets share: which errors are refusals of bad input, and the test wrapper. */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { isCairnError } from '../../src/errors/index.js'
import { formatReport, fuzz, type FuzzOptions } from './engine.js'

/** A CairnError (any code) is how Cairn refuses bad input; anything else is a crash. */
function isRefusal(err: unknown): boolean {
  return isCairnError(err)
}

/** Fuzzes `target`, reports what it did, and fails on any crash (its input is in the message). */
export async function fuzzTest(t: TestContext, name: string, target: (data: Buffer) => unknown, opts: Omit<FuzzOptions, 'expected'> & { expected?: FuzzOptions['expected'] }): Promise<void> {
  const report = await fuzz(name, target, { expected: isRefusal, ...opts })
  const text = formatReport(name, report)
  t.diagnostic(text.split('\n')[0] ?? '')
  assert.equal(report.crashes.length, 0, text)
  assert.ok(report.execs > opts.seeds.length, `only ${report.execs} inputs ran`)
  assert.ok(report.features > 0, 'no coverage was seen: the engine measures nothing')
}
