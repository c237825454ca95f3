/**
 * Access rules: who may pull, push or delete in which repositories.
 *
 * A rule names repositories by pattern (`team/*` is one component under `team/`, `team/**` any depth,
 * `**` everything), who it applies to (`users`, `groups`, `"*"` for any authenticated user,
 * `anonymous: true` for clients without credentials) and the actions it grants. Grants add up; nothing
 * is allowed that no rule grants. Without rules, an authenticated user may do everything and an
 * anonymous client nothing (pull everything with `anonymousPull`); without authentication at all,
 * everyone may do everything.
 */
import { CairnError } from '../errors/index.js'

export const Actions = { pull: 'pull', push: 'push', delete: 'delete' } as const
export type Action = (typeof Actions)[keyof typeof Actions]
export const ALL_ACTIONS: readonly Action[] = ['pull', 'push', 'delete']

export function isAction(s: string): s is Action {
  return s === 'pull' || s === 'push' || s === 'delete'
}

export interface AccessRule {
  /** Repository patterns: `name`, `team/*`, `team/**`, `**`. */
  repositories: string[]
  /** User names; `*` is any authenticated user. */
  users?: string[]
  groups?: string[]
  /** The rule also applies to clients without credentials. */
  anonymous?: boolean
  actions: Action[]
}

export interface AccessConfig {
  /** Anonymous clients may pull every repository. */
  anonymousPull?: boolean
  /** Group name → member user names. */
  groups?: Record<string, string[]>
  rules?: AccessRule[]
}

/** Who is asking: a user name, or nobody (anonymous). */
export interface Identity {
  user?: string
}

interface CompiledRule {
  patterns: RegExp[]
  users: Set<string>
  groups: Set<string>
  anonymous: boolean
  actions: Action[]
}

