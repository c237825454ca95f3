/**
 * What the API server keeps between requests: the store, callers waiting to attach to a
 * container that has not started yet (Docker's clients attach, then start), exec sessions, and
 * the events of what this server did (the seam for the library's event stream: until Cairn
 * records events itself, `/events` reports those of operations made through this server).
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import type { ImageStore } from '../image/store.js'
import type { ExecProcess, Stdio } from '../api/containers.js'

export interface PendingAttach {
  stdio: Stdio
  /** Called with the session once the container started (or with an error). */
  attached: (result: { done: Promise<{ exitCode?: number; detached: boolean }> } | Error) => void
}

export interface ExecSession {
  id: string
  containerId: string
  cmd: string[]
  tty: boolean
  attachStdin: boolean
  attachStdout: boolean
  attachStderr: boolean
  env: string[]
  workdir: string
  user: string
  detachKeys: string
  privileged: boolean
  running: boolean
  exitCode: number | null
  pid: number
  process?: ExecProcess
  created: number
}

/** Docker's event message. */
export interface EngineEvent {
  Type: string
  Action: string
  Actor: { ID: string; Attributes: Record<string, string> }
  scope: 'local'
  time: number
  timeNano: number
  status?: string
  id?: string
  from?: string
}

export class Service {
  readonly pendingAttaches = new Map<string, PendingAttach[]>()
  readonly execs = new Map<string, ExecSession>()
  /** Exit codes of containers started through this server, known exactly (also with --rm). */
  readonly exits = new Map<string, Promise<number>>()
  readonly events = new EventEmitter()
  /** The recent events, for `since` (bounded). */
  readonly history: EngineEvent[] = []

  constructor(readonly store: ImageStore) {
    this.events.setMaxListeners(0)
  }

  newExecId(): string {
    return randomBytes(32).toString('hex')
  }

  emit(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    const now = Date.now()
    const e: EngineEvent = { Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local', time: Math.floor(now / 1000), timeNano: now * 1_000_000 }
    if (type === 'container' || type === 'image') {
      e.status = action
      e.id = id
      if (attributes['image'] !== undefined) e.from = attributes['image']
    }
    this.history.push(e)
    if (this.history.length > 1000) this.history.splice(0, this.history.length - 1000)
    this.events.emit('event', e)
  }

  /** Exec sessions of containers that are gone are forgotten after a while (as Docker does). */
  sweepExecs(): void {
    const cutoff = Date.now() - 10 * 60_000
    for (const [id, e] of this.execs) if (!e.running && e.created < cutoff) this.execs.delete(id)
  }
}
