/** Exec endpoints: create, start (hijacked), resize, inspect. The process is this server's child. */
import { startExecInContainer, containerEngine, type Stdio } from '../api/containers.js'
import { ContainerStates } from '../container/types.js'
import { parseDetachKeys } from '../container/stdio.js'
import { CairnError } from '../errors/index.js'
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { ExecSession, Service } from './service.js'
import { encodeFrame, FrameTypes } from '../util/stdcopy.js'
import { Writable } from 'node:stream'

const EXEC_FIELDS = new Set(['Detach', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ConsoleSize', 'DetachKeys', 'Tty', 'Env', 'Cmd', 'Privileged', 'User', 'WorkingDir'])

function session(x: Exchange, s: Service): ExecSession {
  const e = s.execs.get(x.params['id'] ?? '')
  if (!e) throw new CairnError('NAME_UNKNOWN', `No such exec instance: ${x.params['id'] ?? ''}`)
  return e
}

export async function create(x: Exchange, s: Service): Promise<void> {
  const raw = await x.json<unknown>()
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HttpError(400, 'exec configuration: an object expected')
  const body = raw as Record<string, unknown>
  for (const k of Object.keys(body)) if (!EXEC_FIELDS.has(k)) throw new HttpError(400, `json: unknown field ${JSON.stringify(k)} in exec configuration`)
  const cmd = body['Cmd']
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === 'string')) throw new HttpError(400, 'No exec command specified')
  if (body['Privileged'] === true) throw new CairnError('NOT_SUPPORTED', 'privileged exec is not supported by Cairn yet')
  const engine = containerEngine(s.store)
  await engine.reconcile()
  const row = engine.resolve(x.params['id'] ?? '')
  if (row.state === ContainerStates.paused) throw new CairnError('CONFLICT', `Container ${row.id} is paused, unpause the container before exec`)
  if (row.state !== ContainerStates.running) throw new CairnError('CONFLICT', `Container ${row.id} is not running`)
  const str = (k: string): string => (typeof body[k] === 'string' ? body[k] : '')
  const env = Array.isArray(body['Env']) ? (body['Env'] as unknown[]).filter((e): e is string => typeof e === 'string') : []
  if (str('DetachKeys') !== '') parseDetachKeys(str('DetachKeys'))
  const e: ExecSession = {
    id: s.newExecId(), containerId: row.id, cmd, tty: body['Tty'] === true, attachStdin: body['AttachStdin'] === true,
    attachStdout: body['AttachStdout'] === true, attachStderr: body['AttachStderr'] === true, env, workdir: str('WorkingDir'), user: str('User'),
    detachKeys: str('DetachKeys'), privileged: false, running: false, exitCode: null, pid: 0, created: Date.now(),
  }
  s.sweepExecs()
  s.execs.set(e.id, e)
  x.send(201, { Id: e.id })
}

/** The exec's process has started: its PID, a resize asked for meanwhile (a no-op without a terminal), its end. */
function running(e: ExecSession, proc: NonNullable<ExecSession['process']>): void {
  e.pid = proc.pid
  e.process = proc
  if (e.pendingSize) proc.resize(e.pendingSize)
  void proc.exited.then((c) => {
    e.exitCode = c
    e.running = false
  })
}

export async function start(x: Exchange, s: Service): Promise<void> {
  const e = session(x, s)
  const body = await x.json<Record<string, unknown>>({})
  if (e.running || e.exitCode !== null) throw new CairnError('CONFLICT', `Error: Exec command ${e.id} has already run`)
  const detach = body['Detach'] === true
  const tty = body['Tty'] === true || e.tty
  const size = Array.isArray(body['ConsoleSize']) ? body['ConsoleSize'] as unknown[] : undefined
  const opts = {
    interactive: e.attachStdin, tty, detach, env: e.env, ...(e.workdir !== '' ? { workdir: e.workdir } : {}), ...(e.user !== '' ? { user: e.user } : {}),
  }
  if (detach) {
    e.running = true
    const proc = await startExecInContainer(s.store, e.containerId, e.cmd, opts).catch((err: unknown) => {
      e.running = false
      throw err
    })
    running(e, proc)
    x.send(200)
    return
  }
  // the answer is the hijacked connection: errors after it began are the stream's end
  const [maj = 1, min = 0] = x.version.split('.').map(Number)
  const h = x.hijack(tty || maj * 1000 + min < 1042 ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream')
  const sink = (type: number): Writable => new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!h.output.writableEnded && !h.output.destroyed) h.output.write(tty ? chunk : encodeFrame(type, chunk))
      cb()
    },
  })
  const stdio: Stdio = {}
  if (e.attachStdout) stdio.stdout = sink(FrameTypes.stdout)
  if (e.attachStderr) stdio.stderr = sink(FrameTypes.stderr)
  if (e.attachStdin) {
    stdio.stdin = h.input
    if (tty) stdio.detachKeys = parseDetachKeys(e.detachKeys !== '' ? e.detachKeys : 'ctrl-p,ctrl-q')
  }
  const h0 = Number(size?.[0])
  const w0 = Number(size?.[1])
  if (tty && h0 > 0 && w0 > 0) stdio.size = { rows: h0, cols: w0 }
  e.running = true
  try {
    const proc = await startExecInContainer(s.store, e.containerId, e.cmd, { ...opts, stdio })
    running(e, proc)
    await Promise.race([proc.attached, h.gone])
    // the output of a process that ended is all delivered before the connection closes
    await Promise.race([proc.exited, h.gone])
  } catch (err) {
    e.running = false
    e.exitCode = 126
    if (!tty) h.output.write(encodeFrame(FrameTypes.stderr, `${(err as Error).message}\n`))
    else h.output.write(`${(err as Error).message}\r\n`)
  }
  h.close()
}

export function resize(x: Exchange, s: Service): void {
  const e = session(x, s)
  const h = x.int('h')
  const w = x.int('w')
  if (h === undefined || w === undefined || h <= 0 || w <= 0) throw new HttpError(400, 'h and w must be positive integers')
  if (!e.running) throw new CairnError('CONFLICT', `Exec ${e.id} is not running`)
  // the client's first resize may come while the process is still being started
  if (e.process) e.process.resize({ cols: w, rows: h })
  else e.pendingSize = { cols: w, rows: h }
  x.send(200)
}

export function inspect(x: Exchange, s: Service): void {
  const e = session(x, s)
  x.send(200, {
    ID: e.id, Running: e.running, ExitCode: e.exitCode, ProcessConfig: { tty: e.tty, entrypoint: e.cmd[0], arguments: e.cmd.slice(1), privileged: e.privileged, user: e.user },
    OpenStdin: e.attachStdin, OpenStderr: e.attachStderr, OpenStdout: e.attachStdout, CanRemove: false, ContainerID: e.containerId, DetachKeys: e.detachKeys, Pid: e.pid,
  })
}
