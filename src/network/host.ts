/**
 * The host side of networking: its routes (a new network's subnet must not overlap them), named
 * network namespaces (`ip netns`), and the tools' locations.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
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
