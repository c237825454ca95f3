/**
 * The monitor of one container (what containerd-shim and conmon are to Docker and Podman):
 * a process of its own that runs the OCI runtime in the foreground, so that it is the parent
 * that learns the exit status; copies the output to the json-file log (and to whoever is
 * attached); records the exit atomically (exit.json, then the database row); unmounts; and
 * removes the container when it was started with --rm. It outlives the command that started it.
 *
 * It tells the starter how the start went through fd 3 (JSON lines): `started`, or `failed`
 * with the error (before the process ran); then `exited` with the exit code.
 *
 * It also keeps the container's restart policy (after an exit it decides, as Docker's restart
 * manager does, whether and after what back-off to run the container again, and does so,
 * network and mounts taken back and set up again in between) and runs its health checks.
 * It records the container's start and die events.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeSync } from 'node:fs'
import { appendFile, readFile, rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { hasCode, isCairnError, type ErrorCode } from '../errors/index.js'
import { runtimeMessage } from '../runtime/runtime.js'
import { JsonLogWriter, type LogStream } from './logs.js'
import { selfIdentity } from './rows.js'
import { ContainerStates } from './types.js'
import { containerAttributes, restartDecision, signalNumber, type ContainerEngine, type ShimArgs, type ShimEvent } from './engine.js'
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

function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** What one run of the container came to. */
type RunOutcome =
  | { kind: 'failed'; exitCode: number }
  | { kind: 'gone' }
  /** `oomKilled`: the kernel's OOM killer ended this run (Docker's State.OOMKilled). */
  | { kind: 'exited'; exitCode: number; ranMs: number; oomKilled: boolean }

export async function runMonitor(engine: ContainerEngine, args: ShimArgs): Promise<number> {
  const report = (e: ShimEvent): void => {
    try {
      writeSync(3, `${JSON.stringify(e)}\n`)
    } catch {
      // the starter is gone (detached, or killed): nobody to tell
    }
  }
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

  // the json-file log, kept open across the runs of a restart policy
  let logWriter: JsonLogWriter | undefined
  // the runtime of the current run (a polite TERM to the monitor goes to it)
  let current: ChildProcess | undefined
  process.on('SIGTERM', () => current?.kill('SIGTERM'))
  let forward = args.attach || args.tty === 'inherit'
  for (const s of [process.stdout, process.stderr]) s.on('error', () => (forward = false))

  /** One run: prepare, run the runtime in the foreground, health checks while it runs. */
  const runOnce = async (first: boolean): Promise<RunOutcome> => {
    // later runs have nobody attached: no terminal of the starter's, stdin held open if it was asked for
    const mode: ShimArgs = first ? args : { ...args, attach: false, tty: args.tty === 'none' ? 'none' : 'script', stdin: args.stdin === 'null' ? 'null' : 'hold' }
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

    let child: ChildProcess
    if (mode.tty === 'inherit') {
      // the runtime drives the user's terminal (stdin: raw mode, window size) and copies the
      // container's terminal to its stdout, which passes through here on its way to the
      // terminal, so that the session is in the log too (as Docker keeps it)
      child = spawn(rt.path, argv, { stdio: ['inherit', 'pipe', 'inherit'] })
    } else {
      const stdin = mode.stdin === 'inherit' ? 'inherit' : mode.stdin === 'hold' || mode.tty === 'script' ? 'pipe' : 'ignore'
      if (mode.tty === 'script') {
        // the runtime drives a terminal only when it has one: script(1) gives it a pseudo-terminal
        child = spawn('script', ['-q', '-e', '-f', '-c', [rt.path, ...argv].map(shQuote).join(' '), '/dev/null'], {
          stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' },
        })
      } else {
        child = spawn(rt.path, argv, { stdio: [stdin, 'pipe', 'pipe'] })
      }
    }
    current = child
    child.on('error', (err) => void log(`runtime: ${err.message}`))

    // output is held back until we know the process started (before that it is the runtime's own error)
    const held: { stream: LogStream; chunk: Buffer }[] = []
    let started = false
    const outOf = (s: LogStream): NodeJS.WriteStream => (s === 'stdout' ? process.stdout : process.stderr)
    const deliver = (stream: LogStream, chunk: Buffer): void => {
      logWriter?.write(stream, chunk)
      if (forward && first) {
        try {
          outOf(stream).write(chunk)
        } catch {
          forward = false
        }
      }
    }
    const onData = (stream: LogStream) => (chunk: Buffer): void => {
      if (started) deliver(stream, chunk)
      else held.push({ stream, chunk })
    }
    child.stdout?.on('data', onData('stdout'))
    child.stderr?.on('data', onData('stderr'))

    const exited = new Promise<number>((resolve) => {
      child.once('close', (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)))
      child.once('error', () => resolve(125))
    })
    let exitCode: number | undefined
    void exited.then((c) => (exitCode = c))

    // started = the runtime wrote the pid file (it does so once the process runs)
    let pid = 0
    for (let i = 0; exitCode === undefined || i === 0; i++) {
      if (existsSync(p.pidFile)) {
        pid = Number(readFileSync(p.pidFile, 'utf8').trim()) || 0
        if (pid > 0) break
      }
      if (exitCode !== undefined) break
      await Promise.race([exited, sleep(i < 200 ? 2 : 20)])
    }
    if (pid === 0 && existsSync(p.pidFile)) pid = Number(readFileSync(p.pidFile, 'utf8').trim()) || 0

    if (trace) await log(`pid ${pid}`)
    if (pid === 0) {
      // the runtime gave up before the process ran
      const code = await exited
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

    logWriter ??= new JsonLogWriter(p.log)
    started = true
    for (const h of held.splice(0)) deliver(h.stream, h.chunk)
    const startedAt = Date.now()
    engine.markRunning(id, pid, me)
    engine.event('container', 'start', id, containerAttributes(spec))
    // stopped by its user while it was being started again: it ends now
    if (!first && engine.rows.get(id)?.manual_stop === 1) await rt.kill(id, 'KILL').catch(() => undefined)
    if (first) report({ event: 'started', pid })
    // a memory limit can get the container OOM-killed: listen for it while this run lasts
    const oom: OomWatch | undefined = (spec.hostConfig.resources?.memory ?? 0) > 0 ? watchOom(rt, id, pid) : undefined
    const health = await HealthMonitor.start(engine, spec, startedAt).catch(async (err: unknown) => {
      await log(`health checks: ${err instanceof Error ? err.message : String(err)}`)
      return undefined
    })

    const code = await exited
    current = undefined
    const oomKilled = (await oom?.stop()) ?? false
    if (oomKilled) {
      await log('OOM-killed')
      engine.event('container', 'oom', id, containerAttributes(spec))
    }
    await health?.stop()
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
      if (first) report({ event: 'exited', exitCode: outcome.exitCode })
      break
    }
    // the starter learns of the first exit (as `docker run` returns then); the policy goes on
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
  await logWriter?.close()
  return last
}
