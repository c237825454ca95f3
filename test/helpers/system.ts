/**
 * Linux process and mount bookkeeping read straight from /proc, so that helpers which start
 * daemons can prove they left nothing behind. Every function here has a synchronous form
 * because it must also work inside a process 'exit' handler.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface ProcInfo {
  pid: number
  ppid: number
  /** One letter from /proc/PID/stat: R, S, D, Z (zombie), T, ... */
  state: string
  comm: string
  /** argv, split on NUL. */
  argv: string[]
}

/** One process, or undefined when it is gone (or has vanished while being read). */
export function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm may hold spaces and parentheses: it ends at the last ')'.
    const open = stat.indexOf('(')
    const close = stat.lastIndexOf(')')
    const rest = stat.slice(close + 2).split(' ')
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    if (argv.at(-1) === '') argv.pop()
    return { pid, ppid: Number(rest[1]), state: rest[0] ?? '?', comm: stat.slice(open + 1, close), argv }
  } catch {
    return undefined
  }
}

function listProcs(): ProcInfo[] {
  const procs: ProcInfo[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const p = readProc(Number(name))
    if (p) procs.push(p)
  }
  return procs
}

/**
 * Live (non-zombie) processes whose command line mentions `needle`, e.g. a private temp dir;
 * never this process nor one of its ancestors (a shell that was handed the dir as an argument).
 */
export function procsMentioning(needle: string): ProcInfo[] {
  const procs = listProcs()
  const byPid = new Map(procs.map((p) => [p.pid, p]))
  const ancestors = new Set<number>()
  for (let pid: number | undefined = process.pid; pid !== undefined && pid > 0 && !ancestors.has(pid); pid = byPid.get(pid)?.ppid) {
    ancestors.add(pid)
  }
  return procs.filter((p) => !ancestors.has(p.pid) && p.state !== 'Z' && p.argv.some((a) => a.includes(needle)))
}

/** `roots` and all their descendants, children before parents. */
export function processTree(roots: readonly number[]): number[] {
  const procs = listProcs()
  const children = new Map<number, number[]>()
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid])
  const order: number[] = []
  const visit = (pid: number, seen: Set<number>): void => {
    if (seen.has(pid)) return
    seen.add(pid)
    for (const c of children.get(pid) ?? []) visit(c, seen)
    order.push(pid)
  }
  const seen = new Set<number>()
  for (const r of roots) visit(r, seen)
  return order
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const p = readProc(pid)
  return p !== undefined && p.state !== 'Z'
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}

export function waitGoneSync(pid: number, timeoutMs: number): boolean {
  const deadline = Date.now() + timeoutMs
  const cell = new Int32Array(new SharedArrayBuffer(4))
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false
    Atomics.wait(cell, 0, 0, 50)
  }
  return true
}

/** SIGKILLs every process in the trees rooted at `roots`, leaves first. */
export function killTrees(roots: readonly number[]): void {
  for (const pid of processTree(roots)) signal(pid, 'SIGKILL')
}

/** Mount points at or below `dir` in this process's mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  const points: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4]
    if (field === undefined) continue
    const point = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)))
    if (point === dir || point.startsWith(prefix)) points.push(point)
  }
  // The same point may be mounted several times over; each needs its own umount.
  return points.sort((a, b) => b.split('/').length - a.split('/').length)
}

/** Unmounts everything at or below `dir` (lazily when a plain umount is refused). Returns what stays mounted. */
export function unmountUnder(dir: string): string[] {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir)
    if (points.length === 0) return []
    for (const point of points) {
      const r = spawnSync('umount', [point], { stdio: 'ignore' })
      if (r.status !== 0) spawnSync('umount', ['--lazy', point], { stdio: 'ignore' })
    }
  }
  return mountsUnder(dir)
}

/** Removes a cgroup directory named `name` directly under each controller (v1) or the v2 root. Best effort. */
export function removeCgroup(name: string): void {
  const root = '/sys/fs/cgroup'
  const candidates = [join(root, name)]
  try {
    for (const ctrl of readdirSync(root)) candidates.push(join(root, ctrl, name))
  } catch {
    return
  }
  const rmTree = (dir: string): void => {
    try {
      for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmTree(join(dir, e.name))
      rmdirSync(dir)
    } catch {
      // busy or gone: best effort
    }
  }
  for (const c of candidates) if (existsSync(c)) rmTree(c)
}
