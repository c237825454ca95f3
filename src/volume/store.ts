/**
 * Volumes, as Docker's `local` driver keeps them: a folder per volume under the store,
 * `$ROOT/volumes/<name>/_data`, recorded in the metadata database with the containers that use
 * it. A volume named by any container (running or stopped) is never removed: the references
 * are rows of `container_volumes`, written in the same transaction that creates a missing
 * volume, and checked in the transaction that removes one. A volume made with
 * `-o type=…,device=…,o=…` has that file system mounted on its `_data` while a container uses it.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, renameSync } from 'node:fs'
import { lstat, mkdir, readdir, rm } from 'node:fs/promises'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import type { DB } from '../metadata/db.js'
import { isMounted, mountAll, mountsUnder, unmount } from '../mount/index.js'

const run = promisify(execFile)

/** Docker's rule for a local volume's name. */
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/

/** The label Docker puts on the volumes it makes for a container's unnamed mounts. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous'

/** The only driver: folders in the store. */
const LOCAL_DRIVER = 'local'

/** The local driver's options (`-o`). */
const LOCAL_OPTIONS = ['type', 'device', 'o'] as const

export interface VolumeRecord {
  name: string
  driver: string
  created: Date
  labels: Record<string, string>
  options: Record<string, string>
  /** Made for a container's unnamed mount (`-v /path`, an image's VOLUME). */
  anonymous: boolean
  /** Where its data is on the host: `$ROOT/volumes/<name>/_data`. */
  mountpoint: string
}

interface Row {
  name: string
  driver: string
  created: number
  labels: string
  options: string
  anonymous: number
}

export interface CreateVolumeOptions {
  /** Default: 64 random hex digits. */
  name?: string
  /** `local` only. */
  driver?: string
  labels?: Record<string, string>
  /** The local driver's `type`, `device` and `o` (a file system mounted on the volume while it is used). */
  options?: Record<string, string>
  anonymous?: boolean
}

/** What a container asks of a volume when it is created. */
export interface VolumeRequest {
  /** Undefined: an anonymous volume, named now. */
  name?: string
  anonymous: boolean
  /** For a volume made now: its labels, driver and the local driver's options. */
  labels?: Record<string, string>
  options?: Record<string, string>
  driver?: string
}

function randomVolumeName(): string {
  return randomBytes(32).toString('hex')
}

/** Docker's refusal of a name the local driver cannot take. */
export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME_RE.test(name)) {
    throw new CairnError('INVALID_ARGUMENT', `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`)
  }
}

function checkDriver(driver: string | undefined, name: string): void {
  if (driver !== undefined && driver !== '' && driver !== LOCAL_DRIVER) {
    throw new CairnError('NOT_SUPPORTED', `create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`)
  }
}

function checkOptions(options: Record<string, string>, name: string): void {
  for (const k of Object.keys(options)) {
    if (!(LOCAL_OPTIONS as readonly string[]).includes(k)) throw new CairnError('INVALID_ARGUMENT', `create ${name}: invalid option key: ${JSON.stringify(k)}`)
  }
  const has = (k: string): boolean => (options[k] ?? '') !== ''
  if ((has('type') || has('o')) && !has('device')) throw new CairnError('INVALID_ARGUMENT', `create ${name}: missing required option: "device"`)
  if (has('device') && !has('type')) throw new CairnError('INVALID_ARGUMENT', `create ${name}: missing required option: "type"`)
}

export class VolumeStore {
  /** `$ROOT/volumes` */
  readonly home: string

  constructor(private readonly db: DB, readonly root: string) {
    this.home = `${root}/volumes`
  }

  dir(name: string): string {
    return `${this.home}/${name}`
  }

  /** The data folder: what containers see. */
  dataDir(name: string): string {
    return `${this.dir(name)}/_data`
  }

  private record(r: Row): VolumeRecord {
    return {
      name: r.name, driver: r.driver, created: new Date(r.created),
      labels: JSON.parse(r.labels) as Record<string, string>, options: JSON.parse(r.options) as Record<string, string>,
      anonymous: r.anonymous === 1, mountpoint: this.dataDir(r.name),
    }
  }

  get(name: string): VolumeRecord | undefined {
    const r = this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as Row | undefined
    return r ? this.record(r) : undefined
  }

