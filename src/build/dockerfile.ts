/**
 * Reading a Dockerfile (syntax 1.x, as BuildKit's frontend reads it) into typed instructions.
 *
 * The line structure comes from `dockerfile-ast` (the parser of VS Code's Docker tooling): the
 * parser directives (`# escape=`, `# syntax=`), where each instruction starts and ends (line
 * continuations, here-documents and their bodies), and each instruction's keyword. What the
 * arguments mean — continuation lines joined the way the builder joins them (comment lines
 * inside dropped), flags, JSON or shell form, `key=value` pairs — is read here, and every error
 * is found here, with its line number, before anything runs.
 */
import { Directive, DockerfileParser, type Heredoc, type Instruction as AstInstruction } from 'dockerfile-ast'
import { CairnError } from '../errors/index.js'
import { parseDurationNs } from '../util/duration.js'
import { splitWords } from './shell.js'

export interface HeredocBody {
  name: string
  /** The body, each line ending in a newline. */
  content: string
  /** `<<EOF`: variables expand; `<<"EOF"`/`<<'EOF'`: taken as written. */
  expand: boolean
}

export interface Flag {
  name: string
  /** null for a bare `--link`. */
  value: string | null
}

/** What every instruction carries. */
export interface InstructionBase {
  /** 1-based line where it starts. */
  line: number
  /** The instruction as the build prints it: keyword and arguments on one line. */
  text: string
  flags: Flag[]
}

export type CommandForm = { kind: 'exec'; args: string[] } | { kind: 'shell'; command: string }

export type Instruction =
  | (InstructionBase & { kind: 'FROM'; image: string; alias?: string; platform?: string })
  | (InstructionBase & { kind: 'ARG'; args: { name: string; value?: string }[] })
  | (InstructionBase & { kind: 'RUN'; command: CommandForm; heredocs: HeredocBody[] })
  | (InstructionBase & { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; json: boolean; heredocs: HeredocBody[] })
  | (InstructionBase & { kind: 'ENV' | 'LABEL'; pairs: { key: string; value: string }[] })
  | (InstructionBase & { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER'; value: string })
  | (InstructionBase & { kind: 'EXPOSE'; words: string[] })
  | (InstructionBase & { kind: 'VOLUME'; paths: string[]; json: boolean })
  | (InstructionBase & { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm })
  | (InstructionBase & { kind: 'SHELL'; shell: string[] })
  | (InstructionBase & { kind: 'HEALTHCHECK'; none: true })
  | (InstructionBase & { kind: 'HEALTHCHECK'; none: false; test: CommandForm })
  | (InstructionBase & { kind: 'ONBUILD'; trigger: string })

export interface Stage {
  /** 0-based position among the stages. */
  index: number
  /** `AS name`, lower-cased (stage names are case-insensitive). */
  name?: string
  from: Extract<Instruction, { kind: 'FROM' }>
  steps: Instruction[]
}

export interface Dockerfile {
  escape: string
  syntax?: string
  /** `ARG`s before the first `FROM`. */
  metaArgs: Extract<Instruction, { kind: 'ARG' }>[]
  stages: Stage[]
}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'])

/** The flags each instruction accepts. */
const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
}

/** A syntax error: `dockerfile parse error on line N: …` (Docker's words). */
function parseError(line: number, message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `dockerfile parse error on line ${line}: ${message}`, { detail: { line } })
}

/** Reads a whole Dockerfile; any syntax error is thrown here, with its line. */
export function parseDockerfile(text: string): Dockerfile {
  const src = text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n')
  const df = DockerfileParser.parse(src)
  const escape = df.getEscapeCharacter()
  if (escape !== '\\' && escape !== '`') throw parseError(1, `invalid escape token '${escape}' does not match ` + '` or \\')
  const syntax = df.getDirectives().find((d) => d.getDirective() === Directive.syntax)?.getValue()
  const lines = src.split('\n')
  const instructions = df.getInstructions().map((i) => readInstruction(i, lines, escape))
  if (instructions.length === 0) throw new CairnError('INVALID_ARGUMENT', 'the Dockerfile cannot be empty')
  const out: Dockerfile = { escape, metaArgs: [], stages: [] }
  if (syntax !== undefined) out.syntax = syntax
  let stage: Stage | undefined
  const names = new Set<string>()
  for (const ins of instructions) {
    if (ins.kind === 'FROM') {
      const s: Stage = { index: out.stages.length, from: ins, steps: [] }
      if (ins.alias !== undefined) {
        const name = ins.alias.toLowerCase()
        if (!/^[a-z][a-z0-9_.-]*$/.test(name)) throw parseError(ins.line, `invalid name for build stage: "${ins.alias}", name can't start with a number or contain symbols`)
        if (names.has(name)) throw parseError(ins.line, `duplicate name ${ins.alias}`)
        names.add(name)
        s.name = name
      }
      out.stages.push(s)
      stage = s
      continue
    }
    if (!stage) {
      if (ins.kind === 'ARG') {
        out.metaArgs.push(ins)
        continue
      }
      throw parseError(ins.line, `no build stage in current context: ${ins.kind} must come after a FROM`)
    }
    stage.steps.push(ins)
  }
  if (out.stages.length === 0) throw new CairnError('INVALID_ARGUMENT', 'the Dockerfile has no FROM: no build stage in current context')
  return out
}

