/**
 * The files Docker writes for each container and bind-mounts over /etc/hosts, /etc/hostname and
 * /etc/resolv.conf. Pure: contents from the host's files and the container's settings.
 */

/** Docker's /etc/hosts for a container with a network namespace of its own. */
export function hostsFile(opts: { hostname: string; network: 'private' | 'host'; hostHosts?: string }): string {
  if (opts.network === 'host' && opts.hostHosts !== undefined) return opts.hostHosts
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    '',
  ].join('\n')
}

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`
}

/** Docker's fallback when the host has no nameserver a container can reach. */
export const DEFAULT_NAMESERVERS = ['8.8.8.8', '8.8.4.4'] as const

/**
 * The container's resolv.conf from the host's: kept as it is with the host's network; otherwise
 * nameservers on the host's loopback (unreachable from another network namespace) are dropped,
 * and Docker's defaults used when none remain.
 */
export function resolvConfFile(hostResolv: string | undefined, network: 'private' | 'host'): string {
  const text = hostResolv ?? ''
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
