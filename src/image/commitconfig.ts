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
  const config = applyChanges(input.container, input.changes ?? [])
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
