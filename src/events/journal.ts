/**
 * The store's event journal: Docker's event messages (`container start`, `image pull`,
 * `volume create`, …), written by whichever process causes them (a command, a container's
 * monitor) and read back by `events`, past and live.
 *
 * It is an append-only file of JSON lines, `$ROOT/events.log`, not a database table: an event is
 * one `write(2)` in append mode (no lock, no fsync: events are a record of what happened, and
 * Docker itself keeps them in memory only), so recording one costs a few microseconds on paths
 * that start containers. Its size is bounded: past MAX_JOURNAL_BYTES the file becomes
 * `events.log.1` (the older one is dropped), so the journal keeps between one and two files'
 * worth of the most recent events. Readers follow the file by polling its size and notice the
 * rotation by its inode.
 */
import { closeSync, fstatSync, openSync, renameSync, statSync, writeSync } from 'node:fs'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

/** Docker's event types (what `--filter type=` takes). */
export const EventTypes = ['container', 'image', 'network', 'volume', 'daemon', 'plugin', 'service', 'node', 'secret', 'config'] as const
export type EventType = (typeof EventTypes)[number]

/** Docker's event message (the Engine API's `/events` objects and `docker events --format '{{json .}}'`). */
export interface EventMessage {
  /** Legacy fields, for container and image events only: the action, the actor's ID, the container's image. */
  status?: string
  id?: string
  from?: string
  Type: EventType
  Action: string
  Actor: { ID: string; Attributes: Record<string, string> }
  scope: 'local'
  /** Seconds since the epoch. */
  time: number
  /** Nanoseconds since the epoch (a double: exact to a few hundred nanoseconds). */
  timeNano: number
}

/** One file's most: 4 MiB of events (some ten thousand). */
export const MAX_JOURNAL_BYTES = 4 << 20

export function journalPath(root: string): string {
  return `${root}/events.log`
}

/** Now, in nanoseconds since the epoch, to the microsecond. */
function nowNano(): number {
  const ms = performance.timeOrigin + performance.now()
  return Math.floor(ms * 1000) * 1000
}

/** Builds an event as Docker does: the legacy fields filled for container and image events. */
export function eventMessage(type: EventType, action: string, id: string, attributes: Record<string, string> = {}, timeNano = nowNano()): EventMessage {
  const m: EventMessage = { Type: type, Action: action, Actor: { ID: id, Attributes: { ...attributes } }, scope: 'local', time: Math.floor(timeNano / 1e9), timeNano }
  if (type === 'container' || type === 'image') {
    const legacy: Pick<EventMessage, 'status' | 'id' | 'from'> = { status: action, id }
    if (type === 'container' && attributes['image'] !== undefined) legacy.from = attributes['image']
    return { ...legacy, ...m }
  }
  return m
}

/**
 * Appends an event to the store's journal. Never throws: an event that cannot be written (a
 * full disk, a read-only store) must not fail the operation it describes.
 */
export function recordEvent(root: string, type: EventType, action: string, id: string, attributes: Record<string, string> = {}): EventMessage {
  const m = eventMessage(type, action, id, attributes)
  const path = journalPath(root)
  try {
    const fd = openSync(path, 'a', 0o600)
    try {
      writeSync(fd, `${JSON.stringify(m)}\n`)
      const st = fstatSync(fd)
      // the writer that sees the file past its bound moves it aside, if it is still the same file
      if (st.size > MAX_JOURNAL_BYTES && statSync(path).ino === st.ino) renameSync(path, `${path}.1`)
    } finally {
      closeSync(fd)
    }
  } catch {
    // best effort (see above)
  }
  return m
}

export interface ReadEventsOptions {
  /** Replay the journal from this time (ms since the epoch); undefined: only events from now on (unless `until` is given). */
  since?: number
  /** Stop at this time (ms since the epoch); undefined: follow until aborted. */
  until?: number
  signal?: AbortSignal
  /** How often to look for new events while following (ms). */
  pollMs?: number
}

function parseLine(line: string): EventMessage | undefined {
  if (line === '') return undefined
  try {
    const m = JSON.parse(line) as EventMessage
    return typeof m.Type === 'string' && typeof m.Action === 'string' && typeof m.timeNano === 'number' ? m : undefined
  } catch {
    return undefined // a torn line (a writer killed mid-write)
  }
}

/** Reads a file handle from `pos` to its current end; complete lines only (the rest waits for more). */
async function readFrom(fh: FileHandle, pos: number): Promise<{ lines: string[]; next: number }> {
  const size = (await fh.stat()).size
  if (size <= pos) return { lines: [], next: size < pos ? 0 : pos }
  const buf = Buffer.alloc(size - pos)
  const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
  const text = buf.subarray(0, bytesRead).toString('utf8')
  const end = text.lastIndexOf('\n')
  if (end < 0) return { lines: [], next: pos }
  return { lines: text.slice(0, end).split('\n'), next: pos + Buffer.byteLength(text.slice(0, end + 1)) }
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r')
  } catch {
    return undefined
  }
}

/**
 * The journal's events: with `since` (or `until`), those recorded from then on, then (unless
 * `until` is past) those recorded while this runs, until `until` or the signal. Ends quietly
 * when aborted.
 */
export async function* readEvents(root: string, opts: ReadEventsOptions = {}): AsyncGenerator<EventMessage> {
  const path = journalPath(root)
  const sinceNano = opts.since !== undefined ? opts.since * 1e6 : undefined
  const untilNano = opts.until !== undefined ? opts.until * 1e6 : undefined
  const replay = opts.since !== undefined || opts.until !== undefined
  const poll = opts.pollMs ?? 100
  const inWindow = (m: EventMessage): boolean => (sinceNano === undefined || m.timeNano >= sinceNano) && (untilNano === undefined || m.timeNano <= untilNano)

  let fh = await openIfExists(path)
  let ino = fh ? (await fh.stat()).ino : -1
  let pos = 0
  if (replay) {
    // the older file first, unless it is the one just opened (moved aside meanwhile)
    const old = await openIfExists(`${path}.1`)
    if (old) {
      try {
        if ((await old.stat()).ino !== ino) {
          for (const line of (await readFrom(old, 0)).lines) {
            const m = parseLine(line)
            if (m && inWindow(m)) yield m
          }
        }
      } finally {
        await old.close()
      }
    }
  } else if (fh) {
    pos = (await fh.stat()).size
  }
  try {
    for (;;) {
      if (fh) {
        const { lines, next } = await readFrom(fh, pos)
        pos = next
        for (const line of lines) {
          const m = parseLine(line)
          if (m && inWindow(m)) yield m
        }
      }
      // only the past was asked for (or the time to stop has come): done once it is read
      if (untilNano !== undefined && Date.now() * 1e6 >= untilNano) break
      if (opts.signal?.aborted) break
      // a rotated journal: finish the old file (done above), then read the new one from its start
      const st = await stat(path).catch(() => undefined)
      if (st && st.ino !== ino) {
        if (fh) {
          const rest = await readFrom(fh, pos)
          for (const line of rest.lines) {
            const m = parseLine(line)
            if (m && inWindow(m)) yield m
          }
          await fh.close()
        }
        fh = await openIfExists(path)
        ino = fh ? (await fh.stat()).ino : -1
        pos = 0
        continue
      }
      try {
        await sleep(poll, undefined, opts.signal ? { signal: opts.signal } : {})
      } catch {
        break // aborted
      }
    }
  } finally {
    await fh?.close()
  }
}
