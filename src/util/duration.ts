/**
 * Go's durations, read and printed once for the whole code base: `time.ParseDuration`'s syntax
 * (`1h2m3.5s`, `300ms`, `1us`, `1µs`, `-1.5h`) and `time.Duration.String()`'s output. A small
 * parser of our own rather than a package: the grammar is a dozen lines, the callers need
 * variants of it (a bare number as seconds in the registry's configuration, no sign in a
 * Dockerfile's flags, a `d` unit) and results in both milliseconds and nanoseconds.
 */

/** Go's units, in nanoseconds. */
const GO_UNITS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }

/** How far a caller's syntax departs from Go's; every field's default is Go's rule. */
export interface DurationSyntax {
  /** A leading `+` or `-` (default true). */
  sign?: boolean
  /** Go's `1.s` and `.5s` (default true); false wants digits on both sides of a point. */
  looseFraction?: boolean
  /** Several terms, `1h30m` (default true); false takes one number and one unit. */
  compound?: boolean
  /** The unit of a lone number without one (`90` as seconds with `'s'`); default none (only `0`). */
  bareUnit?: string
  /** The units known, in nanoseconds (default Go's: ns, us, µs, ms, s, m, h). */
  units?: Readonly<Record<string, number>>
}

/**
 * A duration in nanoseconds (a fraction of one kept, as a float), or undefined when `text` is not
 * one in the given syntax. The digits of each term are read exactly, so any whole number of
 * nanoseconds up to 2^53 comes back as printed by formatDuration.
 */
export function parseDurationNs(text: string, syntax: DurationSyntax = {}): number | undefined {
  const units = syntax.units ?? GO_UNITS
  let s = text
  let negative = false
  if ((syntax.sign ?? true) && (s.startsWith('-') || s.startsWith('+'))) {
    negative = s.startsWith('-')
    s = s.slice(1)
  }
  if (s === '0') return 0
  if (s === '') return undefined
  let total = 0
  let terms = 0
  while (s !== '') {
    const m = /^(\d*)(?:(\.)(\d*))?([^\d.]*)/.exec(s)
    if (!m) return undefined
    const [all, whole = '', point, fraction = '', unitName = ''] = m
    if (whole === '' && fraction === '') return undefined
    if (!(syntax.looseFraction ?? true) && (whole === '' || (point !== undefined && fraction === ''))) return undefined
    s = s.slice(all.length)
    terms++
    let unit = units[unitName]
    if (unitName === '' && syntax.bareUnit !== undefined && terms === 1 && s === '') unit = units[syntax.bareUnit]
    if (unit === undefined) return undefined
    if (terms > 1 && syntax.compound === false) return undefined
    total += Number(whole === '' ? '0' : whole) * unit + (fraction === '' ? 0 : (Number(fraction) * unit) / 10 ** fraction.length)
  }
  if (!Number.isFinite(total)) return undefined
  return negative && total !== 0 ? -total : total
}

/** parseDurationNs in milliseconds (fractions kept: `2µs` is 0.002). */
export function parseDurationMs(text: string, syntax: DurationSyntax = {}): number | undefined {
  const ns = parseDurationNs(text, syntax)
  return ns === undefined ? undefined : ns / 1e6
}

/**
 * Go's time.Duration.String() of a number of nanoseconds (truncated to a whole one): `0s`,
 * `1.5µs`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`, `-2h3m4.005s`.
 */
export function formatDuration(ns: number | bigint): string {
  let v = typeof ns === 'bigint' ? ns : BigInt(Math.trunc(ns))
  if (v === 0n) return '0s'
  const sign = v < 0n ? '-' : ''
  if (v < 0n) v = -v
  if (v < 1_000_000_000n) {
    if (v < 1000n) return `${sign}${v}ns`
    if (v < 1_000_000n) return `${sign}${fixed(v, 3)}µs`
    return `${sign}${fixed(v, 6)}ms`
  }
  const h = v / 3_600_000_000_000n
  const m = (v / 60_000_000_000n) % 60n
  const sec = `${fixed(v % 60_000_000_000n, 9)}s`
  if (h > 0n) return `${sign}${h}h${m}m${sec}`
  if (m > 0n) return `${sign}${m}m${sec}`
  return `${sign}${sec}`
}

/** formatDuration of a number of milliseconds (`30s`, `1.5s`, `500ms`, `1m30s`). */
export function formatDurationMs(ms: number): string {
  return formatDuration(Number.isInteger(ms) ? BigInt(ms) * 1_000_000n : BigInt(Math.trunc(ms * 1e6)))
}

/** `v / 10^digits` with the fraction's trailing zeros (and a bare point) left off. */
function fixed(v: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits)
  const frac = (v % scale).toString().padStart(digits, '0').replace(/0+$/, '')
  return `${v / scale}${frac === '' ? '' : `.${frac}`}`
}
