/**
 * Prometheus metrics in the text exposition format (version 0.0.4), without a client library:
 * counters, gauges and histograms with labels, rendered on demand.
 */

type Labels = Record<string, string>

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeLabel(labels[k] ?? '')}"`)
    .join(',')
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n)
}

interface Metric {
  render(): string
}

class Counter implements Metric {
  private readonly values = new Map<string, number>()
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels)
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`
    if (this.values.size === 0) out += `${this.name} 0\n`
    for (const [k, v] of this.values) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`
    return out
  }
}

class Gauge implements Metric {
  private readonly values = new Map<string, number>()
  constructor(readonly name: string, readonly help: string, private readonly collect?: () => number) {}

  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value)
  }

  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels)
    this.values.set(k, (this.values.get(k) ?? 0) + by)
  }

  dec(labels: Labels = {}, by = 1): void {
    this.inc(labels, -by)
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`
    if (this.collect) this.values.set('', this.collect())
    if (this.values.size === 0) out += `${this.name} 0\n`
    for (const [k, v] of this.values) out += `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}\n`
    return out
  }
}

class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>()
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels)
    let s = this.series.get(k)
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }
      this.series.set(k, s)
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1
    s.sum += value
    s.count++
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : ''
      this.buckets.forEach((b, i) => {
        out += `${this.name}_bucket{${sep}le="${fmt(b)}"} ${s.counts[i] ?? 0}\n`
      })
      out += `${this.name}_bucket{${sep}le="+Inf"} ${s.count}\n`
      out += `${this.name}_sum${k ? `{${k}}` : ''} ${fmt(s.sum)}\n`
      out += `${this.name}_count${k ? `{${k}}` : ''} ${s.count}\n`
    }
    return out
  }
}

/** The registry's metrics. */
export class RegistryMetrics {
  readonly requests = new Counter('cairn_registry_http_requests_total', 'HTTP requests answered, by method, route and status.')
  readonly duration = new Histogram(
    'cairn_registry_http_request_duration_seconds',
    'Time to answer a request, by method and route.',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  )
  readonly bytesSent = new Counter('cairn_registry_http_response_bytes_total', 'Response body bytes sent.')
  readonly bytesReceived = new Counter('cairn_registry_http_request_bytes_total', 'Request body bytes received into uploads and manifests.')
  readonly inFlight = new Gauge('cairn_registry_http_requests_in_flight', 'Requests being answered.')
  readonly uploadsStarted = new Counter('cairn_registry_uploads_started_total', 'Blob upload sessions started.')
  readonly blobsPushed = new Counter('cairn_registry_blobs_pushed_total', 'Blobs whose upload completed (digest verified).')
  readonly blobsMounted = new Counter('cairn_registry_blobs_mounted_total', 'Blobs mounted from another repository.')
  readonly manifestsPushed = new Counter('cairn_registry_manifests_pushed_total', 'Manifests stored.')
  readonly authFailures = new Counter('cairn_registry_auth_failures_total', 'Requests refused for missing or wrong credentials, or denied access.')
  readonly rateLimited = new Counter('cairn_registry_rate_limited_total', 'Requests refused by the rate limit.')
  readonly uploadsPurged = new Counter('cairn_registry_uploads_purged_total', 'Abandoned upload sessions removed.')
  readonly gcRuns = new Counter('cairn_registry_gc_runs_total', 'Garbage collections this server ran (gc.interval).')
  readonly gcManifestsDeleted = new Counter('cairn_registry_gc_manifests_deleted_total', 'Untagged manifests its garbage collections deleted.')
  readonly gcBlobsDeleted = new Counter('cairn_registry_gc_blobs_deleted_total', 'Blobs its garbage collections deleted.')
  readonly up = new Gauge('cairn_registry_up', 'Always 1 while the registry serves.', () => 1)
  readonly startTime = new Gauge('cairn_registry_start_time_seconds', 'When the registry started (Unix time).')

  private readonly all: Metric[] = [
    this.up, this.startTime, this.requests, this.duration, this.bytesSent, this.bytesReceived, this.inFlight,
    this.uploadsStarted, this.blobsPushed, this.blobsMounted, this.manifestsPushed, this.authFailures,
    this.gcRuns, this.gcManifestsDeleted, this.gcBlobsDeleted,
    this.rateLimited, this.uploadsPurged,
  ]

  constructor() {
    this.startTime.set(Math.floor(Date.now() / 1000))
  }

  render(): string {
    const mem = process.memoryUsage()
    const proc =
      `# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ${mem.rss}\n` +
      `# HELP nodejs_heap_used_bytes V8 heap in use.\n# TYPE nodejs_heap_used_bytes gauge\nnodejs_heap_used_bytes ${mem.heapUsed}\n`
    return this.all.map((m) => m.render()).join('') + proc
  }
}
