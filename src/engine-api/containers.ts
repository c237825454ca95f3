/** Container endpoints: the same verbs as the CLI's (api/containers.ts), in Docker's JSON. */
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, hasCode } from '../errors/index.js'
import {
  containerDiff, containerEngine, containerLogs, copyFromContainer, copyToContainer, createContainer, exportContainer, inspectContainer,
  killContainers, listContainers, pauseContainers, pruneContainers, removeContainers, renameContainer, resizeContainer, statContainerPath,
  stopContainers, unpauseContainers, waitContainer, type Stdio,
} from '../api/containers.js'
import { ContainerStates } from '../container/types.js'
import { parseDetachKeys } from '../container/stdio.js'
import { encodeFrame, FrameTypes } from '../util/stdcopy.js'
import { HttpError } from './errors.js'
import type { Exchange, Hijacked } from './exchange.js'
import type { Service, ServiceRun } from './service.js'
import { containerSummaryJson, createOptionsOf } from './shapes.js'
import { filtersOf } from './system.js'

const engineOf = (s: Service): ReturnType<typeof containerEngine> => containerEngine(s.store)

function row(s: Service, x: Exchange): ReturnType<ReturnType<typeof containerEngine>['resolve']> {
  return engineOf(s).resolve(x.params['id'] ?? '')
}

export async function list(x: Exchange, s: Service): Promise<void> {
  const limit = x.int('limit')
  const rows = await listContainers(s.store, { all: x.flag('all'), filters: filtersOf(x), size: x.flag('size'), ...(limit !== undefined && limit > 0 ? { last: limit } : {}) })
  x.send(200, rows.map(containerSummaryJson))
}

export async function create(x: Exchange, s: Service): Promise<void> {
  const opts = createOptionsOf(await x.json<unknown>(), x.query.get('name'))
  const r = await createContainer(s.store, opts)
  x.send(201, { Id: r.id, Warnings: [] })
}

export async function inspect(x: Exchange, s: Service): Promise<void> {
  const info = await inspectContainer(s.store, x.params['id'] ?? '')
  const execIds = [...s.execs.values()].filter((e) => e.containerId === info.Id).map((e) => e.id)
  x.send(200, { ...info, ExecIDs: execIds.length > 0 ? execIds : null, SizeRw: undefined })
}

/** Where a hijacked (or streamed) exchange's output goes: raw with a terminal, else stdcopy frames. */
function streamsTo(out: Writable, tty: boolean): { stdout: Writable; stderr: Writable } {
  const sink = (type: number): Writable => new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!out.writableEnded && !out.destroyed) out.write(tty ? chunk : encodeFrame(type, chunk))
      cb()
    },
  })
  return { stdout: sink(FrameTypes.stdout), stderr: sink(FrameTypes.stderr) }
}

/** Docker's content type of a stream: raw for a terminal, multiplexed (named so from API 1.42) otherwise. */
function streamType(x: Exchange, tty: boolean): string {
  const [maj = 1, min = 0] = x.version.split('.').map(Number)
  return tty || maj * 1000 + min < 1042 ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream'
}

export async function logs(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const spec = await engineOf(s).readSpec(r.id)
  const tty = spec.config.Tty
  const wantOut = x.flag('stdout')
  const wantErr = x.flag('stderr')
  if (!wantOut && !wantErr) throw new HttpError(400, 'Bad parameters: you must choose at least one stream')
  const tail = x.query.get('tail')
  const opts: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal } = { follow: x.flag('follow') }
  if (tail !== null && tail !== '' && tail !== 'all') {
    const n = Number(tail)
    if (!Number.isInteger(n)) throw new HttpError(400, `invalid value for tail: ${tail}`)
    // a negative count means all, as dockerd reads it (testcontainers sends -1)
    if (n >= 0) opts.tail = n
  }
  for (const k of ['since', 'until'] as const) {
    const v = x.query.get(k)
    if (v !== null && v !== '' && v !== '0') {
      const t = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v)
      if (Number.isNaN(t)) throw new HttpError(400, `invalid value for ${k}: ${v}`)
      opts[k] = t
    }
  }
  const ac = new AbortController()
  opts.signal = ac.signal
  const out = x.stream(200, streamType(x, tty))
  void x.gone.then(() => ac.abort())
  const timestamps = x.flag('timestamps')
  const { stdout, stderr } = streamsTo(out, tty)
  try {
    for await (const e of containerLogs(s.store, r.id, opts)) {
      if (e.stream === 'stdout' ? !wantOut : !wantErr) continue
      const text = timestamps ? `${e.time} ${e.log}` : e.log
      ;(e.stream === 'stderr' ? stderr : stdout).write(Buffer.from(text))
    }
  } finally {
    if (!out.writableEnded) out.end()
  }
}