/** The continuation lines of an instruction joined as the builder joins them. */
function joinLines(lines: readonly string[], escape: string): string {
  let out = ''
  for (let k = 0; k < lines.length; k++) {
    let l = lines[k] as string
    const trimmed = l.trim()
    // inside a continuation, comment lines and empty lines are dropped
    if (k > 0 && (trimmed === '' || trimmed.startsWith('#'))) continue
    const cont = /\s*$/.exec(l)
    l = l.slice(0, cont ? cont.index : l.length)
    if (l.endsWith(escape) && !l.endsWith(escape + escape)) {
      out += l.slice(0, -1)
      continue
    }
    out += l
    break
  }
  return out
}

function readInstruction(i: AstInstruction, lines: readonly string[], escape: string): Instruction {
  const range = i.getRange()
  const first = range.start.line
  const line = first + 1
  const keyword = i.getKeyword().toUpperCase()
  if (!KNOWN.has(keyword)) throw parseError(line, `unknown instruction: ${i.getInstruction()}`)
  const docs: Heredoc[] = (keyword === 'RUN' || keyword === 'COPY')
    ? (i as unknown as { getHeredocs(): Heredoc[] }).getHeredocs()
    : []
  // the command line(s): up to the first here-document's body
  const commandEnd = docs.length > 0 ? (docs[0]?.getNameRange().start.line ?? first) : range.end.line
  const joined = joinLines(lines.slice(first, commandEnd + 1), escape).trim()
  const rest = joined.slice(i.getInstruction().length).trim()
  const heredocs: HeredocBody[] = []
  for (const d of docs) {
    const delim = d.getDelimiterRange()
    if (delim === null) throw parseError(line, `unterminated heredoc ${d.getName()}`)
    const startText = (lines[d.getStartRange().start.line] ?? '').slice(d.getStartRange().start.character)
    const strip = /^<<-/.test(startText)
    const quoted = /^<<-?["']/.test(startText)
    const body = d.getContentRange()
    const contentLines = body === null ? [] : lines.slice(body.start.line, body.end.line + 1)
    const content = contentLines.map((l) => (strip ? l.replace(/^\t+/, '') : l)).map((l) => `${l}\n`).join('')
    heredocs.push({ name: d.getName(), content, expand: !quoted })
  }
  const { flags, args } = takeFlags(rest, keyword, line, escape)
  const base = { line, text: `${keyword} ${rest}`.trim(), flags }
  return typed(keyword, base, args, heredocs, escape)
}

/** Leading `--name[=value]` words. */
function takeFlags(rest: string, keyword: string, line: number, escape: string): { flags: Flag[]; args: string } {
  const flags: Flag[] = []
  let s = rest
  for (;;) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(=("[^"]*"|'[^']*'|\S*))?(\s+|$)/.exec(s)
    if (!m) break
    const name = (m[1] as string).toLowerCase()
    const allowed = FLAGS[keyword] ?? []
    if (!allowed.includes(name)) throw parseError(line, `unknown flag: ${name}`)
    let value: string | null = m[2] !== undefined ? (m[3] as string) : null
    if (value !== null && /^["'].*["']$/.test(value)) value = value.slice(1, -1)
    flags.push({ name, value })
    s = s.slice(m[0].length)
  }
  void escape
  return { flags, args: s.trim() }
}

function requireArgs(args: string, keyword: string, line: number, what = 'at least one argument'): void {
  if (args === '') throw parseError(line, `${keyword} requires ${what}`)
}

/** A JSON array of strings, or undefined when the text is not one (then it is the shell form). */
function jsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined
  try {
    const v: unknown = JSON.parse(s)
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v
  } catch {
    // not JSON: the shell form
  }
  return undefined
}

function commandForm(args: string): CommandForm {
  const json = jsonArray(args)
  return json !== undefined ? { kind: 'exec', args: json } : { kind: 'shell', command: args }
}

/** `k=v k2="v 2"` or (ENV, LABEL) the legacy `k value with spaces`. */
function keyValues(args: string, keyword: string, line: number, escape: string): { key: string; value: string }[] {
  const words = splitWords(args, escape)
  const first = words[0] ?? ''
  if (!first.includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(args)
    if (!m) throw parseError(line, `${keyword} must have two arguments`)
    return [{ key: m[1] as string, value: (m[2] as string).trim() }]
  }
  return words.map((w) => {
    const eq = w.indexOf('=')
    if (eq <= 0) throw parseError(line, `${keyword} names can not be blank: can't find = in "${w}". Must be of the form: name=value`)
    return { key: w.slice(0, eq), value: w.slice(eq + 1) }
  })
}

function typed(keyword: string, base: InstructionBase, args: string, heredocs: HeredocBody[], escape: string): Instruction {
  const { line } = base
  switch (keyword) {
    case 'FROM': {
      const words = splitWords(args, escape)
      if (words.length === 1 || (words.length === 3 && (words[1] as string).toUpperCase() === 'AS')) {
        const platform = base.flags.find((f) => f.name === 'platform')?.value
        return {
          ...base, kind: 'FROM', image: words[0] as string,
          ...(words[2] !== undefined ? { alias: words[2] } : {}),
          ...(platform !== undefined && platform !== null ? { platform } : {}),
        }
      }
      throw parseError(line, 'FROM requires either one or three arguments')
    }
    case 'ARG': {
      requireArgs(args, 'ARG', line)
      const out: { name: string; value?: string }[] = []
      for (const w of splitWords(args, escape)) {
        const eq = w.indexOf('=')
        const name = eq < 0 ? w : w.slice(0, eq)
        if (name === '' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw parseError(line, `invalid ARG name "${name}"`)
        out.push(eq < 0 ? { name } : { name, value: w.slice(eq + 1) })
      }
      return { ...base, kind: 'ARG', args: out }
    }
    case 'RUN':
      if (heredocs.length === 0) requireArgs(args, 'RUN', line)
      return { ...base, kind: 'RUN', command: commandForm(args), heredocs }
    case 'COPY':
    case 'ADD': {
      const json = jsonArray(args)
      const words = json ?? splitWords(args, escape)
      const needed = heredocs.length > 0 ? 1 : 2
      if (words.length < needed) throw parseError(line, `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`)
      return { ...base, kind: keyword, sources: words.slice(0, -1), dest: words.at(-1) as string, json: json !== undefined, heredocs }
    }
    case 'ENV':
    case 'LABEL':
      requireArgs(args, keyword, line)
      return { ...base, kind: keyword, pairs: keyValues(args, keyword, line, escape) }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      requireArgs(args, keyword, line, 'exactly one argument')
      if (keyword !== 'MAINTAINER' && splitWords(args, escape).length > 1 && keyword !== 'WORKDIR') throw parseError(line, `${keyword} requires exactly one argument`)
      return { ...base, kind: keyword, value: args }
    case 'EXPOSE':
      requireArgs(args, 'EXPOSE', line)
      return { ...base, kind: 'EXPOSE', words: splitWords(args, escape) }
    case 'VOLUME': {
      requireArgs(args, 'VOLUME', line)
      const json = jsonArray(args)
      return { ...base, kind: 'VOLUME', paths: json ?? splitWords(args, escape), json: json !== undefined }
    }
    case 'CMD':
    case 'ENTRYPOINT':
      requireArgs(args, keyword, line)
      return { ...base, kind: keyword, command: commandForm(args) }
    case 'SHELL': {
      const json = jsonArray(args)
      if (json === undefined || json.length === 0) throw parseError(line, 'SHELL requires the arguments to be in JSON form')
      return { ...base, kind: 'SHELL', shell: json }
    }
    case 'HEALTHCHECK': {
      requireArgs(args, 'HEALTHCHECK', line)
      const word = (/^\S+/.exec(args)?.[0] ?? '').toUpperCase()
      if (word === 'NONE') {
        if (args.trim().toUpperCase() !== 'NONE' || base.flags.length > 0) throw parseError(line, "HEALTHCHECK NONE takes no arguments")
        return { ...base, kind: 'HEALTHCHECK', none: true }
      }
      if (word !== 'CMD') throw parseError(line, `Unknown type "${word}" in HEALTHCHECK (try CMD)`)
      const cmd = args.slice(3).trim()
      requireArgs(cmd, 'HEALTHCHECK CMD', line)
      for (const f of base.flags) {
        if (f.name === 'retries' ? !/^\d+$/.test(f.value ?? '') : parseDuration(f.value ?? '') === undefined) {
          throw parseError(line, `invalid value for --${f.name}: ${f.value ?? ''}`)
        }
      }
      return { ...base, kind: 'HEALTHCHECK', none: false, test: commandForm(cmd) }
    }
    case 'ONBUILD': {
      requireArgs(args, 'ONBUILD', line)
      const trigger = (/^\S+/.exec(args)?.[0] ?? '').toUpperCase()
      if (trigger === 'ONBUILD') throw parseError(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
      if (trigger === 'FROM' || trigger === 'MAINTAINER') throw parseError(line, `${trigger} isn't allowed as an ONBUILD trigger`)
      if (!KNOWN.has(trigger)) throw parseError(line, `unknown instruction: ${trigger}`)
      return { ...base, kind: 'ONBUILD', trigger: args }
    }
    default:
      throw parseError(line, `unknown instruction: ${keyword}`)
  }
}

/** Go's duration syntax (`30s`, `1m30s`, `500ms`) in nanoseconds, unsigned; undefined when it does not parse. */
export function parseDuration(s: string): number | undefined {
  const ns = parseDurationNs(s, { sign: false, looseFraction: false })
  return ns === undefined ? undefined : Math.round(ns)
}
