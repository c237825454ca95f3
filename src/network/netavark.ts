/**
 * The plumbing: netavark (Debian's `netavark`, what podman 4 uses) configures a container's
 * namespace for its networks — the Linux bridge, the veth pair, the addresses and routes, NAT,
 * forwarding rules, published ports (DNAT, also from 127.0.0.1) — and runs aardvark-dns, the
 * resolver that lets containers on a user network find each other by name. Cairn leases the
 * addresses itself (netavark takes them as given) and never writes a firewall rule of its own,
 * except to remove netavark's empty shared chains once nothing uses them.
 *
 * Calls are serialised host-wide with flock(1) on a lock file: two containers starting at once
 * must not race to create the same bridge.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import { findTool } from './host.js'
import type { NetworkDefinition, PublishedPort } from './types.js'

const run = promisify(execFile)

export interface NetavarkNetwork {
  name: string
  id: string
  driver: 'bridge'
  network_interface: string
  subnets: { subnet: string; gateway: string }[]
  ipv6_enabled: false
  internal: boolean
  dns_enabled: boolean
  options?: Record<string, string>
}

/** netavark's input (its `NetworkOptions`). */
export interface NetavarkOptions {
  container_id: string
  container_name: string
  networks: Record<string, { static_ips: string[]; aliases: string[]; interface_name: string }>
  network_info: Record<string, NetavarkNetwork>
  port_mappings: { host_ip: string; container_port: number; host_port: number; range: number; protocol: string }[]
}

/** netavark's answer to `setup`: per network, the interfaces made and the resolver's addresses. */
export type NetavarkResult = Record<string, {
  interfaces?: Record<string, { mac_address?: string; subnets?: { ipnet: string; gateway?: string }[] }>
  dns_server_ips?: string[]
  dns_search_domains?: string[]
}>

export function netavarkNetwork(def: NetworkDefinition): NetavarkNetwork {
  return {
    name: def.name,
    id: def.id,
    driver: 'bridge',
    network_interface: def.bridge,
    subnets: [{ subnet: def.subnet, gateway: def.gateway }],
    ipv6_enabled: false,
    internal: def.internal,
    dns_enabled: def.dns,
  }
}

export function portMappings(ports: readonly PublishedPort[]): NetavarkOptions['port_mappings'] {
  // netavark's 'any address' is the empty string (0.0.0.0 would be taken literally)
  return ports.map((p) => ({ host_ip: p.hostIp === '0.0.0.0' ? '' : p.hostIp, container_port: p.containerPort, host_port: p.hostPort, range: 1, protocol: p.protocol }))
}

export class Netavark {
  readonly binary: string
  readonly aardvark: string | undefined
  private readonly configDir: string
  private readonly lockFile: string

