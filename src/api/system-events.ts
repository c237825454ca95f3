/**
 * `events` (`system events`): the store's event journal (src/events), filtered as Docker's
 * daemon filters its event stream, as an async iterator that an Engine API server can stream as
 * `/events` and the CLI prints.
 */
import { readFileSync } from 'node:fs'
import { CairnError } from '../errors/index.js'
import { EventTypes, readEvents, recordEvent, type EventMessage, type EventType } from '../events/journal.js'
import type { ImageId } from '../oci/digest.js'
import type { ImageConfig } from '../oci/types.js'
import type { ImageStore } from '../image/store.js'
import { matchLabels, parseUntil, validateFilterKeys, values, type FilterArgs } from './filters.js'

export { EventTypes, recordEvent, type EventMessage, type EventType } from '../events/journal.js'

/** Docker's filter keys for events. */
const EventFilterKeys = ['config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume'] as const

export interface EventsOptions {
  /** From this time (ms since the epoch, or Docker's forms as a string: `10m`, RFC 3339, Unix seconds). Past events are replayed. */
  since?: number | string
  /** Until this time (same forms); the stream ends then. Without it, it follows until `signal`. */
  until?: number | string
  filters?: FilterArgs
  signal?: AbortSignal
}

/** Docker's `ExactMatch`: no values for the key, or one equal to `source`. */
function exact(filters: FilterArgs, key: string, source: string): boolean {
  const vs = values(filters, key)
  return vs.length === 0 || vs.includes(source)
}

/** Docker's `FuzzyMatch`: no values, one equal, or one that `source` starts with. */
function fuzzy(filters: FilterArgs, key: string, source: string): boolean {
  const vs = values(filters, key)
  return vs.length === 0 || vs.some((v) => source === v || source.startsWith(v))
}

/** An image name without its tag (`busybox:1` → `busybox`; digests and registry ports kept apart). */
function stripTag(name: string): string {
  const at = name.indexOf('@')
  if (at >= 0) return name.slice(0, at)
  const colon = name.lastIndexOf(':')
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name
}

/** Whether an event passes Docker's event filters. */
export function eventMatches(filters: FilterArgs, e: EventMessage): boolean {
  const attrs = e.Actor.Attributes
  // health_status, exec_create and exec_start carry the detail after a colon: matched as prefixes
  const fuzzyActions = values(filters, 'event').some((v) => v === 'health_status' || v === 'exec_create' || v === 'exec_start')
  if (!(fuzzyActions ? fuzzy(filters, 'event', e.Action) : exact(filters, 'event', e.Action))) return false
  if (!exact(filters, 'type', e.Type)) return false
  if (!exact(filters, 'scope', e.scope)) return false
  const byName = (key: EventType): boolean => fuzzy(filters, key, e.Actor.ID) || fuzzy(filters, key, attrs['name'] ?? '')
  for (const key of ['container', 'daemon', 'plugin', 'volume', 'network', 'node', 'service', 'secret', 'config'] as const) if (!byName(key)) return false
  const imageName = attrs[e.Type === 'image' ? 'name' : 'image'] ?? ''
  if (!(exact(filters, 'image', e.Actor.ID) || exact(filters, 'image', imageName) || exact(filters, 'image', stripTag(e.Actor.ID)) || exact(filters, 'image', stripTag(imageName)))) return false
  return matchLabels(filters, 'label', attrs)
}

/** `--since`/`--until` as ms since the epoch: a number is taken as such; strings in Docker's forms. */
function timeOf(v: number | string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined
  if (typeof v === 'number') return v
  try {
    return parseUntil(v)
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `invalid value for ${what}: ${JSON.stringify(v)}`)
  }
}

/** Checks the options before anything is read (so that a bad filter fails at once). */
export function checkEventsOptions(opts: EventsOptions): { since?: number; until?: number } {
  const filters = opts.filters ?? {}
  validateFilterKeys(filters, EventFilterKeys)
  for (const t of values(filters, 'type')) {
    if (!(EventTypes as readonly string[]).includes(t)) throw new CairnError('INVALID_ARGUMENT', `invalid filter 'type=${t}'`)
  }
  const since = timeOf(opts.since, '--since')
  const until = timeOf(opts.until, '--until')
  if (since !== undefined && until !== undefined && until < since) {
    throw new CairnError('INVALID_ARGUMENT', '`since` time cannot be after `until` time')
  }
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) }
}

/**
 * `docker events`: the store's events that pass the filters. Without `since` or `until`, only
 * those that happen from now on; with `since`, the recorded ones from then first. Ends at
 * `until`, or when `signal` aborts (quietly).
 */
export async function* streamEvents(root: string, opts: EventsOptions = {}): AsyncGenerator<EventMessage> {
  const window = checkEventsOptions(opts)
  const filters = opts.filters ?? {}
  for await (const e of readEvents(root, { ...window, ...(opts.signal ? { signal: opts.signal } : {}) })) {
    if (eventMatches(filters, e)) yield e
  }
}

/** An image event, with the image's labels among its attributes (as Docker's): `name` is the image's name as the action used it. */
export function recordImageEvent(store: ImageStore, action: string, id: string, name: string, imageId?: ImageId): void {
  let labels: Record<string, string> = {}
  const img = imageId !== undefined ? store.get(imageId) : undefined
  if (img) {
    try {
      labels = (JSON.parse(readFileSync(store.content.path(img.configDigest), 'utf8')) as ImageConfig).config?.Labels ?? {}
    } catch {
      labels = {}
    }
  }
  recordEvent(store.root, 'image', action, id, { ...labels, name })
}
