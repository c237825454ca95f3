/**
 * The subset of YAML 1.2 that configuration files use, parsed without a dependency:
 * block mappings and sequences (by indentation), flow sequences `[a, b]` and flow mappings
 * `{a: 1}` on one line, plain, 'single' and "double" quoted scalars, literal block scalars (`|`, `|-`),
 * comments, and a leading `---`. Plain scalars `true`/`false`, `null`/`~` and numbers are typed;
 * everything else is a string. Anchors, aliases, tags and multi-document streams are refused.
 * Errors are INVALID_ARGUMENT with the line number.
 */
import { CairnError } from '../errors/index.js'

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue }

interface Line {
  no: number
  indent: number
  text: string
}

function fail(line: number, message: string): never {
  throw new CairnError('INVALID_ARGUMENT', `YAML line ${line}: ${message}`)
}

/** Removes a trailing comment (a `#` outside quotes, at the start or after whitespace). */
function stripComment(s: string): string {
  let quote: string | undefined
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === '"' || c === "'") quote = c
    else if (c === '#' && (i === 0 || s[i - 1] === ' ' || s[i - 1] === '\t')) return s.slice(0, i)
  }
  return s
}

export function parseYaml(source: string): YamlValue {
  const raw = source.replace(/^\uFEFF/, '').split(/\r?\n/)
  const lines: Line[] = []
  let started = false
  for (let i = 0; i < raw.length; i++) {
    const full = raw[i] as string
    const indentMatch = /^( *)/.exec(full)
    const indent = indentMatch ? (indentMatch[1] as string).length : 0
    if (full.slice(indent).startsWith('\t')) fail(i + 1, 'tabs are not allowed for indentation')
    const text = stripComment(full).trimEnd()
    if (text.trim() === '') {
      lines.push({ no: i + 1, indent: -1, text: '' }) // kept for block scalars
      continue
    }
    if (!started && text.trim() === '---') {
      started = true
      continue
    }
    started = true
    if (text.trim() === '---' || text.trim() === '...') fail(i + 1, 'multiple documents are not supported')
    lines.push({ no: i + 1, indent, text: text.slice(indent) })
  }
  const p = new Parser(lines, raw)
  p.skipBlank()
  if (p.done()) return null
  const v = p.parseBlock(p.peek().indent)
  p.skipBlank()
  if (!p.done()) fail(p.peek().no, 'unexpected indentation')
  return v
}

class Parser {
  private i = 0
  constructor(private readonly lines: Line[], private readonly raw: string[]) {}

  done(): boolean {
    return this.i >= this.lines.length
  }

  peek(): Line {
    return this.lines[this.i] as Line
  }

  skipBlank(): void {
    while (!this.done() && this.peek().indent < 0) this.i++
  }

  parseBlock(indent: number): YamlValue {
    this.skipBlank()
    const first = this.peek()
    if (first.text === '-' || first.text.startsWith('- ')) return this.parseSequence(indent)
    if (splitKey(first.text) !== undefined) return this.parseMapping(indent)
    // a lone scalar
    this.i++
    return parseScalar(first.text, first.no)
  }

  private parseSequence(indent: number): YamlValue[] {
    const out: YamlValue[] = []
    for (;;) {
      this.skipBlank()
      if (this.done()) break
      const line = this.peek()
      if (line.indent < indent) break
      if (line.indent > indent) fail(line.no, 'unexpected indentation in a sequence')
      if (!(line.text === '-' || line.text.startsWith('- '))) break
      this.i++
      const rest = line.text === '-' ? '' : line.text.slice(2).trimStart()
      if (rest === '') {
        this.skipBlank()
        if (this.done() || this.peek().indent <= indent) out.push(null)
        else out.push(this.parseBlock(this.peek().indent))
        continue
      }
      const itemIndent = indent + (line.text.length - rest.length)
      if (rest === '-' || rest.startsWith('- ') || (splitKey(rest) !== undefined && !rest.startsWith('{') && !rest.startsWith('['))) {
        // an inline block: treat the rest as a line of its own at the item's indentation
        this.i--
        this.lines[this.i] = { no: line.no, indent: itemIndent, text: rest }
        out.push(this.parseBlock(itemIndent))
        continue
      }
      out.push(this.parseValue(rest, line.no, indent))
    }
    return out
  }

