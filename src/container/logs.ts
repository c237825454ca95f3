/**
 * Container logs in Docker's json-file format: one JSON object per line,
 * `{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`, so that `logs`
 * can tell standard output from standard error and show timestamps.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { open, stat, watch, type FileHandle } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

export type LogStream = 'stdout' | 'stderr'

export interface LogEntry {
  stream: LogStream
  /** The line, with its newline (the last line of a stream may lack it). */
  log: string
  /** RFC 3339 with nanoseconds, as Docker writes it. */
  time: string
}

/** Docker splits lines longer than this into several entries. */
const MAX_PARTIAL = 16 * 1024

function logTime(ms: number = Date.now(), sub = 0): string {
  const iso = new Date(ms).toISOString() // 2024-01-01T00:00:00.123Z
  return `${iso.slice(0, 23)}${String(sub).padStart(6, '0')}Z`
}

/** Appends the output of a container's streams to its json-file log. */
export class JsonLogWriter {
  private readonly out: WriteStream
  private readonly partial: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] }
  private readonly partialLen: Record<LogStream, number> = { stdout: 0, stderr: 0 }
  private seq = 0
  private failed = false

  constructor(path: string) {
    this.out = createWriteStream(path, { flags: 'a', mode: 0o640 })
    this.out.on('error', () => {
      this.failed = true // a full disk must not kill the container's monitor
    })
  }

  write(stream: LogStream, chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl < 0) break
      this.emit(stream, Buffer.concat([...this.partial[stream], chunk.subarray(start, nl + 1)]))
      this.partial[stream] = []
      this.partialLen[stream] = 0
      start = nl + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      this.partial[stream].push(Buffer.from(rest))
      this.partialLen[stream] += rest.length
      if (this.partialLen[stream] >= MAX_PARTIAL) this.flushPartial(stream)
    }
  }

  private flushPartial(stream: LogStream): void {
    if (this.partialLen[stream] === 0) return
    this.emit(stream, Buffer.concat(this.partial[stream]))
    this.partial[stream] = []
    this.partialLen[stream] = 0
  }

  private emit(stream: LogStream, line: Buffer): void {
    if (this.failed) return
    // a nanosecond-ish counter keeps entries of one millisecond in order
    const entry: LogEntry = { log: line.toString('utf8'), stream, time: logTime(Date.now(), this.seq++ % 1_000_000) }
    this.out.write(`${JSON.stringify(entry)}\n`)
  }

  /** Writes what is left of unfinished lines and closes the file. */
  async close(): Promise<void> {
    this.flushPartial('stdout')
    this.flushPartial('stderr')
    await new Promise<void>((resolve) => this.out.end(() => resolve()))
  }
}

function parseLine(line: string): LogEntry | undefined {
  if (line === '') return undefined
  try {
    const e = JSON.parse(line) as Partial<LogEntry>
    if (typeof e.log !== 'string') return undefined
    return { log: e.log, stream: e.stream === 'stderr' ? 'stderr' : 'stdout', time: typeof e.time === 'string' ? e.time : '' }
  } catch {
    return undefined
  }
}

export interface ReadLogsOptions {
  /** Keep reading as the container writes, until `isRunning` says it stopped. */
  follow?: boolean
  isRunning?: () => boolean
  /** Only the last N entries. */
  tail?: number
  /** Only entries at or after this time (ms since the epoch). */
  since?: number
  signal?: AbortSignal
}

/** The entries of a json-file log, oldest first; with `follow`, new ones as they come. */
export async function* readLogs(path: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogEntry> {
  let fh: FileHandle | undefined
  try {
    fh = await open(path, 'r')
  } catch {
    if (!opts.follow) return
    // not written yet: wait for it while the container runs
    while (!opts.signal?.aborted && (opts.isRunning?.() ?? false)) {
      await sleep(50)
      try {
        fh = await open(path, 'r')
        break
      } catch {
        // still not there
      }
    }
    if (!fh) return
  }
  const keep = (e: LogEntry): boolean => opts.since === undefined || Date.parse(e.time) >= opts.since
  try {
    let pos = 0
    let rest = ''
    const readNew = async (): Promise<LogEntry[]> => {
      const out: LogEntry[] = []
      const buf = Buffer.allocUnsafe(1 << 20)
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) break
        pos += bytesRead
        const text = rest + buf.subarray(0, bytesRead).toString('utf8')
        const lines = text.split('\n')
        rest = lines.pop() ?? ''
        for (const l of lines) {
          const e = parseLine(l)
          if (e && keep(e)) out.push(e)
        }
      }
      return out
    }
    let first = await readNew()
    if (opts.tail !== undefined && opts.tail >= 0) first = opts.tail === 0 ? [] : first.slice(-opts.tail)
    for (const e of first) yield e
    if (!opts.follow) return
    const ac = new AbortController()
    const onAbort = (): void => ac.abort()
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    // fs.watch wakes us early; the timeout catches what it misses and checks the container
    const events = watch(path, { signal: ac.signal })
    const iter = events[Symbol.asyncIterator]()
    let pending: Promise<unknown> | undefined
    try {
      for (;;) {
        if (opts.signal?.aborted) return
        const running = opts.isRunning?.() ?? false
        const fresh = await readNew()
        for (const e of fresh) yield e
        if (!running && fresh.length === 0) {
          // one last look: the monitor closes the log before it records the exit
          for (const e of await readNew()) yield e
          return
        }
        pending ??= iter.next().catch(() => undefined)
        const woke = await Promise.race([pending.then(() => true), sleep(200, false)])
        if (woke) pending = undefined
        if ((await stat(path).catch(() => undefined)) === undefined) return
      }
    } finally {
      ac.abort()
      opts.signal?.removeEventListener('abort', onAbort)
    }
  } finally {
    await fh.close()
  }
}