  constructor(runDir: string) {
    const bin = findTool('netavark', ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark'])
    if (!bin) throw new CairnError('NOT_SUPPORTED', 'container networking needs netavark and aardvark-dns: apt-get install netavark aardvark-dns (or use --network host|none)')
    this.binary = bin
    this.aardvark = findTool('aardvark-dns', ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'])
    this.configDir = `${runDir}/netavark`
    this.lockFile = `${runDir}/netavark.lock`
    mkdirSync(this.configDir, { recursive: true, mode: 0o700 })
  }

  private async call(command: 'setup' | 'teardown', netns: string, options: NetavarkOptions): Promise<string> {
    const args = ['-o', this.lockFile, this.binary, '--config', this.configDir]
    if (this.aardvark) args.push('--aardvark-binary', this.aardvark)
    args.push(command, netns)
    return new Promise<string>((resolve, reject) => {
      // the resolver netavark starts keeps its inherited descriptors: give it none of ours
      const child = spawn('flock', args, { stdio: ['pipe', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', (b: Buffer) => (out += b.toString()))
      child.stderr.on('data', (b: Buffer) => (err += b.toString()))
      child.on('error', reject)
      child.on('close', (code) => {
        if (code === 0) resolve(out)
        else {
          // netavark reports its error as JSON on stdout ({"error": …}), older versions on stderr
          let msg: string | undefined
          try {
            const e = (JSON.parse(out) as { error?: unknown }).error
            if (typeof e === 'string') msg = e
          } catch {
            msg = undefined
          }
          msg ??= err.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.includes('syslog')).at(-1) ?? `exit code ${String(code)}`
          reject(new CairnError('CONFLICT', `netavark ${command}: ${msg.replace(/^Error: /, '')}`))
        }
      })
      child.stdin.on('error', () => undefined)
      child.stdin.end(JSON.stringify(options))
    })
  }

  async setup(netns: string, options: NetavarkOptions): Promise<NetavarkResult> {
    const out = await this.call('setup', netns, options)
    try {
      return JSON.parse(out) as NetavarkResult
    } catch {
      return {}
    }
  }

  async teardown(netns: string, options: NetavarkOptions): Promise<void> {
    await this.call('teardown', netns, options)
  }

  /**
   * netavark leaves its shared chains (forwarding, port-forwarding marks) when the last network
   * goes. Once no rule in them serves a network any more, they are removed, so the host's
   * firewall is as it was. Chains another user of netavark still fills are left alone.
   */
  async removeIdleChains(): Promise<void> {
    await this.withLock(() => this.removeIdleChainsLocked())
  }

  /** Runs `fn` holding the lock netavark's calls take (flock on the same file, held by a child that ends with us). */
  private async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const holder = spawn('flock', [this.lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] })
    holder.stdin.on('error', () => undefined)
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject)
      holder.once('exit', (code) => reject(new CairnError('CONFLICT', `flock ${this.lockFile} ended (${String(code)}) before it held the lock`)))
      holder.stdout.once('data', () => resolve())
    })
    try {
      return await fn()
    } finally {
      holder.removeAllListeners('exit')
      holder.stdin.end()
    }
  }

  /** One `iptables-save` to look, one `iptables-restore --noflush` to remove (iptables calls are what cost here). */
  private async removeIdleChainsLocked(): Promise<void> {
    let dump: string
    try {
      dump = (await run('iptables-save', ['-t', 'filter'])).stdout + (await run('iptables-save', ['-t', 'nat'])).stdout
    } catch {
      return
    }
    const lines = dump.split('\n')
    const filterOps: string[] = []
    if (lines.includes(':NETAVARK_FORWARD - [0:0]') || /^:NETAVARK_FORWARD /m.test(dump)) {
      if (!/^-A NETAVARK_FORWARD /m.test(dump)) {
        for (const l of lines) if (/^-A FORWARD .*-j NETAVARK_FORWARD$/.test(l)) filterOps.push(l.replace(/^-A/, '-D'))
        filterOps.push('-X NETAVARK_FORWARD')
      }
    }
    const natOps: string[] = []
    if (/^:NETAVARK-HOSTPORT-DNAT /m.test(dump) && !/^-A NETAVARK-HOSTPORT-DNAT /m.test(dump) && !/^-A NETAVARK-(DN-)?[0-9A-F]{6,} /m.test(dump)) {
      for (const l of lines) if (/^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j NETAVARK-HOSTPORT-(DNAT|MASQ)$/.test(l)) natOps.push(l.replace(/^-A/, '-D'))
      for (const c of ['NETAVARK-HOSTPORT-DNAT', 'NETAVARK-HOSTPORT-SETMARK', 'NETAVARK-HOSTPORT-MASQ']) natOps.push(`-F ${c}`, `-X ${c}`)
    }
    if (filterOps.length === 0 && natOps.length === 0) return
    const script = [
      ...(filterOps.length > 0 ? ['*filter', ...filterOps, 'COMMIT'] : []),
      ...(natOps.length > 0 ? ['*nat', ...natOps, 'COMMIT'] : []),
      '',
    ].join('\n')
    await new Promise<void>((resolve) => {
      const child = spawn('iptables-restore', ['-w', '--noflush'], { stdio: ['pipe', 'ignore', 'ignore'] })
      child.on('error', () => resolve())
      child.on('close', () => resolve())
      child.stdin.on('error', () => undefined)
      child.stdin.end(script)
    })
  }
}