  private parseMapping(indent: number): { [key: string]: YamlValue } {
    const out: { [key: string]: YamlValue } = {}
    for (;;) {
      this.skipBlank()
      if (this.done()) break
      const line = this.peek()
      if (line.indent < indent) break
      if (line.indent > indent) fail(line.no, 'unexpected indentation in a mapping')
      const kv = splitKey(line.text)
      if (kv === undefined) break
      this.i++
      const [key, rest] = kv
      if (Object.hasOwn(out, key)) fail(line.no, `duplicate key ${JSON.stringify(key)}`)
      if (key === '__proto__') fail(line.no, 'key __proto__ is not allowed')
      if (rest === '') {
        this.skipBlank()
        if (this.done() || this.peek().indent < indent) out[key] = null
        else if (this.peek().indent === indent) {
          // a sequence may sit at the key's own indentation
          const next = this.peek()
          out[key] = next.text === '-' || next.text.startsWith('- ') ? this.parseSequence(indent) : null
        } else out[key] = this.parseBlock(this.peek().indent)
        continue
      }
      out[key] = this.parseValue(rest, line.no, indent)
    }
    return out
  }

  /** A value after `key:` or `- `: a block scalar, a flow collection or a scalar. */
  private parseValue(rest: string, no: number, parentIndent: number): YamlValue {
    if (rest === '|' || rest === '|-' || rest === '|+') return this.blockScalar(rest, parentIndent)
    if (rest.startsWith('&') || rest.startsWith('*') || rest.startsWith('!')) fail(no, 'anchors, aliases and tags are not supported')
    if (rest.startsWith('[') || rest.startsWith('{')) {
      const f = new FlowParser(rest, no)
      const v = f.value()
      f.end()
      return v
    }
    return parseScalar(rest, no)
  }

  private blockScalar(indicator: string, parentIndent: number): string {
    const parts: string[] = []
    let blockIndent = -1
    while (!this.done()) {
      const line = this.peek()
      // the raw line: comments are content in a block scalar (a comment-only line was made blank)
      const raw = this.raw[line.no - 1] ?? ''
      const blank = raw.trim() === ''
      if (!blank) {
        const indent = raw.length - raw.trimStart().length
        if (indent <= parentIndent) break
        if (blockIndent < 0) blockIndent = indent
        if (indent < blockIndent) break
      }
      this.i++
      parts.push(blank ? '' : raw.slice(blockIndent))
    }
    let text = parts.join('\n')
    if (indicator === '|+') return `${text}\n`
    text = text.replace(/\n+$/, '')
    return indicator === '|-' ? text : `${text}\n`
  }
}