export async function changes(x: Exchange, s: Service): Promise<void> {
  const list = await containerDiff(s.store, x.params['id'] ?? '')
  const kinds = { C: 0, A: 1, D: 2 } as const
  x.send(200, list.map((c) => ({ Path: c.path.startsWith('/') ? c.path : `/${c.path}`, Kind: kinds[c.kind] })))
}

export async function exportTar(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const out = x.stream(200, 'application/x-tar')
  await exportContainer(s.store, r.id, out).catch((err: unknown) => {
    out.destroy(err as Error)
  })
}

/** Callers attached before the start, and one observer that learns the exit code for `wait`. */
export async function start(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  if (r.state === ContainerStates.running || r.state === ContainerStates.paused) {
    x.send(304)
    return
  }
  const engine = engineOf(s)
  const pending = s.pendingAttaches.get(r.id) ?? []
  s.pendingAttaches.delete(r.id)
  let settle: (code: Promise<number | undefined>) => void = () => undefined
  const run: ServiceRun = { since: Date.now(), startedAt: undefined, code: new Promise((resolve) => (settle = resolve)) }
  s.runs.set(r.id, run)
  const forget = (): void => {
    setTimeout(() => {
      if (s.runs.get(r.id) === run) s.runs.delete(r.id)
    }, 60_000).unref()
  }
  run.code.then(forget, forget)
  let started
  try {
    started = await engine.start(r.id, { attach: [...pending.map((p) => p.stdio), {}] })
  } catch (err) {
    for (const p of pending) p.attached(err as Error)
    if (s.runs.get(r.id) === run) s.runs.delete(r.id)
    settle(Promise.resolve(undefined))
    throw err
  }
  run.startedAt = engine.rows.get(r.id)?.started_at ?? undefined
  pending.forEach((p, i) => {
    const a = started.attached[i]
    if (a) p.attached({ done: a.done })
  })
  const observer = started.attached[pending.length]
  // between two runs of its restart policy (no observer): the wait goes by the container's row
  settle(observer ? observer.done.then((o) => o.exitCode ?? engine.waitExit(r.id)) : Promise.resolve(undefined))
  started.detach()
  x.send(204)
}

