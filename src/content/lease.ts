/**
 * Leases, as containerd has them: an operation that writes content holds a lease, and what it
 * writes under that lease (its ingest files) is never taken for abandoned while the lease is
 * live, whoever cleans up: another operation of the same process (the API service runs many at
 * once, all with one PID) or another process sharing the store (the CLI beside the service).
 *
 * A lease is a file `leases/<id>.json` in the store (`{pid, host, ttlMs, created}`), so every
 * process sees it. It is live while its holder keeps its modification time fresh: the holder
 * touches it every `ttlMs / 4` from a timer that does not keep the process up; a holder that
 * died (its PID gone, on this host) loses it at once, one that hangs or is stopped after
 * `ttlMs`. Releasing it removes what was written under it and not published, then the file.
 *
 * A scope's lease is made lazily, on the first ingest, so an operation that writes nothing
 * (most API requests) costs nothing. Work outside any scope shares one lease per process,
 * which ends with the process.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { mkdir, readdir, rm, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'
import { isErrno } from '../errors/index.js'
import { processAlive, randomName, writeFileAtomic } from '../util/fs.js'

/** How long a lease outlives its last refresh. */
const DEFAULT_LEASE_TTL_MS = 60_000

interface LeaseRecord {
  pid: number
  host: string
  ttlMs: number
  created: string
}

/** A lease held by this process. */
class Lease {
  private name: string | undefined
  private made: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private released = false

  constructor(private readonly dir: string, readonly ttlMs: number) {}

  /** Made on first use: most scopes never write, and never need one. */
  get id(): string {
    return (this.name ??= randomName())
  }

  get path(): string {
    return `${this.dir}/${this.id}.json`
  }

  /** Writes the lease file (once) and starts refreshing it; call before writing anything under it. */
  ensure(): Promise<void> {
    if (this.released) throw new Error(`lease ${this.id} was released`)
    this.made ??= (async () => {
      await mkdir(this.dir, { recursive: true })
      const rec: LeaseRecord = { pid: process.pid, host: hostname(), ttlMs: this.ttlMs, created: new Date().toISOString() }
      await writeFileAtomic(this.path, `${JSON.stringify(rec)}\n`)
      this.timer = setInterval(() => {
        const now = new Date()
        utimes(this.path, now, now).catch(() => undefined)
      }, Math.max(10, Math.floor(this.ttlMs / 4)))
      this.timer.unref()
    })()
    return this.made
  }

  /** Whether anything was written under the lease (its file exists). */
  get materialized(): boolean {
    return this.made !== undefined
  }

  /** Stops refreshing; `removeFile` deletes the lease file (after its resources are gone). */
  async release(removeFile: () => Promise<void>): Promise<void> {
    if (this.released) return
    this.released = true
    if (this.timer) clearInterval(this.timer)
    if (this.made === undefined) return
    await this.made.catch(() => undefined)
    await removeFile()
    await rm(this.path, { force: true })
  }

  /** For process exit: the file goes at once, synchronously (resources are swept later). */
  releaseSync(): void {
    this.released = true
    if (this.timer) clearInterval(this.timer)
    if (this.made === undefined) return
    try {
      unlinkSync(this.path)
    } catch { /* gone already */ }
  }
}

/** The leases of one store. */
export class Leases {
  readonly dir: string
  private readonly scope = new AsyncLocalStorage<Lease>()
  private processLease: Lease | undefined

  constructor(root: string) {
    this.dir = `${root}/leases`
  }

  /** The lease of the running operation: its scope's, or the process's. */
  current(): Lease {
    const held = this.scope.getStore()
    if (held) return held
    if (!this.processLease) {
      const lease = new Lease(this.dir, DEFAULT_LEASE_TTL_MS)
      this.processLease = lease
      process.once('exit', () => lease.releaseSync())
    }
    return this.processLease
  }

  /**
   * Runs `fn` under a lease of its own, released when it ends (whether it succeeded or not):
   * what it wrote and did not publish is removed then.
   */
  async withLease<T>(fn: () => Promise<T>, cleanup: (lease: Lease) => Promise<void>, opts: { ttlMs?: number } = {}): Promise<T> {
    const lease = new Lease(this.dir, opts.ttlMs ?? DEFAULT_LEASE_TTL_MS)
    try {
      return await this.scope.run(lease, fn)
    } finally {
      await lease.release(() => cleanup(lease))
    }
  }

  /**
   * Whether the lease `id` is live: its file exists, was refreshed within its TTL, and its
   * holder (when on this host) is alive. Ours are live until released.
   */
  live(id: string): boolean {
    const held = this.scope.getStore()
    if ((held?.materialized === true && held.id === id) || (this.processLease?.materialized === true && this.processLease.id === id)) return true
    const path = `${this.dir}/${id}.json`
    let mtime: number
    try {
      mtime = statSync(path).mtimeMs
    } catch {
      return false
    }
    const rec = readRecord(path)
    // a lease file being written (or unreadable) counts as live until it is old enough
    if (!rec) return Date.now() - mtime < DEFAULT_LEASE_TTL_MS
    if (rec.host === hostname() && rec.pid !== process.pid && !processAlive(rec.pid)) return false
    return Date.now() - mtime < rec.ttlMs
  }

  /** Lease files no longer live (their holders died or stopped refreshing them). */
  async expired(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((id) => !this.live(id))
  }

  /** Removes a lease file that is no longer live (after its resources are gone). */
  async drop(id: string): Promise<void> {
    await rm(`${this.dir}/${id}.json`, { force: true })
  }

  /** Every lease id with a file, live or not (for tests and diagnostics). */
  list(): string[] {
    try {
      return readdirSync(this.dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return []
      throw err
    }
  }
}

function readRecord(path: string): LeaseRecord | undefined {
  try {
    // small and written atomically; read synchronously, as `live` is asked inside loops
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<LeaseRecord>
    if (typeof r.pid !== 'number' || typeof r.host !== 'string' || typeof r.ttlMs !== 'number') return undefined
    return { pid: r.pid, host: r.host, ttlMs: r.ttlMs, created: String(r.created ?? '') }
  } catch {
    return undefined
  }
}
