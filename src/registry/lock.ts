/**
 * Reader-writer locks between the registry's processes (`cairn registry serve`, `gc`, `purge-uploads`,
 * `check --repair`) and inside each of them.
 *
 * Across processes the lock is SQLite's file lock on a small database that is never written to: a
 * read transaction holds a SHARED lock, `BEGIN EXCLUSIVE` the EXCLUSIVE one. SQLite takes them with
 * fcntl(2), which the kernel drops when the holder dies, SIGKILL included, so a killed server or gc
 * never leaves the registry stuck and there is no stale lock file to judge. Node has no flock(2) of
 * its own; better-sqlite3 is already a dependency.
 *
 * Writers are preferred: an exclusive holder first takes a second lock, the *intent*, and shared
 * holders do not start while the intent is held, so that a stream of pushes cannot starve gc. A
 * writer that has waited a second (STEP_ASIDE_AFTER_MS) behind holders that do not finish steps
 * aside for a moment (drops its intent, lets waiting shared requests in) and then asks again: a
 * shared holder that waits for another shared hold to start, in its process or through another
 * one, would otherwise wait for the writer while the writer waits for it, until one of them timed
 * out. Waits poll (better-sqlite3 is synchronous; its busy timeout would block the event loop), a
 * few milliseconds apart.
 *
 * Inside one process, holders are counted: the process holds SQLite's SHARED lock while any of its
 * requests holds the lock shared, and an exclusive holder in the process waits for them to finish.
 */
import { mkdirSync } from 'node:fs'
import { CairnError } from '../errors/index.js'
import { openSqliteFile, type SqliteDatabase } from '../util/sqlite.js'

export type Release = () => void

const SHARED_PROBE = 'SELECT count(*) FROM sqlite_master'

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * How long a writer waits behind shared holders before it steps aside, and for how long it does:
 * a cycle through a shared holder costs a second; new shared holders can start only in the
 * short windows, so a stream of them still does not starve the writer.
 */
const STEP_ASIDE_AFTER_MS = 1000
const STEP_ASIDE_MS = 40

export interface FileLockOptions {
  /** Only take the lock shared, and never create its files (`registry check` without --repair). */
  readOnly?: boolean
}

export class FileLock {
  private main: SqliteDatabase | undefined
  private intent: SqliteDatabase | undefined
  private probe: SqliteDatabase | undefined
  /** false: read-only and no lock file exists, so no process has ever locked this root. */
  private usable = true
  private opened = false
  private readers = 0
  private writer = false
  private writersWaiting = 0
  private readonly wakers = new Set<() => void>()

  /** `path` without extension: `<path>.lock` is the lock, `<path>.intent` the writers' intent. */
  constructor(private readonly path: string, private readonly opts: FileLockOptions = {}) {}

  /**
   * Holds the lock shared (with other shared holders, here and in other processes). Waits while it is
   * held or wanted exclusively; UNAVAILABLE after `timeoutMs`.
   */
  async shared(timeoutMs = 60_000): Promise<Release> {
    this.open()
    const deadline = Date.now() + timeoutMs
    for (let delay = 1; ; delay = Math.min(delay * 2, 16)) {
      if (!this.writer && this.writersWaiting === 0 && this.takeShared()) {
        this.readers++
        return once(() => this.releaseShared())
      }
      if (Date.now() > deadline) throw new CairnError('UNAVAILABLE', `the registry is busy: ${this.path}.lock is held by another process (garbage collection?)`, { temporary: true })
      await this.pause(delay)
    }
  }

