/**
 * Container rows in the metadata database, and the identity of the processes that own them.
 * Every state change is one statement (or transaction) conditioned on the state it expects, so
 * two processes never both win the same transition.
 */
import { CairnError } from '../errors/index.js'
import type { DB } from '../metadata/db.js'
import type { ContainerRow, ContainerState } from './types.js'

import type { ProcessIdentity } from '../util/proc.js'
export { isAlive, selfIdentity, type ProcessIdentity } from '../util/proc.js'

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/

export function validateName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new CairnError('INVALID_ARGUMENT', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`)
  }
  return name.replace(/^\//, '')
}

function nameConflict(name: string, id: string): CairnError {
  return new CairnError('CONFLICT', `Conflict. The container name "/${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`, { detail: { kind: 'name-in-use', id } })
}

export class ContainerRows {
  constructor(private readonly db: DB) {}

  get(id: string): ContainerRow | undefined {
    return this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as ContainerRow | undefined
  }

  byName(name: string): ContainerRow | undefined {
    return this.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as ContainerRow | undefined
  }

  list(): ContainerRow[] {
    return this.db.prepare('SELECT * FROM containers ORDER BY created DESC, id').all() as ContainerRow[]
  }

  inStates(states: readonly ContainerState[]): ContainerRow[] {
    return this.db.prepare(`SELECT * FROM containers WHERE state IN (${states.map(() => '?').join(',')})`).all(...states) as ContainerRow[]
  }

  /**
   * Docker's lookup: a full ID, then a name (with or without its leading `/`), then a unique ID
   * prefix. NAME_UNKNOWN (`No such container: x`) otherwise.
   */
  resolve(nameOrId: string): ContainerRow {
    const r = this.tryResolve(nameOrId)
    if (!r) throw new CairnError('NAME_UNKNOWN', `No such container: ${nameOrId}`, { detail: { kind: 'container' } })
    return r
  }

  tryResolve(nameOrId: string): ContainerRow | undefined {
    if (nameOrId === '') return undefined
    const full = this.get(nameOrId)
    if (full) return full
    const named = this.byName(nameOrId.replace(/^\//, ''))
    if (named) return named
    if (/^[a-f0-9]+$/.test(nameOrId)) {
      const rows = this.db.prepare('SELECT * FROM containers WHERE id >= ? AND id < ? LIMIT 2').all(nameOrId, `${nameOrId}g`) as ContainerRow[]
      if (rows.length > 1) throw new CairnError('AMBIGUOUS_REFERENCE', `multiple IDs found with provided prefix: ${nameOrId}`)
      return rows[0]
    }
    return undefined
  }

  /** Inserts a container being created, owned by `owner`. A taken name is Docker's conflict. */
  insertCreating(row: Pick<ContainerRow, 'id' | 'name' | 'image_id' | 'created' | 'image_ref' | 'command' | 'driver' | 'runtime' | 'runtime_path' | 'auto_remove'>, owner: ProcessIdentity): void {
    this.db.transaction(() => {
      const taken = this.byName(row.name)
      if (taken) throw nameConflict(row.name, taken.id)
      this.db.prepare(`INSERT INTO containers (id, name, image_id, created, state, image_ref, command, driver, runtime, runtime_path, auto_remove, owner_pid, owner_start)
        VALUES (?, ?, ?, ?, 'creating', ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(row.id, row.name, row.image_id, row.created, row.image_ref, row.command, row.driver, row.runtime, row.runtime_path, row.auto_remove, owner.pid, owner.start)
    }).immediate()
  }

  /**
   * Moves a container from one of `from` to `to` and makes `owner` its owner (null: none), if
   * it is still in the state (and, when given, owned by the process) the caller saw.
   * True when this call made the change.
   */
  transition(id: string, from: readonly ContainerState[], to: ContainerState, owner: ProcessIdentity | null, expectOwner?: { pid: number | null; start: string | null }, extra: Partial<ContainerRow> = {}): boolean {
    const sets = ['state = ?', 'owner_pid = ?', 'owner_start = ?']
    const vals: unknown[] = [to, owner?.pid ?? null, owner?.start ?? null]
    for (const [k, v] of Object.entries(extra)) {
      sets.push(`${k} = ?`)
      vals.push(v)
    }
    let where = `id = ? AND state IN (${from.map(() => '?').join(',')})`
    vals.push(id, ...from)
    if (expectOwner) {
      where += ' AND owner_pid IS ? AND owner_start IS ?'
      vals.push(expectOwner.pid, expectOwner.start)
    }
    return this.db.prepare(`UPDATE containers SET ${sets.join(', ')} WHERE ${where}`).run(...vals).changes === 1
  }

  update(id: string, fields: Partial<ContainerRow>): void {
    const keys = Object.keys(fields)
    if (keys.length === 0) return
    this.db.prepare(`UPDATE containers SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE id = ?`).run(...Object.values(fields), id)
  }

  rename(id: string, name: string): void {
    this.db.transaction(() => {
      const taken = this.byName(name)
      if (taken && taken.id !== id) throw nameConflict(name, taken.id)
      this.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id)
    }).immediate()
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM containers WHERE id = ?').run(id)
  }
}
