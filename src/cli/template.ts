/**
 * Go's text/template as Docker's CLI uses it for `--format`: a lexer, a parser and an evaluator,
 * with Docker's functions (`json`, `join`, `split`, `upper`, `lower`, `title`, `truncate`, `pad`)
 * and its formatter conventions (`table` with a header row, `json`, `\t`/`\n` escapes).
 *
 * Hand-written because no maintained engine of Go's template language exists for Node.js (the
 * npm packages that claim it cover a fraction of the grammar and none of its error messages).
 * The structure follows Go's own text/template/parse and text/template/exec so that the same
 * template gives the same output and, when it is wrong, the same error text
 * (`template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"`,
 * `template: :1: unexpected "}" in operand`), which scripts written for Docker match on.
 *
 * Values are JavaScript values read as Go would see them: strings, numbers (integral numbers are
 * Go ints, others float64), booleans, `null` (nil), arrays (slices), plain objects (Go maps:
 * printed `map[k:v]` with sorted keys) and objects made with `goStruct` (Go structs: fields in
 * order, printed `{a b}`, an unknown field is an error naming the struct's type). A struct may
 * carry methods (`goMethod`), such as Docker's `.Label "name"`.
 */
import { tabwrite } from '../util/format.js'

// ---------------------------------------------------------------------------------------------
// The value model

const STRUCT = Symbol('go.struct')
const JSON_OF = Symbol('go.json')
const METHODS = Symbol('go.methods')

type ParamType = 'any' | 'string' | 'int'

/** A method of a struct: `{{.Label "com.example.vendor"}}`. */
class GoMethod {
  constructor(readonly params: readonly ParamType[], readonly fn: (...args: never[]) => unknown) {}
}

export function goMethod(params: readonly ParamType[], fn: (...args: never[]) => unknown): GoMethod {
  return new GoMethod(params, fn)
}

export interface StructOptions {
  /** How `{{json .}}` renders it (Docker's formatter contexts marshal themselves). */
  json?: () => string
  /** Its fields are Go methods without arguments (Docker's formatter contexts): `.ID 1` is Go's arity error. */
  methods?: boolean
}

/** Marks `fields` as a Go struct of the named type (as Go prints it in errors: `*formatter.ContainerContext`). */
export function goStruct<T extends object>(typeName: string, fields: T, opts: StructOptions = {}): T {
  Object.defineProperty(fields, STRUCT, { value: typeName, enumerable: false })
  if (opts.json) Object.defineProperty(fields, JSON_OF, { value: opts.json, enumerable: false })
  if (opts.methods) Object.defineProperty(fields, METHODS, { value: true, enumerable: false })
  return fields
}

/**
 * A Docker formatter context (`*formatter.ContainerContext`, …): a struct whose fields are
 * methods, and whose `{{json .}}` is its fields as a JSON object with sorted keys and `<>&` escaped.
 */
export function goContext<T extends object>(typeName: string, fields: T): T {
  const plain = Object.fromEntries(Object.entries(fields).filter(([, v]) => !(v instanceof GoMethod)))
  return goStruct(typeName, fields, { methods: true, json: () => goJSON(plain, true) })
}

function structType(v: object): string | undefined {
  return (v as { [STRUCT]?: string })[STRUCT]
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoMethod)
}

