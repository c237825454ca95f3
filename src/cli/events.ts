/** `events` (`system events`): the store's event stream, printed as Docker's CLI prints it. */
import type { Command } from 'commander'
import type { EventMessage } from '../api/system-events.js'
import { parseFilterArgs } from '../api/filters.js'
import { collect, rootOf } from './context.js'
import { goJSON, goStruct, parseFormat, preFormat, TemplateExecError } from './template.js'

/** Go's `2006-01-02T15:04:05.000000000Z07:00` in this machine's time zone (Docker's event time). */
function eventTime(timeNano: number): string {
  const ms = Math.floor(timeNano / 1e6)
  const d = new Date(ms)
  const off = -d.getTimezoneOffset()
  const local = new Date(ms + off * 60_000).toISOString().slice(0, 19)
  const nanos = String(Math.max(0, Math.round(timeNano - Math.floor(timeNano / 1e9) * 1e9))).padStart(9, '0').slice(0, 9)
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${String(Math.trunc(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`
  return `${local}.${nanos}${zone}`
}

/** Docker's plain line: time, type, action, actor, then the attributes sorted as `(k=v, …)`. */
export function eventLine(e: EventMessage): string {
  const attrs = Object.keys(e.Actor.Attributes).sort().map((k) => `${k}=${e.Actor.Attributes[k] ?? ''}`)
  return `${eventTime(e.timeNano)} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs.length > 0 ? ` (${attrs.join(', ')})` : ''}\n`
}

/** Docker's JSON of an event message (omitted legacy fields, attributes sorted, the nanoseconds as an integer). */
export function eventJSON(e: EventMessage): string {
  const parts: string[] = []
  if (e.status !== undefined && e.status !== '') parts.push(`"status":${goJSON(e.status, false)}`)
  if (e.id !== undefined && e.id !== '') parts.push(`"id":${goJSON(e.id, false)}`)
  if (e.from !== undefined && e.from !== '') parts.push(`"from":${goJSON(e.from, false)}`)
  parts.push(`"Type":${goJSON(e.Type, false)}`, `"Action":${goJSON(e.Action, false)}`)
  parts.push(`"Actor":{"ID":${goJSON(e.Actor.ID, false)},"Attributes":${goJSON(e.Actor.Attributes, false)}}`)
  parts.push(`"scope":${goJSON(e.scope, false)}`, `"time":${e.time}`, `"timeNano":${BigInt(Math.round(e.timeNano)).toString()}`)
  return `{${parts.join(',')}}`
}

/** What a template sees of an event: Docker's events.Message (Go's field names). */
function eventContext(e: EventMessage): Record<string, unknown> {
  return goStruct('events.Message', {
    Status: e.status ?? '',
    ID: e.id ?? '',
    From: e.from ?? '',
    Type: e.Type,
    Action: e.Action,
    Actor: goStruct('events.Actor', { ID: e.Actor.ID, Attributes: { ...e.Actor.Attributes } }),
    Scope: e.scope,
    Time: e.time,
    TimeNano: e.timeNano,
  }, { json: () => eventJSON(e) })
}

export function registerEventCommands(parents: readonly Command[]): void {
  for (const parent of parents) {
    parent
      .command('events')
      .description('Get real time events from the server')
      .option('--since <time>', 'show all events created since timestamp (Unix seconds, RFC 3339, or a duration such as 10m)')
      .option('--until <time>', 'stream events until this timestamp')
      .option('-f, --filter <key=value>', 'filter output based on conditions provided (repeatable)', collect)
      .option('--format <format>', "format the output using a Go template ('json' for JSON lines)")
      .action(async (f: { since?: string; until?: string; filter?: string[]; format?: string }, cmd: Command) => {
        const { streamEvents, checkEventsOptions } = await import('../api/system-events.js')
        const opts = {
          filters: parseFilterArgs(f.filter ?? []),
          ...(f.since !== undefined ? { since: f.since } : {}),
          ...(f.until !== undefined ? { until: f.until } : {}),
        }
        checkEventsOptions(opts)
        const tmpl = f.format !== undefined && f.format !== '' ? parseFormat(preFormat(f.format)) : undefined
        const ac = new AbortController()
        const stop = (): void => ac.abort()
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
        try {
          for await (const e of streamEvents(rootOf(cmd), { ...opts, signal: ac.signal })) {
            if (!tmpl) {
              process.stdout.write(eventLine(e))
              continue
            }
            try {
              process.stdout.write(`${tmpl.execute(eventContext(e))}\n`)
            } catch (err) {
              if (!(err instanceof TemplateExecError)) throw err
              process.stderr.write(`${err.message}\n`)
              process.exitCode = 1
              return
            }
          }
        } finally {
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
        }
      })
  }
}
