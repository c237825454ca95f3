/**
 * The config of a committed image, as Docker writes it: the parent's config with the
 * container's runtime settings (and `-c` changes) as the new defaults, one more history entry
 * (`created_by` the container's command, `comment` from -m, `author` from -a), and one more
 * diffID, unless the change was empty, in which case the history entry says `empty_layer`.
 *
 * Nothing that names the container goes in (no `container`, no `container_config`, an empty
 * `Hostname`), as BuildKit and Docker 25 and later write configs: two containers with the same
 * change, committed with the same timestamp, give the same image ID.
 */
import { asDiffId, type DiffId } from '../oci/digest.js'
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/types.js'
import { applyChanges } from './changes.js'

/** sha256 of an empty tar (1024 zero bytes): the diffID of a layer with no changes. */
export const EMPTY_TAR_DIFF_ID: DiffId = asDiffId('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef')

export interface CommitConfigInput {
  parent: ImageConfig
  /** The container's effective config (image defaults merged with run options). */
  container: ContainerConfig
  /**
   * A config the caller gives (the Engine API's commit body): the changes apply to it, then the
   * container's settings fill in what it leaves unset (`mergeCommitConfig`), as Docker does.
   */
  config?: ContainerConfig
  /** The container's command line, for `created_by`. */
  createdBy: string
  message?: string
  author?: string
  changes?: readonly string[]
  created: Date
  /** The new layer's diffID, or undefined for an empty change. */
  diffId?: DiffId
  /** `--squash`: the whole tree is the one layer; earlier history entries become empty. */
  squash?: boolean
}

export function commitConfig(input: CommitConfigInput): ImageConfig {
  const created = input.created.toISOString()
  const config = input.config
    ? mergeCommitConfig(applyChanges(input.config, input.changes ?? []), input.container)
    : applyChanges(input.container, input.changes ?? [])
  // the hostname a container was given is its own ID unless set: not the image's business
  if (config.Hostname !== undefined) config.Hostname = ''
  if (config.Domainname !== undefined) config.Domainname = ''
  const entry: HistoryEntry = { created, created_by: input.createdBy }
  if (input.author) entry.author = input.author
  if (input.message) entry.comment = input.message
  if (input.diffId === undefined) entry.empty_layer = true
  const history: HistoryEntry[] = input.squash
    ? [...(input.parent.history ?? []).map((h) => ({ ...h, empty_layer: true })), entry]
    : [...(input.parent.history ?? []), entry]
  let diffIds: DiffId[]
  if (input.squash) diffIds = input.diffId ? [input.diffId] : []
  else diffIds = input.diffId ? [...input.parent.rootfs.diff_ids, input.diffId] : [...input.parent.rootfs.diff_ids]
  const out: ImageConfig = {
    architecture: input.parent.architecture,
    ...(input.parent.variant !== undefined ? { variant: input.parent.variant } : {}),
    os: input.parent.os,
    ...(input.author ? { author: input.author } : {}),
    ...(input.message ? { comment: input.message } : {}),
    config,
    created,
    history,
    rootfs: { type: 'layers', diff_ids: diffIds },
  }
  return out
}

/**
 * Docker's merge of a commit's given config with the container's: the given one wins; the
 * container's fills an unset `User`, `WorkingDir`, `StopSignal`, `Healthcheck` (field by field),
 * `Cmd` and `Entrypoint` (only when no entrypoint is given: an empty one given stays empty), and
 * adds its `Env` keys, `Labels`, `ExposedPorts` and `Volumes` the given one lacks. Other fields
 * come from the given config alone.
 */
export function mergeCommitConfig(user: ContainerConfig, base: ContainerConfig): ContainerConfig {
  const out: ContainerConfig = { ...user }
  if (!out.User) setIf(out, 'User', base.User)
  const ports = out.ExposedPorts ?? {}
  if (Object.keys(ports).length === 0) setIf(out, 'ExposedPorts', base.ExposedPorts)
  else out.ExposedPorts = { ...base.ExposedPorts, ...ports }
  const env = out.Env ?? []
  if (env.length === 0) setIf(out, 'Env', base.Env)
  else {
    const keyOf = (e: string): string => e.split('=', 1)[0] ?? e
    const have = new Set(env.map(keyOf))
    out.Env = [...env, ...(base.Env ?? []).filter((e) => !have.has(keyOf(e)))]
  }
  if (out.Labels !== undefined || base.Labels !== undefined) out.Labels = { ...base.Labels, ...out.Labels }
  if ((out.Entrypoint ?? []).length === 0) {
    if ((out.Cmd ?? []).length === 0) setIf(out, 'Cmd', base.Cmd)
    if (out.Entrypoint === undefined || out.Entrypoint === null) setIf(out, 'Entrypoint', base.Entrypoint)
  }
  if (base.Healthcheck) {
    if (!out.Healthcheck) out.Healthcheck = base.Healthcheck
    else {
      const h = { ...out.Healthcheck }
      if ((h.Test ?? []).length === 0) setIf(h, 'Test', base.Healthcheck.Test)
      for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) if (!h[k]) setIf(h, k, base.Healthcheck[k])
      out.Healthcheck = h
    }
  }
  if (!out.WorkingDir) setIf(out, 'WorkingDir', base.WorkingDir)
  const volumes = out.Volumes ?? {}
  if (Object.keys(volumes).length === 0) setIf(out, 'Volumes', base.Volumes)
  else out.Volumes = { ...volumes, ...base.Volumes }
  if (!out.StopSignal) setIf(out, 'StopSignal', base.StopSignal)
  return out
}

/** Sets a field when the value is defined (exactOptionalPropertyTypes: never an explicit undefined). */
function setIf<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v
}