  /** Docker's lookup of a volume: its exact name (NAME_UNKNOWN `get NAME: no such volume`). */
  mustGet(name: string): VolumeRecord {
    const v = this.get(name)
    if (!v) throw new CairnError('NAME_UNKNOWN', `get ${name}: no such volume`, { detail: { kind: 'volume' } })
    return v
  }

  list(): VolumeRecord[] {
    return (this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as Row[]).map((r) => this.record(r))
  }

  /** The containers that use a volume (IDs). */
  users(name: string): string[] {
    return (this.db.prepare('SELECT container_id FROM container_volumes WHERE volume = ? ORDER BY container_id').all(name) as { container_id: string }[]).map((r) => r.container_id)
  }

  /** How many containers use each volume. */
  userCounts(): Map<string, number> {
    const rows = this.db.prepare('SELECT volume, COUNT(*) AS n FROM container_volumes GROUP BY volume').all() as { volume: string; n: number }[]
    return new Map(rows.map((r) => [r.volume, r.n]))
  }

  /** The volumes a container uses. */
  volumesOf(containerId: string): string[] {
    return (this.db.prepare('SELECT volume FROM container_volumes WHERE container_id = ? ORDER BY volume').all(containerId) as { volume: string }[]).map((r) => r.volume)
  }

  /**
   * `docker volume create`: a new volume, or the existing one of that name (as Docker answers,
   * unless its driver differs). `created` tells which.
   */
  create(opts: CreateVolumeOptions = {}): { volume: VolumeRecord; created: boolean } {
    const name = opts.name !== undefined && opts.name !== '' ? opts.name : randomVolumeName()
    checkVolumeName(name)
    checkDriver(opts.driver, name)
    const options = { ...(opts.options ?? {}) }
    checkOptions(options, name)
    const labels = { ...(opts.labels ?? {}) }
    if (opts.anonymous) labels[ANONYMOUS_LABEL] = ''
    let created = false
    this.db.transaction(() => {
      if (this.get(name)) return
      this.db.prepare('INSERT INTO volumes (name, driver, created, labels, options, anonymous) VALUES (?, ?, ?, ?, ?, ?)')
        .run(name, LOCAL_DRIVER, Date.now(), JSON.stringify(labels), JSON.stringify(options), opts.anonymous ? 1 : 0)
      created = true
    }).immediate()
    mkdirSync(this.dataDir(name), { recursive: true, mode: 0o755 })
    return { volume: this.mustGet(name), created }
  }

  /**
   * Records that a container (its row already there) uses these volumes, making those that do
   * not exist (anonymous ones get a random name): one transaction, so that a concurrent
   * `volume rm` either sees the reference or removed the volume before it was made again.
   * Returns the volumes' names in the order asked and which of them were made.
   */
  attach(containerId: string, requests: readonly VolumeRequest[]): { names: string[]; created: string[] } {
    const names = requests.map((r) => r.name ?? randomVolumeName())
    requests.forEach((r, i) => {
      const name = names[i] as string
      checkVolumeName(name)
      checkDriver(r.driver, name)
      checkOptions(r.options ?? {}, name)
    })
    const created: string[] = []
    this.db.transaction(() => {
      requests.forEach((r, i) => {
        const name = names[i] as string
        if (!this.get(name)) {
          const labels = { ...(r.labels ?? {}), ...(r.anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) }
          this.db.prepare('INSERT INTO volumes (name, driver, created, labels, options, anonymous) VALUES (?, ?, ?, ?, ?, ?)')
            .run(name, LOCAL_DRIVER, Date.now(), JSON.stringify(labels), JSON.stringify(r.options ?? {}), r.anonymous ? 1 : 0)
          created.push(name)
        }
        this.db.prepare('INSERT OR IGNORE INTO container_volumes (container_id, volume) VALUES (?, ?)').run(containerId, name)
      })
    }).immediate()
    for (const n of names) mkdirSync(this.dataDir(n), { recursive: true, mode: 0o755 })
    return { names, created }
  }

  /** Forgets a container's references (its row's removal does this too). */
  release(containerId: string): void {
    this.db.prepare('DELETE FROM container_volumes WHERE container_id = ?').run(containerId)
  }

