/**
 * Work inside a container's mounted root filesystem from the host, always path-safe: every
 * path is resolved as a process chrooted at the root would resolve it (symlinks included), so
 * an image with `/etc -> /host/etc` can never make Cairn touch the host.
 */
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { posix } from 'node:path'
import { CairnError, isErrno } from '../errors/index.js'
import { entryComponents, resolveInRoot } from '../layer/path.js'

/** The host path of `ctrPath` (absolute, in the container) below `root`, symlinks resolved inside. */
export function hostPathIn(root: string, ctrPath: string, opts: { followFinal?: boolean; mkdirs?: boolean } = {}): string {
  return resolveInRoot(root, entryComponents(ctrPath), opts)
}

/** A small file of the container (e.g. /etc/passwd), or undefined when there is none. */
export function readFileIn(root: string, ctrPath: string): string | undefined {
  try {
    return readFileSync(hostPathIn(root, ctrPath), 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return undefined
    throw err
  }
}

/**
 * The mount points Docker puts in a container's init layer, created when the image lacks them,
 * so that the runtime never creates them in the container's own writable layer (where `diff`
 * and `commit` would see them).
 */
const INIT_ENTRIES: readonly { path: string; type: 'dir' | 'file' | 'symlink'; target?: string }[] = [
  { path: '/dev/pts', type: 'dir' },
  { path: '/dev/shm', type: 'dir' },
  { path: '/proc', type: 'dir' },
  { path: '/sys', type: 'dir' },
  { path: '/etc/resolv.conf', type: 'file' },
  { path: '/etc/hosts', type: 'file' },
  { path: '/etc/hostname', type: 'file' },
  { path: '/dev/console', type: 'file' },
  { path: '/etc/mtab', type: 'symlink', target: '/proc/mounts' },
]

/** Fills an init layer: each entry the image does not have (parents made 0755, root-owned). */
export function populateInitLayer(root: string): void {
  for (const e of INIT_ENTRIES) {
    const comps = entryComponents(e.path)
    const name = comps.at(-1)
    if (name === undefined) continue
    const parent = resolveInRoot(root, comps.slice(0, -1), { mkdirs: true })
    const host = `${parent}/${name}`
    try {
      lstatSync(host)
      continue // the image has it (whatever it is): leave it
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    if (e.type === 'dir') mkdirSync(host, { mode: 0o755 })
    else if (e.type === 'file') writeFileSync(host, '', { mode: 0o755, flag: 'wx' })
    else symlinkSync(e.target as string, host)
  }
}

/** Makes the working directory exist (as Docker does, root-owned, 0755). */
export function ensureDir(root: string, ctrPath: string): void {
  const host = resolveInRoot(root, entryComponents(ctrPath), { mkdirs: true })
  if (!statSync(host).isDirectory()) {
    throw new CairnError('INVALID_ARGUMENT', `the working directory ${ctrPath} is not a directory`)
  }
}

/** Go's exec.LookPath errors, as runc reports them and Docker maps them to exit codes. */
function findExecutable(root: string, ctrPath: string): 'ok' | 'ENOENT' | 'EISDIR' | 'EACCES' {
  let st
  try {
    st = statSync(hostPathIn(root, ctrPath))
  } catch {
    return 'ENOENT'
  }
  if (st.isDirectory()) return 'EISDIR'
  if ((st.mode & 0o111) !== 0) return 'ok'
  return 'EACCES'
}

function execError(file: string, what: string, exitCode: 126 | 127): CairnError {
  return new CairnError(exitCode === 127 ? 'COMMAND_NOT_FOUND' : 'COMMAND_NOT_EXECUTABLE', `exec: ${JSON.stringify(file)}: ${what}`)
}

/**
 * Checks, before the runtime is asked, that the command exists in the container as the runtime
 * would look it up (PATH of the process, relative to its working directory), so a missing
 * command is reported with Docker's words and exit code (127 not found, 126 not executable).
 * Paths below a bind mount are left to the runtime (`skipUnder`).
 */
export function lookPath(root: string, file: string, opts: { path?: string | undefined; cwd: string; skipUnder?: readonly string[] }): void {
  const under = (p: string): boolean => (opts.skipUnder ?? []).some((d) => p === d || p.startsWith(d.endsWith('/') ? d : `${d}/`))
  if (file.includes('/')) {
    const abs = posix.resolve(opts.cwd, file)
    if (under(abs)) return
    const r = findExecutable(root, abs)
    if (r === 'ENOENT') throw execError(file, `stat ${file}: no such file or directory`, 127)
    if (r === 'EISDIR') throw execError(file, 'is a directory', 126)
    if (r === 'EACCES') throw execError(file, 'permission denied', 126)
    return
  }
  for (const dir of (opts.path ?? '').split(':')) {
    const d = posix.resolve(opts.cwd, dir === '' ? '.' : dir)
    if (under(d)) return
    if (findExecutable(root, `${d}/${file}`) === 'ok') return
  }
  throw execError(file, 'executable file not found in $PATH', 127)
}
