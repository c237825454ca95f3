/**
 * `-u USER[:GROUP]` to numeric IDs, read from the container's own /etc/passwd and /etc/group as
 * Docker (runc's libcontainer/user `GetExecUser`) resolves them. Pure functions over file text.
 */
import { CairnError } from '../errors/index.js'

export interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
  shell: string
}

export interface GroupEntry {
  name: string
  gid: number
  members: string[]
}

export interface ExecUser {
  uid: number
  gid: number
  /** Supplementary groups (groups listing the user by name, when the user was found by name or ID). */
  additionalGids: number[]
  home: string
}

const MAX_ID = 2 ** 31 - 1

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined
  const n = Number(s)
  return n <= MAX_ID ? n : undefined
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const line of text.split('\n')) {
    const l = line.trim()
    if (l === '' || l.startsWith('#')) continue
    const f = l.split(':')
    const uid = parseId(f[2] ?? '')
    const gid = parseId(f[3] ?? '')
    if (f[0] === undefined || uid === undefined || gid === undefined) continue
    out.push({ name: f[0], uid, gid, home: f[5] ?? '', shell: f[6] ?? '' })
  }
  return out
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = []
  for (const line of text.split('\n')) {
    const l = line.trim()
    if (l === '' || l.startsWith('#')) continue
    const f = l.split(':')
    const gid = parseId(f[2] ?? '')
    if (f[0] === undefined || gid === undefined) continue
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) })
  }
  return out
}

/**
 * Resolves a user spec (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) against the container's
 * passwd and group files (undefined when the file does not exist). Errors use Docker's words:
 * `unable to find user x: no matching entries in passwd file`.
 */
export function resolveUser(spec: string, passwd: string | undefined, group: string | undefined): ExecUser {
  const [userPart = '', groupPart] = splitOnce(spec, ':')
  const users = passwd === undefined ? [] : parsePasswd(passwd)
  const groups = group === undefined ? [] : parseGroup(group)
  const result: ExecUser = { uid: 0, gid: 0, additionalGids: [], home: '/' }
  let matchedName: string | undefined

  const wantUid = parseId(userPart)
  const byUser = userPart === ''
    ? users.find((u) => u.uid === 0)
    : users.find((u) => u.name === userPart || (wantUid !== undefined && u.uid === wantUid))
  if (userPart !== '' && !byUser) {
    if (wantUid === undefined) {
      throw new CairnError('INVALID_ARGUMENT', `unable to find user ${userPart}: no matching entries in passwd file`)
    }
    result.uid = wantUid
  } else if (byUser) {
    result.uid = byUser.uid
    result.gid = byUser.gid
    result.home = byUser.home || '/'
    matchedName = byUser.name
  }

  if (groupPart !== undefined && groupPart !== '') {
    const wantGid = parseId(groupPart)
    const g = groups.find((x) => x.name === groupPart || (wantGid !== undefined && x.gid === wantGid))
    if (g) result.gid = g.gid
    else if (wantGid !== undefined) result.gid = wantGid
    else throw new CairnError('INVALID_ARGUMENT', `unable to find group ${groupPart}: no matching entries in group file`)
  } else if (matchedName !== undefined) {
    const extra = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid)
    result.additionalGids = [...new Set(extra)]
  }
  return result
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep)
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)]
}

/**
 * `--group-add` entries (names or IDs) as GIDs, from the container's /etc/group: a name must be
 * there; an ID need not be.
 */
export function resolveGroups(entries: readonly string[], group: string | undefined): number[] {
  const groups = group === undefined ? [] : parseGroup(group)
  const out: number[] = []
  for (const e of entries) {
    const id = parseId(e)
    const g = groups.find((x) => x.name === e)
    if (g) out.push(g.gid)
    else if (id !== undefined) out.push(id)
    else throw new CairnError('INVALID_ARGUMENT', `unable to find group ${e}: no matching entries in group file`)
  }
  return [...new Set(out)]
}