export async function stop(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  if (r.state !== ContainerStates.running && r.state !== ContainerStates.paused) {
    x.send(304)
    return
  }
  const t = x.int('t') ?? x.int('timeout')
  const res = await stopContainers(s.store, [r.id], t !== undefined ? { timeout: t } : {})
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function restart(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const t = x.int('t') ?? x.int('timeout')
  const res = await stopContainers(s.store, [r.id], t !== undefined ? { timeout: t } : {})
  if (res.errors[0]) throw res.errors[0].error
  await engineOf(s).waitExit(r.id, 30_000)
  x.params['id'] = r.id
  const started = await engineOf(s).start(r.id)
  started.detach()
  x.send(204)
}

export async function kill(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const signal = x.query.get('signal') ?? 'KILL'
  const res = await killContainers(s.store, [r.id], { signal: signal === '' ? 'KILL' : signal })
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function pause(x: Exchange, s: Service): Promise<void> {
  const res = await pauseContainers(s.store, [row(s, x).id])
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function unpause(x: Exchange, s: Service): Promise<void> {
  const res = await unpauseContainers(s.store, [row(s, x).id])
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function rename(x: Exchange, s: Service): Promise<void> {
  const name = x.query.get('name')
  if (name === null || name === '') throw new HttpError(400, 'name is required')
  await renameContainer(s.store, x.params['id'] ?? '', name)
  x.send(204)
}

export async function remove(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const res = await removeContainers(s.store, [r.id], { force: x.flag('force'), volumes: x.flag('v') })
  if (res.errors[0]) throw res.errors[0].error
  x.send(204)
}

export async function resize(x: Exchange, s: Service): Promise<void> {
  const h = x.int('h')
  const w = x.int('w')
  if (h === undefined || w === undefined || h <= 0 || w <= 0) throw new HttpError(400, 'h and w must be positive integers')
  await resizeContainer(s.store, x.params['id'] ?? '', { cols: w, rows: h })
  x.send(200)
}

export async function wait(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const condition = (x.query.get('condition') ?? '') || 'not-running'
  if (condition !== 'not-running' && condition !== 'next-exit' && condition !== 'removed') throw new HttpError(400, `invalid condition: "${condition}"`)
  const out = x.stream(200, 'application/json')
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  const gone = new Promise<undefined>((resolve) => ac.signal.addEventListener('abort', () => resolve(undefined), { once: true }))
  // the end waited for: of the run going on when asked, or (next-exit and removed, or a container
  // not started yet, as Docker's clients ask before they start it) of the next run
  const seen = r.started_at ?? 0
  const inRun = r.state === ContainerStates.running || r.state === ContainerStates.paused
  const next = !inRun && (condition !== 'not-running' || r.state === ContainerStates.created || r.state === ContainerStates.starting)
  let failed: ServiceRun | undefined
  const ours = (run: ServiceRun | undefined): run is ServiceRun => run !== undefined && run !== failed && (next ? run.since > seen : run.startedAt === seen)
  let code: number | undefined
  try {
    for (;;) {
      for (let i = 0; next && !ours(s.runs.get(r.id)); i++) {
        const now = engineOf(s).rows.get(r.id)
        // begun elsewhere (another process): its row says when it ends
        if (!now || now.state === ContainerStates.running || now.state === ContainerStates.paused || (now.started_at ?? 0) > seen) break
        if (ac.signal.aborted) return
        await sleep(i < 100 ? 5 : 50)
      }
      const run = s.runs.get(r.id)
      if (ours(run)) {
        // a start through this server knows the exit code exactly (also of a container removed with --rm)
        code = await Promise.race([run.code, gone])
        if (ac.signal.aborted) return
        // its start made no run (it failed): the next one is waited for
        if (code === undefined && next) {
          failed = run
          continue
        }
      }
      // the row from here: the run is over (its exit code is in the row) or runs on (its monitor tells)
      code ??= await waitContainer(s.store, r.id, { condition: condition === 'removed' ? 'removed' : 'not-running', signal: ac.signal })
      break
    }
    if (condition === 'removed') {
      for (let i = 0; engineOf(s).rows.get(r.id); i++) {
        if (ac.signal.aborted) return
        await sleep(i < 100 ? 10 : 50)
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) out.end(`${JSON.stringify({ StatusCode: -1, Error: { Message: (err as Error).message } })}\n`)
    return
  }
  out.end(`${JSON.stringify({ StatusCode: code })}\n`)
}

/** Builds the caller's Stdio on a hijacked connection. */
function hijackStdio(h: Hijacked, tty: boolean, want: { stdin: boolean; stdout: boolean; stderr: boolean }, detachKeys: string | null): Stdio {
  const { stdout, stderr } = streamsTo(h.output, tty)
  const stdio: Stdio = {}
  if (want.stdout) stdio.stdout = stdout
  if (want.stderr) stdio.stderr = stderr
  if (want.stdin) {
    stdio.stdin = h.input
    if (tty) stdio.detachKeys = parseDetachKeys(detachKeys ?? 'ctrl-p,ctrl-q')
  }
  return stdio
}

/**
 * `attach`: a hijacked connection (or a plain streamed answer) joined to the container's
 * process. To a container not started yet, the caller waits for its start (Docker's clients
 * attach before they start); `logs=1` sends the log first.
 */
export async function attach(x: Exchange, s: Service): Promise<void> {
  const r = row(s, x)
  const spec = await engineOf(s).readSpec(r.id)
  const tty = spec.config.Tty
  const want = { stdin: x.flag('stdin') && spec.config.OpenStdin, stdout: x.flag('stdout'), stderr: x.flag('stderr') }
  const detachKeys = x.query.get('detachKeys')
  if (detachKeys !== null && detachKeys !== '') parseDetachKeys(detachKeys)
  if (r.state === ContainerStates.paused) throw new CairnError('CONFLICT', 'You cannot attach to a paused container, unpause it first')
  // some clients (dockerode) send their options as a JSON body too: it is not stdin
  if (/json/.test(x.req.headers['content-type'] ?? '') && Number(x.req.headers['content-length'] ?? 0) > 0) for await (const _ of x.body()) void _
  const h = x.hijack(streamType(x, tty))
  const stdio = hijackStdio(h, tty, want, detachKeys)
  if (x.flag('logs')) {
    for await (const e of containerLogs(s.store, r.id, {})) {
      if (e.stream === 'stdout' ? !want.stdout : !want.stderr) continue
      ;(e.stream === 'stderr' ? stdio.stderr : stdio.stdout)?.write(Buffer.from(e.log))
    }
  }
  if (!x.flag('stream')) {
    h.close()
    return
  }
  const now = engineOf(s).rows.get(r.id)
  let done: Promise<unknown>
  if (now && (now.state === ContainerStates.running || now.state === ContainerStates.paused)) {
    done = (await engineOf(s).attach(r.id, stdio)).done
  } else {
    done = new Promise<unknown>((resolve) => {
      const entry = {
        stdio,
        attached: (res: { done: Promise<unknown> } | Error) => {
          if (res instanceof Error) resolve(undefined)
          else void res.done.then(resolve)
        },
      }
      const list = s.pendingAttaches.get(r.id) ?? []
      list.push(entry)
      s.pendingAttaches.set(r.id, list)
      void h.gone.then(() => {
        const l = s.pendingAttaches.get(r.id)
        if (l) s.pendingAttaches.set(r.id, l.filter((e) => e !== entry))
        resolve(undefined)
      })
    })
  }
  await Promise.race([done, h.gone])
  h.close()
}

export async function prune(x: Exchange, s: Service): Promise<void> {
  const r = await pruneContainers(s.store, { filters: filtersOf(x) })
  x.send(200, { ContainersDeleted: r.deleted.length > 0 ? r.deleted : null, SpaceReclaimed: r.reclaimed })
}

// ---------------------------------------------------------------- archive

function pathParam(x: Exchange): string {
  const p = x.query.get('path')
  if (p === null || p === '') throw new HttpError(400, 'bad parameter: path cannot be empty')
  if (p.includes('\0')) throw new HttpError(400, 'bad parameter: path')
  return p
}

function statHeader(stat: unknown): Record<string, string> {
  return { 'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(stat)).toString('base64') }
}

export async function archiveHead(x: Exchange, s: Service): Promise<void> {
  const stat = await statContainerPath(s.store, x.params['id'] ?? '', pathParam(x))
  x.stream(200, 'application/json', { ...statHeader(stat), 'Content-Length': '0' }).end()
}

export async function archiveGet(x: Exchange, s: Service): Promise<void> {
  const id = x.params['id'] ?? ''
  const path = pathParam(x)
  const stat = await statContainerPath(s.store, id, path)
  const out = x.stream(200, 'application/x-tar', statHeader(stat))
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  await copyFromContainer(s.store, id, path, out, { signal: ac.signal }).catch((err: unknown) => {
    out.destroy(err as Error)
  })
}

export async function archivePut(x: Exchange, s: Service): Promise<void> {
  const id = x.params['id'] ?? ''
  const path = pathParam(x)
  const stat = await statContainerPath(s.store, id, path).catch((err: unknown) => {
    if (hasCode(err, 'NAME_UNKNOWN')) throw new CairnError('NAME_UNKNOWN', `Could not find the file ${path} in container ${id}`)
    throw err
  })
  if ((stat.mode & 2 ** 31) === 0 && stat.linkTarget === '') throw new CairnError('INVALID_ARGUMENT', `extraction point is not a directory`)
  const body = x.body()
  try {
    await copyToContainer(s.store, body, id, path, { archive: x.flag('copyUIDGID') })
  } catch (err) {
    body.resume()
    throw err
  }
  x.send(200)
}
