/** How ports read in Docker's output (`ps`'s PORTS, `port`). */
import type { PublishedPort } from './types.js'

/**
 * Docker's PORTS text: published ports as `0.0.0.0:8080->80/tcp` (consecutive ones as ranges,
 * `0.0.0.0:8000-8001->80-81/tcp`), then exposed ones that are not published, as `80/tcp`.
 */
export function displayPorts(ports: readonly PublishedPort[], exposed: readonly string[] = []): string {
  const published = [...ports].sort((a, b) => a.hostIp.localeCompare(b.hostIp) || a.protocol.localeCompare(b.protocol) || a.containerPort - b.containerPort)
  const out: string[] = []
  for (let i = 0; i < published.length;) {
    const first = published[i] as PublishedPort
    let j = i
    while (j + 1 < published.length) {
      const cur = published[j] as PublishedPort
      const next = published[j + 1] as PublishedPort
      if (next.hostIp !== first.hostIp || next.protocol !== first.protocol || next.containerPort !== cur.containerPort + 1 || next.hostPort !== cur.hostPort + 1) break
      j++
    }
    const last = published[j] as PublishedPort
    const range = (a: number, b: number): string => (a === b ? String(a) : `${a}-${b}`)
    out.push(`${first.hostIp}:${range(first.hostPort, last.hostPort)}->${range(first.containerPort, last.containerPort)}/${first.protocol}`)
    i = j + 1
  }
  const shown = new Set(ports.map((p) => `${p.containerPort}/${p.protocol}`))
  for (const e of [...exposed].sort()) if (!shown.has(e)) out.push(e)
  return out.join(', ')
}

/** `docker port`'s lines: `80/tcp -> 0.0.0.0:8080`, sorted by container port. */
export function portLines(ports: readonly PublishedPort[], filter?: { port: number; protocol: string }): string[] {
  return [...ports]
    .filter((p) => !filter || (p.containerPort === filter.port && p.protocol === filter.protocol))
    .sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol) || a.hostIp.localeCompare(b.hostIp))
    .map((p) => `${filter ? '' : `${p.containerPort}/${p.protocol} -> `}${p.hostIp}:${p.hostPort}`)
}
