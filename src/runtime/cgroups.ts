/**
 * A running container's cgroups, read from the host's cgroup file systems: its usage (CPU time,
 * memory, processes, block I/O) for `stats`, its processes for `top`, and its OOM kills. Works on
 * cgroup v1, v2 and the hybrid layout (v1 controllers with an empty v2 tree beside them): each
 * controller is looked up where /proc/<pid>/cgroup and the mount table put it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { rmdir } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'

/** Where each controller of a process's cgroups is on the host (v1: by controller; v2: one folder). */
export interface CgroupPaths {
  /** v1 controller name → its folder for the process (`memory` → /sys/fs/cgroup/memory/cairn/ID). */
  v1: Map<string, string>
  /** The process's v2 folder, when the v2 tree holds controllers. */
  v2?: string
}

interface CgroupMount {
  type: 'cgroup' | 'cgroup2'
  dir: string
  /** The mount's root inside the hierarchy (mountinfo's 4th field). */
  root: string
  controllers: string[]
}

function cgroupMounts(): CgroupMount[] {
  const out: CgroupMount[] = []
  let text = ''
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return out
  }
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ')
    if (dash < 0) continue
    const left = line.slice(0, dash).split(' ')
    const right = line.slice(dash + 3).split(' ')
    const type = right[0]
    if (type !== 'cgroup' && type !== 'cgroup2') continue
    const dir = (left[4] ?? '').replace(/\\040/g, ' ')
    const controllers = type === 'cgroup' ? (right[2] ?? '').split(',').filter((o) => !['rw', 'ro', 'relatime', 'nosuid', 'nodev', 'noexec'].includes(o) && !o.includes('=')) : []
    out.push({ type, dir, root: left[3] ?? '/', controllers })
  }
  return out
}

function join(dir: string, root: string, path: string): string {
  const rel = root !== '/' && path.startsWith(root) ? path.slice(root.length) : path
  return `${dir}${rel === '/' ? '' : rel}`
}

/** The cgroup a container's process runs in, in every hierarchy (its spec's linux.cgroupsPath). */
export function containerCgroupsPath(id: string): string {
  return `/cairn/${id}`
}

/**
 * The cgroup folders a runtime makes for `cgroupsPath` (an OCI spec's linux.cgroupsPath, from each
 * hierarchy's root), known before they exist: a watcher can look for them from before the process
 * starts. The v2 folder only when the v2 tree holds the memory controller (not the hybrid layout).
 */
export function cgroupPathsFor(cgroupsPath: string): CgroupPaths {
  const out: CgroupPaths = { v1: new Map() }
  const path = cgroupsPath.startsWith('/') ? cgroupsPath : `/${cgroupsPath}`
  for (const mnt of cgroupMounts()) {
    if (mnt.type === 'cgroup') {
      for (const c of mnt.controllers) out.v1.set(c, join(mnt.dir, mnt.root, path))
    } else if ((readText(`${mnt.dir}/cgroup.controllers`) ?? '').split(/\s+/).includes('memory')) {
      out.v2 = join(mnt.dir, mnt.root, path)
    }
  }
  return out
}

/**
 * Every hierarchy's folder for `cgroupsPath` (each v1 controller's, named ones such as
 * name=systemd, the v2 tree), whether it exists or not.
 */
function cgroupFoldersFor(cgroupsPath: string): string[] {
  const path = cgroupsPath.startsWith('/') ? cgroupsPath : `/${cgroupsPath}`
  return [...new Set(cgroupMounts().map((mnt) => join(mnt.dir, mnt.root, path)))]
}

/**
 * Removes the cgroup folders left for `cgroupsPath`. The runtime's delete removes them, unless it
 * could not (a process still exiting on a busy machine) or never ran (its monitor killed during
 * the start); a folder that still holds processes or children stays (rmdir refuses it).
 */
export async function removeCgroupFolders(cgroupsPath: string): Promise<void> {
  await Promise.all(cgroupFoldersFor(cgroupsPath).map((dir) => rmdir(dir).catch(() => undefined)))
}

