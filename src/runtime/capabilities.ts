/**
 * Linux capabilities as Docker hands them out: the default set, `--cap-add`/`--cap-drop` (names
 * with or without `CAP_`, any case, and `ALL`), and `--privileged` (everything). "Everything" is
 * what the host's own bounding set holds (/proc/self/status CapBnd), not every capability the
 * kernel knows: a process cannot grant what it lacks, so a host (or VM, or outer container)
 * without, say, CAP_SYS_RESOURCE still runs privileged containers, with the rest.
 */
import { readFileSync } from 'node:fs'
import { CairnError } from '../errors/index.js'

/** Every capability Linux defines, by number (capability.h; 40 is CAP_CHECKPOINT_RESTORE, Linux 5.9). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
]

/** Docker's default capability set (moby `oci/caps/defaults.go`). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]

/** The capabilities of a mask such as CapBnd's hexadecimal value, by name. */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim() || '0'}`)
  return ALL_CAPABILITIES.filter((_c, i) => (mask & (1n << BigInt(i))) !== 0n)
}

let hostBounding: string[] | undefined

/** This process's bounding set (what a container can be given at most), read once. */
export function hostCapabilities(): string[] {
  if (hostBounding === undefined) {
    let set: string[]
    try {
      const hex = /^CapBnd:\s+([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
      set = hex === undefined ? [...ALL_CAPABILITIES] : capabilitiesOfMask(hex)
    } catch {
      set = [...ALL_CAPABILITIES]
    }
    hostBounding = set
  }
  return [...hostBounding]
}

/**
 * `NET_ADMIN`, `cap_net_admin` → `CAP_NET_ADMIN`; `ALL` stays. An unknown name, or one the host
 * cannot grant, is refused in Docker's words.
 */
export function normalizeCapabilities(names: readonly string[], host: readonly string[]): string[] {
  const out: string[] = []
  for (const raw of names) {
    let c = raw.trim().toUpperCase()
    if (c === 'ALL') {
      out.push(c)
      continue
    }
    if (!c.startsWith('CAP_')) c = `CAP_${c}`
    if (!ALL_CAPABILITIES.includes(c)) throw new CairnError('INVALID_ARGUMENT', `unknown capability: ${JSON.stringify(c)}`)
    if (!host.includes(c)) {
      throw new CairnError('INVALID_ARGUMENT', `capability not supported by your kernel or not available in the current environment: ${JSON.stringify(c)}`)
    }
    out.push(c)
  }
  return out
}

/**
 * Docker's TweakCapabilities: privileged gets every capability of the host; `ALL` in the adds
 * gives everything but the drops; `ALL` in the drops gives the adds alone; otherwise the
 * defaults minus the drops plus the adds. Pure.
 */
export function tweakCapabilities(opts: { adds?: readonly string[]; drops?: readonly string[]; privileged?: boolean; host: readonly string[] }): string[] {
  const host = opts.host
  const everything = ALL_CAPABILITIES.filter((c) => host.includes(c))
  if (opts.privileged) return everything
  const adds = normalizeCapabilities(opts.adds ?? [], host)
  const drops = normalizeCapabilities(opts.drops ?? [], host)
  let caps: string[]
  if (adds.includes('ALL')) caps = everything.filter((c) => !drops.includes(c))
  else if (drops.includes('ALL')) caps = [...adds]
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drops.includes(c)), ...adds]
  return [...new Set(caps)].filter((c) => host.includes(c))
}
