/**
 * Word splitting and variable substitution as the Dockerfile frontend does them (BuildKit's
 * shell lexer, syntax 1.x): single quotes are literal, double quotes group and let `$` expand,
 * the escape character (`\` or the escape directive's `` ` ``) escapes the next character, and
 * `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
 * `${VAR:?message}`, `${VAR?message}`, `${VAR#pattern}`, `${VAR##pattern}`, `${VAR%pattern}`,
 * `${VAR%%pattern}` and `${VAR/pattern/replacement}` expand.
 *
 * Our own code: dockerfile-ast (which finds the instructions) keeps arguments as written and
 * does not expand them; this is the part of the grammar that decides what a build actually does.
 */
import { CairnError } from '../errors/index.js'

export type Env = ReadonlyMap<string, string>

/** A map of `K=V` strings (the last one of a name wins). */
export function envMap(list: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>()
  for (const e of list ?? []) {
    const i = e.indexOf('=')
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1))
    else if (i < 0) m.set(e, '')
  }
  return m
}

/**
 * Splits on unquoted whitespace, keeping quotes and escapes in the words (BuildKit's
 * parser-level split; each word is expanded later with `expandWord`).
 */
export function splitWords(s: string, escape = '\\'): string[] {
  const out: string[] = []
  let cur = ''
  let inWord = false
  let quote: string | undefined
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (quote === undefined && (c === ' ' || c === '\t' || c === '\n' || c === '\r')) {
      if (inWord) out.push(cur)
      cur = ''
      inWord = false
      continue
    }
    inWord = true
    cur += c
    if (c === escape && quote !== "'" && i + 1 < s.length) {
      cur += s[++i] as string
      continue
    }
    if (quote === undefined && (c === '"' || c === "'")) quote = c
    else if (quote === c) quote = undefined
  }
  if (inWord) out.push(cur)
  return out
}

class Lexer {
  private i = 0
  constructor(private readonly s: string, private readonly env: Env, private readonly escape: string) {}

  /** The words of the input; with `split`, unquoted expansions split on whitespace too. */
  words(split: boolean): string[] {
    const out: string[] = []
    let cur = ''
    let has = false
    const push = (): void => {
      if (has) out.push(cur)
      cur = ''
      has = false
    }
    while (this.i < this.s.length) {
      const c = this.s[this.i] as string
      if (split && (c === ' ' || c === '\t' || c === '\n')) {
        this.i++
        push()
        continue
      }
      if (c === "'") {
        this.i++
        cur += this.single()
        has = true
      } else if (c === '"') {
        this.i++
        cur += this.double()
        has = true
      } else if (c === this.escape) {
        this.i++
        if (this.i < this.s.length) cur += this.s[this.i++] as string
        else cur += c
        has = true
      } else if (c === '$') {
        const v = this.dollar()
        if (split) {
          // unquoted: the value's whitespace separates words
          const parts = v.split(/[ \t\n]+/)
          parts.forEach((p, k) => {
            if (k > 0) push()
            cur += p
            if (p !== '') has = true
          })
        } else {
          cur += v
          has = true
        }
      } else {
        cur += c
        this.i++
        has = true
      }
    }
    push()
    return out
  }

  private single(): string {
    const end = this.s.indexOf("'", this.i)
    if (end < 0) throw new CairnError('INVALID_ARGUMENT', `unexpected end of statement while looking for matching single-quote`)
    const v = this.s.slice(this.i, end)
    this.i = end + 1
    return v
  }

  private double(): string {
    let out = ''
    while (this.i < this.s.length) {
      const c = this.s[this.i] as string
      if (c === '"') {
        this.i++
        return out
      }
      if (c === this.escape) {
        const n = this.s[this.i + 1]
        if (n === '"' || n === '$' || n === this.escape) {
          out += n
          this.i += 2
          continue
        }
        out += c
        this.i++
        continue
      }
      if (c === '$') {
        out += this.dollar()
        continue
      }
      out += c
      this.i++
    }
    throw new CairnError('INVALID_ARGUMENT', 'unexpected end of statement while looking for matching double-quote')
  }

  /** At a `$`: the expansion (or a literal `$`). */
  private dollar(): string {
    this.i++
    const c = this.s[this.i]
    if (c === '{') {
      this.i++
      return this.braced()
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]/.exec(this.s.slice(this.i))
    if (!m) return '$'
    this.i += m[0].length
    return this.env.get(m[0]) ?? ''
  }