/** Go's type name of a value, for error messages. */
function typeName(v: unknown): string {
  if (v === undefined || v === null) return '<nil>'
  if (typeof v === 'string') return 'string'
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64'
  if (Array.isArray(v)) return v.every((e) => typeof e === 'string') && v.length > 0 ? '[]string' : '[]interface {}'
  if (typeof v === 'object') return structType(v) ?? 'map[string]interface {}'
  return 'interface {}'
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A template that does not parse: `template: NAME:LINE: message`. */
class TemplateParseError extends Error {
  override readonly name = 'TemplateParseError'
}

/** A template that fails while it runs: `template: NAME:LINE:COL: executing "NAME" at <node>: message`. */
export class TemplateExecError extends Error {
  override readonly name = 'TemplateExecError'
  /** What the template had written before it failed (Go's Execute leaves it in the writer). */
  output = ''
}

// ---------------------------------------------------------------------------------------------
// Lexer (text/template/parse/lex.go)

const T = {
  error: 0, bool: 1, char: 2, charConstant: 3, comment: 4, assign: 5, declare: 6, eof: 7, field: 8,
  identifier: 9, leftDelim: 10, leftParen: 11, number: 12, pipe: 13, rawString: 14, rightDelim: 15,
  rightParen: 16, space: 17, string: 18, text: 19, variable: 20,
  keyword: 30, block: 31, break: 32, continue: 33, dot: 34, define: 35, else: 36, end: 37, if: 38,
  nil: 39, range: 40, template: 41, with: 42,
} as const
type ItemType = (typeof T)[keyof typeof T]

const KEYWORDS: Record<string, ItemType> = {
  '.': T.dot, block: T.block, break: T.break, continue: T.continue, define: T.define, else: T.else,
  end: T.end, if: T.if, range: T.range, nil: T.nil, template: T.template, with: T.with,
}

interface Item {
  typ: ItemType
  pos: number
  val: string
  line: number
}

function itemString(i: Item): string {
  if (i.typ === T.eof) return 'EOF'
  if (i.typ === T.error) return i.val
  if (i.typ > T.keyword) return `<${i.val}>`
  const runes = Array.from(i.val)
  if (runes.length > 10) return `${goQuote(runes.slice(0, 10).join(''))}...`
  return goQuote(i.val)
}

const LEFT = '{{'
const RIGHT = '}}'
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n'
const isAlphaNumeric = (c: string | undefined): boolean => c !== undefined && (c === '_' || /^[\p{L}\p{Nd}]$/u.test(c))
const hasLeftTrimMarker = (s: string): boolean => s.length >= 2 && s[0] === '-' && isSpace(s[1])
const hasRightTrimMarker = (s: string): boolean => s.length >= 2 && isSpace(s[0]) && s[1] === '-'

/** Go's %#U: `U+007D '}'`. */
function runeDesc(r: string): string {
  const cp = r.codePointAt(0) ?? 0
  const hex = cp.toString(16).toUpperCase().padStart(4, '0')
  return /^\P{C}$/u.test(r) ? `U+${hex} '${r}'` : `U+${hex}`
}

class Lexer {
  readonly items: Item[] = []
  private pos = 0
  private start = 0
  private line = 1
  private startLine = 1
  private parenDepth = 0
  private insideAction = false

  constructor(private readonly input: string) {
    this.run()
  }

  private peekChar(): string | undefined {
    if (this.pos >= this.input.length) return undefined
    return String.fromCodePoint(this.input.codePointAt(this.pos) as number)
  }

  private next(): string | undefined {
    const c = this.peekChar()
    if (c === undefined) return undefined
    this.pos += c.length
    if (c === '\n') this.line++
    return c
  }

  private backup(c: string | undefined): void {
    if (c === undefined) return
    this.pos -= c.length
    if (c === '\n') this.line--
  }

  private emit(typ: ItemType): void {
    this.items.push({ typ, pos: this.start, val: this.input.slice(this.start, this.pos), line: this.startLine })
    this.start = this.pos
    this.startLine = this.line
  }

  private ignore(): void {
    this.line += countNewlines(this.input.slice(this.start, this.pos))
    this.start = this.pos
    this.startLine = this.line
  }

  /** Moves pos (and the line count) to `to` without emitting. */
  private skipTo(to: number): void {
    this.line += countNewlines(this.input.slice(this.pos, to))
    this.pos = to
  }

  private fail(msg: string): false {
    this.items.push({ typ: T.error, pos: this.start, val: msg, line: this.startLine })
    return false
  }

  private atRightDelim(): { delim: boolean; trim: boolean } {
    const rest = this.input.slice(this.pos)
    if (hasRightTrimMarker(rest) && rest.startsWith(RIGHT, 2)) return { delim: true, trim: true }
    if (rest.startsWith(RIGHT)) return { delim: true, trim: false }
    return { delim: false, trim: false }
  }

  private atTerminator(): boolean {
    const r = this.peekChar()
    if (r === undefined || isSpace(r)) return true
    if (r === '.' || r === ',' || r === '|' || r === ':' || r === ')' || r === '(') return true
    return this.input.startsWith(RIGHT, this.pos)
  }

  private run(): void {
    for (;;) {
      if (!this.insideAction) {
        if (!this.lexText()) return
      } else if (!this.lexInsideAction()) {
        return
      }
    }
  }

  /** Text up to the next `{{`; false when the input ended. */
  private lexText(): boolean {
    const x = this.input.indexOf(LEFT, this.pos)
    if (x < 0) {
      this.skipTo(this.input.length)
      if (this.pos > this.start) this.emit(T.text)
      this.items.push({ typ: T.eof, pos: this.pos, val: '', line: this.line })
      return false
    }
    this.skipTo(x)
    let trimLen = 0
    if (hasLeftTrimMarker(this.input.slice(x + LEFT.length))) {
      const text = this.input.slice(this.start, this.pos)
      trimLen = text.length - text.replace(/[ \t\r\n]+$/, '').length
    }
    this.pos -= trimLen
    if (this.pos > this.start) {
      this.line += countNewlines(this.input.slice(this.start, this.pos))
      this.emit(T.text)
    }
    this.pos += trimLen
    this.ignore()
    return this.lexLeftDelim()
  }

  private lexLeftDelim(): boolean {
    this.pos += LEFT.length
    const trim = hasLeftTrimMarker(this.input.slice(this.pos))
    const after = trim ? 2 : 0
    if (this.input.startsWith('/*', this.pos + after)) {
      this.pos += after
      this.ignore()
      return this.lexComment()
    }
    this.emit(T.leftDelim)
    this.pos += after
    this.ignore()
    this.parenDepth = 0
    this.insideAction = true
    return true
  }

  private lexComment(): boolean {
    this.pos += 2
    const x = this.input.indexOf('*/', this.pos)
    if (x < 0) return this.fail('unclosed comment')
    this.skipTo(x + 2)
    const { delim, trim } = this.atRightDelim()
    if (!delim) return this.fail('comment ends before closing delimiter')
    if (trim) this.pos += 2
    this.pos += RIGHT.length
    if (trim) this.skipTo(this.pos + leftTrimLength(this.input.slice(this.pos)))
    this.ignore()
    return true
  }

  private lexRightDelim(trim: boolean): boolean {
    if (trim) {
      this.pos += 2
      this.ignore()
    }
    this.pos += RIGHT.length
    this.emit(T.rightDelim)
    if (trim) {
      this.skipTo(this.pos + leftTrimLength(this.input.slice(this.pos)))
      this.ignore()
    }
    this.insideAction = false
    return true
  }

  private lexInsideAction(): boolean {
    const { delim, trim } = this.atRightDelim()
    if (delim) {
      if (this.parenDepth === 0) return this.lexRightDelim(trim)
      return this.fail('unclosed left paren')
    }
    const r = this.next()
    if (r === undefined) return this.fail('unclosed action')
    if (isSpace(r)) {
      this.backup(r)
      return this.lexSpace()
    }
    switch (r) {
      case '=': this.emit(T.assign); return true
      case ':':
        if (this.next() !== '=') return this.fail('expected :=')
        this.emit(T.declare)
        return true
      case '|': this.emit(T.pipe); return true
      case '"': return this.lexQuote()
      case '`': return this.lexRawQuote()
      case '$': return this.lexVariable()
      case "'": return this.lexChar()
      case '(':
        this.emit(T.leftParen)
        this.parenDepth++
        return true
      case ')':
        this.parenDepth--
        if (this.parenDepth < 0) return this.fail('unexpected right paren')
        this.emit(T.rightParen)
        return true
    }
    if (r === '.') {
      const n = this.input[this.pos]
      if (n === undefined || n < '0' || n > '9') return this.lexFieldOrVariable(T.field)
    }
    if (r === '.' || r === '+' || r === '-' || (r >= '0' && r <= '9')) {
      this.backup(r)
      return this.lexNumber()
    }
    if (isAlphaNumeric(r)) {
      this.backup(r)
      return this.lexIdentifier()
    }
    const cp = r.codePointAt(0) as number
    if (cp <= 0x7f && cp >= 0x20 && cp !== 0x7f) {
      this.emit(T.char)
      return true
    }
    return this.fail(`unrecognized character in action: ${runeDesc(r)}`)
  }

  private lexSpace(): boolean {
    let n = 0
    while (isSpace(this.peekChar())) {
      this.next()
      n++
    }
    const rest = this.input.slice(this.pos - 1)
    if (hasRightTrimMarker(rest) && rest.startsWith(RIGHT, 2)) {
      this.backup(this.input[this.pos - 1])
      if (n === 1) return true
    }
    this.emit(T.space)
    return true
  }

  private lexIdentifier(): boolean {
    let r: string | undefined
    for (;;) {
      r = this.next()
      if (!isAlphaNumeric(r)) {
        this.backup(r)
        break
      }
    }
    if (!this.atTerminator()) return this.fail(`bad character ${runeDesc(r ?? '')}`)
    const word = this.input.slice(this.start, this.pos)
    const kw = KEYWORDS[word]
    if (kw !== undefined && kw > T.keyword) this.emit(kw)
    else if (word === 'true' || word === 'false') this.emit(T.bool)
    else this.emit(T.identifier)
    return true
  }

  private lexVariable(): boolean {
    if (this.atTerminator()) {
      this.emit(T.variable)
      return true
    }
    return this.lexFieldOrVariable(T.variable)
  }

  private lexFieldOrVariable(typ: ItemType): boolean {
    if (this.atTerminator()) {
      this.emit(typ === T.variable ? T.variable : T.dot)
      return true
    }
    let r: string | undefined
    for (;;) {
      r = this.next()
      if (!isAlphaNumeric(r)) {
        this.backup(r)
        break
      }
    }
    if (!this.atTerminator()) return this.fail(`bad character ${runeDesc(r ?? '')}`)
    this.emit(typ)
    return true
  }

  private lexChar(): boolean {
    for (;;) {
      const r = this.next()
      if (r === '\\') {
        const n = this.next()
        if (n !== undefined && n !== '\n') continue
      }
      if (r === undefined || r === '\n' || (r === '\\')) return this.fail('unterminated character constant')
      if (r === "'") break
    }
    this.emit(T.charConstant)
    return true
  }

  private lexNumber(): boolean {
    const number = /^[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]+)?|0[oO][0-7_]*|0[bB][01_]*|[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]+)?)/
    const scan = (): boolean => {
      this.pos += number.exec(this.input.slice(this.pos))?.[0].length ?? 0
      if (!isAlphaNumeric(this.peekChar())) return true
      this.next()
      return false
    }
    let ok = scan()
    // a sign right after a number is Go's complex-number syntax (1+2i), which Docker's data never needs
    if (ok && (this.peekChar() === '+' || this.peekChar() === '-')) {
      scan()
      ok = false
    }
    if (!ok) return this.fail(`bad number syntax: ${goQuote(this.input.slice(this.start, this.pos))}`)
    this.emit(T.number)
    return true
  }

  private lexQuote(): boolean {
    for (;;) {
      let r = this.next()
      if (r === '\\') {
        r = this.next()
        if (r !== undefined && r !== '\n') continue
      }
      if (r === undefined || r === '\n') return this.fail('unterminated quoted string')
      if (r === '"') break
    }
    this.emit(T.string)
    return true
  }

  private lexRawQuote(): boolean {
    const x = this.input.indexOf('`', this.pos)
    if (x < 0) return this.fail('unterminated raw quoted string')
    this.skipTo(x + 1)
    this.emit(T.rawString)
    return true
  }
}

function countNewlines(s: string): number {
  let n = 0
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++
  return n
}

function leftTrimLength(s: string): number {
  return s.length - s.replace(/^[ \t\r\n]+/, '').length
}

// ---------------------------------------------------------------------------------------------
// Parse tree (text/template/parse/node.go)

type Node =
  | { kind: 'text'; pos: number; text: string }
  | { kind: 'comment'; pos: number }
  | { kind: 'action'; pos: number; line: number; pipe: PipeNode }
  | { kind: 'if' | 'with' | 'range'; pos: number; line: number; pipe: PipeNode; list: ListNode; elseList: ListNode | undefined }
  | { kind: 'template'; pos: number; line: number; name: string; pipe: PipeNode | undefined }
  | { kind: 'break' | 'continue'; pos: number; line: number }
  | ListNode

interface ListNode {
  kind: 'list'
  pos: number
  nodes: Node[]
}

interface PipeNode {
  kind: 'pipe'
  pos: number
  line: number
  isAssign: boolean
  decl: VariableNode[]
  cmds: CommandNode[]
}

interface CommandNode {
  kind: 'command'
  pos: number
  args: ArgNode[]
}

interface VariableNode { kind: 'variable'; pos: number; ident: string[] }

type ArgNode =
  | { kind: 'field'; pos: number; ident: string[] }
  | VariableNode
  | { kind: 'chain'; pos: number; node: ArgNode; field: string[] }
  | { kind: 'identifier'; pos: number; ident: string }
  | { kind: 'dot'; pos: number }
  | { kind: 'nil'; pos: number }
  | { kind: 'bool'; pos: number; value: boolean }
  | { kind: 'number'; pos: number; text: string; value: number; isInt: boolean }
  | { kind: 'string'; pos: number; quoted: string; text: string }
  | PipeNode

type EndOrElse = { kind: 'end' | 'else'; pos: number; line: number }

