/**
 * The OCI runtime driver: `crun` or `runc`, driven through their command lines (create, run,
 * state, kill, delete, pause, resume, exec), and the detection of which of them works here.
 *
 * Detection runs a real, tiny container (the host's /usr bind-mounted read-only, `true` as its
 * process) under each candidate, because a runtime can be installed and still refuse this
 * machine: Debian's crun 1.8 refuses a cgroup v1/v2 hybrid ("cgroups in hybrid mode not
 * supported"), where runc works. The verdict is cached under /run (cleared at boot, when the
 * kernel and cgroup layout may change) per runtime binary.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { accessSync, constants, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { CairnError, isErrno } from '../errors/index.js'
import { writeFileAtomic } from '../util/fs.js'
import { DEFAULT_NOFILE, DEFAULT_PATH, generateSpec, type BindMount } from './spec.js'

/** The runtimes Cairn knows, in order of preference. */
export const RuntimeNames = ['crun', 'runc'] as const
export type RuntimeName = (typeof RuntimeNames)[number]

/** How to install each runtime on Debian. */
const INSTALL_HINT: Record<RuntimeName, string> = {
  crun: 'apt-get install crun',
  runc: 'apt-get install runc',
}

/** Where runtimes keep their state and Cairn its probe cache: tmpfs, gone at reboot like the containers. */
export const RUN_DIR = '/run/cairn'

const SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']

export interface RuntimeState {
  id: string
  pid: number
  /** `creating`, `created`, `running`, `paused`, `stopped`. */
  status: string
  bundle: string
}

/** What a runtime prints when it fails, without its log decoration. */
export function runtimeMessage(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  const msgs: string[] = []
  for (const l of lines) {
    if (l.startsWith('{')) {
      try {
        const j = JSON.parse(l) as { msg?: unknown; level?: unknown }
        if (typeof j.msg === 'string' && (j.level === 'error' || j.level === 'fatal' || j.level === undefined)) msgs.push(j.msg)
        continue
      } catch {
        // not a JSON log line
      }
    }
    const m = /level=(?:error|fatal) msg="((?:[^"\\]|\\.)*)"/.exec(l)
    if (m) msgs.push((m[1] as string).replace(/\\(.)/g, '$1'))
    else if (!/level=(?:info|debug|warning)/.test(l)) msgs.push(l)
  }
  const last = msgs.at(-1) ?? ''
  // runc: "runc run failed: unable to start container process: exec: ..." → the cause
  return last.replace(/^(?:runc|crun) (?:run|create|exec|start) failed: /, '').replace(/^unable to start container process: /, '')
}

/** One OCI runtime binary and the state folder Cairn gives it. */
export class OciRuntime {
  constructor(
    readonly name: string,
    readonly path: string,
    /** The runtime's `--root`: its state of every container. */
    readonly stateRoot: string,
  ) {}

  /** crun takes `--log=file:PATH`, runc `--log PATH`; both write JSON lines with `--log-format json`. */
  private logArgs(logFile: string): string[] {
    return this.flavor === 'crun' ? [`--log=file:${logFile}`, '--log-format=json'] : ['--log', logFile, '--log-format', 'json']
  }

  get flavor(): RuntimeName {
    return this.path.endsWith('crun') || this.name === 'crun' ? 'crun' : 'runc'
  }

  private globalArgs(): string[] {
    return ['--root', this.stateRoot]
  }

  /** argv (after the binary) of `run` in the foreground: the caller becomes the monitor. */
  runArgs(id: string, bundle: string, pidFile: string, logFile: string): string[] {
    return [...this.globalArgs(), ...this.logArgs(logFile), 'run', '--bundle', bundle, '--pid-file', pidFile, id]
  }

  /** argv of `exec` with a process.json. */
  execArgs(id: string, processFile: string, opts: { tty?: boolean; detach?: boolean; pidFile?: string } = {}): string[] {
    const a = [...this.globalArgs(), 'exec', '--process', processFile]
    if (opts.tty) a.push('--tty')
    if (opts.detach) a.push('--detach')
    if (opts.pidFile !== undefined) a.push('--pid-file', opts.pidFile)
    a.push(id)
    return a
  }

  /**
   * argv of an `events` stream that reports the container's OOM kills as they happen (runc's
   * notifications on the cgroup's memory events, without periodic stats); undefined for a
   * runtime without one (crun).
   */
  oomEventsArgs(id: string): string[] | undefined {
    return this.flavor === 'runc' ? [...this.globalArgs(), 'events', '--interval', '87600h', id] : undefined
  }

  async state(id: string): Promise<RuntimeState | undefined> {
    const r = await this.exec(['state', id])
    if (r.code !== 0) return undefined
    try {
      return JSON.parse(r.stdout) as RuntimeState
    } catch {
      return undefined
    }
  }

  async kill(id: string, signal: string, opts: { all?: boolean } = {}): Promise<void> {
    const r = await this.exec(['kill', ...(opts.all ? ['--all'] : []), id, signal])
    if (r.code !== 0) throw this.failure('kill', r.stderr)
  }

