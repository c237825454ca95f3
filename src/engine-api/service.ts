/**
 * What the API server keeps between requests: the store, callers waiting to attach to a
 * container that has not started yet (Docker's clients attach, then start), exec sessions, and
 * how many clients follow `/events` (the events themselves are the store's journal).
 */
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
  /** A terminal size asked for while the process was being started: applied once it runs. */
  pendingSize?: { cols: number; rows: number }
  created: number
}

/**
 * A run of a container started through this server, known from the moment its start began, so
 * that a `wait` asked before the start (as Docker's clients ask) learns its exit code exactly,
 * however quickly it ends, also when `--rm` removes it at once.
 */
export interface ServiceRun {
  /** When its start began (its `started_at` is this or later). */
  since: number
  /** Its `started_at`, once the start returned (undefined: removed by then, or not started). */
  startedAt: number | undefined
  /** Its exit code; undefined if the start made no run of its own (it failed, or the container was between two runs of its restart policy). */
  code: Promise<number | undefined>
}

export class Service {
  readonly pendingAttaches = new Map<string, PendingAttach[]>()
  readonly execs = new Map<string, ExecSession>()
  /** The latest run of each container started through this server (kept a minute after it ends). */
  readonly runs = new Map<string, ServiceRun>()
  /** Clients following `/events` now (`/info`'s NEventsListener). */
  eventListeners = 0

  constructor(readonly store: ImageStore) {}

  newExecId(): string {
    return randomBytes(32).toString('hex')
  }

  /** Exec sessions of containers that are gone are forgotten after a while (as Docker does). */
  sweepExecs(): void {
    const cutoff = Date.now() - 10 * 60_000
    for (const [id, e] of this.execs) if (!e.running && e.created < cutoff) this.execs.delete(id)
  }
}