function nodeString(n: ArgNode | CommandNode | Node): string {
  switch (n.kind) {
    case 'field': return n.ident.map((i) => `.${i}`).join('')
    case 'variable': return n.ident.join('.')
    case 'chain': {
      const inner = n.node.kind === 'pipe' ? `(${nodeString(n.node)})` : nodeString(n.node)
      return inner + n.field.map((f) => `.${f}`).join('')
    }
    case 'identifier': return n.ident
    case 'dot': return '.'
    case 'nil': return 'nil'
    case 'bool': return String(n.value)
    case 'number': return n.text
    case 'string': return n.quoted
    case 'command': return n.args.map((a) => (a.kind === 'pipe' ? `(${nodeString(a)})` : nodeString(a))).join(' ')
    case 'pipe': {
      let s = ''
      if (n.decl.length > 0) s = `${n.decl.map((d) => d.ident.join('.')).join(', ')} ${n.isAssign ? '=' : ':='} `
      return s + n.cmds.map((c) => nodeString(c)).join(' | ')
    }
    case 'action': return `{{${nodeString(n.pipe)}}}`
    case 'text': return n.text
    case 'comment': return '{{/* */}}'
    case 'list': return n.nodes.map((c) => nodeString(c)).join('')
    case 'if': case 'with': case 'range': {
      let s = `{{${n.kind} ${nodeString(n.pipe)}}}${nodeString(n.list)}`
      if (n.elseList) s += `{{else}}${nodeString(n.elseList)}`
      return `${s}{{end}}`
    }
    case 'template': return n.pipe ? `{{template ${goQuote(n.name)} ${nodeString(n.pipe)}}}` : `{{template ${goQuote(n.name)}}}`
    case 'break': return '{{break}}'
    case 'continue': return '{{continue}}'
  }
}

/** The names a template may call: Go's builtins plus what the caller adds. */
type FuncTable = ReadonlyMap<string, GoFunc>

class Parser {
  private readonly items: Item[]
  private i = 0
  private vars: string[] = ['$']
  private rangeDepth = 0
  private actionLine = 0
  private lastLine = 1
  readonly defined = new Map<string, ListNode>()

  constructor(private readonly name: string, text: string, private readonly funcs: FuncTable) {
    this.items = new Lexer(text).items
  }

  private fail(msg: string): never {
    throw new TemplateParseError(`template: ${this.name}:${this.lastLine}: ${msg}`)
  }

  private next(): Item {
    // the items end with EOF; the assertion makes `it` an Item, which the rule misses
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    const it = this.items[this.i] ?? (this.items[this.items.length - 1] as Item)
    if (this.i < this.items.length) this.i++
    this.lastLine = it.line
    return it
  }

  private backup(n = 1): void {
    this.i -= n
  }

  private peek(): Item {
    return this.items[this.i] ?? (this.items[this.items.length - 1] as Item)
  }

  private nextNonSpace(): Item {
    let t: Item
    do t = this.next()
    while (t.typ === T.space)
    return t
  }

  private peekNonSpace(): Item {
    const t = this.nextNonSpace()
    this.backup()
    return t
  }

  private unexpected(t: Item, context: string): never {
    if (t.typ === T.error) {
      let extra = ''
      if (this.actionLine !== 0 && this.actionLine !== t.line) {
        extra = ` in action started at ${this.name}:${this.actionLine}`
        if (t.val.endsWith(' action')) extra = extra.slice(' in action'.length)
      }
      this.fail(`${itemString(t)}${extra}`)
    }
    this.fail(`unexpected ${itemString(t)} in ${context}`)
  }

  private expect(typ: ItemType, context: string): Item {
    const t = this.nextNonSpace()
    if (t.typ !== typ) this.unexpected(t, context)
    return t
  }

  parse(): ListNode {
    const root: ListNode = { kind: 'list', pos: this.peek().pos, nodes: [] }
    while (this.peek().typ !== T.eof) {
      if (this.peek().typ === T.leftDelim) {
        const save = this.i
        this.next()
        if (this.nextNonSpace().typ === T.define) {
          this.parseDefinition()
          continue
        }
        this.i = save
      }
      const n = this.textOrAction()
      if (n.kind === 'end' || n.kind === 'else') this.fail(`unexpected {{${n.kind}}}`)
      root.nodes.push(n as Node)
    }
    return root
  }

  private parseDefinition(): void {
    const nameTok = this.nextNonSpace()
    if (nameTok.typ !== T.string && nameTok.typ !== T.rawString) this.unexpected(nameTok, 'define clause')
    const name = unquote(nameTok.val, (m) => this.fail(m))
    this.expect(T.rightDelim, 'define clause')
    const saved = this.vars
    this.vars = ['$']
    const { list, next } = this.itemList()
    if (next.kind !== 'end') this.fail(`unexpected {{${next.kind}}} in definition`)
    this.vars = saved
    this.defined.set(name, list)
  }

  private textOrAction(): Node | EndOrElse {
    const t = this.nextNonSpace()
    switch (t.typ) {
      case T.text: return { kind: 'text', pos: t.pos, text: t.val }
      case T.leftDelim: {
        this.actionLine = t.line
        try {
          return this.action()
        } finally {
          this.actionLine = 0
        }
      }
      case T.comment: return { kind: 'comment', pos: t.pos }
      default: this.unexpected(t, 'input')
    }
  }

  private itemList(): { list: ListNode; next: EndOrElse } {
    const list: ListNode = { kind: 'list', pos: this.peekNonSpace().pos, nodes: [] }
    while (this.peekNonSpace().typ !== T.eof) {
      const n = this.textOrAction()
      if (n.kind === 'end' || n.kind === 'else') return { list, next: n }
      list.nodes.push(n as Node)
    }
    this.fail('unexpected EOF')
  }

  private action(): Node | EndOrElse {
    const t = this.nextNonSpace()
    switch (t.typ) {
      case T.block: return this.blockControl()
      case T.break: case T.continue: {
        const kind = t.typ === T.break ? 'break' : 'continue'
        const n = this.nextNonSpace()
        if (n.typ !== T.rightDelim) this.unexpected(n, `{{${kind}}}`)
        if (this.rangeDepth === 0) this.fail(`{{${kind}}} outside {{range}}`)
        return { kind, pos: t.pos, line: t.line }
      }
      case T.else: {
        const p = this.peekNonSpace()
        if (p.typ === T.if || p.typ === T.with) return { kind: 'else', pos: p.pos, line: p.line }
        const r = this.expect(T.rightDelim, 'else')
        return { kind: 'else', pos: r.pos, line: r.line }
      }
      case T.end: return { kind: 'end', pos: this.expect(T.rightDelim, 'end').pos, line: t.line }
      case T.if: return this.control('if')
      case T.range: return this.control('range')
      case T.with: return this.control('with')
      case T.template: return this.templateControl()
      default: break // any other token begins the action's pipeline
    }
    this.backup()
    const p = this.peek()
    return { kind: 'action', pos: p.pos, line: p.line, pipe: this.pipeline('command', T.rightDelim) }
  }

  private control(kind: 'if' | 'with' | 'range'): Node {
    const mark = this.vars.length
    try {
      const pipe = this.pipeline(kind, T.rightDelim)
      if (kind === 'range') this.rangeDepth++
      const { list, next } = this.itemList()
      if (kind === 'range') this.rangeDepth--
      let elseList: ListNode | undefined
      if (next.kind === 'else') {
        const p = this.peek()
        if ((kind === 'if' && p.typ === T.if) || (kind === 'with' && p.typ === T.with)) {
          this.next()
          elseList = { kind: 'list', pos: next.pos, nodes: [this.control(kind)] }
        } else {
          const r = this.itemList()
          elseList = r.list
          if (r.next.kind !== 'end') this.fail(`expected end; found {{${r.next.kind}}}`)
        }
      }
      return { kind, pos: pipe.pos, line: pipe.line, pipe, list, elseList }
    } finally {
      this.vars.length = mark
    }
  }

  private templateControl(): Node {
    const t = this.nextNonSpace()
    if (t.typ !== T.string && t.typ !== T.rawString) this.unexpected(t, 'template clause')
    const name = unquote(t.val, (m) => this.fail(m))
    let pipe: PipeNode | undefined
    if (this.nextNonSpace().typ !== T.rightDelim) {
      this.backup()
      pipe = this.pipeline('template clause', T.rightDelim)
    }
    return { kind: 'template', pos: t.pos, line: t.line, name, pipe }
  }

  private blockControl(): Node {
    const t = this.nextNonSpace()
    if (t.typ !== T.string && t.typ !== T.rawString) this.unexpected(t, 'block clause')
    const name = unquote(t.val, (m) => this.fail(m))
    const pipe = this.pipeline('block clause', T.rightDelim)
    const saved = this.vars
    this.vars = ['$']
    const { list, next } = this.itemList()
    this.vars = saved
    if (next.kind !== 'end') this.fail(`unexpected {{${next.kind}}} in block clause`)
    this.defined.set(name, list)
    return { kind: 'template', pos: t.pos, line: t.line, name, pipe }
  }