/** `key: rest` (or `key:`), with a plain or quoted key; undefined when the line is no mapping entry. */
function splitKey(text: string): [string, string] | undefined {
  let key: string
  let after: number
  if (text.startsWith('"') || text.startsWith("'")) {
    const end = findQuoteEnd(text, 0)
    if (end < 0) return undefined
    key = parseScalar(text.slice(0, end + 1), 0) as string
    after = end + 1
    if (text[after] !== ':') return undefined
  } else {
    const idx = text.search(/:(?: |$)/)
    if (idx <= 0) return undefined
    key = text.slice(0, idx).trim()
    if (key === '' || /^[[\]{},#&*!|>%@`]/.test(key)) return undefined
    after = idx
  }
  const rest = text.slice(after + 1)
  if (rest !== '' && !rest.startsWith(' ')) return undefined
  return [key, rest.trim()]
}

function findQuoteEnd(s: string, start: number): number {
  const q = s[start]
  for (let i = start + 1; i < s.length; i++) {
    if (q === '"' && s[i] === '\\') {
      i++
      continue
    }
    if (s[i] === q) {
      if (q === "'" && s[i + 1] === "'") {
        i++
        continue
      }
      return i
    }
  }
  return -1
}

function parseScalar(text: string, no: number): YamlValue {
  const s = text.trim()
  if (s.startsWith('"')) {
    const end = findQuoteEnd(s, 0)
    if (end !== s.length - 1) fail(no, 'unterminated or trailing text after a double-quoted string')
    try {
      return JSON.parse(s.replace(/\\\//g, '/').replace(/\t/g, '\\t')) as string
    } catch {
      fail(no, 'invalid escape in a double-quoted string')
    }
  }
  if (s.startsWith("'")) {
    const end = findQuoteEnd(s, 0)
    if (end !== s.length - 1) fail(no, 'unterminated or trailing text after a single-quoted string')
    return s.slice(1, -1).replace(/''/g, "'")
  }
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null
  if (s === 'true' || s === 'True' || s === 'TRUE') return true
  if (s === 'false' || s === 'False' || s === 'FALSE') return false
  if (/^[-+]?(?:0|[1-9][0-9]*)$/.test(s)) return Number(s)
  if (/^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(s)) return Number(s)
  if (/^0x[0-9a-fA-F]+$/.test(s)) return Number.parseInt(s.slice(2), 16)
  if (/^0o[0-7]+$/.test(s)) return Number.parseInt(s.slice(2), 8)
  if (s.startsWith('&') || s.startsWith('*') || s.startsWith('!')) fail(no, 'anchors, aliases and tags are not supported')
  return s
}

/** One-line flow collections: `[a, "b", {c: 1}]`, `{a: 1, b: [x, y]}`. */
class FlowParser {
  private pos = 0
  constructor(private readonly s: string, private readonly no: number) {}

  end(): void {
    this.ws()
    if (this.pos !== this.s.length) fail(this.no, `unexpected text after a flow collection: ${this.s.slice(this.pos)}`)
  }

  private ws(): void {
    while (this.s[this.pos] === ' ') this.pos++
  }

  value(): YamlValue {
    this.ws()
    const c = this.s[this.pos]
    if (c === '[') return this.seq()
    if (c === '{') return this.map()
    return this.scalar()
  }

  private seq(): YamlValue[] {
    this.pos++
    const out: YamlValue[] = []
    this.ws()
    if (this.s[this.pos] === ']') {
      this.pos++
      return out
    }
    for (;;) {
      out.push(this.value())
      this.ws()
      const c = this.s[this.pos++]
      if (c === ']') return out
      if (c !== ',') fail(this.no, 'expected , or ] in a flow sequence')
      this.ws()
      if (this.s[this.pos] === ']') {
        this.pos++
        return out
      }
    }
  }

  private map(): { [key: string]: YamlValue } {
    this.pos++
    const out: { [key: string]: YamlValue } = {}
    this.ws()
    if (this.s[this.pos] === '}') {
      this.pos++
      return out
    }
    for (;;) {
      this.ws()
      const key = this.scalar(true)
      if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') fail(this.no, 'invalid key in a flow mapping')
      const k = String(key)
      if (k === '__proto__') fail(this.no, 'key __proto__ is not allowed')
      this.ws()
      if (this.s[this.pos] !== ':') fail(this.no, 'expected : in a flow mapping')
      this.pos++
      out[k] = this.value()
      this.ws()
      const c = this.s[this.pos++]
      if (c === '}') return out
      if (c !== ',') fail(this.no, 'expected , or } in a flow mapping')
    }
  }

  private scalar(isKey = false): YamlValue {
    this.ws()
    const c = this.s[this.pos]
    if (c === '"' || c === "'") {
      const end = findQuoteEnd(this.s, this.pos)
      if (end < 0) fail(this.no, 'unterminated string')
      const v = parseScalar(this.s.slice(this.pos, end + 1), this.no)
      this.pos = end + 1
      return v
    }
    const stop = isKey ? /[,:\]}]/ : /[,\]}]/
    let end = this.pos
    while (end < this.s.length && !stop.test(this.s[end] as string)) end++
    const text = this.s.slice(this.pos, end)
    this.pos = end
    return parseScalar(text, this.no)
  }
}
