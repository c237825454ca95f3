/**
 * The two snapshotters, sharing their bookkeeping: metadata rows in the store's database,
 * one folder per snapshot under `snapshots/<driver>/<id>/`.
 *
 * overlay: each snapshot's `fs/` holds only its own changes; a stack is mounted as kernel
 *   overlayfs with `lowerdir` = its parents' `fs/` folders, through short links `l/<name>` so
 *   that 125 layers stay under the page-size limit for mount options; `upperdir` + `workdir`
 *   for a writable snapshot.
 * native: each snapshot's `fs/` is a full copy of its parent plus its own changes, copied with
 *   reflinks where the filesystem has them and plain copies otherwise, never hard links (a write
 *   in a container must never change a lower layer). Works without root and without overlayfs;
 *   preparing a snapshot costs a copy of the whole parent tree.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { release } from 'node:os'
import { lstat, mkdir, readdir, rename, rm, symlink } from 'node:fs/promises'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import type { DB } from '../metadata/db.js'
import type { Mount, SnapshotInfo, SnapshotKind, Snapshotter, StorageDriver, Usage } from './types.js'

const run = promisify(execFile)

/** The label of a snapshot prepared `volatile`. */
const VOLATILE_LABEL = 'cairn.volatile'

/** overlay's `volatile` option: Linux 5.10 and later. */
export function volatileSupported(kernel = release()): boolean {
  const [major = 0, minor = 0] = kernel.split('.').map((n) => Number.parseInt(n, 10))
  return major > 5 || (major === 5 && minor >= 10)
}

interface Row {
  driver: string
  key: string
  id: number
  parent: string | null
  kind: SnapshotKind
  created: number
  labels: string
  link: string | null
}

export class FsSnapshotter implements Snapshotter {
  readonly driver: StorageDriver
  /** `snapshots/<driver>` under the store root. */
  readonly home: string

  constructor(private readonly db: DB, root: string, driver: StorageDriver) {
    this.driver = driver
    this.home = `${root}/snapshots/${driver}`
  }

  async init(): Promise<void> {
    await mkdir(`${this.home}/l`, { recursive: true })
    await mkdir(`${this.home}/trash`, { recursive: true })
  }

  // ---------------------------------------------------------------- metadata

  private row(key: string): Row | undefined {
    return this.db.prepare('SELECT * FROM snapshots WHERE driver = ? AND key = ?').get(this.driver, key) as Row | undefined
  }

  private mustRow(key: string): Row {
    const r = this.row(key)
    if (!r) throw new CairnError('NOT_SUPPORTED', `snapshot ${key} does not exist`, { detail: 'not-found' })
    return r
  }

  private info(r: Row): SnapshotInfo {
    const i: SnapshotInfo = { name: r.key, kind: r.kind, created: new Date(r.created), labels: JSON.parse(r.labels) as Record<string, string> }
    if (r.parent) i.parent = r.parent
    return i
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return this.info(this.mustRow(key))
  }

  async tryStat(key: string): Promise<SnapshotInfo | undefined> {
    const r = this.row(key)
    return r ? this.info(r) : undefined
  }

  async list(opts: { prefix?: string } = {}): Promise<SnapshotInfo[]> {
    if (opts.prefix !== undefined) {
      // a range of the primary key (driver, key): no scan of every snapshot's row
      const rows = this.db.prepare('SELECT * FROM snapshots WHERE driver = ? AND key >= ? AND key < ? ORDER BY created, key')
        .all(this.driver, opts.prefix, `${opts.prefix}\uffff`) as Row[]
      return rows.filter((r) => r.key.startsWith(opts.prefix as string)).map((r) => this.info(r))
    }
    return (this.db.prepare('SELECT * FROM snapshots WHERE driver = ? ORDER BY created, key').all(this.driver) as Row[]).map((r) => this.info(r))
  }

  private dir(r: Pick<Row, 'id'>): string {
    return `${this.home}/${r.id}`
  }