  private pipeline(context: string, end: ItemType): PipeNode {
    const first = this.peekNonSpace()
    const pipe: PipeNode = { kind: 'pipe', pos: first.pos, line: first.line, isAssign: false, decl: [], cmds: [] }
    decls: for (;;) {
      const v = this.peekNonSpace()
      if (v.typ !== T.variable) break
      const before = this.i
      this.nextNonSpace()
      const next = this.peekNonSpace()
      if (next.typ === T.assign || next.typ === T.declare) {
        pipe.isAssign = next.typ === T.assign
        this.nextNonSpace()
        pipe.decl.push({ kind: 'variable', pos: v.pos, ident: v.val.split('.') })
        this.vars.push(v.val)
      } else if (next.typ === T.char && next.val === ',') {
        this.nextNonSpace()
        pipe.decl.push({ kind: 'variable', pos: v.pos, ident: v.val.split('.') })
        this.vars.push(v.val)
        if (context === 'range' && pipe.decl.length < 2) {
          const p = this.peekNonSpace().typ
          if (p === T.variable || p === T.rightDelim || p === T.rightParen) continue decls
          this.fail('range can only initialize variables')
        }
        this.fail(`too many declarations in ${context}`)
      } else {
        this.i = before
      }
      break
    }
    for (;;) {
      const t = this.nextNonSpace()
      if (t.typ === end) {
        if (pipe.cmds.length === 0) this.fail(`missing value for ${context}`)
        pipe.cmds.slice(1).forEach((c, i) => {
          const k = c.args[0]?.kind
          if (k === 'bool' || k === 'dot' || k === 'nil' || k === 'number' || k === 'string') this.fail(`non executable command in pipeline stage ${i + 2}`)
        })
        return pipe
      }
      switch (t.typ) {
        case T.bool: case T.charConstant: case T.dot: case T.field: case T.identifier: case T.number:
        case T.nil: case T.rawString: case T.string: case T.variable: case T.leftParen:
          this.backup()
          pipe.cmds.push(this.command())
          break
        default:
          this.unexpected(t, context)
      }
    }
  }

  private command(): CommandNode {
    const cmd: CommandNode = { kind: 'command', pos: this.peekNonSpace().pos, args: [] }
    for (;;) {
      this.peekNonSpace()
      const operand = this.operand()
      if (operand) cmd.args.push(operand)
      const t = this.next()
      if (t.typ === T.space) continue
      if (t.typ === T.rightDelim || t.typ === T.rightParen) this.backup()
      else if (t.typ !== T.pipe) this.unexpected(t, 'operand')
      break
    }
    if (cmd.args.length === 0) this.fail('empty command')
    return cmd
  }

  private operand(): ArgNode | undefined {
    const node = this.term()
    if (!node) return undefined
    if (this.peek().typ === T.field) {
      const pos = this.peek().pos
      const fields: string[] = []
      while (this.peek().typ === T.field) fields.push(this.next().val.slice(1))
      switch (node.kind) {
        case 'field': return { kind: 'field', pos, ident: [...node.ident, ...fields] }
        case 'variable': return { kind: 'variable', pos, ident: [...node.ident, ...fields] }
        case 'chain': case 'identifier': case 'pipe': break
        case 'bool': case 'string': case 'number': case 'nil': case 'dot':
          this.fail(`unexpected . after term ${goQuote(nodeString(node))}`)
      }
      return { kind: 'chain', pos, node, field: fields }
    }
    return node
  }

  private term(): ArgNode | undefined {
    const t = this.nextNonSpace()
    switch (t.typ) {
      case T.identifier:
        if (!this.funcs.has(t.val)) this.fail(`function ${goQuote(t.val)} not defined`)
        return { kind: 'identifier', pos: t.pos, ident: t.val }
      case T.dot: return { kind: 'dot', pos: t.pos }
      case T.nil: return { kind: 'nil', pos: t.pos }
      case T.variable: {
        const ident = t.val.split('.')
        if (!this.vars.includes(ident[0] as string)) this.fail(`undefined variable ${goQuote(ident[0] as string)}`)
        return { kind: 'variable', pos: t.pos, ident }
      }
      case T.field: return { kind: 'field', pos: t.pos, ident: [t.val.slice(1)] }
      case T.bool: return { kind: 'bool', pos: t.pos, value: t.val === 'true' }
      case T.charConstant: case T.number: return this.number(t)
      case T.leftParen: return this.pipeline('parenthesized pipeline', T.rightParen)
      case T.string: case T.rawString:
        return { kind: 'string', pos: t.pos, quoted: t.val, text: unquote(t.val, (m) => this.fail(m)) }
      default: break // any other token is not a term
    }
    this.backup()
    return undefined
  }

  private number(t: Item): ArgNode {
    if (t.typ === T.charConstant) {
      const s = unquote(t.val, () => this.fail(`malformed character constant: ${t.val}`))
      const runes = Array.from(s)
      if (runes.length !== 1) this.fail(`malformed character constant: ${t.val}`)
      return { kind: 'number', pos: t.pos, text: t.val, value: runes[0]?.codePointAt(0) ?? 0, isInt: true }
    }
    const text = t.val
    const clean = text.replace(/_/g, '')
    let value: number
    let isInt = false
    const sign = clean.startsWith('-') ? -1 : 1
    const body = clean.replace(/^[+-]/, '')
    if (/^0[xX][0-9a-fA-F]+$/.test(body)) {
      value = sign * parseInt(body.slice(2), 16)
      isInt = true
    } else if (/^0[oO][0-7]+$/.test(body)) {
      value = sign * parseInt(body.slice(2), 8)
      isInt = true
    } else if (/^0[bB][01]+$/.test(body)) {
      value = sign * parseInt(body.slice(2), 2)
      isInt = true
    } else if (/^0[0-7]+$/.test(body)) {
      value = sign * parseInt(body, 8)
      isInt = true
    } else if (/^[0-9]+$/.test(body)) {
      value = sign * parseInt(body, 10)
      isInt = true
    } else if (/^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(body)) {
      value = sign * Number(body)
      isInt = Number.isInteger(value) && !/[.eE]/.test(body)
    } else {
      this.fail(`illegal number syntax: ${goQuote(text)}`)
    }
    return { kind: 'number', pos: t.pos, text, value, isInt }
  }
}