/** Compiles a repository pattern; `*` stays within one path component, `**` crosses them. */
export function compilePattern(pattern: string): RegExp {
  if (pattern.length === 0 || pattern.length > 512 || !/^[a-z0-9._\-/*]+$/.test(pattern)) {
    throw new CairnError('INVALID_ARGUMENT', `invalid repository pattern ${JSON.stringify(pattern)}`)
  }
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*'
        i++
      } else re += '[^/]*'
    } else re += c.replace(/[.\-/]/g, (m) => `\\${m}`)
  }
  return new RegExp(`^${re}$`)
}

export class AccessPolicy {
  private readonly rules: CompiledRule[]
  private readonly memberOf = new Map<string, Set<string>>()

  /**
   * @param authEnabled whether the server authenticates clients at all; without authentication and
   * without rules, everything is allowed to everyone.
   */
  constructor(config: AccessConfig = {}, authEnabled = false) {
    for (const [group, members] of Object.entries(config.groups ?? {})) {
      for (const m of members) {
        const set = this.memberOf.get(m) ?? new Set<string>()
        set.add(group)
        this.memberOf.set(m, set)
      }
    }
    const rules: CompiledRule[] = (config.rules ?? []).map((r) => ({
      patterns: r.repositories.map(compilePattern),
      users: new Set(r.users ?? []),
      groups: new Set(r.groups ?? []),
      anonymous: r.anonymous ?? false,
      actions: [...r.actions],
    }))
    if (rules.length === 0 && config.rules === undefined) {
      // the defaults described above
      rules.push({ patterns: [/^.*$/], users: new Set(['*']), groups: new Set(), anonymous: !authEnabled, actions: [...ALL_ACTIONS] })
    }
    if (config.anonymousPull) {
      rules.push({ patterns: [/^.*$/], users: new Set(), groups: new Set(), anonymous: true, actions: ['pull'] })
    }
    this.rules = rules
  }

  /** The actions `who` may take on `repository`. */
  allowed(who: Identity, repository: string): Set<Action> {
    const out = new Set<Action>()
    const groups = who.user === undefined ? undefined : this.memberOf.get(who.user)
    for (const r of this.rules) {
      if (!this.applies(r, who, groups)) continue
      if (!r.patterns.some((p) => p.test(repository))) continue
      for (const a of r.actions) out.add(a)
    }
    return out
  }

  can(who: Identity, repository: string, action: Action): boolean {
    return this.allowed(who, repository).has(action)
  }

  /** True if some rule lets anonymous clients do something somewhere. */
  get anonymousAllowed(): boolean {
    return this.rules.some((r) => r.anonymous)
  }

  private applies(r: CompiledRule, who: Identity, groups: Set<string> | undefined): boolean {
    if (r.anonymous) return true
    if (who.user === undefined) return false
    if (r.users.has('*') || r.users.has(who.user)) return true
    if (groups) for (const g of groups) if (r.groups.has(g)) return true
    return false
  }
}

/** Validates access rules read from a configuration file. */
export function parseAccessConfig(value: unknown, where = 'access'): AccessConfig {
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) throw bad(where, 'must be a mapping')
  const v = value as Record<string, unknown>
  const out: AccessConfig = {}
  for (const k of Object.keys(v)) if (!['anonymousPull', 'groups', 'rules'].includes(k)) throw bad(`${where}.${k}`, 'unknown key')
  if (v['anonymousPull'] !== undefined) {
    if (typeof v['anonymousPull'] !== 'boolean') throw bad(`${where}.anonymousPull`, 'must be true or false')
    out.anonymousPull = v['anonymousPull']
  }
  if (v['groups'] !== undefined && v['groups'] !== null) {
    const g = v['groups']
    if (typeof g !== 'object' || Array.isArray(g)) throw bad(`${where}.groups`, 'must map group names to lists of users')
    out.groups = {}
    for (const [name, members] of Object.entries(g as Record<string, unknown>)) {
      out.groups[name] = stringList(members, `${where}.groups.${name}`)
    }
  }
  if (v['rules'] !== undefined && v['rules'] !== null) {
    if (!Array.isArray(v['rules'])) throw bad(`${where}.rules`, 'must be a list')
    out.rules = v['rules'].map((r, i) => parseRule(r, `${where}.rules[${i}]`))
  }
  return out
}

function parseRule(value: unknown, where: string): AccessRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(where, 'must be a mapping')
  const v = value as Record<string, unknown>
  for (const k of Object.keys(v)) {
    if (!['repository', 'repositories', 'users', 'groups', 'anonymous', 'actions'].includes(k)) throw bad(`${where}.${k}`, 'unknown key')
  }
  const repos = [
    ...(v['repository'] === undefined ? [] : stringList(v['repository'], `${where}.repository`)),
    ...(v['repositories'] === undefined ? [] : stringList(v['repositories'], `${where}.repositories`)),
  ]
  if (repos.length === 0) throw bad(where, 'needs repository (a pattern such as team/*)')
  for (const r of repos) compilePattern(r)
  const actions = stringList(v['actions'], `${where}.actions`)
  const expanded = actions.flatMap((a) => (a === '*' ? [...ALL_ACTIONS] : [a]))
  for (const a of expanded) if (!isAction(a)) throw bad(`${where}.actions`, `unknown action ${JSON.stringify(a)} (pull, push, delete or *)`)
  const rule: AccessRule = { repositories: repos, actions: expanded as Action[] }
  if (v['users'] !== undefined) rule.users = stringList(v['users'], `${where}.users`)
  if (v['groups'] !== undefined) rule.groups = stringList(v['groups'], `${where}.groups`)
  if (v['anonymous'] !== undefined) {
    if (typeof v['anonymous'] !== 'boolean') throw bad(`${where}.anonymous`, 'must be true or false')
    rule.anonymous = v['anonymous']
  }
  return rule
}

function stringList(value: unknown, where: string): string[] {
  if (typeof value === 'string') return [value]
  if (!Array.isArray(value) || value.some((x) => typeof x !== 'string')) throw bad(where, 'must be a string or a list of strings')
  return value as string[]
}

function bad(where: string, what: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', `configuration: ${where} ${what}`)
}
