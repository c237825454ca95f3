/**
 * The files Docker writes for each container and bind-mounts over /etc/hosts, /etc/hostname and
 * /etc/resolv.conf. Pure: contents from the host's files and the container's settings.
 */

export interface HostsOptions {
  hostname: string
  network: 'private' | 'host'
  hostHosts?: string
  /** `--add-host` entries, in order. */
  extra?: readonly { name: string; ip: string }[]
  /** The container's own address on its network: a line naming it (with its domain, if any). */
  self?: { ip: string; domainname?: string }
}

/**
 * Docker's /etc/hosts: the host's own with the host's network (plus `--add-host` lines), else
 * localhost, the IPv6 names, the extra hosts, and the container's address with its name.
 */
export function hostsFile(opts: HostsOptions): string {
  const extra = (opts.extra ?? []).map((e) => `${e.ip}\t${e.name}`)
  if (opts.network === 'host' && opts.hostHosts !== undefined) {
    return extra.length === 0 ? opts.hostHosts : `${opts.hostHosts.replace(/\n?$/, '\n')}${extra.join('\n')}\n`
  }
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    ...extra,
  ]
  if (opts.self) {
    const d = opts.self.domainname ?? ''
    lines.push(`${opts.self.ip}\t${d !== '' ? `${opts.hostname}.${d} ${opts.hostname}` : opts.hostname}`)
  }
  return `${lines.join('\n')}\n`
}

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`
}

/** Docker's fallback when the host has no nameserver a container can reach. */
const DEFAULT_NAMESERVERS = ['8.8.8.8', '8.8.4.4'] as const

/**
 * The container's resolv.conf from the host's: kept as it is with the host's network; otherwise
 * nameservers on the host's loopback (unreachable from another network namespace) are dropped,
 * and Docker's defaults used when none remain.
 */
export function resolvConfFile(hostResolv: string | undefined, network: 'private' | 'host', overrides: ResolvOverrides = {}): string {
  const text = hostResolv ?? ''
  const custom = (overrides.nameservers?.length ?? 0) > 0 || overrides.search !== undefined || overrides.options !== undefined || (overrides.resolvers?.length ?? 0) > 0
  if (custom) return customResolvConf(text, network, overrides)
  if (network === 'host' && hostResolv !== undefined) return text
  const lines = text.split('\n').filter((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l)
    return !m || !isLoopback(m[1] as string)
  })
  while (lines.length > 0 && lines.at(-1) === '') lines.pop()
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) {
    for (const ns of DEFAULT_NAMESERVERS) lines.push(`nameserver ${ns}`)
  }
  return `${lines.join('\n')}\n`
}

function isLoopback(addr: string): boolean {
  return /^127\./.test(addr) || addr === '::1' || addr === '0:0:0:0:0:0:0:1'
}

/** What replaces parts of the host's resolv.conf: `--dns`, `--dns-search`, `--dns-option`, and a user network's resolver. */
export interface ResolvOverrides {
  /** `--dns`. */
  nameservers?: readonly string[]
  /** `--dns-search` (replaces the host's search line). */
  search?: readonly string[]
  /** `--dns-option` (replaces the host's options line). */
  options?: readonly string[]
  /** A user network's resolver (the container's names are known there): listed first. */
  resolvers?: readonly string[]
}

function customResolvConf(hostText: string, network: 'private' | 'host', o: ResolvOverrides): string {
  const host = hostText.split('\n')
  const hostServers = host.map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => x !== undefined && (network === 'host' || !isLoopback(x)))
  const hostSearch = host.map((l) => /^\s*(?:search|domain)\s+(.*)$/.exec(l)?.[1]).filter((x): x is string => x !== undefined).at(-1)
  const hostOptions = host.map((l) => /^\s*options\s+(.*)$/.exec(l)?.[1]).filter((x): x is string => x !== undefined).at(-1)
  const given = o.nameservers ?? []
  const resolvers = o.resolvers ?? []
  // a user network's resolver answers for containers and forwards the rest: the others are its fallback
  const servers = [...resolvers, ...(given.length > 0 ? given : resolvers.length > 0 ? [] : hostServers)]
  if (servers.length === 0) servers.push(...DEFAULT_NAMESERVERS)
  const lines = servers.map((s) => `nameserver ${s}`)
  const search = o.search !== undefined ? o.search.join(' ') : hostSearch
  if (search !== undefined && search.trim() !== '' && search.trim() !== '.') lines.push(`search ${search.trim()}`)
  const options = o.options !== undefined ? o.options.join(' ') : hostOptions
  if (options !== undefined && options.trim() !== '') lines.push(`options ${options.trim()}`)
  return `${lines.join('\n')}\n`
}