/** The cgroup folders of a process (undefined when it is gone). */
export function cgroupPathsOf(pid: number): CgroupPaths | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
  } catch {
    return undefined
  }
  const mounts = cgroupMounts()
  const out: CgroupPaths = { v1: new Map() }
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (!m) continue
    const [, , ctrl = '', path = ''] = m
    if (ctrl === '') {
      const mnt = mounts.find((x) => x.type === 'cgroup2')
      if (!mnt) continue
      const dir = join(mnt.dir, mnt.root, path)
      // the hybrid layout's v2 tree has no controllers: usage comes from v1 then
      let controllers = ''
      try {
        controllers = readFileSync(`${dir}/cgroup.controllers`, 'utf8').trim()
      } catch {
        controllers = ''
      }
      if (controllers !== '' || existsSync(`${dir}/memory.current`)) out.v2 = dir
      continue
    }
    for (const c of ctrl.split(',')) {
      const mnt = mounts.find((x) => x.type === 'cgroup' && x.controllers.includes(c))
      if (mnt) out.v1.set(c, join(mnt.dir, mnt.root, path))
    }
  }
  return out
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

function readNumber(path: string): number | undefined {
  const t = readText(path)?.trim()
  if (t === undefined || t === '' || t === 'max') return undefined
  const n = Number(t)
  return Number.isFinite(n) ? n : undefined
}

/** `key value` lines (memory.stat, memory.events, cpu.stat) as a map. */
function keyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out.set(k, Number(v))
  }
  return out
}

/** One reading of a container's cgroups (Docker's stats, raw). */
export interface CgroupSample {
  /** When it was read (ms since the epoch). */
  read: number
  /** CPU time of the container's processes, ns. */
  cpuUsageNs: number
  /** CPU time of the whole host, ns (/proc/stat). */
  systemCpuNs: number
  onlineCpus: number
  /** Bytes charged to the container. */
  memoryUsage: number
  /** Its memory limit, or the host's memory when it has none (as Docker shows it). */
  memoryLimit: number
  /** Page cache that can be dropped (Docker subtracts it: v1 total_inactive_file, v2 inactive_file). */
  inactiveFile: number
  pids: number
  blockRead: number
  blockWrite: number
  /** OOM kills in the cgroup so far. */
  oomKills: number
}

/** The host's CPU time so far, ns, as Docker computes it (the sum of /proc/stat's first line, in clock ticks of 10 ms). */
function systemCpuNs(): number {
  const first = readText('/proc/stat')?.split('\n')[0] ?? ''
  const ticks = first.trim().split(/\s+/).slice(1, 8).reduce((a, b) => a + (Number(b) || 0), 0)
  return ticks * 10_000_000
}

function blkioV1(path: string | undefined): { read: number; write: number } {
  let read = 0
  let write = 0
  for (const f of ['blkio.throttle.io_service_bytes_recursive', 'blkio.io_service_bytes_recursive']) {
    const text = path === undefined ? undefined : readText(`${path}/${f}`)
    if (text === undefined) continue
    for (const line of text.split('\n')) {
      const [, op, v] = line.trim().split(/\s+/)
      if (op === 'Read') read += Number(v) || 0
      else if (op === 'Write') write += Number(v) || 0
    }
    if (read > 0 || write > 0) break
  }
  return { read, write }
}

function blkioV2(path: string): { read: number; write: number } {
  let read = 0
  let write = 0
  for (const line of (readText(`${path}/io.stat`) ?? '').split('\n')) {
    for (const kv of line.trim().split(/\s+/).slice(1)) {
      const [k, v] = kv.split('=')
      if (k === 'rbytes') read += Number(v) || 0
      else if (k === 'wbytes') write += Number(v) || 0
    }
  }
  return { read, write }
}