/** Go's strconv.Unquote for "…", `…` and '…' literals (\" only in a string, \' only in a character). */
function unquote(s: string, fail: (msg: string) => never): string {
  if (s.startsWith('`')) return s.slice(1, -1).replace(/\r/g, '')
  const body = s.slice(1, -1)
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string
    if (c !== '\\') {
      out += c
      continue
    }
    const e = body[++i]
    const hex = (n: number): void => {
      const h = body.slice(i + 1, i + 1 + n)
      if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) fail('invalid syntax')
      out += String.fromCodePoint(parseInt(h, 16))
      i += n
    }
    switch (e) {
      case 'n': out += '\n'; break
      case 't': out += '\t'; break
      case 'r': out += '\r'; break
      case 'a': out += '\x07'; break
      case 'b': out += '\b'; break
      case 'f': out += '\f'; break
      case 'v': out += '\v'; break
      case '\\': out += '\\'; break
      case '"': case "'":
        if (e !== s[0]) fail('invalid syntax')
        out += e
        break
      case 'x': hex(2); break
      case 'u': hex(4); break
      case 'U': hex(8); break
      default:
        if (e !== undefined && /[0-7]/.test(e)) {
          const o = body.slice(i, i + 3)
          if (!/^[0-7]{3}$/.test(o)) fail('invalid syntax')
          out += String.fromCharCode(parseInt(o, 8))
          i += 2
        } else {
          fail('invalid syntax')
        }
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Functions

interface GoFunc {
  /** Parameter types; `variadic` makes the last one repeatable. */
  params: readonly ParamType[]
  variadic?: boolean
  fn: (...args: never[]) => unknown
}

/** A function's own error: becomes `error calling NAME: MESSAGE`. */
class CallError extends Error {}

function builtins(): Map<string, GoFunc> {
  const m = new Map<string, GoFunc>()
  const f = (name: string, params: ParamType[], fn: (...args: never[]) => unknown, variadic = false): void => {
    m.set(name, { params, fn, variadic })
  }
  // and, or: evaluated lazily by the executor
  f('and', ['any', 'any'], () => undefined, true)
  f('or', ['any', 'any'], () => undefined, true)
  f('not', ['any'], (a: unknown) => !truth(a))
  f('len', ['any'], (a: unknown) => {
    if (typeof a === 'string') return Buffer.byteLength(a)
    if (Array.isArray(a)) return a.length
    if (isPlainObject(a) && structType(a) === undefined) return Object.keys(a).length
    if (a === null || a === undefined) throw new CallError('len of nil pointer')
    throw new CallError(`len of type ${typeName(a)}`)
  })
  f('index', ['any', 'any'], (item: unknown, ...idx: unknown[]) => goIndex(item, idx), true)
  f('slice', ['any', 'any'], (item: unknown, ...idx: unknown[]) => goSlice(item, idx), true)
  f('print', ['any'], (...a: unknown[]) => sprint(a), true)
  f('println', ['any'], (...a: unknown[]) => `${a.map((v) => fmtValue(v)).join(' ')}\n`, true)
  f('printf', ['string', 'any'], (format: string, ...a: unknown[]) => sprintf(format, a), true)
  f('html', ['any'], (...a: unknown[]) => htmlEscape(sprint(a)), true)
  f('js', ['any'], (...a: unknown[]) => jsEscape(sprint(a)), true)
  f('urlquery', ['any'], (...a: unknown[]) => encodeURIComponent(sprint(a)).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`), true)
  f('call', ['any', 'any'], (fn: unknown) => {
    throw new CallError(`non-function ${typeName(fn)} of type ${typeName(fn)}`)
  }, true)
  f('eq', ['any', 'any'], (a: unknown, ...bs: unknown[]) => {
    for (const b of bs) if (compare(a, b, true) === 0) return true
    return false
  }, true)
  f('ne', ['any', 'any'], (a: unknown, b: unknown) => compare(a, b, true) !== 0)
  f('lt', ['any', 'any'], (a: unknown, b: unknown) => compare(a, b, false) < 0)
  f('le', ['any', 'any'], (a: unknown, b: unknown) => compare(a, b, false) <= 0)
  f('gt', ['any', 'any'], (a: unknown, b: unknown) => compare(a, b, false) > 0)
  f('ge', ['any', 'any'], (a: unknown, b: unknown) => compare(a, b, false) >= 0)
  // Docker's (cli/templates)
  f('json', ['any'], (v: unknown) => goJSON(v, false))
  f('split', ['string', 'string'], (s: string, sep: string) => goSplit(s, sep))
  f('join', ['any', 'string'], (a: unknown, sep: string) => {
    if (!Array.isArray(a) || !a.every((e) => typeof e === 'string')) {
      if (Array.isArray(a) && a.length === 0) return ''
      throw new WrongType('[]string', a)
    }
    return a.join(sep)
  })
  f('title', ['string'], (s: string) => s.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, pre: string, c: string) => pre + c.toUpperCase()))
  f('lower', ['string'], (s: string) => s.toLowerCase())
  f('upper', ['string'], (s: string) => s.toUpperCase())
  f('pad', ['string', 'int', 'int'], (s: string, before: number, after: number) => ' '.repeat(Math.max(0, before)) + s + ' '.repeat(Math.max(0, after)))
  f('truncate', ['string', 'int'], (s: string, n: number) => {
    const b = Buffer.from(s)
    return b.length < n ? s : b.subarray(0, Math.max(0, n)).toString()
  })
  return m
}

/** Docker's header functions: a table's header keeps its words whatever the column's function. */
function headerFunctions(): Map<string, GoFunc> {
  const m = builtins()
  const same = (v: unknown): unknown => v
  for (const name of ['json', 'title', 'lower', 'upper']) m.set(name, { params: ['any'], fn: same })
  for (const name of ['split', 'join']) m.set(name, { params: ['any', 'any'], fn: same })
  m.set('truncate', { params: ['any', 'any'], fn: same })
  return m
}

class WrongType extends Error {
  constructor(expected: string, got: unknown) {
    super(`wrong type for value; expected ${expected}; got ${typeName(got)}`)
  }
}

function goSplit(s: string, sep: string): string[] {
  if (sep === '') return Array.from(s)
  return s.split(sep)
}

function toIndex(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  if (v === null || v === undefined) throw new CallError('cannot index slice/array with nil')
  throw new CallError(`cannot index slice/array with type ${typeName(v)}`)
}

function goIndex(item: unknown, idx: unknown[]): unknown {
  let v = item
  for (const i of idx) {
    if (v === null || v === undefined) throw new CallError('index of untyped nil')
    if (Array.isArray(v) || typeof v === 'string') {
      const n = toIndex(i)
      const len = typeof v === 'string' ? Buffer.byteLength(v) : v.length
      if (n < 0 || n >= len) throw new CallError(`index out of range: ${n}`)
      v = typeof v === 'string' ? Buffer.from(v)[n] : v[n]
    } else if (isPlainObject(v) && structType(v) === undefined) {
      if (typeof i !== 'string') throw new CallError(`value has type ${typeName(i)}; should be string`)
      // a missing key is the zero interface: no value once the pipeline unwraps it
      const e = Object.prototype.hasOwnProperty.call(v, i) ? v[i] : undefined
      v = e === null ? undefined : e
    } else {
      throw new CallError(`can't index item of type ${typeName(v)}`)
    }
  }
  return v
}

function goSlice(item: unknown, idx: unknown[]): unknown {
  if (item === null || item === undefined) throw new CallError('slice of untyped nil')
  if (idx.length > 3) throw new CallError(`too many slice indexes: ${idx.length}`)
  if (typeof item !== 'string' && !Array.isArray(item)) throw new CallError(`can't slice item of type ${typeName(item)}`)
  if (typeof item === 'string' && idx.length === 3) throw new CallError('cannot 3-index slice a string')
  const len = typeof item === 'string' ? Buffer.byteLength(item) : item.length
  const ix = idx.map(toIndex)
  const from = ix[0] ?? 0
  const to = ix[1] ?? len
  if (from < 0 || from > len) throw new CallError(`index out of range: ${from}`)
  if (to < from || to > len) throw new CallError(`invalid slice index: ${from} > ${to}`)
  return typeof item === 'string' ? Buffer.from(item).subarray(from, to).toString() : item.slice(from, to)
}

function basicKind(v: unknown): 'bool' | 'number' | 'string' | 'nil' | 'other' {
  if (typeof v === 'boolean') return 'bool'
  if (typeof v === 'number') return 'number'
  if (typeof v === 'string') return 'string'
  if (v === null || v === undefined) return 'nil'
  return 'other'
}

/** Go's eq/lt on basic kinds: 0 equal, <0, >0; errors as Go's. */
function compare(a: unknown, b: unknown, equality: boolean): number {
  const ka = basicKind(a)
  const kb = basicKind(b)
  // eq: nil equals only nil, whatever the other operand's type
  if (equality && (ka === 'nil' || kb === 'nil')) return ka === kb ? 0 : 1
  if (ka === 'other' || kb === 'other' || ka === 'nil' || kb === 'nil') {
    if (equality) throw new CallError(`non-comparable type ${typeName(ka === 'other' || ka === 'nil' ? a : b)}`)
    throw new CallError('invalid type for comparison')
  }
  if (ka !== kb) throw new CallError('incompatible types for comparison')
  if (ka === 'bool') {
    if (!equality) throw new CallError('invalid type for comparison')
    return a === b ? 0 : 1
  }
  if (ka === 'number') return (a as number) - (b as number)
  const sa = a as string
  const sb = b as string
  return sa === sb ? 0 : Buffer.compare(Buffer.from(sa), Buffer.from(sb))
}

// ---------------------------------------------------------------------------------------------
// Go's fmt and encoding/json, as far as templates reach them

/** Go's %v (the way text/template prints a value). */
function fmtValue(v: unknown, top = true): string {
  if (v === undefined) return top ? '<no value>' : '<nil>'
  if (v === null) return '<nil>'
  if (typeof v === 'string') return v
  if (typeof v === 'number') return fmtNumber(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (Array.isArray(v)) return `[${v.map((e) => fmtValue(e, false)).join(' ')}]`
  if (v instanceof GoMethod) return '<func>'
  if (typeof v === 'object') {
    if (structType(v) !== undefined) {
      return `{${Object.values(v).filter((e) => !(e instanceof GoMethod)).map((e) => fmtValue(e, false)).join(' ')}}`
    }
    const keys = Object.keys(v).sort()
    return `map[${keys.map((k) => `${k}:${fmtValue((v as Record<string, unknown>)[k], false)}`).join(' ')}]`
  }
  const rest = v as bigint | symbol | (() => unknown) // what is left
  return String(rest)
}

function fmtNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return n.toFixed(0)
  return goFloat(n, 'g', -1)
}

/** strconv.FormatFloat for 'g', 'e' and 'f' (prec -1: the shortest digits that read back). */
function goFloat(n: number, verb: 'g' | 'e' | 'f', prec: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  if (verb === 'f') return prec < 0 ? shortestFixed(n) : n.toFixed(Math.min(prec, 100))
  const expForm = (mant: string, e: number): string => `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`
  if (verb === 'e') {
    const [mant, ex] = (prec < 0 ? n.toExponential() : n.toExponential(Math.min(prec, 100))).split('e') as [string, string]
    return expForm(mant, Number(ex))
  }
  // %g: the exponent form when the exponent is < -4 or >= the precision (6 for the shortest form)
  const p = prec < 0 ? -1 : prec === 0 ? 1 : prec
  const s = p < 0 ? n.toExponential() : n.toExponential(Math.min(p, 101) - 1)
  const [digits, ex] = s.split('e') as [string, string]
  const e = Number(ex)
  const mant = digits.includes('.') ? digits.replace(/0+$/, '').replace(/\.$/, '') : digits
  if (e < -4 || e >= (p < 0 ? 6 : p)) return expForm(mant, e)
  return shortestFixed(Number(s))
}

