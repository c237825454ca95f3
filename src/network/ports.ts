/**
 * Published ports are held, not only forwarded: the process that watches the container (its
 * monitor) listens on each host port for as long as the container runs, as podman's conmon does,
 * so that a port already taken (by a host service or another container) is a clear error at
 * start, and nothing else can take it while the container runs. The traffic itself never reaches
 * these sockets: the firewall's DNAT sends it to the container first.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import { CairnError } from '../errors/index.js'
import type { PortSpec, PublishedPort } from './types.js'

export interface PortReservation {
  ports: PublishedPort[]
  release(): Promise<void>
}

function listenTcp(host: string, port: number): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => s.destroy())
    server.once('error', reject)
    server.listen({ host, port, exclusive: true, backlog: 1 }, () => {
      server.off('error', reject)
      server.unref()
      const addr = server.address()
      resolve({ server, port: typeof addr === 'object' && addr !== null ? addr.port : port })
    })
  })
}

function bindUdp(host: string, port: number): Promise<{ socket: UdpSocket; port: number }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' })
    socket.once('error', reject)
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject)
      socket.unref()
      resolve({ socket, port: socket.address().port })
    })
  })
}

/**
 * Listens on every published port (a port of 0 gets a free one), or fails, holding nothing, with
 * Docker's message for a port in use. `endpoint` names the container in that message.
 */
export async function reservePorts(specs: readonly PortSpec[], endpoint: string): Promise<PortReservation> {
  const closers: (() => Promise<void>)[] = []
  const release = async (): Promise<void> => {
    await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)))
  }
  const ports: PublishedPort[] = []
  try {
    for (const p of specs) {
      const host = p.hostIp === '' ? '0.0.0.0' : p.hostIp
      try {
        if (p.protocol === 'tcp') {
          const { server, port } = await listenTcp(host, p.hostPort)
          closers.push(() => new Promise((r) => server.close(() => r())))
          ports.push({ containerPort: p.containerPort, protocol: p.protocol, hostIp: host, hostPort: port })
        } else if (p.protocol === 'udp') {
          const { socket, port } = await bindUdp(host, p.hostPort)
          closers.push(() => new Promise((r) => socket.close(() => r())))
          ports.push({ containerPort: p.containerPort, protocol: p.protocol, hostIp: host, hostPort: port })
        } else {
          // Node has no SCTP sockets: forwarded, not held
          if (p.hostPort === 0) throw new CairnError('NOT_SUPPORTED', 'an SCTP port needs a host port (-p HOST:CTR/sctp)')
          ports.push({ containerPort: p.containerPort, protocol: p.protocol, hostIp: host, hostPort: p.hostPort })
        }
      } catch (err) {
        if ((err as { code?: unknown }).code === 'EADDRINUSE') {
          throw new CairnError('CONFLICT', `driver failed programming external connectivity on endpoint ${endpoint}: Bind for ${host}:${p.hostPort} failed: port is already allocated`)
        }
        if ((err as { code?: unknown }).code === 'EADDRNOTAVAIL') {
          throw new CairnError('INVALID_ARGUMENT', `driver failed programming external connectivity on endpoint ${endpoint}: listen ${p.protocol} ${host}:${p.hostPort}: bind: cannot assign requested address`)
        }
        throw err
      }
    }
  } catch (err) {
    await release()
    throw err
  }
  return { ports, release }
}
