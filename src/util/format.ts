/**
 * How Docker prints sizes, ages, IDs and tables, reproduced byte for byte:
 * sizes and durations as docker/go-units computes them, numbers as Go's `%.Ng`,
 * tables as docker CLI's tabwriter lays them out.
 */

// ---------------------------------------------------------------------------
// Go's %g

/**
 * Formats `value` as Go's `fmt.Sprintf("%.<precision>g", value)`: `precision`
 * significant digits, ties rounded to even on the exact binary value, trailing zeros
 * dropped, exponent form (`1e+03`) when the exponent is < -4 or >= the precision.
 */
export function formatG(value: number, precision: number): string {
  if (!Number.isInteger(precision) || precision < 0) {
    throw new RangeError(`formatG: precision must be a non-negative integer, got ${precision}`)
  }
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  const negative = value < 0 || Object.is(value, -0)
  const prec = precision === 0 ? 1 : precision
  let { digits, point } = exactDecimal(Math.abs(value))
  ;({ digits, point } = roundToDigits(digits, point, prec))
  const nd = digits.length

  // When the shortest exact form has fewer digits than asked, those decide (as Go does).
  let eprec = prec
  if (eprec > nd && nd >= point) eprec = nd
  const exp = point - 1
  let body: string
  if (exp < -4 || exp >= eprec) {
    body = exponentForm(digits, point, Math.min(prec, nd) - 1)
  } else {
    body = fixedForm(digits, point, Math.max((prec > point ? nd : prec) - point, 0))
  }
  return (negative ? '-' : '') + body
}

/** The exact decimal digits of a finite non-negative double: value = 0.digits × 10^point. */
function exactDecimal(x: number): { digits: string; point: number } {
  if (x === 0) return { digits: '', point: 0 }
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  const bits = view.getBigUint64(0)
  const biased = Number((bits >> 52n) & 0x7ffn)
  let mantissa = bits & ((1n << 52n) - 1n)
  let exp2: number
  if (biased === 0) {
    exp2 = -1074
  } else {
    mantissa |= 1n << 52n
    exp2 = biased - 1075
  }
  let digits: string
  let point: number
  if (exp2 >= 0) {
    digits = (mantissa << BigInt(exp2)).toString()
    point = digits.length
  } else {
    // m / 2^k = m·5^k / 10^k
    digits = (mantissa * 5n ** BigInt(-exp2)).toString()
    point = digits.length + exp2
  }
  return { digits: digits.replace(/0+$/, ''), point }
}

/** Rounds to at most `prec` significant digits, half to even, dropping trailing zeros. */
function roundToDigits(digits: string, point: number, prec: number): { digits: string; point: number } {
  if (digits.length <= prec) return { digits, point }
  const next = digits.charCodeAt(prec) - 48
  const last = digits.charCodeAt(prec - 1) - 48
  // `digits` has no trailing zeros, so anything after `next` is non-zero.
  const up = next > 5 || (next === 5 && (digits.length > prec + 1 || last % 2 === 1))
  let kept = digits.slice(0, prec)
  if (up) {
    let i = prec - 1
    const chars = kept.split('')
    while (i >= 0 && chars[i] === '9') chars[i--] = '0'
    if (i < 0) {
      chars.unshift('1')
      chars.pop()
      point += 1
    } else {
      chars[i] = String.fromCharCode((chars[i] as string).charCodeAt(0) + 1)
    }
    kept = chars.join('')
  }
  return { digits: kept.replace(/0+$/, ''), point }
}

function exponentForm(digits: string, point: number, fraction: number): string {
  let s = digits.length === 0 ? '0' : digits[0] as string
  if (fraction > 0) s += '.' + digits.slice(1, fraction + 1).padEnd(fraction, '0')
  const exp = digits.length === 0 ? 0 : point - 1
  const mag = Math.abs(exp)
  return `${s}e${exp < 0 ? '-' : '+'}${mag < 10 ? '0' : ''}${mag}`
}

