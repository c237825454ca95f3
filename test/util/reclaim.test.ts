import assert from 'node:assert/strict'
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { collectWhileStreaming, COLLECT_EVERY, keepYoungGenerationSmall, noteReceived, noteStreamed, RECLAIM_EVERY } from '../../src/util/reclaim.js'

/** The collections of a kind V8 reports while `fn` runs (and shortly after: some are run asynchronously). */
async function gcsDuring(fn: () => void, kind: number = constants.NODE_PERFORMANCE_GC_MINOR): Promise<number> {
  const seen: PerformanceEntry[] = []
  const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()))
  obs.observe({ entryTypes: ['gc'] })
  fn()
  await sleep(50)
  obs.disconnect()
  return seen.filter((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === kind).length
}

const minorGcsDuring = (fn: () => void): Promise<number> => gcsDuring(fn)
const majorGcsDuring = (fn: () => void): Promise<number> => gcsDuring(fn, constants.NODE_PERFORMANCE_GC_MAJOR)

test('noteReceived collects the young generation once per RECLAIM_EVERY bytes, not before', async () => {
  noteReceived(RECLAIM_EVERY) // whatever was counted before: a clean start
  assert.equal(await minorGcsDuring(() => noteReceived(RECLAIM_EVERY / 4)), 0)
  assert.ok(await minorGcsDuring(() => {
    for (let i = 0; i < 4; i++) noteReceived(RECLAIM_EVERY / 4)
  }) >= 1)
})

test('keepYoungGenerationSmall: the young generation no longer grows under allocation', () => {
  keepYoungGenerationSmall()
  const newSpace = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? NaN
  const start = newSpace()
  let keep: object[] = []
  for (let i = 0; i < 2_000_000; i++) {
    const o = { i, s: `x${i}` }
    if (i % 10 === 0) keep.push(o)
    if (keep.length > 20_000) keep = []
  }
  assert.ok(keep.length >= 0)
  assert.ok(newSpace() <= Math.max(start, 4 << 20), `new space grew from ${start} to ${newSpace()} bytes`)
})

/**
 * A full collection now, so that none is due from what earlier tests allocated (one of those,
 * reported in the window below, had been counted as this module's).
 */
async function quietHeap(): Promise<void> {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
  await sleep(20)
}

test('noteStreamed: nothing unless asked for; then a full collection once per COLLECT_EVERY bytes', async () => {
  await quietHeap()
  assert.equal(await majorGcsDuring(() => noteStreamed(4 * COLLECT_EVERY)), 0, 'off by default (the library)')
  collectWhileStreaming()
  try {
    noteStreamed(COLLECT_EVERY) // whatever was counted before: a clean start
    await sleep(50)
    assert.equal(await majorGcsDuring(() => noteStreamed(COLLECT_EVERY / 2)), 0)
    assert.ok(await majorGcsDuring(() => {
      for (let i = 0; i < 2; i++) noteStreamed(COLLECT_EVERY / 2)
    }) >= 1)
  } finally {
    collectWhileStreaming(false)
  }
})