  /**
   * Holds the lock alone. With `wait: false`, undefined when another holder has it or wants it;
   * otherwise waits (UNAVAILABLE after `timeoutMs`).
   */
  async exclusive(opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<Release | undefined> {
    if (this.opts.readOnly) throw new Error('a read-only lock cannot be taken exclusively')
    this.open()
    const wait = opts.wait ?? true
    const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000)
    const timedOut = (): CairnError => new CairnError('UNAVAILABLE', `timed out waiting for ${this.path}.lock`, { temporary: true })
    // this process first: its shared holders finish, new ones wait behind us
    this.writersWaiting++
    try {
      let since = Date.now()
      for (let delay = 1; this.writer || this.readers > 0; delay = Math.min(delay * 2, 16)) {
        if (!wait) return undefined
        if (Date.now() > deadline) throw timedOut()
        if (Date.now() - since > STEP_ASIDE_AFTER_MS) {
          this.writersWaiting--
          this.wake()
          await sleep(STEP_ASIDE_MS)
          this.writersWaiting++
          since = Date.now()
          continue
        }
        await this.pause(delay)
      }
      this.writer = true
    } finally {
      this.writersWaiting--
    }
    // then the other processes: their writers by the intent, their readers by the lock itself
    const main = this.main as SqliteDatabase
    const intent = this.intent as SqliteDatabase
    try {
      let since = Date.now()
      for (let delay = 1; ; delay = Math.min(delay * 2, 16)) {
        if (!intent.inTransaction) {
          this.tryBegin(intent, 'BEGIN EXCLUSIVE')
          since = Date.now()
        }
        if (intent.inTransaction && this.tryBegin(main, 'BEGIN EXCLUSIVE')) return once(() => this.releaseExclusive())
        if (!wait) break
        if (Date.now() > deadline) throw timedOut()
        if (intent.inTransaction && Date.now() - since > STEP_ASIDE_AFTER_MS) {
          // the other processes' waiting readers go first, then we ask again
          this.end(intent)
          await sleep(STEP_ASIDE_MS)
          continue
        }
        await sleep(delay)
      }
    } catch (err) {
      this.releaseExclusive()
      throw err
    }
    this.releaseExclusive()
    return undefined
  }

  /** Closes the lock's files (a hold still open is released). */
  close(): void {
    for (const db of [this.main, this.intent, this.probe]) {
      try {
        db?.close()
      } catch {
        // already closed
      }
    }
    this.main = this.intent = this.probe = undefined
    this.opened = false
    this.readers = 0
    this.writer = false
  }

  private open(): void {
    if (this.opened) return
    if (this.opts.readOnly) {
      try {
        this.main = openSqliteFile(`${this.path}.lock`, { readonly: true, fileMustExist: true, timeout: 0 })
        this.probe = openSqliteFile(`${this.path}.intent`, { readonly: true, fileMustExist: true, timeout: 0 })
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'SQLITE_CANTOPEN') throw err
        this.usable = false
      }
      this.opened = true
      return
    }
    mkdirSync(this.path.slice(0, this.path.lastIndexOf('/')), { recursive: true })
    this.main = openSqliteFile(`${this.path}.lock`, { timeout: 0 })
    this.intent = openSqliteFile(`${this.path}.intent`, { timeout: 0 })
    this.probe = openSqliteFile(`${this.path}.intent`, { timeout: 0 })
    // a database with a header: a hold that ends writes nothing (an empty file would get its header
    // written at the first commit, with a journal a kill could leave behind)
    for (const db of [this.main, this.intent]) {
      try {
        if (db.pragma('user_version', { simple: true }) === 0) db.pragma('user_version = 1')
      } catch (err) {
        if (!isBusy(err)) throw err // someone holds it: then it has its header already
      }
    }
    this.opened = true
  }

  /** SQLite's SHARED lock for this process (kept while any of its holders remains); false when busy. */
  private takeShared(): boolean {
    if (!this.usable) return true
    try {
      // a writer of another process wants the lock: let it go first
      if (this.probe !== undefined) {
        if (!this.tryBegin(this.probe, 'BEGIN', true)) return false
        this.end(this.probe)
      }
      if (this.readers > 0) return true
      return this.tryBegin(this.main as SqliteDatabase, 'BEGIN', true)
    } catch (err) {
      // read-only, a lock file that needs a write to be read (a journal left by a kill) cannot be used:
      // a reader that changes nothing goes on without it
      if (!this.opts.readOnly) throw err
      this.usable = false
      return true
    }
  }

  private releaseShared(): void {
    this.readers--
    if (this.readers === 0 && this.usable) this.end(this.main as SqliteDatabase)
    this.wake()
  }

  private releaseExclusive(): void {
    this.end(this.main as SqliteDatabase)
    this.end(this.intent as SqliteDatabase)
    this.writer = false
    this.wake()
  }

  /** Starts a transaction (a read one takes SHARED at its first read); false when the lock is busy. */
  private tryBegin(db: SqliteDatabase, begin: string, read = false): boolean {
    try {
      db.exec(begin)
      if (read) db.prepare(SHARED_PROBE).get()
      return true
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK')
      if (isBusy(err)) return false
      throw err
    }
  }

  private end(db: SqliteDatabase): void {
    if (db.inTransaction) db.exec('COMMIT')
  }

  /** Waits for a change in this process, or `ms` (a change in another process is only seen by polling). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.wakers.add(done)
    })
  }

  private wake(): void {
    for (const f of [...this.wakers]) f()
  }
}

function once(fn: () => void): Release {
  let done = false
  return () => {
    if (done) return
    done = true
    fn()
  }
}