  /**
   * `docker volume rm`: refused while a container uses it (Docker's message); the record goes
   * first, then the data (moved aside in the same transaction, then deleted, never across a
   * mount point).
   */
  async remove(name: string): Promise<VolumeRecord> {
    const v = this.mustGet(name)
    const inUse = (): CairnError => new CairnError('CONFLICT', `remove ${name}: volume is in use - [${this.users(name).join(', ')}]`, { detail: { kind: 'volume-in-use' } })
    if (this.users(name).length > 0) throw inUse()
    // a file system mounted on it (`-o device=…`) comes off before anything is deleted
    await this.unmountData(name)
    await mkdir(`${this.home}/.trash`, { recursive: true })
    const trash = `${this.home}/.trash/${name}-${randomBytes(4).toString('hex')}`
    this.db.transaction(() => {
      if (this.users(name).length > 0) throw inUse()
      if (this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name).changes !== 1) {
        throw new CairnError('NAME_UNKNOWN', `get ${name}: no such volume`, { detail: { kind: 'volume' } })
      }
      try {
        renameSync(this.dir(name), trash)
      } catch {
        // no folder: nothing to delete
      }
    }).immediate()
    await this.emptyTrash()
    return v
  }

  /** Deletes what removals moved aside (also what a removal killed half-way left), never across a mount point. */
  async emptyTrash(): Promise<void> {
    const trash = `${this.home}/.trash`
    let entries: string[]
    try {
      entries = await readdir(trash)
    } catch {
      return
    }
    for (const e of entries) {
      const dir = `${trash}/${e}`
      for (const m of await mountsUnder(dir)) await unmount(m).catch(() => unmount(m, { lazy: true }).catch(() => undefined))
      if ((await mountsUnder(dir)).length > 0) continue // never delete through a mount
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Bytes of a volume's data, as Docker counts a folder: files and links by length, each inode once, folders not at all, one file system. */
  async size(name: string): Promise<number> {
    const top = this.dataDir(name)
    const rootDev = (await lstat(top, { bigint: true }).catch(() => undefined))?.dev
    if (rootDev === undefined) return 0
    const seen = new Set<bigint>()
    let size = 0
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir).catch(() => [] as string[])) {
        const p = `${dir}/${e}`
        const st = await lstat(p, { bigint: true }).catch(() => undefined)
        if (!st || st.dev !== rootDev) continue
        if (st.isDirectory()) await walk(p)
        else if (!seen.has(st.ino)) {
          seen.add(st.ino)
          size += Number(st.size)
        }
      }
    }
    await walk(top)
    return size
  }

  /** Whether a volume's data folder holds nothing (what copy-up asks before it copies). */
  isEmpty(name: string): boolean {
    try {
      return readdirSync(this.dataDir(name)).length === 0
    } catch {
      return true
    }
  }

  /** Mounts a volume's file system (`-o type=…,device=…`) on its data folder, unless it is mounted. */
  async mountData(name: string): Promise<void> {
    const v = this.get(name)
    const device = v?.options['device'] ?? ''
    if (!v || device === '') return
    const dir = this.dataDir(name)
    await mkdir(dir, { recursive: true })
    if (await isMounted(dir)) return
    const type = v.options['type'] ?? 'none'
    const o = (v.options['o'] ?? '').split(',').filter(Boolean)
    // `o=bind` (with type none) is a bind mount of a host folder
    const bind = o.includes('bind') || o.includes('rbind')
    await mountAll([{ type: bind ? 'bind' : type, source: device, options: bind ? o.filter((x) => x !== 'bind' && x !== 'rbind') : o }], dir)
  }

  /** Takes a volume's file system off its data folder (when no running container uses it any more). */
  async unmountData(name: string): Promise<void> {
    const dir = this.dataDir(name)
    if (!(await isMounted(dir))) return
    await unmount(dir).catch(() => unmount(dir, { lazy: true }))
  }
}

/**
 * Docker's copy-up: fills an empty volume folder with what the image has at the mount's path,
 * keeping owners, modes, times, extended attributes and links; the folder itself takes the
 * source folder's owner and mode. Returns false when the volume already held something.
 */
export async function copyInto(source: string, volumeDir: string): Promise<boolean> {
  if (readdirSync(volumeDir).length > 0) return false
  try {
    await run('cp', ['-a', '--reflink=auto', '--', `${source}/.`, `${volumeDir}/`], { maxBuffer: 16 << 20 })
  } catch (err) {
    throw new CairnError('NOT_SUPPORTED', `copying ${source} into the volume failed: ${(err as { stderr?: string }).stderr ?? String(err)}`, { cause: err })
  }
  return true
}
