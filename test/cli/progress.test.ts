/**
 * The progress display on a terminal, checked on what a terminal would show: a small screen model
 * that applies the control sequences the renderer writes (cursor up, carriage return, clear to
 * the end of the screen, newline), with the terminal's width.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import { ProgressRenderer, progressLine } from '../../src/cli/progress.js'

/** A terminal of `columns` columns: rows of text, a cursor; lines longer than the width wrap. */
class Screen extends EventEmitter {
  rows: string[] = ['']
  row = 0
  col = 0
  isTTY = true
  constructor(public columns: number) {
    super()
  }
  write(data: string): boolean {
    for (let i = 0; i < data.length; i++) {
      const ch = data[i] as string
      if (ch === '\x1b') {
        const m = /^\x1b\[(\d*)([A-Za-z])/.exec(data.slice(i))
        if (!m) throw new Error(`unknown sequence at ${JSON.stringify(data.slice(i, i + 8))}`)
        const n = m[1] === '' ? 1 : Number(m[1])
        if (m[2] === 'A') this.row = Math.max(0, this.row - n)
        else if (m[2] === 'J') {
          this.rows[this.row] = (this.rows[this.row] ?? '').slice(0, this.col)
          this.rows.length = this.row + 1
        } else if (m[2] === 'K') this.rows[this.row] = ''
        else throw new Error(`unexpected sequence ${m[0]}`)
        i += m[0].length - 1
      } else if (ch === '\r') this.col = 0
      else if (ch === '\n') {
        this.row++
        this.col = 0
        if (this.rows.length <= this.row) this.rows.push('')
      } else {
        if (this.col >= this.columns) {
          // the terminal wraps
          this.row++
          this.col = 0
          if (this.rows.length <= this.row) this.rows.push('')
        }
        const line = this.rows[this.row] ?? ''
        this.rows[this.row] = line.slice(0, this.col).padEnd(this.col) + ch + line.slice(this.col + 1)
        this.col++
      }
    }
    return true
  }
  text(): string[] {
    return this.rows.filter((r, i) => r !== '' || i < this.rows.length - 1)
  }
}

const asStream = (s: Screen): NodeJS.WriteStream => s as unknown as NodeJS.WriteStream

test('a wide terminal shows bars; a narrow one the sizes alone; no line ever wraps', () => {
  const wide = progressLine({ id: 'abc123', status: 'Downloading', current: 5_000_000, total: 10_000_000 }, 120)
  assert.match(wide, /^abc123: Downloading {2}\[=+>\s+\]\s+5MB\/10MB$/)
  const narrow = progressLine({ id: 'abc123', status: 'Downloading', current: 5_000_000, total: 10_000_000 }, 80)
  assert.equal(narrow, 'abc123: Downloading  5MB/10MB')
  const tiny = progressLine({ id: 'abc123', status: 'Downloading', current: 5_000_000, total: 10_000_000 }, 20)
  assert.ok(tiny.length <= 19, tiny)
})

test('the block is redrawn in place, the totals line is gone at the end, and a resize leaves no stale line', async () => {
  const screen = new Screen(130)
  const r = new ProgressRenderer(asStream(screen), { totals: true })
  r.onProgress({ id: 'aaaaaaaaaaaa', status: 'Pulling fs layer' })
  r.onProgress({ id: 'bbbbbbbbbbbb', status: 'Pulling fs layer' })
  r.onProgress({ id: 'aaaaaaaaaaaa', status: 'Downloading', current: 1000, total: 100_000 })
  r.onProgress({ id: 'bbbbbbbbbbbb', status: 'Downloading', current: 2000, total: 100_000 })
  let shown = screen.text()
  assert.equal(shown.length, 3, shown.join('\n'))
  assert.match(shown[0] ?? '', /^aaaaaaaaaaaa: Downloading {2}\[/)
  assert.match(shown[2] ?? '', /^Total: /)
  // the terminal gets narrow: everything drawn again, cut to the new width
  screen.columns = 60
  screen.emit('resize')
  shown = screen.text()
  assert.equal(shown.length, 3, shown.join('\n'))
  for (const l of shown) assert.ok(l.length < 60, l)
  assert.doesNotMatch(shown.join('\n'), /\[=/, 'no bar below 110 columns')
  r.onProgress({ id: 'aaaaaaaaaaaa', status: 'Pull complete' })
  r.onProgress({ id: 'bbbbbbbbbbbb', status: 'Pull complete' })
  r.finish()
  assert.deepEqual(screen.text(), ['aaaaaaaaaaaa: Pull complete', 'bbbbbbbbbbbb: Pull complete'])
  // output after the display starts on a fresh line
  screen.write('Digest: sha256:x\n')
  assert.deepEqual(screen.text(), ['aaaaaaaaaaaa: Pull complete', 'bbbbbbbbbbbb: Pull complete', 'Digest: sha256:x'])
})

test('elsewhere: a line per status change, never per byte', () => {
  const lines: string[] = []
  const out = { isTTY: false, write: (s: string) => lines.push(s), on: () => undefined, off: () => undefined } as unknown as NodeJS.WriteStream
  const r = new ProgressRenderer(out, { totals: true })
  r.onProgress({ id: 'a', status: 'Pushing', current: 1, total: 10 })
  r.onProgress({ id: 'a', status: 'Pushing', current: 5, total: 10 })
  r.onProgress({ id: 'a', status: 'Pushed' })
  r.finish()
  assert.deepEqual(lines, ['a: Pushing\n', 'a: Pushed\n'])
})
