/**
 * A small coverage-guided fuzzer (in the manner of libFuzzer) for the parsers that read untrusted
 * bytes. Coverage is V8's own block coverage, read through node:inspector after every input, so
 * nothing is instrumented and no native code is needed: the same engine runs on every Node.js
 * line Cairn supports. An input that reaches a block (or a block count bucket) never reached
 * before joins the corpus and is mutated further.
 *
 * Why not Jazzer.js, the maintained coverage-guided fuzzer for JavaScript: its native part
 * (@jazzer.js/fuzzer 4, libFuzzer) ships only binaries built against glibc 2.38, which Debian 12
 * (glibc 2.36, this project's machines) cannot load, and older releases download their binary
 * from outside the npm registry or compile sources the package does not ship.
 *
 * A target throws for input it must refuse; `expected(err)` tells such refusals (a CairnError
 * with a code, say) from crashes (a TypeError, a RangeError, a hang). Every crash is written to
 * a file and reported with its input, so that it can become a regression test.
 */
import { Session } from 'node:inspector'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'

export interface FuzzOptions {
  /** starting inputs (the corpus grows from them) */
  seeds: readonly (Buffer | string)[]
  /** tokens that mutations insert (keywords, magic numbers, delimiters) */
  dictionary?: readonly (Buffer | string)[]
  /** longest input made (default 4096 bytes) */
  maxLength?: number
  /** whether an error the target threw is a refusal of bad input rather than a crash */
  expected: (err: unknown) => boolean
  /** seconds to run (default: CAIRN_FUZZ_SECONDS, else 3) */
  seconds?: number
  /** longest an input may take before it counts as a hang (default 10 s) */
  timeoutMs?: number
  /** which scripts' coverage counts (default: Cairn's build/src/) */
  coverageFilter?: (url: string) => boolean
  /**
   * A structure-aware mutation, tried for half the inputs (libFuzzer's custom mutator): given an
   * input and a source of random numbers below n, a new input, or undefined to mutate bytes.
   */
  mutate?: (input: Buffer, below: (n: number) => number) => Buffer | undefined
}

const JSON_VALUES: unknown[] = [null, 0, 1, -1, 1e308, 'x', '', true, [], {}, [1], [null], [{}], { a: 1 }, `sha256:${'0'.repeat(64)}`]

/**
 * A structure-aware mutation for inputs that are JSON after their first `prefix` bytes: a value
 * somewhere in the document is replaced by another (null, a number, a string, an empty list,
 * another of the document's values), removed, or duplicated.
 */
export function jsonMutator(prefix: number): NonNullable<FuzzOptions['mutate']> {
  return (input, below) => {
    let doc: unknown
    try {
      doc = JSON.parse(input.subarray(prefix).toString('utf8'))
    } catch {
      return undefined
    }
    const slots: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = []
    const values: unknown[] = []
    const walk = (v: unknown): void => {
      values.push(v)
      if (Array.isArray(v)) v.forEach((x, i) => { slots.push({ parent: v, key: i }); walk(x) })
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) { slots.push({ parent: v as Record<string, unknown>, key: k }); walk(x) }
    }
    walk(doc)
    const pickValue = (): unknown => (below(3) === 0 ? values[below(values.length)] : JSON_VALUES[below(JSON_VALUES.length)])
    const slot = slots[below(slots.length + 1)]
    if (slot === undefined) {
      doc = pickValue()
    } else {
      const op = below(4)
      if (op === 0 && Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1)
      else if (op === 0) delete (slot.parent as Record<string, unknown>)[slot.key as string]
      else if (op === 1 && Array.isArray(slot.parent)) slot.parent.push(structuredClone(slot.parent[slot.key as number]))
      else (slot.parent as Record<string | number, unknown>)[slot.key] = structuredClone(pickValue())
    }
    return Buffer.concat([input.subarray(0, prefix), Buffer.from(JSON.stringify(doc) ?? 'null')])
  }
}

export interface FuzzCrash {
  input: Buffer
  error: string
}

export interface FuzzReport {
  execs: number
  corpus: number
  features: number
  seed: number
  crashes: FuzzCrash[]
}

type Post = (method: string, params?: object) => unknown

interface CoverageRange { startOffset: number; endOffset: number; count: number }
interface ScriptCoverage { scriptId: string; url: string; functions: { ranges: CoverageRange[] }[] }

