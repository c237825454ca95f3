/**
 * The host side of networking: its routes (a new network's subnet must not overlap them), named
 * network namespaces (`ip netns`), and the tools' locations.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { basename } from 'node:path'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import type { Subnet } from './cidr.js'

const run = promisify(execFile)

/** IPv4 routes of the host's main table (from /proc/net/route), as subnets; the default route is left out. */
export function hostRoutes(): Subnet[] {
  let text: string
  try {
    text = readFileSync('/proc/net/route', 'utf8')
  } catch {
    return []
  }
  const out: Subnet[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const dest = leHex(f[1] as string)
    const mask = leHex(f[7] as string)
    const prefix = 32 - Math.log2((~mask >>> 0) + 1)
    if (prefix === 0 || !Number.isInteger(prefix)) continue
    out.push({ base: dest >>> 0, prefix })
  }
  return out
}

/** /proc/net/route's little-endian hex address as a number. */
function leHex(h: string): number {
  const n = parseInt(h, 16)
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | ((n >>> 24) & 0xff)) >>> 0
}


/** Where `ip netns add` puts named namespaces. */
const NETNS_DIR = '/run/netns'

function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`
}

export async function addNetns(name: string): Promise<string> {
  try {
    await run('ip', ['netns', 'add', name])
  } catch (err) {
    throw new CairnError('CONFLICT', `cannot create network namespace ${name}: ${stderrOf(err)}`, { cause: err })
  }
  return netnsPath(name)
}

/** Removes a named namespace; a missing one is fine. */
export async function deleteNetns(name: string): Promise<void> {
  if (!existsSync(netnsPath(name))) return
  try {
    await run('ip', ['netns', 'delete', name])
  } catch (err) {
    if (existsSync(netnsPath(name))) throw new CairnError('CONFLICT', `cannot remove network namespace ${name}: ${stderrOf(err)}`, { cause: err })
  }
}

/**
 * The link that keeps a bridge: one end of a veth pair made for nothing else, enslaved to the
 * bridge (`BRIDGE-hold`, its peer `BRIDGE-holdp`; a hash of the name where that would pass
 * Linux's 15 characters).
 */
export function bridgeHoldName(bridge: string): string {
  return bridge.length <= 9 ? `${bridge}-hold` : `hold-${createHash('sha256').update(bridge).digest('hex').slice(0, 9)}`
}

/** Whether a network interface of this name exists on the host. */
export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`)
}

/** Whether `bridge` has its hold link (see holdBridge). */
export function bridgeHeld(bridge: string): boolean {
  try {
    return basename(readlinkSync(`/sys/class/net/${bridgeHoldName(bridge)}/master`)) === bridge
  } catch {
    return false
  }
}

/**
 * Keeps `bridge` (which must exist) from being removed with its last container: netavark removes
 * a bridge, and every firewall rule of its network, when no other link is attached to it, and
 * makes them all again for the next container; a link of its own stays attached. One `ip -batch`
 * (its -force goes on past a link that is there already, made by another command at the same time).
 */
export async function holdBridge(bridge: string): Promise<void> {
  const hold = bridgeHoldName(bridge)
  const script = `link add ${hold} type veth peer name ${hold}p\nlink set ${hold} master ${bridge}\n`
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', ['-force', '-batch', '-'], (err) => (err && !bridgeHeld(bridge) ? reject(new CairnError('CONFLICT', `cannot hold bridge ${bridge}: ${stderrOf(err)}`, { cause: err })) : resolve()))
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(script)
  })
}

/** Removes the hold link of `bridge` (and its peer with it); a missing one is fine. */
export async function releaseBridge(bridge: string): Promise<void> {
  const hold = bridgeHoldName(bridge)
  if (!linkExists(hold)) return
  try {
    await run('ip', ['link', 'del', hold])
  } catch (err) {
    if (linkExists(hold)) throw new CairnError('CONFLICT', `cannot remove link ${hold}: ${stderrOf(err)}`, { cause: err })
  }
}

function stderrOf(err: unknown): string {
  const e = err as { stderr?: unknown; message?: unknown }
  const s = typeof e.stderr === 'string' ? e.stderr.trim() : ''
  return s !== '' ? s.split('\n').filter(Boolean).at(-1) ?? s : String(e.message ?? err)
}

/** The first of `candidates` that exists (absolute), else the name looked up on PATH. */
export function findTool(name: string, candidates: readonly string[]): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir !== '' && existsSync(`${dir}/${name}`)) return `${dir}/${name}`
  }
  return undefined
}
