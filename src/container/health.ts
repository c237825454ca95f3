/**
 * Health checks, run by a container's monitor as Docker's daemon runs them: the HEALTHCHECK
 * command through the runtime's `exec` every interval (the first after one interval; during
 * the start period every start interval), each given its timeout; the state (`starting`,
 * `healthy`, `unhealthy`, the failing streak and the last five results) kept in the
 * container's `health.json` for `ps` and `inspect`, and each change of status recorded as a
 * `health_status` event.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile, rename, rm, unlink, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HealthConfig } from '../oci/types.js'
import { formatDurationMs } from '../util/duration.js'
import { containerNofile } from '../runtime/runtime.js'
import { envValue, processEnv, processSpec, replaceOrAppendEnv } from '../runtime/spec.js'
import { resolveUser } from '../runtime/user.js'
import { readFileIn } from './rootfs.js'
import { containerAttributes, type ContainerEngine } from './engine.js'
import { ContainerStates, type ContainerSpec, type HealthResult, type HealthState } from './types.js'

const SECOND = 1000
/** Docker's defaults. */
const HealthDefaults = { interval: 30 * SECOND, timeout: 30 * SECOND, startPeriod: 0, startInterval: 5 * SECOND, retries: 3 } as const
/** Longest output kept of a probe (bytes), and results kept. */
const MAX_OUTPUT = 4096
const MAX_LOG = 5

/** The command a health check runs, or undefined when there is none (`NONE`, or nothing). */
export function probeCommand(h: HealthConfig | undefined, shell: readonly string[] | undefined): string[] | undefined {
  const test = h?.Test ?? []
  if (test[0] === 'CMD' && test.length > 1) return test.slice(1)
  if (test[0] === 'CMD-SHELL' && test.length > 1) return [...(shell && shell.length > 0 ? shell : ['/bin/sh', '-c']), ...test.slice(1)]
  return undefined
}

/** Go's RFC 3339 with nanoseconds, as Docker prints a probe's start and end. */
function goTime(ms: number): string {
  const d = new Date(ms)
  return d.toISOString().replace(/\.(\d{3})Z$/, (_m, f: string) => (f === '000' ? 'Z' : `.${f.replace(/0+$/, '')}Z`))
}

/** A container's health state, if it has a health check (read by `ps` and `inspect`). */
export function readHealth(path: string): HealthState | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as HealthState
  } catch {
    return undefined
  }
}

/** Docker's status words in `ps`: `health: starting`, `healthy`, `unhealthy`. */
export function healthWord(h: HealthState): string {
  return h.Status === 'starting' ? 'health: starting' : h.Status
}