  /** Removes the runtime's record of a container (with force: kills it first). Missing is fine. */
  async delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const r = await this.exec(['delete', ...(opts.force ? ['--force'] : []), id])
    if (r.code !== 0 && !/does not exist|not found|No such file/i.test(r.stderr)) throw this.failure('delete', r.stderr)
  }

  /**
   * runc gives up freezing a cgroup v1 whose tasks keep running on a busy machine ("unable to
   * freeze", the cgroup thawed again): that is tried again a few times before it is an error.
   */
  async pause(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.exec(['pause', id])
      if (r.code === 0) return
      if (attempt >= 5 || !/unable to freeze/i.test(r.stderr)) throw this.failure('pause', r.stderr)
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt))
    }
  }

  async resume(id: string): Promise<void> {
    const r = await this.exec(['resume', id])
    if (r.code !== 0) throw this.failure('resume', r.stderr)
  }

  /** New cgroup limits for a running container (`update -r -`: OCI `linux.resources` on stdin). */
  async update(id: string, resources: object): Promise<void> {
    const r = await this.exec(['update', '--resources', '-', id], true, JSON.stringify(resources))
    if (r.code !== 0) throw this.failure('update', r.stderr)
  }

  async version(): Promise<string> {
    const r = await this.exec(['--version'], false)
    return (r.stdout.split('\n')[0] ?? '').trim()
  }

  private failure(verb: string, stderr: string): CairnError {
    return new CairnError('CONFLICT', `${this.name} ${verb} failed: ${runtimeMessage(stderr) || 'no message'}`, { detail: { runtime: this.name } })
  }

  private exec(args: string[], global = true, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(this.path, global ? [...this.globalArgs(), ...args] : args, { maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
        resolve({ code, stdout, stderr: stderr || (err ? err.message : '') })
      })
      if (input !== undefined) child.stdin?.end(input)
    })
  }
}

/**
 * The open-files limit to give a container: Docker's 1048576, or less when this process's hard
 * limit is lower and it may not raise it (no CAP_SYS_RESOURCE, as in some VMs and containers).
 */
export function containerNofile(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8')
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)
    const hard = m?.[2]
    if (hard === undefined || hard === 'unlimited') return DEFAULT_NOFILE
    const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    const canRaise = capEff !== undefined && (BigInt(`0x${capEff}`) & (1n << 24n)) !== 0n
    return canRaise ? DEFAULT_NOFILE : Math.min(DEFAULT_NOFILE, Number(hard))
  } catch {
    return DEFAULT_NOFILE
  }
}

/** The absolute path of a runtime given by name (searched in the usual places) or by path. */
export function findRuntimeBinary(nameOrPath: string): string | undefined {
  const candidates = nameOrPath.includes('/')
    ? [nameOrPath]
    : [...new Set([...SEARCH_PATH, ...(process.env['PATH'] ?? '').split(':').filter((d) => d.startsWith('/'))])].map((d) => `${d}/${nameOrPath}`)
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK)
      if (statSync(c).isFile()) return c
    } catch {
      // not here
    }
  }
  return undefined
}

/** The runtime state folder for a store: one per store and runtime, under /run. */
export function runtimeStateRoot(storeRoot: string, name: string): string {
  const key = createHash('sha256').update(storeRoot).digest('hex').slice(0, 12)
  return `${RUN_DIR}/${key}/${name}`
}

export interface ProbeResult {
  ok: boolean
  /** Why it does not work (the runtime's own words). */
  reason?: string
}

interface ProbeCacheEntry extends ProbeResult {
  size: number
  mtimeMs: number
}

const PROBE_CACHE = `${RUN_DIR}/runtime-probe.json`

/**
 * Whether `binary` can run a container on this machine, by running one. Cached per binary
 * (path, size, mtime) until reboot.
 */
export async function probeRuntime(binary: string, opts: { noCache?: boolean } = {}): Promise<ProbeResult> {
  const st = statSync(binary)
  let cache: Record<string, ProbeCacheEntry> = {}
  try {
    cache = JSON.parse(await readFile(PROBE_CACHE, 'utf8')) as Record<string, ProbeCacheEntry>
  } catch {
    // no cache yet
  }
  const hit = cache[binary]
  if (!opts.noCache && hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) {
    return hit.reason !== undefined ? { ok: hit.ok, reason: hit.reason } : { ok: hit.ok }
  }
  const result = await runProbe(binary)
  try {
    const fresh = { ...cache, [binary]: { ...result, size: st.size, mtimeMs: st.mtimeMs } }
    await writeFileAtomic(PROBE_CACHE, `${JSON.stringify(fresh)}\n`)
  } catch {
    // a cache we cannot write only costs a probe next time
  }
  return result
}

