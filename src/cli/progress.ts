/**
 * The one progress display of the CLI (pull, push, save, load, import, run's pull), as Docker's
 * jsonmessage renders it:
 *
 * - On a terminal: a line per ID, in the order they appeared, updated in place; with bytes moving,
 *   `[=====>    ]  12.3MB/45.6MB` when the terminal is wider than 110 columns, the sizes alone
 *   below that (as Docker drops the bar). Every line is cut to the terminal's width, so none wraps,
 *   and the whole block is drawn again from its top (clearing below it), so a resize or a line that
 *   got shorter never leaves stale text. With `totals`, a last line shows the overall bytes, rate
 *   and ETA while bytes move; it is erased when the display finishes, so the final output is the
 *   status lines alone.
 * - Elsewhere: a plain line each time an ID's status changes (never per byte).
 */
import type { ProgressEvent } from '../api/events.js'
import { humanSize } from '../util/format.js'

const BAR_WIDTH = 50
/** Below this many columns Docker shows no bar. */
const BAR_MIN_COLUMNS = 110
/** Byte counts arrive per chunk: the display is drawn again at most this often while only bytes change. */
const REDRAW_MS = 50

function progressBar(current: number, total: number): string {
  if (total <= 0) return humanSize(current)
  const ratio = Math.min(1, current / total)
  const filled = Math.floor(ratio * BAR_WIDTH)
  const bar = filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : '='.repeat(filled) + '>' + ' '.repeat(BAR_WIDTH - filled - 1)
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`
}

/** One line of the display for an event, for a terminal `columns` wide. */
export function progressLine(e: ProgressEvent, columns: number): string {
  const prefix = e.id ? `${e.id}: ` : ''
  let text = `${prefix}${e.status}`
  if (e.current !== undefined && e.total !== undefined && e.total > 0 && e.current < e.total) {
    text += columns > BAR_MIN_COLUMNS ? `  ${progressBar(e.current, e.total)}` : `  ${humanSize(e.current)}/${humanSize(e.total)}`
  } else if (e.current !== undefined && e.total === undefined) {
    text += `  ${humanSize(e.current)}`
  }
  return fit(text, columns)
}

/** Cuts a line to the terminal's width (one column kept free, so that the cursor never wraps). */
function fit(text: string, columns: number): string {
  const max = Math.max(10, columns - 1)
  return text.length > max ? text.slice(0, max) : text
}

export interface ProgressRendererOptions {
  /** Draw as on a terminal (default: whether `out` is one). */
  tty?: boolean
  /** Show the overall total, rate and ETA while bytes move (push, pull). */
  totals?: boolean
}

/** Statuses after which a layer's bytes count as all done. */
const DONE = new Set(['Pushed', 'Download complete', 'Pull complete', 'Layer already exists', 'Already exists', 'Loading layer done'])

export class ProgressRenderer {
  private readonly tty: boolean
  private readonly totals: boolean
  /** The block's lines, by key (an ID, or one key per event without an ID). */
  private readonly order: string[] = []
  /** The last event of each line. */
  private readonly events = new Map<string, ProgressEvent>()
  private readonly statuses = new Map<string, string>()
  private readonly bytes = new Map<string, { current: number; total: number }>()
  /** Terminal rows the block took when last drawn. */
  private rows = 0
  private lastDraw = 0
  private pending: NodeJS.Timeout | undefined
  private anonymous = 0
  private finished = false
  private readonly started = Date.now()
  private readonly onResize = (): void => this.draw()

  constructor(private readonly out: NodeJS.WriteStream, opts: ProgressRendererOptions = {}) {
    this.tty = opts.tty ?? out.isTTY === true
    this.totals = opts.totals ?? false
    if (this.tty) out.on('resize', this.onResize)
  }

  private get columns(): number {
    return this.out.columns > 0 ? this.out.columns : 80
  }

  readonly onProgress = (e: ProgressEvent): void => {
    if (this.finished) return
    this.track(e)
    if (!this.tty) {
      if (e.id === '' || this.statuses.get(e.id) !== e.status) {
        if (e.id !== '') this.statuses.set(e.id, e.status)
        this.out.write(`${e.id ? `${e.id}: ` : ''}${e.status}\n`)
      }
      return
    }
    const key = e.id === '' ? `#${this.anonymous++}` : e.id
    const statusChanged = this.statuses.get(key) !== e.status
    this.statuses.set(key, e.status)
    if (!this.events.has(key)) this.order.push(key)
    this.events.set(key, e)
    if (statusChanged || Date.now() - this.lastDraw >= REDRAW_MS) this.draw()
    else this.pending ??= setTimeout(() => this.draw(), REDRAW_MS)
  }

  /** The final state: the status lines, the totals line erased. */
  finish(): void {
    if (this.finished) return
    if (this.tty) {
      this.draw(false)
      this.out.off('resize', this.onResize)
    }
    this.finished = true
  }

  private track(e: ProgressEvent): void {
    if (e.id === '') return
    if (e.current !== undefined && e.total !== undefined && e.total > 0) this.bytes.set(e.id, { current: e.current, total: e.total })
    else if (DONE.has(e.status) || e.status.startsWith('Mounted from')) {
      const b = this.bytes.get(e.id)
      if (b) b.current = b.total
    }
  }

  private totalsLine(): string | undefined {
    if (!this.totals || this.bytes.size === 0) return undefined
    let current = 0
    let total = 0
    for (const b of this.bytes.values()) {
      current += b.current
      total += b.total
    }
    if (current >= total) return undefined
    const secs = (Date.now() - this.started) / 1000
    const rate = secs > 0 ? current / secs : 0
    const eta = rate > 0 ? `  ETA ${formatSeconds((total - current) / rate)}` : ''
    return fit(`Total: ${humanSize(current)}/${humanSize(total)}  ${humanSize(rate)}/s${eta}`, this.columns)
  }

  /** Draws the whole block again from its first row. */
  private draw(withTotals = true): void {
    if (this.pending) {
      clearTimeout(this.pending)
      this.pending = undefined
    }
    if (this.finished) return
    this.lastDraw = Date.now()
    const columns = this.columns
    const text = this.order.map((k) => progressLine(this.events.get(k) ?? { id: '', status: '' }, columns))
    const totals = withTotals ? this.totalsLine() : undefined
    if (totals !== undefined) text.push(totals)
    // up to the block's first row (a row count the terminal may have reflowed: lines are cut to its width), then clear below
    const up = this.rows > 0 ? `\x1b[${this.rows}A` : ''
    this.out.write(`${up}\r\x1b[J${text.map((l) => `${l}\n`).join('')}`)
    this.rows = text.length
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`
  const m = Math.floor(s / 60)
  return `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}