/** A reading of the cgroups of a container whose first process is `pid` (undefined once it is gone). */
export function sampleCgroups(pid: number): CgroupSample | undefined {
  const paths = cgroupPathsOf(pid)
  if (!paths) return undefined
  const host = totalmem()
  const s: CgroupSample = {
    read: Date.now(), cpuUsageNs: 0, systemCpuNs: systemCpuNs(), onlineCpus: cpus().length, memoryUsage: 0, memoryLimit: host,
    inactiveFile: 0, pids: 0, blockRead: 0, blockWrite: 0, oomKills: 0,
  }
  const v2 = paths.v2
  const mem = paths.v1.get('memory')
  if (mem !== undefined) {
    s.memoryUsage = readNumber(`${mem}/memory.usage_in_bytes`) ?? 0
    s.memoryLimit = Math.min(host, readNumber(`${mem}/memory.limit_in_bytes`) ?? host)
    const stat = keyValues(readText(`${mem}/memory.stat`))
    s.inactiveFile = stat.get('total_inactive_file') ?? 0
    s.oomKills = keyValues(readText(`${mem}/memory.oom_control`)).get('oom_kill') ?? 0
  } else if (v2 !== undefined) {
    s.memoryUsage = readNumber(`${v2}/memory.current`) ?? 0
    s.memoryLimit = Math.min(host, readNumber(`${v2}/memory.max`) ?? host)
    s.inactiveFile = keyValues(readText(`${v2}/memory.stat`)).get('inactive_file') ?? 0
    s.oomKills = keyValues(readText(`${v2}/memory.events`)).get('oom_kill') ?? 0
  }
  const cpuacct = paths.v1.get('cpuacct')
  if (cpuacct !== undefined) s.cpuUsageNs = readNumber(`${cpuacct}/cpuacct.usage`) ?? 0
  else if (v2 !== undefined) s.cpuUsageNs = (keyValues(readText(`${v2}/cpu.stat`)).get('usage_usec') ?? 0) * 1000
  const pidsCg = paths.v1.get('pids') ?? v2
  if (pidsCg !== undefined) s.pids = readNumber(`${pidsCg}/pids.current`) ?? 0
  const io = paths.v1.has('blkio') ? blkioV1(paths.v1.get('blkio')) : v2 !== undefined ? blkioV2(v2) : { read: 0, write: 0 }
  s.blockRead = io.read
  s.blockWrite = io.write
  return s
}

/** The processes of the cgroup of `pid` (its container's), by host PID. */
export function cgroupProcesses(pid: number): number[] {
  const paths = cgroupPathsOf(pid)
  if (!paths) return []
  const dir = paths.v2 ?? paths.v1.get('pids') ?? paths.v1.get('memory') ?? paths.v1.get('cpu') ?? [...paths.v1.values()][0]
  if (dir === undefined) return [pid]
  return (readText(`${dir}/cgroup.procs`) ?? '').split('\n').filter(Boolean).map(Number).filter((n) => n > 0)
}

/** Bytes received and sent on the interfaces of a process's network namespace (loopback aside). */
export function networkIo(pid: number): { rx: number; tx: number } {
  let rx = 0
  let tx = 0
  for (const line of (readText(`/proc/${pid}/net/dev`) ?? '').split('\n').slice(2)) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const name = line.slice(0, colon).trim()
    if (name === 'lo') continue
    const f = line.slice(colon + 1).trim().split(/\s+/)
    rx += Number(f[0]) || 0
    tx += Number(f[8]) || 0
  }
  return { rx, tx }
}

/** Whether the memory controller can limit swap here (v1 memsw files, or v2 memory.swap.max). */
export function swapLimitSupported(): boolean {
  const mounts = cgroupMounts()
  const v1 = mounts.find((m) => m.type === 'cgroup' && m.controllers.includes('memory'))
  if (v1) return existsSync(`${v1.dir}/memory.memsw.limit_in_bytes`)
  const v2 = mounts.find((m) => m.type === 'cgroup2')
  if (!v2) return false
  const ctl = readText(`${v2.dir}/cgroup.subtree_control`) ?? ''
  return ctl.includes('memory') && existsSync('/proc/swaps')
}

/** The CPUs this machine has online (`0-1`), as cpuset lists them. */
export function onlineCpus(): string {
  return readText('/sys/devices/system/cpu/online')?.trim() ?? `0-${cpus().length - 1}`
}