/** xorshift32: a seeded generator, so that a run can be repeated (CAIRN_FUZZ_SEED). */
class Rng {
  private s: number
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9
  }
  next(): number {
    let x = this.s
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.s = x >>> 0
    return this.s
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.below(items.length)]
    if (item === undefined) throw new Error('pick from an empty list')
    return item
  }
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x30, 0x37, 0x39, 0x2f, 0x2e, 0x3a, 0x40, 0x0a]
const BUCKETS = [0, 1, 2, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5]

function bucket(count: number): number {
  if (count < BUCKETS.length) return BUCKETS[count] ?? 0
  if (count < 32) return 6
  if (count < 128) return 7
  return 8
}

/** The number of seconds a fuzz target runs: CAIRN_FUZZ_SECONDS, else 3. */
function fuzzSeconds(): number {
  const s = Number(process.env.CAIRN_FUZZ_SECONDS ?? '3')
  return Number.isFinite(s) && s > 0 ? s : 3
}

/** Where crashes (and, with CAIRN_FUZZ_CORPUS, the corpus) are kept. */
function corpusDir(name: string): string | undefined {
  const base = process.env.CAIRN_FUZZ_CORPUS
  return base ? join(base, name) : undefined
}

class Fuzzer {
  private readonly post: Post
  private readonly session: Session
  private readonly seen = new Uint8Array(1 << 22)
  private features = 0
  private readonly filter: (url: string) => boolean

  constructor(filter: (url: string) => boolean) {
    this.filter = filter
    this.session = new Session()
    this.session.connect()
    this.post = (method, params) => {
      // a session in the same thread answers synchronously (into this object, which TypeScript's
      // narrowing does not take for untouched, as it would a variable)
      const answer: { error: Error | null; result: unknown } = { error: null, result: undefined }
      this.session.post(method, params ?? {}, (err, res) => {
        answer.error = err
        answer.result = res
      })
      if (answer.error) throw answer.error
      return answer.result
    }
    this.post('Profiler.enable')
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true })
  }

  close(): void {
    // under c8 (NODE_V8_COVERAGE) coverage must stay on for the report Node.js writes at exit
    if (process.env.NODE_V8_COVERAGE === undefined) {
      this.post('Profiler.stopPreciseCoverage')
      this.post('Profiler.disable')
    }
    this.session.disconnect()
  }

  /** Coverage since the last call; returns how many features no input had shown before. */
  newFeatures(): number {
    const { result } = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] }
    let fresh = 0
    for (const script of result) {
      if (!this.filter(script.url)) continue
      let h0 = 0
      for (let i = 0; i < script.url.length; i++) h0 = Math.imul(h0 ^ script.url.charCodeAt(i), 0x01000193)
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          let h = Math.imul(h0 ^ r.startOffset, 0x9e3779b1)
          h = Math.imul(h ^ r.endOffset, 0x85ebca6b)
          h = Math.imul(h ^ bucket(r.count), 0xc2b2ae35)
          const at = (h >>> 10) & (this.seen.length - 1)
          if (this.seen[at] === 0) {
            this.seen[at] = 1
            fresh++
          }
        }
      }
    }
    this.features += fresh
    return fresh
  }

  get featureCount(): number {
    return this.features
  }
}

