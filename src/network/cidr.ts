/**
 * IPv4 subnets as numbers: parsing `a.b.c.d/n`, membership, overlap, and the n-th address.
 * Hand-written: a few lines of integer arithmetic, where a dependency would bring far more.
 */
import { isIPv4 } from 'node:net'
import { CairnError } from '../errors/index.js'

export interface Subnet {
  /** The network address as an unsigned 32-bit number. */
  base: number
  prefix: number
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number)
  return (((parts[0] ?? 0) << 24) >>> 0) + ((parts[1] ?? 0) << 16) + ((parts[2] ?? 0) << 8) + (parts[3] ?? 0)
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** `10.1.0.0/16` → a subnet; the address must be the network's own unless `loose` (then it is masked). */
export function parseSubnet(s: string, opts: { loose?: boolean } = {}): Subnet {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(s)
  if (!m || !isIPv4(m[1] as string) || Number(m[2]) > 32) throw new CairnError('INVALID_ARGUMENT', `invalid subnet ${s}: want an IPv4 CIDR such as 10.1.0.0/24`)
  const prefix = Number(m[2])
  const addr = ipToInt(m[1] as string)
  const base = (addr & mask(prefix)) >>> 0
  if (base !== addr && !opts.loose) throw new CairnError('INVALID_ARGUMENT', `invalid subnet ${s}: the address is not the network's (${intToIp(base)}/${prefix})`)
  return { base, prefix }
}

export function formatSubnet(s: Subnet): string {
  return `${intToIp(s.base)}/${s.prefix}`
}

export function size(s: Subnet): number {
  return 2 ** (32 - s.prefix)
}

export function contains(s: Subnet, ip: string): boolean {
  return isIPv4(ip) && ((ipToInt(ip) & mask(s.prefix)) >>> 0) === s.base
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix)
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0)
}

/** The i-th address of the subnet (0 is the network address). */
export function nth(s: Subnet, i: number): string {
  return intToIp((s.base + i) >>> 0)
}

/** Splits `pool` into subnets of `prefix` bits, in order. */
export function* split(pool: Subnet, prefix: number): Generator<Subnet> {
  if (prefix < pool.prefix) return
  const step = 2 ** (32 - prefix)
  for (let b = pool.base; b < pool.base + size(pool); b += step) yield { base: b >>> 0, prefix }
}