  /** The committed stack below `parent`, top first. */
  private chain(parent: string): Row[] {
    const out: Row[] = []
    for (let cur: string | null = parent; cur; ) {
      const r = this.mustRow(cur)
      if (r.kind !== 'committed') throw new CairnError('INVALID_ARGUMENT', `snapshot ${cur} is not committed and cannot be a parent`)
      out.push(r)
      cur = r.parent
      if (out.length > 1000) throw new CairnError('STORE_CORRUPT', `snapshot chain below ${parent} loops`)
    }
    return out
  }

  // ---------------------------------------------------------------- lifecycle

  async prepare(key: string, parent?: string, opts: { labels?: Record<string, string>; volatile?: boolean } = {}): Promise<Mount[]> {
    return this.create('active', key, parent, { ...opts.labels, ...(opts.volatile === true ? { [VOLATILE_LABEL]: 'true' } : {}) })
  }

  async view(key: string, parent?: string, opts: { labels?: Record<string, string> } = {}): Promise<Mount[]> {
    return this.create('view', key, parent, opts.labels ?? {})
  }

  private async create(kind: SnapshotKind, key: string, parent: string | undefined, labels: Record<string, string>): Promise<Mount[]> {
    await this.init()
    if (parent !== undefined) this.chain(parent)
    // claim a folder number and the key in one transaction
    const row = this.db.transaction((): Row => {
      if (this.row(key)) throw new CairnError('CONFLICT', `snapshot ${key} already exists`)
      const next = ((this.db.prepare('SELECT MAX(id) AS m FROM snapshots WHERE driver = ?').get(this.driver) as { m: number | null }).m ?? 0) + 1
      const r: Row = { driver: this.driver, key, id: next, parent: parent ?? null, kind, created: Date.now(), labels: JSON.stringify(labels), link: null }
      this.db.prepare('INSERT INTO snapshots (driver, key, id, parent, kind, created, labels, link) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(r.driver, r.key, r.id, r.parent, r.kind, r.created, r.labels, r.link)
      return r
    }).immediate()
    try {
      const d = this.dir(row)
      await rm(d, { recursive: true, force: true }) // a folder left by a crashed process
      await mkdir(d, { recursive: true, mode: 0o700 })
      if (this.driver === 'overlay') {
        if (kind === 'active') {
          await mkdir(`${d}/fs`, { mode: 0o755 })
          await mkdir(`${d}/work`, { mode: 0o700 })
        }
      } else if (kind === 'active') {
        if (parent !== undefined) await copyTree(`${this.dir(this.mustRow(parent))}/fs`, `${d}/fs`)
        else await mkdir(`${d}/fs`, { mode: 0o755 })
      }
      return await this.mounts(key)
    } catch (err) {
      await this.remove(key).catch(() => undefined)
      throw err
    }
  }

  async mounts(key: string): Promise<Mount[]> {
    const r = this.mustRow(key)
    if (this.driver === 'native') {
      if (r.kind === 'view') {
        if (!r.parent) return [{ type: 'bind', source: await this.emptyDir(), options: ['ro', 'rbind'] }]
        return [{ type: 'bind', source: `${this.dir(this.mustRow(r.parent))}/fs`, options: ['ro', 'rbind'] }]
      }
      return [{ type: 'bind', source: `${this.dir(r)}/fs`, options: [r.kind === 'committed' ? 'ro' : 'rw', 'rbind'] }]
    }
    const lowers = r.parent ? this.chain(r.parent) : []
    if (r.kind === 'active') {
      if (lowers.length === 0) return [{ type: 'bind', source: `${this.dir(r)}/fs`, options: ['rw', 'rbind'] }]
      const volatile = (JSON.parse(r.labels) as Record<string, string>)[VOLATILE_LABEL] === 'true' && volatileSupported()
      // a volatile mount leaves work/incompat/volatile in its workdir, and overlay refuses to
      // mount the folders again while that is there: it goes (the tree was unmounted cleanly,
      // or, after a crash, is one whose writes did not need to survive it)
      if (volatile) await rm(`${this.dir(r)}/work/work/incompat`, { recursive: true, force: true })
      return [{
        type: 'overlay',
        source: 'overlay',
        cwd: this.home,
        options: ['index=off', `lowerdir=${(await this.links(lowers)).join(':')}`, `upperdir=${r.id}/fs`, `workdir=${r.id}/work`, ...(volatile ? ['volatile'] : [])],
      }]
    }
    const stack = r.kind === 'view' ? lowers : [r, ...lowers]
    if (stack.length === 0) return [{ type: 'bind', source: await this.emptyDir(), options: ['ro', 'rbind'] }]
    if (stack.length === 1) return [{ type: 'bind', source: `${this.dir(stack[0] as Row)}/fs`, options: ['ro', 'rbind'] }]
    return [{ type: 'overlay', source: 'overlay', cwd: this.home, options: ['index=off', `lowerdir=${(await this.links(stack)).join(':')}`] }]
  }

  /** Short relative names (`l/<26 chars>`) for the lowerdir list, made on first use. */
  private async links(rows: Row[]): Promise<string[]> {
    const out: string[] = []
    for (const r of rows) {
      let link = r.link
      if (!link) {
        link = randomBytes(16).toString('base64url').replace(/[-_]/g, 'x').slice(0, 22).toUpperCase()
        await symlink(`../${r.id}/fs`, `${this.home}/l/${link}`)
        const set = this.db.prepare('UPDATE snapshots SET link = ? WHERE driver = ? AND key = ? AND link IS NULL').run(link, this.driver, r.key)
        if (set.changes === 0) {
          // another process linked it first: use theirs
          await rm(`${this.home}/l/${link}`, { force: true })
          link = this.mustRow(r.key).link
        }
      }
      out.push(`l/${link}`)
    }
    return out
  }

  private async emptyDir(): Promise<string> {
    const d = `${this.home}/empty`
    await mkdir(d, { recursive: true, mode: 0o755 })
    return d
  }

  async commit(name: string, key: string, opts: { labels?: Record<string, string>; parent?: string | null } = {}): Promise<void> {
    const r = this.mustRow(key)
    if (r.kind !== 'active') throw new CairnError('INVALID_ARGUMENT', `snapshot ${key} is not active and cannot be committed`)
    const reparent = opts.parent !== undefined
    if (reparent) {
      // only layers may be left out whose content the snapshot's own folder does not need: overlay's
      if (this.driver !== 'overlay') throw new CairnError('NOT_SUPPORTED', `snapshot ${key}: re-parenting needs the overlay driver`)
      const above = r.parent !== null ? this.chain(r.parent).map((c) => c.key) : []
      if (typeof opts.parent === 'string' && !above.includes(opts.parent)) throw new CairnError('INVALID_ARGUMENT', `snapshot ${opts.parent} is not below ${key}`)
    }
    if (this.driver === 'overlay') await rm(`${this.dir(r)}/work`, { recursive: true, force: true })
    this.db.transaction(() => {
      if (this.row(name)) throw new CairnError('CONFLICT', `snapshot ${name} already exists`)
      const labels = { ...(reparent ? {} : (JSON.parse(r.labels) as Record<string, string>)), ...(opts.labels ?? {}) }
      delete labels[VOLATILE_LABEL] // a committed snapshot is never mounted writable
      const parent = reparent ? (opts.parent ?? null) : r.parent
      this.db.prepare("UPDATE snapshots SET key = ?, kind = 'committed', labels = ?, parent = ? WHERE driver = ? AND key = ?").run(name, JSON.stringify(labels), parent, this.driver, key)
    }).immediate()
  }

  async remove(key: string): Promise<void> {
    const r = this.db.transaction((): Row | undefined => {
      const row = this.row(key)
      if (!row) return undefined
      const child = this.db.prepare('SELECT key FROM snapshots WHERE driver = ? AND parent = ? LIMIT 1').get(this.driver, key) as { key: string } | undefined
      if (child) throw new CairnError('CONFLICT', `snapshot ${key} is the parent of ${child.key}`)
      this.db.prepare('DELETE FROM snapshots WHERE driver = ? AND key = ?').run(this.driver, key)
      return row
    }).immediate()
    if (!r) throw new CairnError('NOT_SUPPORTED', `snapshot ${key} does not exist`, { detail: 'not-found' })
    // out of sight first (one rename), then deleted at leisure
    const gone = `${this.home}/trash/${r.id}-${randomBytes(4).toString('hex')}`
    await rename(this.dir(r), gone).catch(() => undefined)
    if (r.link) await rm(`${this.home}/l/${r.link}`, { force: true })
    await rm(gone, { recursive: true, force: true })
  }

  async usage(key: string): Promise<Usage> {
    const r = this.mustRow(key)
    const fs = r.kind === 'view' ? undefined : `${this.dir(r)}/fs`
    if (!fs) return { size: 0, inodes: 0 }
    return diskUsage(fs)
  }

  async changesDir(key: string): Promise<string | undefined> {
    const r = this.mustRow(key)
    if (this.driver !== 'overlay' || r.kind !== 'active') return undefined
    return `${this.dir(r)}/fs`
  }

  async lowerDirs(key: string): Promise<string[]> {
    const r = this.mustRow(key)
    if (!r.parent) return []
    const chain = this.chain(r.parent)
    const dirs = chain.map((c) => `${this.dir(c)}/fs`)
    return this.driver === 'overlay' ? dirs : dirs.slice(0, 1)
  }

  async fullDir(key: string): Promise<string | undefined> {
    const r = this.mustRow(key)
    return this.driver === 'native' && r.kind !== 'view' ? `${this.dir(r)}/fs` : undefined
  }

  async applyDir(key: string): Promise<{ dir: string; whiteouts: 'oci' | 'overlay' }> {
    const r = this.mustRow(key)
    if (r.kind !== 'active') throw new CairnError('INVALID_ARGUMENT', `snapshot ${key} is not active`)
    return { dir: `${this.dir(r)}/fs`, whiteouts: this.driver === 'overlay' ? 'overlay' : 'oci' }
  }

  /** Removes folders no row owns (left by a process killed between claiming and cleaning). */
  async sweep(): Promise<void> {
    await this.init()
    const ids = new Set((this.db.prepare('SELECT id FROM snapshots WHERE driver = ?').all(this.driver) as { id: number }[]).map((r) => String(r.id)))
    for (const name of await readdir(this.home)) {
      if (/^\d+$/.test(name) && !ids.has(name)) await rm(`${this.home}/${name}`, { recursive: true, force: true })
    }
    await rm(`${this.home}/trash`, { recursive: true, force: true })
    const links = new Set((this.db.prepare('SELECT link FROM snapshots WHERE driver = ? AND link IS NOT NULL').all(this.driver) as { link: string }[]).map((r) => r.link))
    for (const l of await readdir(`${this.home}/l`).catch(() => [] as string[])) {
      if (!links.has(l)) await rm(`${this.home}/l/${l}`, { force: true })
    }
    await this.init()
  }
}

/** `cp -a --reflink=auto`: a full copy keeping owners, modes, times, xattrs and hard links among the copies. */
async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true })
  try {
    await run('cp', ['-a', '--reflink=auto', '--', `${from}/.`, `${to}/`], { maxBuffer: 16 << 20 })
  } catch (err) {
    throw new CairnError('NOT_SUPPORTED', `copying ${from} failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err })
  }
}

/** Bytes and inodes in a tree, each inode counted once (as `du` does). */
async function diskUsage(dir: string): Promise<Usage> {
  const seen = new Set<string>()
  let size = 0
  let inodes = 0
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`
      const st = await lstat(p, { bigint: true })
      const id = `${st.dev}:${st.ino}`
      if (!seen.has(id)) {
        seen.add(id)
        inodes++
        if (!st.isDirectory()) size += Number(st.size)
      }
      if (st.isDirectory()) await walk(p)
    }
  }
  await walk(dir)
  return { size, inodes }
}