function shortestFixed(n: number): string {
  const s = String(n)
  if (!s.includes('e')) return s
  return n.toFixed(20).replace(/\.?0+$/, '')
}

/** Go's fmt.Sprint: a space between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = ''
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' '
    out += fmtValue(a, false)
  })
  return out
}

/** strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\t') out += '\\t'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\x07') out += '\\a'
    else if (ch === '\b') out += '\\b'
    else if (ch === '\f') out += '\\f'
    else if (ch === '\v') out += '\\v'
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`
    else if (c === 0xfffd && ch !== '\ufffd') out += '\\ufffd'
    else if (/^[\p{C}\p{Z}]$/u.test(ch) && ch !== ' ') out += c > 0xffff ? `\\U${c.toString(16).padStart(8, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return `${out}"`
}

/** fmt.Sprintf for the verbs templates use: %v %s %q %d %t %f %e %g %x %X %o %b %c %U %%. */
function sprintf(format: string, args: unknown[]): string {
  let out = ''
  let argi = 0
  for (let i = 0; i < format.length; i++) {
    const c = format[i] as string
    if (c !== '%') {
      out += c
      continue
    }
    const m = /^([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])?/.exec(format.slice(i + 1)) as RegExpExecArray
    i += m[0].length
    const flags = m[1] ?? ''
    let width = m[2] === '*' ? Number(args[argi++]) : m[2] !== undefined ? Number(m[2]) : undefined
    let prec = m[3] === '*' ? Number(args[argi++]) : m[3] !== undefined ? Number(m[3]) : m[0].includes('.') ? 0 : undefined
    const verb = m[4]
    if (verb === undefined) {
      out += '%!(NOVERB)'
      continue
    }
    if (verb === '%') {
      out += '%'
      continue
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`
      continue
    }
    const a = args[argi++]
    let s: string
    const bad = (): string => `%!${verb}(${typeName(a)}=${fmtValue(a, false)})`
    switch (verb) {
      case 'v': s = flags.includes('#') && typeof a === 'string' ? goQuote(a) : fmtValue(a, false); break
      case 's': s = typeof a === 'string' || Array.isArray(a) || isPlainObject(a) ? fmtValue(a, false) : bad(); break
      case 'q': s = typeof a === 'string' ? goQuote(a) : typeof a === 'number' && Number.isInteger(a) ? `'${String.fromCodePoint(a)}'` : bad(); break
      case 't': s = typeof a === 'boolean' ? String(a) : bad(); break
      case 'd': s = typeof a === 'number' && Number.isInteger(a) ? (flags.includes('+') && a >= 0 ? '+' : '') + String(a) : bad(); break
      case 'c': s = typeof a === 'number' ? String.fromCodePoint(a) : bad(); break
      case 'U': s = typeof a === 'number' ? `U+${a.toString(16).toUpperCase().padStart(4, '0')}` : bad(); break
      case 'x': case 'X': case 'o': case 'b': {
        const base = verb === 'o' ? 8 : verb === 'b' ? 2 : 16
        if (typeof a === 'number' && Number.isInteger(a)) s = a.toString(base)
        else if (typeof a === 'string' && base === 16) s = Buffer.from(a).toString('hex')
        else s = bad()
        if (verb === 'X') s = s.toUpperCase()
        if (flags.includes('#') && base === 16) s = (verb === 'X' ? '0X' : '0x') + s
        break
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (typeof a !== 'number') {
          s = bad()
          break
        }
        const v = verb.toLowerCase() as 'f' | 'e' | 'g'
        s = goFloat(a, v, prec ?? (v === 'g' ? -1 : 6))
        if (flags.includes('+') && a >= 0) s = `+${s}`
        if (verb === 'E' || verb === 'G') s = s.toUpperCase()
        prec = undefined
        break
      }
      default: s = bad()
    }
    if (prec !== undefined && (verb === 's' || verb === 'v') && typeof a === 'string') s = Array.from(s).slice(0, prec).join('')
    if (width !== undefined && Number.isFinite(width)) {
      const w = Array.from(s).length
      if (w < width) {
        if (flags.includes('-')) s += ' '.repeat(width - w)
        else if (flags.includes('0') && typeof a === 'number') s = s.startsWith('-') || s.startsWith('+') ? s[0] + s.slice(1).padStart(width - 1, '0') : s.padStart(width, '0')
        else s = ' '.repeat(width - w) + s
      }
    }
    width = undefined
    out += s
  }
  if (argi < args.length) out += `%!(EXTRA ${args.slice(argi).map((a) => `${typeName(a)}=${fmtValue(a, false)}`).join(', ')})`
  return out
}

function htmlEscape(s: string): string {
  return s.replace(/[<>&'"\0]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;', '\0': '\uFFFD' })[c] ?? c)
}

function jsEscape(s: string): string {
  return s.replace(/[\\'"<>&=]|[\x00-\x1f]/g, (c) => {
    switch (c) {
      case '\\': return '\\\\'
      case "'": return "\\'"
      case '"': return '\\"'
      case '<': return '\\u003C'
      case '>': return '\\u003E'
      case '&': return '\\u0026'
      case '=': return '\\u003D'
      default: return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`
    }
  })
}

/**
 * Go's encoding/json: maps with sorted keys, structs in field order, methods left out; `<`, `>`
 * and `&` escaped only with `escapeHTML` (Docker's `json` function turns that off).
 */
export function goJSON(v: unknown, escapeHTML: boolean): string {
  if (v === undefined || v === null) return 'null'
  if (typeof v === 'object' && !Array.isArray(v)) {
    const own = (v as { [JSON_OF]?: () => string })[JSON_OF]
    if (own) return own()
  }
  if (typeof v === 'string') {
    let s = JSON.stringify(v).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)
    if (escapeHTML) s = s.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`)
    return s
  }
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null'
  if (typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map((e) => goJSON(e, escapeHTML)).join(',')}]`
  if (v instanceof GoMethod) return 'null'
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>
    const keys = structType(o) !== undefined ? Object.keys(o).filter((k) => !(o[k] instanceof GoMethod)) : Object.keys(o).sort()
    return `{${keys.map((k) => `${goJSON(k, escapeHTML)}:${goJSON(o[k], escapeHTML)}`).join(',')}}`
  }
  return 'null'
}

/** Go's notion of truth for if/with/and/or/not. */
function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return v !== 0
  if (typeof v === 'string') return v.length > 0
  if (Array.isArray(v)) return v.length > 0
  if (typeof v === 'object') return structType(v) !== undefined || Object.keys(v).length > 0
  return true
}

// ---------------------------------------------------------------------------------------------
// Execution (text/template/exec.go)

export interface ExecOptions {
  /** Go's `missingkey=error`: a key a map lacks is an error instead of `<no value>`. */
  missingKeyError?: boolean
}

class BreakSignal extends Error {}
class ContinueSignal extends Error {}
/** A field on a map that lacks the key (undefined in Go's terms: "no value"). */
const NO_VALUE = undefined

export class Template {
  private readonly root: ListNode
  private readonly defined: Map<string, ListNode>

  private constructor(readonly name: string, readonly text: string, private readonly funcs: FuncTable, root: ListNode, defined: Map<string, ListNode>) {
    this.root = root
    this.defined = defined
  }

  /** Parses `text` (Docker names its templates "" — "version" for `docker version`). */
  static parse(text: string, name = ''): Template {
    const funcs = builtins()
    const p = new Parser(name, text, funcs)
    const root = p.parse()
    return new Template(name, text, funcs, root, p.defined)
  }

  /** The same template with Docker's header functions (a table's header row). */
  withHeaderFunctions(): Template {
    return new Template(this.name, this.text, headerFunctions(), this.root, this.defined)
  }

  execute(data: unknown, opts: ExecOptions = {}): string {
    const exec = new Exec(this, opts, this.funcs, this.defined)
    try {
      return exec.run(this.root, data)
    } catch (err) {
      if (err instanceof TemplateExecError) err.output = exec.written()
      throw err
    }
  }

  /** Go's ErrorContext: `NAME:LINE:COL` and the node's text. */
  errorContext(pos: number, context: string): { location: string; context: string } {
    const before = this.text.slice(0, pos)
    const nl = before.lastIndexOf('\n')
    const byteNum = nl < 0 ? Buffer.byteLength(before) : Buffer.byteLength(before.slice(nl + 1))
    const line = 1 + countNewlines(before)
    return { location: `${this.name}:${line}:${byteNum}`, context }
  }
}