function mutate(rng: Rng, input: Buffer, corpus: readonly Buffer[], dictionary: readonly Buffer[], maxLength: number): Buffer {
  let b = Buffer.from(input)
  const rounds = 1 + rng.below(4)
  for (let round = 0; round < rounds; round++) {
    const at = rng.below(b.length + 1)
    switch (rng.below(11)) {
      case 0: // flip a bit
        if (b.length > 0) {
          const i = rng.below(b.length)
          b[i] = (b[i] ?? 0) ^ (1 << rng.below(8))
        }
        break
      case 1: // a random byte
        if (b.length > 0) b[rng.below(b.length)] = rng.below(256)
        break
      case 2: // an interesting byte
        if (b.length > 0) b[rng.below(b.length)] = rng.pick(INTERESTING)
        break
      case 3: { // insert random bytes
        const n = 1 + rng.below(8)
        const bytes = Buffer.alloc(n)
        for (let i = 0; i < n; i++) bytes[i] = rng.below(256)
        b = Buffer.concat([b.subarray(0, at), bytes, b.subarray(at)])
        break
      }
      case 4: { // delete a run
        const n = 1 + rng.below(Math.min(64, Math.max(1, b.length - at)))
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)])
        break
      }
      case 5: { // duplicate a run
        const from = rng.below(b.length)
        const n = 1 + rng.below(Math.min(64, Math.max(1, b.length - from)))
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)])
        break
      }
      case 6: // insert a dictionary token
      case 7: { // overwrite with a dictionary token
        if (dictionary.length === 0) break
        const token = rng.pick(dictionary)
        b = Buffer.concat([b.subarray(0, at), token, b.subarray(round % 2 === 0 ? at : at + token.length)])
        break
      }
      case 8: { // splice with another input
        const other = rng.pick(corpus)
        const from = rng.below(other.length)
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + rng.below(256))])
        break
      }
      case 9: { // an ASCII number made larger, smaller, or enormous
        const digits = /[0-9]+/g
        const s = b.toString('latin1')
        const found = [...s.matchAll(digits)]
        if (found.length === 0) break
        const m = rng.pick(found)
        const value = rng.pick(['0', '1', '7', '777', '99999999999', '18446744073709551616', '-1', String(Number(m[0]) + 1)])
        b = Buffer.from(s.slice(0, m.index) + value + s.slice((m.index ?? 0) + m[0].length), 'latin1')
        break
      }
      case 10: // truncate
        b = b.subarray(0, at)
        break
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ''}`
  return String(err)
}

/**
 * Runs `target` on mutated inputs for the given time, keeping those that reach new code.
 * Returns the crashes found (also written under CAIRN_FUZZ_CORPUS/<name>/crashes when set).
 */
export async function fuzz(name: string, target: (data: Buffer) => unknown, opts: FuzzOptions): Promise<FuzzReport> {
  const seconds = opts.seconds ?? fuzzSeconds()
  const maxLength = opts.maxLength ?? 4096
  const timeoutMs = opts.timeoutMs ?? 10_000
  const seed = Number(process.env.CAIRN_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32))
  const rng = new Rng(seed)
  const dictionary = (opts.dictionary ?? []).map((t) => Buffer.from(t))
  const dir = corpusDir(name)
  const corpus: Buffer[] = opts.seeds.map((s) => Buffer.from(s))
  if (dir) {
    mkdirSync(join(dir, 'crashes'), { recursive: true })
    for (const f of readdirSync(dir, { withFileTypes: true })) if (f.isFile()) corpus.push(readFileSync(join(dir, f.name)))
  }
  if (corpus.length === 0) corpus.push(Buffer.alloc(0))
  const crashes: FuzzCrash[] = []
  const crashed = new Set<string>()
  const fuzzer = new Fuzzer(opts.coverageFilter ?? ((url) => url.includes('/build/src/')))
  let execs = 0

  const runOne = async (input: Buffer): Promise<void> => {
    execs++
    let timer: NodeJS.Timeout | undefined
    try {
      const result = target(input)
      if (result instanceof Promise) {
        await Promise.race([
          result,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`hang: no answer in ${timeoutMs} ms`)), timeoutMs)
          }),
        ])
      }
    } catch (err) {
      if (!opts.expected(err)) {
        const error = describe(err)
        const key = error.split('\n').slice(0, 3).join('\n')
        if (!crashed.has(key)) {
          crashed.add(key)
          crashes.push({ input, error })
          if (dir) writeFileSync(join(dir, 'crashes', createHash('sha256').update(input).digest('hex').slice(0, 16)), input)
        }
      }
    } finally {
      if (timer) clearTimeout(timer)
    }
  }

  try {
    fuzzer.newFeatures() // what loading and setting up reached does not count
    for (const input of [...corpus]) {
      await runOne(input)
      fuzzer.newFeatures()
    }
    const deadline = performance.now() + seconds * 1000
    while (performance.now() < deadline && crashes.length < 10) {
      const parent = rng.pick(corpus)
      const input = (opts.mutate && rng.below(2) === 0 ? opts.mutate(parent, (n) => rng.below(n)) : undefined) ??
        mutate(rng, parent, corpus, dictionary, maxLength)
      await runOne(input)
      if (fuzzer.newFeatures() > 0) {
        corpus.push(input)
        if (dir) writeFileSync(join(dir, createHash('sha256').update(input).digest('hex').slice(0, 16)), input)
      }
    }
  } finally {
    fuzzer.close()
  }
  return { execs, corpus: corpus.length, features: fuzzer.featureCount, seed, crashes }
}

/** A report as one line, and its crashes with their inputs (base64) for a regression test. */
export function formatReport(name: string, r: FuzzReport): string {
  const head = `fuzz ${name}: ${r.execs} inputs, corpus ${r.corpus}, ${r.features} coverage features, seed ${r.seed}, ${r.crashes.length} crashes`
  return [head, ...r.crashes.map((c) => `input (base64) ${c.input.toString('base64')}\n${c.error}`)].join('\n')
}
