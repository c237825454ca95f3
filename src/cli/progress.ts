/**
 * Renders progress events as Docker does: on a terminal one line per ID, updated in place with
 * a bar; elsewhere a plain line each time an ID's status changes (never per byte).
 */
import type { ProgressEvent } from '../api/events.js'
import { humanSize } from '../util/format.js'

const BAR_WIDTH = 50

export function progressBar(current: number, total: number): string {
  if (total <= 0) return humanSize(current)
  const ratio = Math.min(1, current / total)
  const filled = Math.floor(ratio * BAR_WIDTH)
  const bar = filled >= BAR_WIDTH ? '='.repeat(BAR_WIDTH) : '='.repeat(filled) + '>' + ' '.repeat(BAR_WIDTH - filled - 1)
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`
}

export class ProgressRenderer {
  private readonly lines: string[] = []
  private readonly lastStatus = new Map<string, string>()

  constructor(private readonly out: NodeJS.WriteStream, private readonly tty = out.isTTY === true) {}

  readonly onProgress = (e: ProgressEvent): void => {
    const text = this.format(e)
    if (!this.tty) {
      const key = e.id
      if (this.lastStatus.get(key) === e.status) return
      this.lastStatus.set(key, e.status)
      this.out.write(`${e.id ? `${e.id}: ` : ''}${e.status}\n`)
      return
    }
    let idx = this.lines.indexOf(e.id)
    if (idx < 0) {
      this.lines.push(e.id)
      this.out.write(`${text}\n`)
      return
    }
    const up = this.lines.length - idx
    this.out.write(`\x1b[${up}A\x1b[2K\r${text}\x1b[${up}B\r`)
  }

  private format(e: ProgressEvent): string {
    const prefix = e.id ? `${e.id}: ` : ''
    if (e.current !== undefined && e.total !== undefined && e.current < e.total) {
      return `${prefix}${e.status}  ${progressBar(e.current, e.total)}`
    }
    if (e.current !== undefined && e.total === undefined) return `${prefix}${e.status}  ${humanSize(e.current)}`
    return `${prefix}${e.status}`
  }
}
