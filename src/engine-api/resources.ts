/**
 * A running container's resources over the API: `/top`, `/stats` (one reading, or one a second)
 * and `/update`, served by the same functions as the CLI's `top`, `stats` and `update`
 * (api/resources.ts), in Docker's JSON.
 */
import { containerEngine } from '../api/containers.js'
import { streamStats, topContainer, updateContainers, type ContainerStats } from '../api/resources.js'
import { HttpError } from './errors.js'
import type { Exchange } from './exchange.js'
import type { Service } from './service.js'
import { limitsOf } from './shapes.js'

export async function top(x: Exchange, s: Service): Promise<void> {
  const psArgs = (x.query.get('ps_args') ?? '').split(/\s+/).filter((a) => a !== '')
  const r = await topContainer(s.store, x.params['id'] ?? '', psArgs)
  x.send(200, { Titles: r.titles, Processes: r.processes })
}

type Sample = ContainerStats['sample']

function cpuJson(sample: Sample | undefined): Record<string, unknown> {
  return {
    cpu_usage: { total_usage: sample?.cpuUsageNs ?? 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
    system_cpu_usage: sample?.systemCpuNs ?? 0,
    online_cpus: sample?.onlineCpus ?? 0,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  }
}

/** Docker's stats JSON (types.StatsJSON): the reading, and the one before it for CPU %. */
function statsJson(c: ContainerStats, before: Sample | undefined): Record<string, unknown> {
  const live = c.sample.cpuUsageNs > 0 || c.sample.memoryUsage > 0 || c.pids > 0
  return {
    name: `/${c.name}`,
    id: c.id,
    read: new Date(live ? c.sample.read : 0).toISOString(),
    preread: new Date(before?.read ?? 0).toISOString(),
    pids_stats: { current: c.pids },
    blkio_stats: {
      io_service_bytes_recursive: [
        { major: 0, minor: 0, op: 'read', value: c.blockRead },
        { major: 0, minor: 0, op: 'write', value: c.blockWrite },
      ],
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuJson(c.sample),
    precpu_stats: cpuJson(before),
    // usage counts the page cache; clients subtract stats.inactive_file as Docker's CLI does
    memory_stats: { usage: c.sample.memoryUsage, stats: { inactive_file: c.sample.inactiveFile }, limit: c.memoryLimit },
    networks: { eth0: { rx_bytes: c.netRx, rx_packets: 0, rx_errors: 0, rx_dropped: 0, tx_bytes: c.netTx, tx_packets: 0, tx_errors: 0, tx_dropped: 0 } },
  }
}

/**
 * `stream=true` (the default): a reading a second until the client goes; `stream=false`: one
 * reading, with the one a second before it (CPU % needs two) unless `one-shot=true`.
 */
export async function stats(x: Exchange, s: Service): Promise<void> {
  const id = containerEngine(s.store).resolve(x.params['id'] ?? '').id
  const stream = x.flag('stream', true)
  const oneShot = !stream && x.flag('one-shot')
  const ac = new AbortController()
  void x.gone.then(() => ac.abort())
  let before: Sample | undefined
  let out: ReturnType<Exchange['jsonStream']> | undefined
  try {
    for await (const list of streamStats(s.store, [id], { signal: ac.signal })) {
      const c = list[0]
      if (!c) throw new HttpError(404, `No such container: ${id}`)
      if (!stream) {
        if (oneShot || before !== undefined) {
          x.send(200, statsJson(c, before))
          return
        }
        before = c.sample
        continue
      }
      out ??= x.jsonStream()
      if (out.closed) return
      out.write(statsJson(c, before))
      before = c.sample
    }
  } finally {
    ac.abort()
    out?.end()
  }
}

export async function update(x: Exchange, s: Service): Promise<void> {
  const body = await x.json<unknown>({})
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body: an object expected')
  const r = await updateContainers(s.store, [x.params['id'] ?? ''], limitsOf(body as Record<string, unknown>, 'update'))
  const failed = r.errors[0]
  if (failed) throw failed.error
  x.send(200, { Warnings: [] })
}