function fixedForm(digits: string, point: number, fraction: number): string {
  let s = point > 0 ? digits.slice(0, point).padEnd(point, '0') : '0'
  if (fraction > 0) {
    s += '.'
    for (let i = 0; i < fraction; i++) {
      const j = point + i
      s += j >= 0 && j < digits.length ? digits[j] : '0'
    }
  }
  return s
}

// ---------------------------------------------------------------------------
// Sizes (docker/go-units)

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'] as const

function scale(size: number, base: number, units: readonly string[]): [number, string] {
  let i = 0
  while (size >= base && i < units.length - 1) {
    size /= base
    i++
  }
  return [size, units[i] as string]
}

/**
 * Decimal size with `precision` significant digits (`HumanSizeWithPrecision`):
 * `178MB`, `72.8MB`, `13.3kB`, `0B`, and Go's quirks such as `1e+03kB` for 999999.
 */
export function humanSizeWithPrecision(bytes: number, precision: number): string {
  const [n, unit] = scale(bytes, 1000, DECIMAL_UNITS)
  return formatG(n, precision) + unit
}

/** The SIZE column of `docker images`/`docker history`: 3 significant digits, decimal units. */
export function humanSize(bytes: number): string {
  return humanSizeWithPrecision(bytes, 3)
}

/** Binary size with 4 significant digits (go-units `BytesSize`): `1KiB`, `1.5MiB`, `3.42GiB`. */
export function bytesSize(bytes: number): string {
  const [n, unit] = scale(bytes, 1024, BINARY_UNITS)
  return formatG(n, 4) + unit
}

// ---------------------------------------------------------------------------
// Durations (docker/go-units HumanDuration)

const MS_PER_SECOND = 1000
const MS_PER_MINUTE = 60 * MS_PER_SECOND
const MS_PER_HOUR = 60 * MS_PER_MINUTE

/**
 * A rough, human duration with go-units' thresholds: `Less than a second`, `1 second`,
 * `59 seconds`, `About a minute`, `59 minutes`, `About an hour`, `47 hours`, `13 days`,
 * `8 weeks`, `23 months`, `2 years`. Hours are rounded (1h30m is `2 hours`); everything
 * else is truncated. Negative durations read `Less than a second`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / MS_PER_SECOND)
  if (seconds < 1) return 'Less than a second'
  if (seconds === 1) return '1 second'
  if (seconds < 60) return `${seconds} seconds`
  const minutes = Math.trunc(ms / MS_PER_MINUTE)
  if (minutes === 1) return 'About a minute'
  if (minutes < 60) return `${minutes} minutes`
  // Go: float64(whole hours) + float64(rest)/hour, then int(h + 0.5).
  const wholeHours = Math.trunc(ms / MS_PER_HOUR)
  const exactHours = wholeHours + (ms - wholeHours * MS_PER_HOUR) / MS_PER_HOUR
  const hours = Math.trunc(exactHours + 0.5)
  if (hours === 1) return 'About an hour'
  if (hours < 48) return `${hours} hours`
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`
  if (hours < 24 * 30 * 2) return `${Math.trunc(Math.trunc(hours / 24) / 7)} weeks`
  if (hours < 24 * 365 * 2) return `${Math.trunc(Math.trunc(hours / 24) / 30)} months`
  return `${Math.trunc(Math.trunc(Math.trunc(exactHours) / 24) / 365)} years`
}

/**
 * The CREATED column of `docker images`: `4 seconds ago`, `25 hours ago`, `8 months ago`.
 * Like Docker, which receives the creation time as whole Unix seconds, the creation
 * time is truncated to the second before the difference is taken.
 */
export function ago(created: Date | string | number, now: Date | number = Date.now()): string {
  const createdMs = toMillis(created)
  const nowMs = typeof now === 'number' ? now : now.getTime()
  const createdSeconds = Math.floor(createdMs / MS_PER_SECOND) * MS_PER_SECOND
  return `${humanDuration(nowMs - createdSeconds)} ago`
}

