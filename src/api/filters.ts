/**
 * Docker's `--filter key=value` for `images`, `ps` and `image prune`: the same keys, the same
 * matching (repeated values of one key OR'd, different keys AND'd, `label` values AND'd), the
 * same errors. The CLI splits `key=value`; everything else is here so that an Engine API server
 * can pass its `filters` query parameter (a map of key → values) to the same functions.
 */
import { CairnError } from '../errors/index.js'
import { parseDurationMs } from '../util/duration.js'

/** Filter values by key, as Docker's API carries them (`{"label": ["a=b"], "dangling": ["true"]}`). */
export type FilterArgs = Readonly<Record<string, readonly string[]>>

export const ImageFilterKeys = ['dangling', 'label', 'before', 'since', 'reference'] as const
export const ContainerFilterKeys = ['ancestor', 'before', 'exited', 'health', 'id', 'isolation', 'label', 'name', 'status', 'publish', 'expose', 'since', 'volume', 'network', 'is-task'] as const
export const ImagePruneFilterKeys = ['dangling', 'until', 'label', 'label!'] as const

/** Docker's container states (the `status` filter accepts these only). */
export const ContainerStatusValues = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'] as const

/** `invalid filter 'foo'`: a key the verb does not know. */
export function invalidFilter(key: string, value?: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `invalid filter '${value === undefined ? key : `${key}=${value}`}'`)
}

/** Parses `key=value` arguments of `--filter` (the CLI's part): Docker's message for one without `=`. */
export function parseFilterArgs(args: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const a of args) {
    const i = a.indexOf('=')
    if (i < 0) throw new CairnError('INVALID_ARGUMENT', `invalid argument "${a}" for "-f, --filter" flag: bad format of filter (expected name=value)`)
    const key = a.slice(0, i).trim().toLowerCase()
    const value = a.slice(i + 1).trim()
    ;(out[key] ??= []).push(value)
  }
  return out
}

/** Throws Docker's error for the first key not in `allowed`. */
export function validateFilterKeys(args: FilterArgs, allowed: readonly string[]): void {
  for (const key of Object.keys(args)) if (!allowed.includes(key)) throw invalidFilter(key)
}

export function values(args: FilterArgs, key: string): readonly string[] {
  return args[key] ?? []
}

/** Docker's `filters.Match`: no filter for the key, or one of its values (a regular expression) matches. */
export function matchRegexp(args: FilterArgs, key: string, ...sources: string[]): boolean {
  const vs = values(args, key)
  if (vs.length === 0) return true
  for (const v of vs) {
    let re: RegExp
    try {
      re = new RegExp(v)
    } catch {
      continue
    }
    if (sources.some((s) => re.test(s))) return true
  }
  return false
}

/** Docker's `MatchKVList` for `label`: every `k` or `k=v` given must hold. */
export function matchLabels(args: FilterArgs, key: string, labels: Readonly<Record<string, string>> | null | undefined): boolean {
  const vs = values(args, key)
  if (vs.length === 0) return true
  const l = labels ?? {}
  return vs.every((v) => {
    const i = v.indexOf('=')
    if (i < 0) return Object.prototype.hasOwnProperty.call(l, v)
    const k = v.slice(0, i)
    return Object.prototype.hasOwnProperty.call(l, k) && l[k] === v.slice(i + 1)
  })
}

/** `dangling=true|false` → the wanted value, or undefined when absent; anything else is Docker's error. */
export function danglingFilter(args: FilterArgs): boolean | undefined {
  const vs = values(args, 'dangling')
  if (vs.length === 0) return undefined
  if (vs.some((v) => v.toLowerCase() === 'true' || v === '1')) return true
  if (vs.every((v) => v.toLowerCase() === 'false' || v === '0')) return false
  throw invalidFilter('dangling', `[${vs.join(' ')}]`)
}

/**
 * Go's path.Match, which Docker's `reference=` filter uses: `*` any run of characters but `/`,
 * `?` one character but `/`, `[…]` a class (`[^…]` negated, ranges), `\` escapes.
 */
export function pathMatch(pattern: string, name: string): boolean {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '\\') {
      i++
      if (i >= pattern.length) return false
      re += escapeRe(pattern[i] as string)
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) return false
      let cls = pattern.slice(i + 1, end)
      if (cls.startsWith('^')) cls = `^${cls.slice(1).replace(/[\]\\]/g, '\\$&')}`
      else cls = cls.replace(/[\]\\^]/g, '\\$&')
      re += `(?![/])[${cls}]`
      i = end
    } else re += escapeRe(c)
  }
  try {
    return new RegExp(`${re}$`, 'u').test(name)
  } catch {
    return false
  }
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/**
 * Docker's `until=` for prune: a Go duration before now (`10m`, `1h30m`), an RFC 3339 time, a
 * date, or Unix seconds. Returns milliseconds since the epoch.
 */
export function parseUntil(value: string, now = Date.now()): number {
  const dur = parseDurationMs(value)
  if (dur !== undefined) return now - dur
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value)) {
    const t = Date.parse(/[T ]/.test(value) || value.length > 10 ? value : `${value}T00:00:00Z`)
    if (!Number.isNaN(t)) return t
  }
  throw new CairnError('INVALID_ARGUMENT', `failed to parse value as time or duration: "${value}"`)
}