type Vars = { name: string; value: unknown }[]

class Exec {
  private out = ''
  private node: { pos: number; text: string } | undefined
  private vars: Vars = []
  private depth = 0

  constructor(private readonly tmpl: Template, private readonly opts: ExecOptions, private readonly funcs: FuncTable, private readonly defined: Map<string, ListNode>) {}

  written(): string {
    return this.out
  }

  run(root: ListNode, data: unknown): string {
    this.vars = [{ name: '$', value: data }]
    this.walk(data, root)
    return this.out
  }

  private at(n: ArgNode | CommandNode | Node): void {
    this.node = { pos: n.pos, text: nodeString(n) }
  }

  private fail(msg: string): never {
    if (!this.node) throw new TemplateExecError(`template: ${this.tmpl.name}: ${msg}`)
    const { location, context } = this.tmpl.errorContext(this.node.pos, this.node.text)
    throw new TemplateExecError(`template: ${location}: executing ${goQuote(this.tmpl.name)} at <${context}>: ${msg}`)
  }

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i] as Vars[number]
      if (v.name === name) return v.value
    }
    this.fail(`undefined variable: ${name}`)
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const v = this.vars[i] as Vars[number]
      if (v.name === name) {
        v.value = value
        return
      }
    }
    this.fail(`undefined variable: ${name}`)
  }

  private walk(dot: unknown, node: Node): void {
    switch (node.kind) {
      case 'action': {
        const val = this.evalPipeline(dot, node.pipe)
        if (node.pipe.decl.length === 0) this.out += fmtValue(val)
        return
      }
      case 'break': throw new BreakSignal()
      case 'continue': throw new ContinueSignal()
      case 'comment': return
      case 'text': this.out += node.text; return
      case 'list': for (const n of node.nodes) this.walk(dot, n); return
      case 'if': case 'with': case 'range': {
        if (node.kind === 'range') return this.walkRange(dot, node)
        const mark = this.vars.length
        try {
          const val = this.evalPipeline(dot, node.pipe)
          if (truth(val)) this.walk(node.kind === 'with' ? val : dot, node.list)
          else if (node.elseList) this.walk(dot, node.elseList)
        } finally {
          this.vars.length = mark
        }
        return
      }
      case 'template': {
        const t = this.defined.get(node.name)
        if (!t) {
          this.at(node)
          this.fail(`template ${goQuote(node.name)} not defined`)
        }
        if (++this.depth > 100000) this.fail('exceeded maximum template depth (100000)')
        const newDot = node.pipe ? this.evalPipeline(dot, node.pipe) : null
        const saved = this.vars
        this.vars = [{ name: '$', value: newDot }]
        try {
          this.walk(newDot, t)
        } finally {
          this.vars = saved
          this.depth--
        }
      }
    }
  }

  private walkRange(dot: unknown, node: Extract<Node, { kind: 'if' | 'with' | 'range' }>): void {
    this.at(node)
    const mark = this.vars.length
    try {
      const val = this.evalPipeline(dot, node.pipe)
      const one = (index: unknown, elem: unknown): boolean => {
        if (node.pipe.decl.length > 0) {
          const d0 = node.pipe.decl[0] as VariableNode
          if (node.pipe.isAssign) {
            if (node.pipe.decl.length > 1) this.setVar(d0.ident[0] as string, index)
            else this.setVar(d0.ident[0] as string, elem)
          } else {
            this.vars.push({ name: d0.ident[0] as string, value: node.pipe.decl.length > 1 ? index : elem })
          }
        }
        const d1 = node.pipe.decl[1]
        if (d1) {
          if (node.pipe.isAssign) this.setVar(d1.ident[0] as string, elem)
          else this.vars.push({ name: d1.ident[0] as string, value: elem })
        }
        const inner = this.vars.length
        try {
          this.walk(elem, node.list)
        } catch (err) {
          if (err instanceof BreakSignal) return false
          if (!(err instanceof ContinueSignal)) throw err
        } finally {
          this.vars.length = inner
        }
        return true
      }
      let ran = false
      if (Array.isArray(val)) {
        for (let i = 0; i < val.length; i++) {
          ran = true
          const before = this.vars.length
          const go = one(i, val[i])
          this.vars.length = before
          if (!go) break
        }
      } else if (typeof val === 'number' && Number.isInteger(val)) {
        if (node.pipe.decl.length > 1) this.fail(`can't use ${fmtValue(val, false)} to iterate over more than one variable`)
        for (let i = 0; i < val; i++) {
          ran = true
          const before = this.vars.length
          const go = one(i, i)
          this.vars.length = before
          if (!go) break
        }
      } else if (isPlainObject(val) && structType(val) === undefined) {
        for (const k of Object.keys(val).sort()) {
          ran = true
          const before = this.vars.length
          const go = one(k, val[k])
          this.vars.length = before
          if (!go) break
        }
      } else if (val !== undefined && val !== null) {
        this.fail(`range can't iterate over ${fmtValue(val, false)}`)
      }
      if (!ran && node.elseList) this.walk(dot, node.elseList)
    } finally {
      this.vars.length = mark
    }
  }

  private evalPipeline(dot: unknown, pipe: PipeNode): unknown {
    this.at(pipe)
    let value: unknown = MISSING
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value)
    for (const v of pipe.decl) {
      if (pipe.isAssign) this.setVar(v.ident[0] as string, value)
      else this.vars.push({ name: v.ident[0] as string, value })
    }
    return value
  }

  private notAFunction(args: ArgNode[], final: unknown): void {
    if (args.length > 1 || final !== MISSING) this.fail(`can't give argument to non-function ${nodeString(args[0] as ArgNode)}`)
  }

  private evalCommand(dot: unknown, cmd: CommandNode, final: unknown): unknown {
    const first = cmd.args[0] as ArgNode
    switch (first.kind) {
      case 'field':
        this.at(first)
        return this.evalFieldChain(dot, dot, first, first.ident, cmd.args, final)
      case 'chain': return this.evalChain(dot, first, cmd.args, final)
      case 'identifier': return this.evalFunction(dot, first, cmd, cmd.args, final)
      case 'pipe':
        this.notAFunction(cmd.args, final)
        return this.evalPipeline(dot, first)
      case 'variable': return this.evalVariable(dot, first, cmd.args, final)
      case 'bool': case 'dot': case 'nil': case 'number': case 'string': break // constants: below
    }
    this.at(first)
    this.notAFunction(cmd.args, final)
    switch (first.kind) {
      case 'bool': return first.value
      case 'dot': return dot
      case 'nil': return this.fail('nil is not a command')
      case 'number': return first.value
      case 'string': return first.text
    }
  }

  private evalChain(dot: unknown, chain: Extract<ArgNode, { kind: 'chain' }>, args: ArgNode[], final: unknown): unknown {
    this.at(chain)
    if (chain.node.kind === 'nil') this.fail(`indirection through explicit nil in ${nodeString(chain)}`)
    const pipe = this.evalArg(dot, 'any', chain.node)
    return this.evalFieldChain(dot, pipe, chain, chain.field, args, final)
  }

  private evalVariable(dot: unknown, v: VariableNode, args: ArgNode[], final: unknown): unknown {
    this.at(v)
    const value = this.varValue(v.ident[0] as string)
    if (v.ident.length === 1) {
      this.notAFunction(args, final)
      return value
    }
    return this.evalFieldChain(dot, value, v, v.ident.slice(1), args, final)
  }

  private evalFieldChain(dot: unknown, receiver: unknown, node: ArgNode, ident: string[], args: ArgNode[], final: unknown): unknown {
    let r = receiver
    for (let i = 0; i < ident.length - 1; i++) r = this.evalField(dot, ident[i] as string, node, [], MISSING, r)
    return this.evalField(dot, ident[ident.length - 1] as string, node, args, final, r)
  }

  private evalField(dot: unknown, name: string, node: ArgNode, args: ArgNode[], final: unknown, receiver: unknown): unknown {
    if (receiver === undefined) {
      if (this.opts.missingKeyError) this.fail(`nil data; no entry for key ${goQuote(name)}`)
      return NO_VALUE
    }
    if (receiver === null) this.fail(`nil pointer evaluating interface {}.${name}`)
    const hasArgs = args.length > 1 || final !== MISSING
    if (typeof receiver === 'object' && !Array.isArray(receiver)) {
      const rec = receiver as Record<string, unknown>
      const member = Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined
      if (member instanceof GoMethod) return this.evalCall(dot, { params: member.params, fn: member.fn }, node, name, args, final)
      if (structType(rec) !== undefined) {
        if (Object.prototype.hasOwnProperty.call(rec, name)) {
          if (hasArgs && (rec as { [METHODS]?: boolean })[METHODS]) {
            this.fail(`wrong number of args for ${name}: want 0 got ${args.length - 1 + (final === MISSING ? 0 : 1)}`)
          }
          if (hasArgs) this.fail(`${name} has arguments but cannot be invoked as function`)
          return member
        }
      } else {
        if (hasArgs) this.fail(`${name} is not a method but has arguments`)
        if (!Object.prototype.hasOwnProperty.call(rec, name)) {
          if (this.opts.missingKeyError) this.fail(`map has no entry for key ${goQuote(name)}`)
          return NO_VALUE
        }
        // a nil inside a map of interfaces is no value once the interface is unwrapped
        return member === null ? NO_VALUE : member
      }
    }
    this.fail(`can't evaluate field ${name} in type ${typeName(receiver)}`)
  }

  private evalFunction(dot: unknown, node: Extract<ArgNode, { kind: 'identifier' }>, cmd: CommandNode, args: ArgNode[], final: unknown): unknown {
    this.at(node)
    const fn = this.funcs.get(node.ident)
    if (!fn) this.fail(`${goQuote(node.ident)} is not a defined function`)
    if (node.ident === 'and' || node.ident === 'or') return this.evalAndOr(dot, node.ident, cmd, args, final)
    return this.evalCall(dot, fn, cmd, node.ident, args, final)
  }

  private evalAndOr(dot: unknown, name: 'and' | 'or', cmd: CommandNode, args: ArgNode[], final: unknown): unknown {
    const rest = args.slice(1)
    const n = rest.length + (final === MISSING ? 0 : 1)
    if (n < 1) {
      this.at(cmd)
      this.fail(`wrong number of args for ${name}: want at least 1 got ${rest.length}`)
    }
    let v: unknown
    for (let i = 0; i < rest.length; i++) {
      v = this.evalArg(dot, 'any', rest[i] as ArgNode)
      if (truth(v) === (name === 'or')) return v
    }
    if (final !== MISSING) v = final
    return v
  }

  private evalCall(dot: unknown, fn: GoFunc, node: ArgNode | CommandNode, name: string, args: ArgNode[], final: unknown): unknown {
    const rest = args.slice(1)
    const numIn = rest.length + (final === MISSING ? 0 : 1)
    if (fn.variadic) {
      const fixed = fn.params.length - 1
      if (numIn < fixed) this.fail(`wrong number of args for ${name}: want at least ${fixed} got ${rest.length}`)
    } else if (numIn !== fn.params.length) {
      this.fail(`wrong number of args for ${name}: want ${fn.params.length} got ${numIn}`)
    }
    const paramAt = (i: number): ParamType => (fn.variadic && i >= fn.params.length - 1 ? (fn.params[fn.params.length - 1] as ParamType) : (fn.params[i] as ParamType))
    const argv: unknown[] = rest.map((a, i) => this.evalArg(dot, paramAt(i), a))
    if (final !== MISSING) argv.push(this.validateType(final, paramAt(argv.length)))
    try {
      return fn.fn(...(argv as never[]))
    } catch (err) {
      if (err instanceof TemplateExecError) throw err
      this.at(node)
      if (err instanceof WrongType) this.fail(err.message)
      this.fail(`error calling ${name}: ${(err as Error).message}`)
    }
  }

  private validateType(v: unknown, t: ParamType): unknown {
    if (t === 'any') return v === undefined ? null : v
    if (v === undefined || v === null) this.fail(`invalid value; expected ${t}`)
    if (t === 'string' && typeof v !== 'string') this.fail(`wrong type for value; expected string; got ${typeName(v)}`)
    if (t === 'int' && !(typeof v === 'number' && Number.isInteger(v))) this.fail(`wrong type for value; expected int; got ${typeName(v)}`)
    return v
  }

  private evalArg(dot: unknown, t: ParamType, n: ArgNode): unknown {
    this.at(n)
    switch (n.kind) {
      case 'dot': return this.validateType(dot, t)
      case 'nil':
        if (t === 'any') return null
        return this.fail(`cannot assign nil to ${t}`)
      case 'field': return this.validateType(this.evalFieldChain(dot, dot, n, n.ident, [n], MISSING), t)
      case 'variable': return this.validateType(this.evalVariable(dot, n, [n], MISSING), t)
      case 'pipe': return this.validateType(this.evalPipeline(dot, n), t)
      case 'identifier': {
        const fn = this.funcs.get(n.ident)
        if (!fn) return this.fail(`${goQuote(n.ident)} is not a defined function`)
        const cmd: CommandNode = { kind: 'command', pos: n.pos, args: [n] }
        return this.validateType(n.ident === 'and' || n.ident === 'or' ? this.evalAndOr(dot, n.ident, cmd, [n], MISSING) : this.evalCall(dot, fn, n, n.ident, [n], MISSING), t)
      }
      case 'chain': return this.validateType(this.evalChain(dot, n, [], MISSING), t)
      case 'bool': case 'number': case 'string': break // constants: checked against the type below
    }
    if (t === 'string') {
      if (n.kind === 'string') return n.text
      return this.fail(`expected string; found ${nodeString(n)}`)
    }
    if (t === 'int') {
      if (n.kind === 'number' && n.isInt) return n.value
      return this.fail(`expected integer; found ${nodeString(n)}`)
    }
    switch (n.kind) {
      case 'bool': return n.value
      case 'number': return n.value
      case 'string': return n.text
    }
  }
}