async function writeRenamed(path: string, data: string): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`
  await writeFile(tmp, data, { mode: 0o600 })
  await rename(tmp, path).catch(async (err: unknown) => {
    await unlink(tmp).catch(() => undefined)
    throw err
  })
}

/** The health checks of one run of a container (a restart makes a new one). */
export class HealthMonitor {
  private stopped = false
  /** Whether stop() was called (read after an await: the flag changes meanwhile). */
  private isStopped(): boolean {
    return this.stopped
  }
  private readonly wake = new AbortController()
  private loop: Promise<void> | undefined
  private probe: { kill: () => void; done: Promise<unknown> } | undefined
  private state: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] }

  private constructor(
    private readonly engine: ContainerEngine,
    private readonly spec: ContainerSpec,
    private readonly command: string[],
    private readonly startedAt: number,
  ) {}

  /** Starts the checks of a container that just started, if it has a health check; its state begins as `starting`. */
  static async start(engine: ContainerEngine, spec: ContainerSpec, startedAt: number): Promise<HealthMonitor | undefined> {
    const command = probeCommand(spec.config.Healthcheck, spec.config.Shell)
    if (!command) return undefined
    const m = new HealthMonitor(engine, spec, command, startedAt)
    // the log of earlier runs stays (as Docker keeps it); the status starts again
    const old = readHealth(engine.paths(spec.id).health)
    if (old) m.state.Log = old.Log.slice(-MAX_LOG)
    await m.save()
    m.loop = m.run()
    return m
  }

  private ms(v: number | undefined, dflt: number): number {
    return v !== undefined && v > 0 ? Math.max(1, Math.round(v / 1e6)) : dflt
  }

  private get cfg(): { interval: number; timeout: number; startPeriod: number; startInterval: number; retries: number } {
    const h = this.spec.config.Healthcheck ?? {}
    return {
      interval: this.ms(h.Interval, HealthDefaults.interval),
      timeout: this.ms(h.Timeout, HealthDefaults.timeout),
      startPeriod: this.ms(h.StartPeriod, HealthDefaults.startPeriod),
      startInterval: this.ms(h.StartInterval, HealthDefaults.startInterval),
      retries: h.Retries !== undefined && h.Retries > 0 ? h.Retries : HealthDefaults.retries,
    }
  }

  /** Docker's schedule: the interval, but in the start period the start interval (or what is left of the period). */
  private nextInterval(): number {
    const { interval, startPeriod, startInterval } = this.cfg
    const elapsed = Date.now() - this.startedAt
    if (elapsed >= startPeriod) return interval
    const remaining = startPeriod - elapsed
    if (remaining < interval) return remaining
    return this.state.Status === 'starting' ? startInterval : interval
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await sleep(this.nextInterval(), undefined, { signal: this.wake.signal })
      } catch {
        return
      }
      if (this.isStopped()) return
      // a paused container is not probed (Docker stops its checks while paused)
      if (this.engine.rows.get(this.spec.id)?.state !== ContainerStates.running) continue
      const result = await this.runProbe()
      if (this.isStopped()) return
      await this.record(result)
    }
  }

  /** One probe: the command through the runtime's exec, its output kept (4 KiB), killed at the timeout. */
  private async runProbe(): Promise<HealthResult> {
    const start = Date.now()
    const { timeout } = this.cfg
    const engine = this.engine
    const id = this.spec.id
    const p = engine.paths(id)
    const cfg = this.spec.config
    const row = engine.rows.get(id)
    const execId = randomBytes(32).toString('hex')
    const tag = execId.slice(0, 16)
    const procFile = `${p.dir}/health-${tag}.json`
    const pidFile = `${p.dir}/health-${tag}.pid`
    const attrs = containerAttributes(this.spec, { execID: execId })
    const what = this.command.join(' ')
    const fail = (output: string): HealthResult => ({ Start: goTime(start), End: goTime(Date.now()), ExitCode: -1, Output: output })
    if (!row) return fail('the container is gone')
    try {
      const user = resolveUser(cfg.User, readFileIn(p.rootfs, '/etc/passwd'), readFileIn(p.rootfs, '/etc/group'))
      let env = processEnv(cfg.Env, cfg.Hostname, false)
      if (envValue(env, 'HOME') === undefined) env = replaceOrAppendEnv(env, [`HOME=${user.home}`])
      const cwd = cfg.WorkingDir !== '' ? cfg.WorkingDir : '/'
      await writeFile(procFile, JSON.stringify(processSpec({ args: this.command, env, cwd, user, terminal: false, nofile: containerNofile() })), { mode: 0o600 })
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err))
    }
    const rt = engine.runtimeOf(row)
    engine.event('container', `exec_create: ${what}`, id, attrs)
    let out = Buffer.alloc(0)
    // set by the callbacks below while the probe runs
    const seen = { truncated: false, timedOut: false }
    const keep = (b: Buffer): void => {
      const room = MAX_OUTPUT - out.length
      if (room > 0) out = Buffer.concat([out, b.subarray(0, room)])
      if (b.length > room) seen.truncated = true
    }
    try {
      const child = spawn(rt.path, rt.execArgs(id, procFile, { pidFile }), { stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.on('data', keep)
      child.stderr.on('data', keep)
      engine.event('container', `exec_start: ${what}`, id, attrs)
      const done = new Promise<number>((resolve) => {
        child.once('error', () => resolve(-1))
        child.once('close', (c, s) => resolve(c ?? (s ? 128 + 9 : -1)))
      })
      // the probe's process in the container, killed directly (killing the runtime's exec would leave it)
      const killProbe = (): void => {
        try {
          const pid = Number(readFileSync(pidFile, 'utf8').trim())
          if (pid > 0) process.kill(pid, 'SIGKILL')
        } catch {
          // not started yet, or gone
        }
        child.kill('SIGKILL')
      }
      this.probe = { kill: killProbe, done }
      const timer = setTimeout(() => {
        seen.timedOut = true
        killProbe()
      }, timeout)
      const code = await done
      clearTimeout(timer)
      this.probe = undefined
      engine.event('container', 'exec_die', id, { ...attrs, exitCode: String(code) })
      const text = `${out.toString('utf8')}${seen.truncated ? '...' : ''}`
      if (seen.timedOut) {
        return { Start: goTime(start), End: goTime(Date.now()), ExitCode: -1, Output: `Health check exceeded timeout (${formatDurationMs(timeout)})${text !== '' ? `: ${text}` : ''}` }
      }
      return { Start: goTime(start), End: goTime(Date.now()), ExitCode: code, Output: text }
    } finally {
      await Promise.all([rm(procFile, { force: true }), rm(pidFile, { force: true })])
    }
  }

  /** Docker's handleProbeResult: the streak, the status (failures in the start period do not count), the log. */
  private async record(result: HealthResult): Promise<void> {
    const before = this.state.Status
    this.state.Log = [...this.state.Log, result].slice(-MAX_LOG)
    if (result.ExitCode === 0) {
      this.state.FailingStreak = 0
      this.state.Status = 'healthy'
    } else {
      const inStartPeriod = this.state.Status === 'starting' && Date.parse(result.Start) - this.startedAt < this.cfg.startPeriod
      if (!inStartPeriod) {
        this.state.FailingStreak++
        if (this.state.FailingStreak >= this.cfg.retries) this.state.Status = 'unhealthy'
      }
    }
    await this.save()
    if (this.state.Status !== before) this.engine.event('container', `health_status: ${this.state.Status}`, this.spec.id, containerAttributes(this.spec))
  }

  private async save(): Promise<void> {
    await writeRenamed(this.engine.paths(this.spec.id).health, JSON.stringify(this.state)).catch(() => undefined)
  }

  /** Stops the checks (the container stopped): a probe under way is killed and waited for. */
  async stop(): Promise<void> {
    this.stopped = true
    this.wake.abort()
    this.probe?.kill()
    await this.probe?.done
    await this.loop
  }
}

/** A container's health state for `inspect` (undefined when it has no health check). */
export async function healthOf(engine: ContainerEngine, spec: ContainerSpec): Promise<HealthState | undefined> {
  if (!probeCommand(spec.config.Healthcheck, spec.config.Shell)) return undefined
  try {
    return JSON.parse(await readFile(engine.paths(spec.id).health, 'utf8')) as HealthState
  } catch {
    return { Status: 'starting', FailingStreak: 0, Log: [] }
  }
}
