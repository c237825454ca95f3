/**
 * What changed in a container's filesystem, as `docker diff` reports it (`A`, `C`, `D`):
 * - from an overlayfs upper directory alone (cost follows the size of the change; the lower
 *   layers are only asked whether a changed path existed before), or
 * - by comparing two full trees (the native driver; cost follows the size of the image).
 * The change rules are Docker's: a path is changed when its type, mode, owner, device numbers,
 * or (for non-directories) mtime or size differ; a directory with changes inside counts as
 * changed too.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs'
import { throwIfAborted } from '../errors/index.js'
import { sortByUtf8 } from '../util/sort.js'
import { readXattrsOf } from './sys.js'
import { OVERLAY_OPAQUE_XATTR } from './whiteout.js'

export const ChangeKinds = { added: 'A', modified: 'C', deleted: 'D' } as const
export type ChangeKind = (typeof ChangeKinds)[keyof typeof ChangeKinds]

export interface Change {
  kind: ChangeKind
  /** Relative to the root, without a leading slash. */
  path: string
}

/** lstat, or undefined when nothing is there (without the cost of a thrown error per miss). */
function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false })
  } catch {
    return undefined // ENOTDIR: a parent is not a directory in that layer
  }
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

/** Sorts changes by the bytes of their paths. */
function sortByPath(changes: Change[]): Change[] {
  return sortByUtf8(changes, (c) => c.path)
}

/** Docker's `statDifferent`. */
function statDifferent(a: Stats, b: Stats): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true
  if (a.isDirectory()) return false
  return Math.floor(a.mtimeMs * 1000) !== Math.floor(b.mtimeMs * 1000) || a.size !== b.size
}

/**
 * Whether `rel` existed below: the first lower layer (top first) that has the path decides;
 * an overlay whiteout there means it was deleted. As Docker's overlay differ does, opaque
 * markers of the lower layers are not consulted (that would cost a read of every layer).
 */
function existsInLowers(lowers: readonly string[], rel: string): boolean {
  for (const layer of lowers) {
    const st = lstatOrUndefined(`${layer}/${rel}`)
    if (st) return !isWhiteout(st)
  }
  return false
}

/**
 * Changes recorded in an overlayfs upper directory, with `lowers` (the lower directories, top
 * first) consulted only to tell an addition from a modification. Sorted by path.
 *
 * The cost follows the change: the upper directory is read once (file types from the directory
 * entries, an lstat only for character devices, which may be whiteouts); the lower layers are
 * asked about a path only when its parent existed there (below a new directory everything is
 * new); and only the directories that existed below are asked for their opaque marker.
 */
export async function overlayChanges(upper: string, lowers: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<Change[]> {
  /** `below`: the path existed in a lower layer; `under`: index of the nearest directory above it that existed below. */
  interface Entry { path: string; deleted: boolean; dir: boolean; below: boolean; under: number }
  const entries: Entry[] = []
  const walk = (dir: string, rel: string, parentBelow: boolean, under: number): void => {
    throwIfAborted(opts.signal)
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name
      if (d.isCharacterDevice() && isWhiteout(lstatSync(`${dir}/${d.name}`))) {
        entries.push({ path: r, deleted: true, dir: false, below: false, under })
        continue
      }
      const below = parentBelow && existsInLowers(lowers, r)
      entries.push({ path: r, deleted: false, dir: d.isDirectory(), below, under })
      if (d.isDirectory()) walk(`${dir}/${d.name}`, r, below, below ? entries.length - 1 : under)
    }
  }
  walk(upper, '', true, -1)
  // an opaque directory hides everything below it: what is inside is new
  const candidates = entries.flatMap((e, i) => (e.below && e.dir ? [i] : []))
  const opaque = await opaqueDirs(upper, candidates.map((i) => (entries[i] as Entry).path))
  const hidden = new Set(candidates.filter((i) => opaque.has((entries[i] as Entry).path)))
  const isHidden = (under: number): boolean => {
    for (let i = under; i >= 0; i = (entries[i] as Entry).under) if (hidden.has(i)) return true
    return false
  }
  const out: Change[] = entries.map((e) => ({
    kind: e.deleted ? 'D' : e.below && !(hidden.size > 0 && isHidden(e.under)) ? 'C' : 'A',
    path: e.path,
  }))
  return sortByPath(out)
}

/** Which of the upper directory's directories are marked opaque. */
async function opaqueDirs(root: string, dirs: readonly string[]): Promise<Set<string>> {
  if (dirs.length === 0) return new Set()
  const xattrs = await readXattrsOf(dirs.map((d) => `${root}/${d}`), `^${OVERLAY_OPAQUE_XATTR.replace(/\./g, '\\.')}$`)
    .catch(() => new Map<string, Map<string, Buffer>>())
  const out = new Set<string>()
  for (const [path, attrs] of xattrs) {
    const v = attrs.get(OVERLAY_OPAQUE_XATTR)
    if (v && v.toString() === 'y' && path.startsWith(`${root}/`)) out.add(path.slice(root.length + 1).replace(/\/+$/, ''))
  }
  return out
}

/**
 * Changes from the tree `lower` to the tree `upper` (both full trees; no `lower`: everything in
 * `upper` is new). Sorted by path.
 */
export function compareTrees(lower: string | undefined, upper: string, opts: { signal?: AbortSignal } = {}): Change[] {
  const out: Change[] = []
  const addAll = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir)) {
      const r = `${rel}/${name}`
      out.push({ kind: 'A', path: r })
      if (lstatSync(`${dir}/${name}`).isDirectory()) addAll(`${dir}/${name}`, r)
    }
  }
  const walk = (lo: string, up: string, rel: string, reported: boolean): void => {
    throwIfAborted(opts.signal)
    const before = out.length
    const oldNames = new Set(readdirSync(lo))
    for (const name of readdirSync(up)) {
      const r = rel ? `${rel}/${name}` : name
      const ns = lstatSync(`${up}/${name}`)
      if (!oldNames.has(name)) {
        out.push({ kind: 'A', path: r })
        if (ns.isDirectory()) addAll(`${up}/${name}`, r)
        continue
      }
      oldNames.delete(name)
      const os = lstatSync(`${lo}/${name}`)
      const typeChanged = (os.mode & 0o170000) !== (ns.mode & 0o170000)
      const changed = statDifferent(os, ns)
      if (changed) out.push({ kind: 'C', path: r })
      if (ns.isDirectory()) {
        if (typeChanged) addAll(`${up}/${name}`, r)
        else walk(`${lo}/${name}`, `${up}/${name}`, r, changed)
      }
    }
    for (const name of oldNames) out.push({ kind: 'D', path: rel ? `${rel}/${name}` : name })
    // a directory with changes inside is itself reported as changed
    if (rel && !reported && out.length > before) out.push({ kind: 'C', path: rel })
  }
  if (lower === undefined) {
    for (const name of readdirSync(upper)) {
      out.push({ kind: 'A', path: name })
      if (lstatSync(`${upper}/${name}`).isDirectory()) addAll(`${upper}/${name}`, name)
    }
  } else {
    walk(lower, upper, '', false)
  }
  return sortByPath(out)
}
