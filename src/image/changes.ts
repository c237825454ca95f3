/**
 * The Dockerfile instructions that `import -c` and `commit -c` accept, applied to an image's
 * runtime config the way Docker applies them.
 */
import { posix } from 'node:path'
import { CairnError } from '../errors/index.js'
import type { ContainerConfig, HealthConfig } from '../oci/types.js'
import { parseDurationMs } from '../util/duration.js'

const ChangeInstructions = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR'] as const

/** Applies each change to a copy of `base` and returns it. */
export function applyChanges(base: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const cfg: ContainerConfig = structuredClone(base)
  for (const change of changes) applyChange(cfg, change)
  return cfg
}

function applyChange(cfg: ContainerConfig, change: string): void {
  const line = change.replace(/\\\r?\n/g, ' ').trim()
  const m = /^(\S+)\s*([\s\S]*)$/.exec(line)
  if (!m || line === '') throw invalid(change, 'empty instruction')
  const instr = (m[1] as string).toUpperCase()
  const rest = (m[2] as string).trim()
  switch (instr) {
    case 'CMD':
      cfg.Cmd = commandForm(rest, change)
      return
    case 'ENTRYPOINT':
      cfg.Entrypoint = commandForm(rest, change)
      // Docker: a new ENTRYPOINT resets a CMD inherited from the base
      return
    case 'ENV': {
      const pairs = keyValues(rest, change, true, envMap(cfg.Env))
      const env = [...(cfg.Env ?? [])]
      for (const [k, v] of pairs) {
        const i = env.findIndex((e) => e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')) === k)
        if (i >= 0) env[i] = `${k}=${v}`
        else env.push(`${k}=${v}`)
      }
      cfg.Env = env
      return
    }
    case 'HEALTHCHECK':
      cfg.Healthcheck = healthcheck(rest, change)
      return
    case 'LABEL': {
      const labels = { ...(cfg.Labels ?? {}) }
      for (const [k, v] of keyValues(rest, change, false, envMap(cfg.Env))) labels[k] = v
      cfg.Labels = labels
      return
    }
    case 'EXPOSE': {
      if (rest === '') throw invalid(change, 'EXPOSE requires at least one argument')
      const ports = { ...(cfg.ExposedPorts ?? {}) }
      for (const p of words(rest, change)) for (const key of exposedPorts(p, change)) ports[key] = {}
      cfg.ExposedPorts = ports
      return
    }
    case 'ONBUILD': {
      if (rest === '') throw invalid(change, 'ONBUILD requires at least one argument')
      const trigger = (/^\S+/.exec(rest)?.[0] ?? '').toUpperCase()
      if (trigger === 'ONBUILD' || trigger === 'FROM' || trigger === 'MAINTAINER') {
        throw invalid(change, `${trigger} isn't allowed as an ONBUILD trigger`)
      }
      cfg.OnBuild = [...(cfg.OnBuild ?? []), rest]
      return
    }
    case 'USER':
      if (rest === '') throw invalid(change, 'USER requires exactly one argument')
      cfg.User = expand(rest, envMap(cfg.Env))
      return
    case 'VOLUME': {
      if (rest === '') throw invalid(change, 'VOLUME specified can not be an empty string')
      const vols = { ...(cfg.Volumes ?? {}) }
      const list = rest.startsWith('[') ? jsonArray(rest, change) : words(rest, change)
      for (const v of list) {
        if (v.trim() === '') throw invalid(change, 'VOLUME specified can not be an empty string')
        vols[v] = {}
      }
      cfg.Volumes = vols
      return
    }
    case 'WORKDIR': {
      if (rest === '') throw invalid(change, 'WORKDIR requires exactly one argument')
      const dir = expand(unquote(rest), envMap(cfg.Env))
      cfg.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join(cfg.WorkingDir || '/', dir)
      return
    }
    default:
      throw invalid(change, `${instr} is not a valid change command (accepted: ${ChangeInstructions.join(', ')})`)
  }
}

/**
 * `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D] [--retries=N] CMD …`
 * or `HEALTHCHECK NONE`, as the Dockerfile builder reads it (durations kept in nanoseconds).
 */
function healthcheck(rest: string, change: string): HealthConfig {
  let text = rest
  const out: HealthConfig = {}
  const flags: Record<string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'> = {
    interval: 'Interval', timeout: 'Timeout', 'start-period': 'StartPeriod', 'start-interval': 'StartInterval',
  }
  for (let m = /^--([a-z-]+)=(\S*)\s*/.exec(text); m; m = /^--([a-z-]+)=(\S*)\s*/.exec(text)) {
    const [all, name = '', value = ''] = m
    text = text.slice(all.length)
    if (name === 'retries') {
      if (!/^[+-]?\d+$/.test(value)) throw invalid(change, `--retries: invalid value ${JSON.stringify(value)}`)
      const n = Number(value)
      if (n < 0) throw invalid(change, '--retries cannot be negative')
      out.Retries = n
      continue
    }
    const key = flags[name]
    if (!key) throw invalid(change, `unknown flag: --${name}`)
    const ms = parseDurationMs(value)
    if (ms === undefined) throw invalid(change, `--${name}: time: invalid duration ${JSON.stringify(value)}`)
    if (ms !== 0 && ms < 1) throw invalid(change, `Interval ${JSON.stringify(`--${name}`)} cannot be less than 1ms`)
    if (ms < 0) throw invalid(change, `Interval ${JSON.stringify(`--${name}`)} cannot be negative`)
    if (ms > 0) out[key] = Math.round(ms * 1e6)
  }
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text)
  const type = (m?.[1] ?? '').toUpperCase()
  const args = (m?.[2] ?? '').trim()
  if (type === 'NONE') {
    if (args !== '' || Object.keys(out).length > 0) throw invalid(change, 'HEALTHCHECK NONE takes no arguments')
    return { Test: ['NONE'] }
  }
  if (type !== 'CMD') throw invalid(change, `Unknown type ${JSON.stringify(m?.[1] ?? '')} in HEALTHCHECK (try CMD)`)
  if (args === '') throw invalid(change, 'Missing command after HEALTHCHECK CMD')
  let test: string[] | undefined
  if (args.startsWith('[')) {
    try {
      test = ['CMD', ...jsonArray(args, change)]
    } catch {
      test = undefined // the shell form, as Docker falls back to
    }
  }
  return { Test: test ?? ['CMD-SHELL', args], ...out }
}