/** No value at all (Go's missingVal): the first command of a pipeline has no piped argument. */
const MISSING = Symbol('missing')

// ---------------------------------------------------------------------------------------------
// Docker's formatter: `table`, `json`, escapes, a header row

/** How a command reports template errors (Docker's words differ from command to command). */
export interface FormatErrors {
  /** Prefix of a parse error, e.g. `template parsing error: `. */
  parse: string
  /** Prefix of an execution error, e.g. `failed to execute template: `. */
  exec: string
}

const DEFAULT_FORMAT_ERRORS: FormatErrors = { parse: 'template parsing error: ', exec: 'template parsing error: ' }

/** A template error as the CLI prints it, with the exit code Docker gives it. */
class FormatError extends Error {
  override readonly name = 'FormatError'
  constructor(message: string, readonly exitCode: number) {
    super(message)
  }
}

/** Docker's `table` check: the format starts with the word `table`. */
function isTableFormat(format: string): boolean {
  return format.startsWith('table')
}

/** Docker's preFormat: `table` dropped, `json` as `{{json .}}`, spaces trimmed, `\t` and `\n` unescaped. */
export function preFormat(format: string): string {
  let f = format
  if (isTableFormat(f)) f = f.slice('table'.length)
  else if (f === 'json') f = '{{json .}}'
  return f.replace(/^ +| +$/g, '').replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'))
}

/** Parses `text`, turning a parse error into Docker's message. */
export function parseFormat(text: string, errors: FormatErrors = DEFAULT_FORMAT_ERRORS, name = '', exitCode = 1): Template {
  try {
    return Template.parse(text, name)
  } catch (err) {
    if (err instanceof TemplateParseError) throw new FormatError(`${errors.parse}${err.message}`, exitCode)
    throw err
  }
}

export interface WriteOptions {
  /** What `table` alone means for this command (Docker's default table format). */
  defaultTable?: string
  /** The header context: a column's header word by field name (Docker's per-command names). */
  headers?: Record<string, string>
  errors?: FormatErrors
}

/**
 * Docker's formatter.Context.Write: each row through the template followed by a newline; with
 * `table`, a header row (the template run over the header words) first and the whole laid out
 * by Docker's tabwriter. Nothing is printed unless every row succeeds.
 */
export function formatWrite(format: string, rows: readonly unknown[], opts: WriteOptions = {}): string {
  const errors = opts.errors ?? DEFAULT_FORMAT_ERRORS
  const fmt = format === 'table' && opts.defaultTable !== undefined ? opts.defaultTable : format
  const tmpl = parseFormat(preFormat(fmt), errors)
  let body = ''
  for (const row of rows) {
    try {
      body += tmpl.execute(row)
    } catch (err) {
      if (err instanceof TemplateExecError) throw new FormatError(`${errors.exec}${err.message}`, 1)
      throw err
    }
    body += '\n'
  }
  if (!isTableFormat(fmt)) return body
  const header = headerContext(opts.headers ?? {})
  let head: string
  const headerTmpl = tmpl.withHeaderFunctions()
  try {
    head = headerTmpl.execute(header)
  } catch (err) {
    // Docker ignores a failing header; what was written before the failure stays
    if (!(err instanceof TemplateExecError)) throw err
    head = err.output
  }
  return tabwrite(`${head}\n${body}`)
}

/** Docker's SubHeaderContext: a map of header words with a `Label` method (`com.example.my-label` → `my label`). */
function headerContext(headers: Record<string, string>): Record<string, unknown> {
  const ctx: Record<string, unknown> = { ...headers }
  ctx['Label'] = goMethod(['string'], (name: string) => (name.split('.').at(-1) ?? '').replace(/[-_]/g, ' '))
  return ctx
}