function toMillis(t: Date | string | number): number {
  if (typeof t === 'number') return t
  const ms = typeof t === 'string' ? Date.parse(t) : t.getTime()
  if (Number.isNaN(ms)) throw new TypeError(`ago: not a valid time: ${String(t)}`)
  return ms
}

// ---------------------------------------------------------------------------
// IDs and truncation

/** `sha256:753e19c6…` → `753e19c60999`: drops the algorithm, keeps 12 characters. */
export function shortId(idOrDigest: string): string {
  const colon = idOrDigest.indexOf(':')
  const hex = colon === -1 ? idOrDigest : idOrDigest.slice(colon + 1)
  return hex.slice(0, 12)
}

/** Width docker history gives CREATED BY unless `--no-trunc`. */
const CREATED_BY_WIDTH = 45

/**
 * Shortens `s` to `maxWidth` display columns ending in `…` (docker CLI's `Ellipsis`).
 * East Asian wide characters count two columns. With `maxWidth` 1 the first character
 * is returned whatever its width; with 0 or less, the empty string.
 */
export function ellipsis(s: string, maxWidth: number): string {
  if (maxWidth <= 0) return ''
  const chars = Array.from(s)
  if (maxWidth === 1) return chars[0] ?? ''
  if (/^[\x00-\x7f]*$/.test(s)) {
    return s.length <= maxWidth ? s : s.slice(0, maxWidth - 1) + '…'
  }
  const ends: number[] = []
  let width = 0
  for (const ch of chars) {
    width += isWide(ch.codePointAt(0) as number) ? 2 : 1
    ends.push(width)
  }
  if (width <= maxWidth) return s
  for (let i = 0; i + 1 < ends.length; i++) {
    if ((ends[i] as number) <= maxWidth - 1 && (ends[i + 1] as number) > maxWidth - 1) {
      return chars.slice(0, i + 1).join('') + '…'
    }
  }
  // Docker's own fall-through: a wide first character that does not fit leaves `s` whole.
  return s
}

/** The CREATED BY column of `docker history`: tabs become spaces, then 45 columns unless `trunc` is false. */
export function formatCreatedBy(createdBy: string, trunc = true): string {
  const s = createdBy.replaceAll('\t', ' ')
  return trunc ? ellipsis(s, CREATED_BY_WIDTH) : s
}

// ---------------------------------------------------------------------------
// Display width

const WIDE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], [0x2329, 0x232a], [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf],
  [0x4e00, 0x9fff], [0xa000, 0xa4cf], [0xa960, 0xa97f], [0xac00, 0xd7a3], [0xf900, 0xfaff],
  [0xfe10, 0xfe19], [0xfe30, 0xfe6f], [0xff00, 0xff60], [0xffe0, 0xffe6], [0x16fe0, 0x16fe4],
  [0x17000, 0x18cff], [0x1b000, 0x1b2ff], [0x20000, 0x2fffd], [0x30000, 0x3fffd],
]
const EMOJI_PRESENTATION = /^\p{Emoji_Presentation}$/u
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]$/u

/** East Asian Wide or Fullwidth (CJK, Hangul, fullwidth forms, emoji presentation). */
function isWide(cp: number): boolean {
  for (const [lo, hi] of WIDE_RANGES) {
    if (cp < lo) break
    if (cp <= hi) return true
  }
  // Regional indicators are emoji but not East Asian Wide.
  if (cp >= 0x1f1e6 && cp <= 0x1f1ff) return false
  return cp >= 0x231a && EMOJI_PRESENTATION.test(String.fromCodePoint(cp))
}

/** Made on first use: building a segmenter loads ICU data, which every command would pay for. */
let graphemes: Intl.Segmenter | undefined

/** Columns one code point takes (go-runewidth, East Asian ambiguous as narrow). */
function codePointWidth(cp: number): number {
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp === 0xad) return 0
  if (cp < 0x300) return 1
  if (ZERO_WIDTH.test(String.fromCodePoint(cp))) return 0
  return isWide(cp) ? 2 : 1
}