  private braced(): string {
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]+/.exec(this.s.slice(this.i))
    if (!m) throw new CairnError('INVALID_ARGUMENT', `bad substitution: \${${this.s.slice(this.i, this.s.indexOf('}', this.i))}}`)
    const name = m[0]
    this.i += name.length
    const value = this.env.get(name)
    if (this.s[this.i] === '}') {
      this.i++
      return value ?? ''
    }
    let op = this.s[this.i] as string
    this.i++
    if (op === ':') {
      op += this.s[this.i] ?? ''
      this.i++
    } else if ((op === '#' || op === '%') && this.s[this.i] === op) {
      op += op
      this.i++
    }
    const word = this.wordUntilBrace()
    const unset = value === undefined
    const empty = unset || value === ''
    switch (op) {
      case ':-': return empty ? word : value
      case '-': return unset ? word : value
      case ':+': return empty ? '' : word
      case '+': return unset ? '' : word
      case ':?':
      case '?':
        if (op === ':?' ? empty : unset) throw new CairnError('INVALID_ARGUMENT', `${name}: ${word || 'is not allowed to be unset'}`)
        return value ?? ''
      case '#':
      case '##':
      case '%':
      case '%%':
        return trimPattern(value ?? '', word, op)
      case '/': {
        const slash = word.indexOf('/')
        const pat = slash < 0 ? word : word.slice(0, slash)
        const repl = slash < 0 ? '' : word.slice(slash + 1)
        const re = globRegExp(pat, false)
        const src = value ?? ''
        for (let a = 0; a < src.length; a++) {
          for (let b = src.length; b > a; b--) {
            if (re.test(src.slice(a, b))) return src.slice(0, a) + repl + src.slice(b)
          }
        }
        return src
      }
      default:
        throw new CairnError('INVALID_ARGUMENT', `unsupported modifier (${op}) in substitution`)
    }
  }

  /** The word of a `${VAR:-word}` up to its closing brace, itself expanded. */
  private wordUntilBrace(): string {
    let out = ''
    let depth = 0
    while (this.i < this.s.length) {
      const c = this.s[this.i] as string
      if (c === '}' && depth === 0) {
        this.i++
        return out
      }
      if (c === this.escape && this.i + 1 < this.s.length) {
        out += this.s[this.i + 1] as string
        this.i += 2
        continue
      }
      if (c === "'") {
        this.i++
        out += this.single()
        continue
      }
      if (c === '"') {
        this.i++
        out += this.double()
        continue
      }
      if (c === '$') {
        out += this.dollar()
        continue
      }
      if (c === '{') depth++
      if (c === '}') depth--
      out += c
      this.i++
    }
    throw new CairnError('INVALID_ARGUMENT', 'syntax error: missing \'}\'')
  }
}

function trimPattern(value: string, pattern: string, op: string): string {
  const re = globRegExp(pattern, true)
  if (op === '#' || op === '##') {
    const lens = [...Array(value.length + 1).keys()]
    if (op === '##') lens.reverse()
    for (const n of lens) if (re.test(value.slice(0, n))) return value.slice(n)
    return value
  }
  const starts = [...Array(value.length + 1).keys()]
  if (op === '%') starts.reverse()
  for (const n of starts) if (re.test(value.slice(n))) return value.slice(0, n)
  return value
}

/** A shell pattern (`*`, `?`, `[...]`) as an anchored regular expression. */
function globRegExp(pattern: string, _anchored: boolean): RegExp {
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') re += '[\\s\\S]*'
    else if (c === '?') re += '[\\s\\S]'
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2)
      if (end < 0) re += '\\['
      else {
        let body = pattern.slice(i + 1, end)
        if (body.startsWith('!') || body.startsWith('^')) body = `^${body.slice(1)}`
        re += `[${body.replace(/\\/g, '\\\\')}]`
        i = end
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** One word with its quotes removed and its variables expanded (ENV, LABEL, COPY sources, …). */
export function expandWord(word: string, env: Env, escape = '\\'): string {
  return new Lexer(word, env, escape).words(false).join('')
}

/** Words, expanded, split on unquoted whitespace, expansions included (EXPOSE, VOLUME, FROM). */
export function expandWords(s: string, env: Env, escape = '\\'): string[] {
  return new Lexer(s, env, escape).words(true)
}