function invalid(change: string, why: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `invalid change ${JSON.stringify(change)}: ${why}`)
}

/** Exec form (JSON array) or shell form (`/bin/sh -c …`). */
function commandForm(rest: string, change: string): string[] {
  if (rest.startsWith('[')) {
    try {
      return jsonArray(rest, change)
    } catch {
      // Docker falls back to the shell form when the JSON does not parse
    }
  }
  if (rest === '') throw invalid(change, 'requires at least one argument')
  return ['/bin/sh', '-c', rest]
}

function jsonArray(s: string, change: string): string[] {
  let v: unknown
  try {
    v = JSON.parse(s)
  } catch {
    throw invalid(change, 'not a valid JSON array')
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(change, 'the JSON form must be an array of strings')
  return v
}

function envMap(env: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>()
  for (const e of env ?? []) {
    const i = e.indexOf('=')
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1))
  }
  return m
}

/** `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` as the Dockerfile builder expands them. */
function expand(s: string, env: Map<string, string>): string {
  return s.replace(/\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, name1?: string, op?: string, word?: string, name2?: string) => {
    if (m === '\\$') return '$'
    const name = (name1 ?? name2) as string
    const val = env.get(name)
    if (op === '-') return val === undefined || val === '' ? (word ?? '') : val
    if (op === '+') return val === undefined || val === '' ? '' : (word ?? '')
    return val ?? ''
  })
}

/**
 * Splits shell-like words: quotes group and are removed, backslash escapes the next character.
 * Expansion happens per word, outside single quotes.
 */
function words(s: string, change: string, env?: Map<string, string>): string[] {
  const out: string[] = []
  let cur = ''
  let inWord = false
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (c === ' ' || c === '\t') {
      if (inWord) out.push(cur)
      cur = ''
      inWord = false
      continue
    }
    inWord = true
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i]
    } else if (c === '"' || c === "'") {
      const end = findClose(s, i, c)
      if (end < 0) throw invalid(change, `unmatched ${c}`)
      let inner = s.slice(i + 1, end)
      if (c === '"') inner = inner.replace(/\\(["\\$])/g, '$1')
      cur += c === '"' && env ? expand(inner, env) : inner
      i = end
    } else if (c === '$' && env) {
      const m = /^\$\{[^}]*\}|^\$[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))
      if (m) {
        cur += expand(m[0], env)
        i += m[0].length - 1
      } else cur += c
    } else {
      cur += c
    }
  }
  if (inWord) out.push(cur)
  return out
}

function findClose(s: string, start: number, q: string): number {
  for (let j = start + 1; j < s.length; j++) {
    if (q === '"' && s[j] === '\\') {
      j++
      continue
    }
    if (s[j] === q) return j
  }
  return -1
}

function unquote(s: string): string {
  const w = words(s, s)
  return w.join(' ')
}

/** `k=v k2="v 2"`, or (ENV only) the legacy `k value with spaces`. */
function keyValues(rest: string, change: string, legacy: boolean, env: Map<string, string>): [string, string][] {
  if (rest === '') throw invalid(change, 'requires at least one argument')
  const first = /^\S+/.exec(rest)?.[0] ?? ''
  if (!first.includes('=')) {
    if (!legacy) throw invalid(change, 'LABEL must be of the form key=value')
    const m = /^(\S+)\s+([\s\S]+)$/.exec(rest)
    if (!m) throw invalid(change, 'ENV must have two arguments')
    return [[m[1] as string, expand(m[2] as string, env)]]
  }
  const pairs: [string, string][] = []
  for (const w of words(rest, change, env)) {
    const i = w.indexOf('=')
    if (i <= 0) throw invalid(change, `syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`)
    pairs.push([w.slice(0, i), w.slice(i + 1)])
  }
  return pairs
}

function exposedPorts(spec: string, change: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec)
  if (!m) throw invalid(change, `invalid port ${JSON.stringify(spec)}`)
  const start = Number(m[1])
  const end = m[2] !== undefined ? Number(m[2]) : start
  const proto = (m[3] ?? 'tcp').toLowerCase()
  if (start < 1 || end > 65535 || end < start) throw invalid(change, `invalid port range ${JSON.stringify(spec)}`)
  const out: string[] = []
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`)
  return out
}
