/**
 * The monitor of one container (what containerd-shim and conmon are to Docker and Podman):
 * a process of its own that runs the OCI runtime in the foreground, so that it is the parent
 * that learns the exit status; copies the output to the json-file log (and to whoever is
 * attached, through its attach socket: attach.ts); records the exit atomically (exit.json, then the database row); unmounts; and
 * removes the container when it was started with --rm. It outlives the command that started it.
 *
 * It tells the starter how the start went through fd 3 (JSON lines): `ready` once its attach
 * socket listens (callers attached from the first byte connect then, and it waits for the
 * number it was told of); `started`, or `failed` with the error (before the process ran); then
 * `exited` with the exit code. The process's I/O (pipes, or a pseudo-terminal) is stdio.ts's.
 */
import { existsSync, readFileSync, writeSync } from 'node:fs'
import { appendFile, readFile, rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { hasCode, isCairnError, type ErrorCode } from '../errors/index.js'
import { runtimeMessage } from '../runtime/runtime.js'
import { JsonLogWriter, type LogStream } from './logs.js'
import { selfIdentity } from './rows.js'
import { ContainerStates, type ContainerSpec } from './types.js'
import type { ContainerEngine, ShimArgs, ShimEvent } from './engine.js'
import { AttachServer } from './attach.js'
import { spawnProcess, type ChildIO } from './stdio.js'
import { watchOom, type OomWatch } from './oom.js'

/** Docker's exit codes for a process that could not be started: 127 not found, 126 not executable, else 125. */
export function startExitCode(message: string): number {
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127
  if (/permission denied|is a directory/.test(message)) return 126
  return 125
}

/** The exit code a container that could not start records (Docker's State.ExitCode): 127, 126, else 125. */
export function exitCodeOf(err: unknown): number {
  if (hasCode(err, 'COMMAND_NOT_FOUND')) return 127
  if (hasCode(err, 'COMMAND_NOT_EXECUTABLE')) return 126
  if (isCairnError(err)) return 125
  return startExitCode(err instanceof Error ? err.message : String(err))
}

/** The error code of a start the runtime refused, from the exit code its message implies. */
function startErrorCode(exitCode: number): ErrorCode {
  return exitCode === 127 ? 'COMMAND_NOT_FOUND' : exitCode === 126 ? 'COMMAND_NOT_EXECUTABLE' : 'CONFLICT'
}

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

  let bundle: string
  let spec: ContainerSpec
  // the published ports this monitor holds while the container runs
  let releasePorts: () => Promise<void> = async () => undefined
  if (trace) await log('claimed')
  try {
    ;({ bundle, releasePorts, spec } = await engine.prepareStart(id))
  } catch (err) {
    const exitCode = exitCodeOf(err)
    await engine.abortStart(id, err, exitCode)
    report({ event: 'failed', code: isCairnError(err) ? err.code : 'INVALID_ARGUMENT', message: err instanceof Error ? err.message : String(err), exitCode })
    return exitCode
  }
  const row = engine.rows.get(id)
  if (trace) await log('prepared')
  if (!row) {
    // removed meanwhile: give back what was set up for it
    await releasePorts()
    await engine.detachNetwork(id).catch(() => undefined)
    return 125
  }
  const rt = engine.runtimeOf(row)
  await Promise.all([p.pidFile, p.runtimeLog].map((f) => rm(f, { force: true })))
  const argv = rt.runArgs(id, bundle, p.pidFile, p.runtimeLog)

  // the attach socket first: callers attached from the first byte of output connect before the process runs
  const cfg = spec.config
  // as Docker: StdinOnce closes a pipe; a terminal's input is never closed (a detach must not end it)
  const attach = new AttachServer(p.attach, { openStdin: cfg.OpenStdin, stdinOnce: cfg.StdinOnce && !cfg.Tty })
  try {
    await attach.listen()
  } catch (err) {
    await releasePorts()
    await engine.abortStart(id, err, 125)
    report({ event: 'failed', code: 'CONFLICT', message: `cannot serve the attach socket ${p.attach}: ${(err as Error).message}`, exitCode: 125 })
    return 125
  }
  report({ event: 'ready' })
  if (args.attachFirst > 0) await attach.waitForAttach(args.attachFirst, 10_000)

  const child: ChildIO = spawnProcess(rt.path, argv, { tty: cfg.Tty, stdin: cfg.OpenStdin, ...(attach.size ? { size: attach.size } : {}) })
  attach.bind(child)
  // forward a polite TERM to the container (the runtime passes signals on)
  process.on('SIGTERM', () => child.kill('SIGTERM'))

  // output is held back until we know the process started (before that it is the runtime's own error)
  const held: { stream: LogStream; chunk: Buffer }[] = []
  let started = false
  let logWriter: JsonLogWriter | undefined
  const deliver = (stream: LogStream, chunk: Buffer): void => {
    logWriter?.write(stream, chunk)
    attach.output(stream, chunk)
  }
  child.onOutput((stream, chunk) => {
    if (started) deliver(stream, chunk)
    else held.push({ stream, chunk })
  })

  const exited = child.exited
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
    await attach.close()
    await engine.abortStart(id, new Error(message), exitCodeForUser)
    report({ event: 'failed', code: startErrorCode(exitCodeForUser), message: `failed to start container ${id.slice(0, 12)}: ${message}`, exitCode: exitCodeForUser })
    return exitCodeForUser
  }

  // a memory limit can get the container OOM-killed: listen for it while it runs (from its first moment)
  const oom: OomWatch | undefined = (spec.hostConfig.resources?.memory ?? 0) > 0 ? watchOom(rt, id, pid) : undefined
  logWriter = new JsonLogWriter(p.log)
  started = true
  for (const h of held.splice(0)) deliver(h.stream, h.chunk)
  engine.markRunning(id, pid, me)
  report({ event: 'started', pid })

  const code = await exited
  const oomKilled = (await oom?.stop()) ?? false
  if (oomKilled) await log('OOM-killed')
  await logWriter?.close()
  await releasePorts()
  await engine.markExited(id, code, { oomKilled })
  if (row.auto_remove) {
    await engine.removeStopped(id).catch((err: unknown) => log(`--rm: ${err instanceof Error ? err.message : String(err)}`))
  }
  // the callers learn the exit code once the container is recorded (and, with --rm, gone)
  await attach.finish(code)
  report({ event: 'exited', exitCode: code })
  return code
}
