/**
 * The monitor of one container (what containerd-shim and conmon are to Docker and Podman):
 * a process of its own that runs the OCI runtime in the foreground, so that it is the parent
 * that learns the exit status; copies the output to the json-file log (and to whoever is
 * attached, through its attach socket: attach.ts); records the exit atomically (exit.json, then
 * the database row); unmounts; and removes the container when it was started with --rm. It
 * outlives the command that started it.
 *
 * It tells the starter how the start went through fd 3 (JSON lines): `ready` once its attach
 * socket listens (callers attached from the first byte connect then, and it waits for the
 * number it was told of); `started`, or `failed` with the error (before the process ran); then
 * `exited` with the exit code. The process's I/O (pipes, or a pseudo-terminal) is stdio.ts's.
 *
 * It also keeps the container's restart policy (after an exit it decides, as Docker's restart
 * manager does, whether and after what back-off to run the container again, and does so,
 * network and mounts taken back and set up again in between) and runs its health checks.
 * The attach socket serves across the runs: the callers of a run get its exit code and are let
 * go, later callers join the next run. It records the container's start and die events.
 */
import { existsSync, readFileSync, writeSync } from 'node:fs'
import { appendFile, readFile, rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { hasCode, isCairnError, type ErrorCode } from '../errors/index.js'
import { runtimeMessage } from '../runtime/runtime.js'
import { JsonLogWriter, type LogStream } from './logs.js'
import { selfIdentity } from './rows.js'
import { ContainerStates } from './types.js'
import { containerAttributes, restartDecision, type ContainerEngine, type MonitorChannel, type ShimArgs } from './engine.js'
import { AttachServer } from './attach.js'
import { spawnProcess, type ChildIO } from './stdio.js'
import { HealthMonitor } from './health.js'
import { watchOom, type OomWatch } from './oom.js'

/** Docker's exit codes for a process that could not be started: 127 not found, 126 not executable, else 125. */
export function startExitCode(message: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127
  if (/permission denied|is a directory/.test(message)) return 126
  return 125
}

/** The exit code a container that could not start records (Docker's State.ExitCode): 127, 126, else 125. */
function exitCodeOf(err: unknown): number {
  if (hasCode(err, 'COMMAND_NOT_FOUND')) return 127
  if (hasCode(err, 'COMMAND_NOT_EXECUTABLE')) return 126
  if (isCairnError(err)) return 125
  return startExitCode(err instanceof Error ? err.message : String(err))
}

/** The error code of a start the runtime refused, from the exit code its message implies. */
function startErrorCode(exitCode: number): ErrorCode {
  return exitCode === 127 ? 'COMMAND_NOT_FOUND' : exitCode === 126 ? 'COMMAND_NOT_EXECUTABLE' : 'CONFLICT'
}

/** What one run of the container came to. */
type RunOutcome =
  | { kind: 'failed'; exitCode: number }
  | { kind: 'gone' }
  /** `oomKilled`: the kernel's OOM killer ended this run (Docker's State.OOMKilled). */
  | { kind: 'exited'; exitCode: number; ranMs: number; oomKilled: boolean }

/** A monitor of its own: it tells its starter in JSON lines on fd 3. */
const FD3: MonitorChannel = {
  report: (e) => {
    try {
      writeSync(3, `${JSON.stringify(e)}\n`)
    } catch {
      // the starter is gone (detached, or killed): nobody to tell
    }
  },
  ownsProcess: true,
}

export async function runMonitor(engine: ContainerEngine, args: ShimArgs, channel: MonitorChannel = FD3): Promise<number> {
  const report = channel.report
  const id = args.id
  const p = engine.paths(id)
  const log = async (line: string): Promise<void> => {
    await appendFile(p.shimLog, `${new Date().toISOString()} ${line}\n`).catch(() => undefined)
  }
  const me = selfIdentity()
  // CAIRN_DEBUG: the monitor notes its steps in shim.log
  const trace = process.env['CAIRN_DEBUG'] !== undefined && process.env['CAIRN_DEBUG'] !== ''
  if (trace) await log(`monitor ${process.pid} starting`)
  // the start is ours from now on (the starter may exit at any moment)
  engine.rows.transition(id, [ContainerStates.starting], ContainerStates.starting, me)

  // the attach socket, served from the first run's start to the last run's end
  let attach: AttachServer | undefined
  // the runtime of the current run (a polite TERM to the monitor goes to it; the runtime passes it on)
  const current: { child: ChildIO | undefined } = { child: undefined }
  if (channel.ownsProcess) process.on('SIGTERM', () => current.child?.kill('SIGTERM'))

  /** One run: prepare, run the runtime in the foreground, health checks while it runs. */
  const runOnce = async (first: boolean): Promise<RunOutcome> => {
    let bundle: string
    // the published ports this monitor holds while the container runs
    let releasePorts: () => Promise<void> = async () => undefined
    let spec: Awaited<ReturnType<ContainerEngine['prepareStart']>>['spec']
    if (trace) await log('claimed')
    try {
      ;({ bundle, releasePorts, spec } = await engine.prepareStart(id))
    } catch (err) {
      const exitCode = exitCodeOf(err)
      await engine.abortStart(id, err, exitCode)
      if (first) report({ event: 'failed', code: isCairnError(err) ? err.code : 'INVALID_ARGUMENT', message: err instanceof Error ? err.message : String(err), exitCode })
      else await log(`restart failed: ${err instanceof Error ? err.message : String(err)}`)
      return { kind: 'failed', exitCode }
    }
    const row = engine.rows.get(id)
    if (trace) await log('prepared')
    if (!row) {
      // removed meanwhile: give back what was set up for it
      await releasePorts()
      await engine.detachNetwork(id).catch(() => undefined)
      return { kind: 'gone' }
    }
    const rt = engine.runtimeOf(row)
    await Promise.all([p.pidFile, p.runtimeLog].map((f) => rm(f, { force: true })))
    const argv = rt.runArgs(id, bundle, p.pidFile, p.runtimeLog)

    const cfg = spec.config
    if (!attach) {
      // the attach socket first: callers attached from the first byte of output connect before the process runs
      // (as Docker: StdinOnce closes a pipe; a terminal's input is never closed, a detach must not end it)
      const server = new AttachServer(p.attach, { openStdin: cfg.OpenStdin, stdinOnce: cfg.StdinOnce && !cfg.Tty })
      try {
        await server.listen()
      } catch (err) {
        await releasePorts()
        await engine.abortStart(id, err, 125)
        const message = `cannot serve the attach socket ${p.attach}: ${err instanceof Error ? err.message : String(err)}`
        if (first) report({ event: 'failed', code: 'CONFLICT', message, exitCode: 125 })
        else await log(`restart failed: ${message}`)
        return { kind: 'failed', exitCode: 125 }
      }
      attach = server
    }
    const io = attach
    if (first) {
      report({ event: 'ready' })
      if (args.attachFirst > 0) await io.waitForAttach(args.attachFirst, 10_000)
    }

    // a memory limit can get the container OOM-killed: its cgroup is watched from its first moment,
    // before the process runs (one that outgrows its limit at once is gone a moment later)
    const oom: OomWatch | undefined = (spec.hostConfig.resources?.memory ?? 0) > 0 ? watchOom(rt, id) : undefined
    const child = spawnProcess(rt.path, argv, { tty: cfg.Tty, stdin: cfg.OpenStdin, ...(io.size ? { size: io.size } : {}) })
    current.child = child
    io.bind(child)

    // output is held back until we know the process started (before that it is the runtime's own error)
    const held: { stream: LogStream; chunk: Buffer }[] = []
    // the log of this run, once it started (a state read through the object: callbacks set it)
    const out: { log: JsonLogWriter | undefined } = { log: undefined }
    const deliver = (stream: LogStream, chunk: Buffer): void => {
      out.log?.write(stream, chunk)
      io.output(stream, chunk)
    }
    child.onOutput((stream, chunk) => {
      if (out.log) deliver(stream, chunk)
      else held.push({ stream, chunk })
    })

    const exited = child.exited
    const ended: { code: number | undefined } = { code: undefined }
    void exited.then((c) => (ended.code = c))

    // started = the runtime wrote the pid file (it does so once the process runs)
    let pid = 0
    for (let i = 0; ended.code === undefined || i === 0; i++) {
      if (existsSync(p.pidFile)) {
        pid = Number(readFileSync(p.pidFile, 'utf8').trim()) || 0
        if (pid > 0) break
      }
      if (ended.code !== undefined) break
      await Promise.race([exited, sleep(i < 200 ? 2 : 20)])
    }
    if (pid === 0 && existsSync(p.pidFile)) pid = Number(readFileSync(p.pidFile, 'utf8').trim()) || 0

    if (trace) await log(`pid ${pid}`)
    if (pid === 0) {
      // the runtime gave up before the process ran
      await oom?.stop(false)
      const code = await exited
      current.child = undefined
      const runtimeLog = await readFile(p.runtimeLog, 'utf8').catch(() => '')
      const stderr = held.filter((h) => h.stream === 'stderr').map((h) => h.chunk.toString()).join('')
      const message = runtimeMessage(runtimeLog) || runtimeMessage(stderr) || `the runtime ${rt.name} exited with code ${code}`
      const exitCodeForUser = startExitCode(message)
      await log(`start failed: ${message}`)
      await rt.delete(id, { force: true }).catch(() => undefined)
      await releasePorts()
      await engine.abortStart(id, new Error(message), exitCodeForUser)
      if (first) report({ event: 'failed', code: startErrorCode(exitCodeForUser), message: `failed to start container ${id.slice(0, 12)}: ${message}`, exitCode: exitCodeForUser })
      return { kind: 'failed', exitCode: exitCodeForUser }
    }

    oom?.running()
    const logWriter = new JsonLogWriter(p.log)
    out.log = logWriter
    for (const h of held.splice(0)) deliver(h.stream, h.chunk)
    const startedAt = Date.now()
    engine.markRunning(id, pid, me)
    engine.event('container', 'start', id, containerAttributes(spec))
    // stopped by its user while it was being started again: it ends now
    if (!first && engine.rows.get(id)?.manual_stop === 1) await rt.kill(id, 'KILL').catch(() => undefined)
    if (first) report({ event: 'started', pid })
    const health = await HealthMonitor.start(engine, spec, startedAt).catch(async (err: unknown) => {
      await log(`health checks: ${err instanceof Error ? err.message : String(err)}`)
      return undefined
    })

    const code = await exited
    current.child = undefined
    // died of SIGKILL that no stop or kill of its user sent
    const oomKilled = (await oom?.stop(code === 128 + 9 && engine.rows.get(id)?.manual_stop !== 1)) ?? false
    if (oomKilled) {
      await log('OOM-killed')
      engine.event('container', 'oom', id, containerAttributes(spec))
    }
    await health?.stop()
    // the whole output is in the log before the exit is recorded (`logs` after `wait` sees it)
    await logWriter.close()
    await releasePorts()
    return { kind: 'exited', exitCode: code, ranMs: Date.now() - startedAt, oomKilled }
  }

  let first = true
  let backoff = 0
  let last = 125
  for (;;) {
    const outcome = await runOnce(first)
    if (outcome.kind === 'gone') {
      last = 125
      break
    }
    if (outcome.kind === 'failed') {
      // a start that fails (also a restart's) ends the policy's work, as with Docker
      last = outcome.exitCode
      break
    }
    last = outcome.exitCode
    const row = engine.rows.get(id)
    const spec = await engine.readSpec(id).catch(() => undefined)
    const decision = row && spec
      ? restartDecision(spec.hostConfig.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 }, {
        exitCode: outcome.exitCode, manualStop: row.manual_stop === 1, restartCount: row.restart_count, ranMs: outcome.ranMs, backoff,
      })
      : { restart: false, delay: 0 }
    await engine.markExited(id, outcome.exitCode, { restarting: decision.restart, oomKilled: outcome.oomKilled })
    if (spec) engine.event('container', 'die', id, containerAttributes(spec, { exitCode: String(outcome.exitCode), execDuration: String(Math.trunc(outcome.ranMs / 1000)) }))
    if (!decision.restart) {
      if (row?.auto_remove) {
        await engine.removeStopped(id, { removeVolumes: true }).catch((err: unknown) => log(`--rm: ${err instanceof Error ? err.message : String(err)}`))
      }
      // the callers learn the exit code once the container is recorded (and, with --rm, gone)
      await attach?.finish(outcome.exitCode)
      attach = undefined
      if (first) report({ event: 'exited', exitCode: outcome.exitCode })
      break
    }
    // the callers of this run learn its exit code (as `docker run` returns then); the socket keeps serving
    await attach?.endRun(outcome.exitCode)
    // the starter learns of the first exit; the policy goes on
    if (first) report({ event: 'exited', exitCode: outcome.exitCode })
    first = false
    backoff = decision.delay
    engine.rows.update(id, { restart_count: (row?.restart_count ?? 0) + 1 })
    if (trace) await log(`restarting in ${backoff} ms`)
    // the back-off, cut short by a stop or kill of its user (or a removal)
    const until = Date.now() + backoff
    let cancelled = false
    while (Date.now() < until) {
      await sleep(Math.min(50, Math.max(1, until - Date.now())))
      const now = engine.rows.get(id)
      if (!now || now.manual_stop === 1 || now.state !== ContainerStates.restarting) {
        cancelled = true
        break
      }
    }
    // (the row stays `restarting` until the process runs again: `ps` shows it so)
    if (cancelled) {
      engine.rows.transition(id, [ContainerStates.restarting], ContainerStates.exited, null, undefined, { shim_pid: null, shim_start: null })
      break
    }
  }
  // a run that failed or a container gone: later attachers find no socket
  await attach?.finish(last)
  return last
}