async function runProbe(binary: string): Promise<ProbeResult> {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'containers need root (rootless containers are not supported)' }
  await mkdir(RUN_DIR, { recursive: true, mode: 0o700 })
  const dir = await mkdtemp(`${RUN_DIR}/probe-`)
  const name = binary.endsWith('crun') ? 'crun' : 'runc'
  const runtime = new OciRuntime(name, binary, `${dir}/state`)
  const id = `cairn-probe-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    const rootfs = `${dir}/rootfs`
    await mkdir(rootfs)
    // the host's programs, read-only: enough for `true` without copying anything
    const binds: BindMount[] = []
    for (const n of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'usr']) {
      let st
      try {
        st = lstatSync(`/${n}`)
      } catch {
        continue
      }
      if (st.isSymbolicLink()) await symlink(readlinkSync(`/${n}`), `${rootfs}/${n}`)
      else if (st.isDirectory()) {
        await mkdir(`${rootfs}/${n}`)
        binds.push({ source: `/${n}`, destination: `/${n}`, readonly: true })
      }
    }
    const spec = generateSpec({
      process: { args: ['true'], env: [`PATH=${DEFAULT_PATH}`], cwd: '/', user: { uid: 0, gid: 0 }, terminal: false, nofile: containerNofile() },
      rootfs,
      hostname: 'probe',
      network: 'private',
      binds,
      cgroupsPath: `/cairn/${id}`,
    })
    await writeFile(`${dir}/config.json`, JSON.stringify(spec))
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(binary, runtime.runArgs(id, dir, `${dir}/pid`, `${dir}/log.json`), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000, killSignal: 'SIGKILL' })
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
      child.on('error', (err) => resolve({ code: null, stderr: err.message }))
      child.on('close', (code) => resolve({ code, stderr }))
    })
    if (r.code === 0) return { ok: true }
    let log = ''
    try {
      log = await readFile(`${dir}/log.json`, 'utf8')
    } catch {
      // no log
    }
    return { ok: false, reason: runtimeMessage(log) || runtimeMessage(r.stderr) || `exited with code ${String(r.code)}` }
  } finally {
    await runtime.delete(id, { force: true }).catch(() => undefined)
    await rm(dir, { recursive: true, force: true }).catch(() => undefined)
  }
}

export interface DetectOptions {
  /** `crun`, `runc`, or a path; undefined: crun when it works here, else runc. */
  prefer?: string
  /** The store root, for the runtime state folder. */
  storeRoot: string
}

/**
 * The runtime to use. Without a preference: crun when it is installed and works here, else runc.
 * Errors (NOT_SUPPORTED) say what is missing or why a runtime refuses, and how to install one.
 */
export async function detectRuntime(opts: DetectOptions): Promise<OciRuntime> {
  if (process.getuid?.() !== 0) {
    throw new CairnError('NOT_SUPPORTED', 'running containers needs root (rootless containers are not supported)')
  }
  const tried: string[] = []
  const candidates = opts.prefer !== undefined && opts.prefer !== '' ? [opts.prefer] : [...RuntimeNames]
  for (const c of candidates) {
    const bin = findRuntimeBinary(c)
    if (!bin) {
      const flavor = c.slice(c.lastIndexOf('/') + 1)
      tried.push(`${c} is not installed${isKnown(flavor) ? ` (${INSTALL_HINT[flavor]})` : ''}`)
      continue
    }
    const probe = await probeRuntime(bin)
    if (probe.ok) {
      const name = c.includes('/') ? (bin.endsWith('crun') ? 'crun' : bin.endsWith('runc') ? 'runc' : bin) : c
      return new OciRuntime(name, bin, runtimeStateRoot(opts.storeRoot, name.replace(/\//g, '_')))
    }
    tried.push(`${c} (${bin}) does not work here: ${probe.reason ?? 'unknown reason'}`)
  }
  // what would work instead, or how to get a runtime at all
  const working: string[] = []
  if (opts.prefer !== undefined && opts.prefer !== '') {
    for (const n of RuntimeNames) {
      const bin = findRuntimeBinary(n)
      if (n !== opts.prefer && bin !== undefined && (await probeRuntime(bin)).ok) working.push(n)
    }
  }
  const hint = working.length > 0
    ? `; try --runtime ${working.join(' or --runtime ')}`
    : `; install an OCI runtime that works here: ${INSTALL_HINT.crun} (or ${INSTALL_HINT.runc})`
  throw new CairnError('NOT_SUPPORTED', `no usable OCI runtime: ${tried.join('; ')}${hint}`, { detail: { runtime: 'unavailable' } })
}

function isKnown(s: string): s is RuntimeName {
  return (RuntimeNames as readonly string[]).includes(s)
}

/** A runtime recorded for a container (its name and binary), without probing again. */
export function recordedRuntime(storeRoot: string, name: string, binary: string): OciRuntime {
  try {
    accessSync(binary, constants.X_OK)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new CairnError('NOT_SUPPORTED', `the container's runtime ${binary} is no longer installed${isKnown(name) ? ` (${INSTALL_HINT[name]})` : ''}`)
    }
    throw err
  }
  return new OciRuntime(name, binary, runtimeStateRoot(storeRoot, name.replace(/\//g, '_')))
}