/**
 * Columns a string takes in a terminal, measured as docker CLI's tabwriter does
 * (go-runewidth): per grapheme cluster, the width of its first code point that has
 * one; wide (East Asian Wide/Fullwidth, emoji) characters take 2, combining marks,
 * format and control characters 0. So `👨‍👩‍👧` is 2, `❤️` is 1, a flag is 1.
 */
export function displayWidth(s: string): number {
  if (/^[\x20-\x7e]*$/.test(s)) return s.length
  let width = 0
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' })
  for (const { segment } of graphemes.segment(s)) {
    for (const ch of segment) {
      const w = codePointWidth(ch.codePointAt(0) as number)
      if (w > 0) {
        width += w
        break
      }
    }
  }
  return width
}

// ---------------------------------------------------------------------------
// Tables (Go's text/tabwriter, as docker CLI configures it)

export interface TabwriterOptions {
  /** Minimal cell width, padding included. */
  minWidth: number
  /** Padding added to the widest cell of a column. */
  padding: number
  /** Character used for padding (a single, non-tab character). */
  padChar: string
}

/** `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`: what every docker CLI table uses. */
const DOCKER_TABLE: TabwriterOptions = Object.freeze({ minWidth: 10, padding: 3, padChar: ' ' })

interface Cell {
  text: string
  width: number
}

/**
 * Aligns tab-terminated cells as Go's `text/tabwriter` does (elastic tabstops).
 * Cells end at `\t` (or `\v`); lines at `\n`; `\f` ends a line and starts a new block.
 * A column is a run of adjacent lines that all have a tab-terminated cell at that index;
 * its width is the widest cell plus padding, at least `minWidth`. The text after the
 * last tab of a line belongs to no column and is never padded.
 */
export function tabwrite(text: string, options: TabwriterOptions = DOCKER_TABLE): string {
  if (options.padChar.length !== 1 || options.padChar === '\t') {
    throw new TypeError('tabwrite: padChar must be a single non-tab character')
  }
  return text.split('\f').map((section) => layout(section, options)).join('\n')
}

function layout(text: string, options: TabwriterOptions): string {
  const raw = text.split('\n')
  const lines: Cell[][] = raw.map((line, i) => {
    // Text after the final line break is an unterminated line: no cell when empty.
    if (i === raw.length - 1 && line === '') return []
    return line.split(/[\t\v]/).map((t) => ({ text: t, width: displayWidth(t) }))
  })
  const out: string[] = []
  const widths: number[] = []

  const emit = (from: number, to: number): void => {
    for (let i = from; i < to; i++) {
      const line = lines[i] as Cell[]
      line.forEach((cell, j) => {
        out.push(cell.text)
        const w = widths[j]
        if (w !== undefined) out.push(options.padChar.repeat(w - cell.width))
      })
      if (i + 1 < lines.length) out.push('\n')
    }
  }

  // Sizes column `widths.length` for each block of lines that has it, then recurses
  // into the block for the next column; lines outside any block are printed as they are.
  const format = (line0: number, line1: number): void => {
    const column = widths.length
    let printed = line0
    for (let i = line0; i < line1; i++) {
      if (column >= (lines[i] as Cell[]).length - 1) continue
      emit(printed, i)
      let width = options.minWidth
      let end = i
      for (; end < line1; end++) {
        const line = lines[end] as Cell[]
        if (column >= line.length - 1) break
        width = Math.max(width, (line[column] as Cell).width + options.padding)
      }
      widths.push(width)
      format(i, end)
      widths.pop()
      printed = end
      i = end - 1
    }
    emit(printed, line1)
  }

  format(0, lines.length)
  return out.join('')
}

/**
 * A table as `docker images` prints it: a header row, then one row per entry, laid out
 * by `tabwrite` with docker CLI's settings. Every line ends with `\n`; the last column
 * is not padded. Cells must not contain tabs or line breaks.
 */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>,
  options: TabwriterOptions = DOCKER_TABLE): string {
  let text = headers.join('\t') + '\n'
  for (const row of rows) text += row.join('\t') + '\n'
  return tabwrite(text, options)
}
