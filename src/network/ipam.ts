/**
 * Address leases: which container holds which address on which network, in a small SQLite
 * database under the runtime folder (gone at reboot, with everything it describes). A lease is
 * taken in a write transaction, so two processes starting containers at once never get the same
 * address; it names the process that holds it (the container's monitor), so a lease whose holder
 * died is taken back by the next allocation even if nothing repaired it.
 */
import { mkdirSync } from 'node:fs'
import { CairnError } from '../errors/index.js'
import { openSqlite, type DB } from '../metadata/db.js'
import { isAlive, type ProcessIdentity } from '../util/proc.js'
import { contains, ipToInt, nth, parseSubnet, size } from './cidr.js'
import type { NetworkDefinition } from './types.js'

const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE leases (
    network_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    container_id TEXT NOT NULL,
    holder_pid INTEGER NOT NULL,
    holder_start TEXT NOT NULL,
    PRIMARY KEY (network_id, ip)
  );
  CREATE INDEX leases_container ON leases(container_id);
  `,
]

interface LeaseRow {
  network_id: string
  ip: string
  container_id: string
  holder_pid: number
  holder_start: string
}

export class Leases {
  private readonly db: DB

  constructor(runDir: string) {
    mkdirSync(runDir, { recursive: true, mode: 0o700 })
    this.db = openSqlite(`${runDir}/leases.db`, MIGRATIONS, 'the network lease database')
  }

  close(): void {
    if (this.db.open) this.db.close()
  }

  /** Runs `fn` holding the database's write lock: the host-wide lock of network changes. */
  exclusive<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  /**
   * Leases an address on `net` to a container: `wanted` if given (it must be in the subnet and
   * free), else the lowest free one. Leases of dead holders are taken back first.
   */
  lease(net: NetworkDefinition, containerId: string, holder: ProcessIdentity, wanted?: string): string {
    return this.exclusive(() => {
      const rows = this.db.prepare('SELECT * FROM leases WHERE network_id = ?').all(net.id) as LeaseRow[]
      const taken = new Set<string>()
      for (const r of rows) {
        if (r.container_id === containerId) {
          this.db.prepare('DELETE FROM leases WHERE network_id = ? AND ip = ?').run(r.network_id, r.ip)
        } else if (!isAlive(r.holder_pid, r.holder_start)) {
          this.db.prepare('DELETE FROM leases WHERE network_id = ? AND ip = ?').run(r.network_id, r.ip)
        } else {
          taken.add(r.ip)
        }
      }
      const subnet = parseSubnet(net.subnet)
      const last = size(subnet) - 1
      let ip: string | undefined
      if (wanted !== undefined) {
        const i = ipToInt(wanted) - subnet.base
        if (!contains(subnet, wanted) || i <= 0 || i >= last) {
          throw new CairnError('INVALID_ARGUMENT', `Address ${wanted} is not in the subnet ${net.subnet} of network ${net.name}`)
        }
        if (wanted === net.gateway) throw new CairnError('CONFLICT', `Address already in use: ${wanted} is the gateway of network ${net.name}`)
        if (taken.has(wanted)) throw new CairnError('CONFLICT', `Address already in use: ${wanted} on network ${net.name}`)
        ip = wanted
      } else {
        for (let i = 1; i < last; i++) {
          const candidate = nth(subnet, i)
          if (candidate !== net.gateway && !taken.has(candidate)) {
            ip = candidate
            break
          }
        }
        if (ip === undefined) throw new CairnError('CONFLICT', `no available IPv4 addresses on network ${net.name} (${net.subnet})`)
      }
      this.db.prepare('INSERT INTO leases (network_id, ip, container_id, holder_pid, holder_start) VALUES (?, ?, ?, ?, ?)')
        .run(net.id, ip, containerId, holder.pid, holder.start)
      return ip
    })
  }

  /** Gives back a container's leases (on one network, or all). */
  release(containerId: string, networkId?: string): void {
    if (networkId === undefined) this.db.prepare('DELETE FROM leases WHERE container_id = ?').run(containerId)
    else this.db.prepare('DELETE FROM leases WHERE container_id = ? AND network_id = ?').run(containerId, networkId)
  }

  /** Live leases (dead holders' are left out), for `network inspect` and cleanup decisions. */
  live(networkId?: string): { networkId: string; ip: string; containerId: string }[] {
    const rows = (networkId === undefined
      ? this.db.prepare('SELECT * FROM leases').all()
      : this.db.prepare('SELECT * FROM leases WHERE network_id = ?').all(networkId)) as LeaseRow[]
    return rows.filter((r) => isAlive(r.holder_pid, r.holder_start)).map((r) => ({ networkId: r.network_id, ip: r.ip, containerId: r.container_id }))
  }
}

