/**
 * Performs the mount descriptions that snapshotters return. The only place in Cairn that mounts
 * anything. Node.js has no mount system call: Cairn's addon (native/sys/, built at `npm ci`)
 * makes mount(2) and umount2(2) calls for bind and overlay mounts; without it, and for every other
 * kind of mount (a volume's tmpfs or NFS, with mount(8)'s own option words), mount(8) and
 * umount(8) run. A mount(8) process costs the event loop a fork of the whole Node.js process (10
 * to 20 ms), several times per container start and per build step; the system call, microseconds.
 * `CAIRN_MOUNT=mount8` in the environment always runs mount(8).
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import type { Mount } from '../snapshot/types.js'
import { sysAddonWith } from '../util/addon.js'

const run = promisify(execFile)

/** What native/sys/sys.c exports. */
interface SysAddon {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void
  umount2(target: string, flags: number): void
  constants: { MS_RDONLY: number; MS_REMOUNT: number; MS_BIND: number; MS_REC: number; MNT_DETACH: number; EINVAL: number; ENOENT: number }
}

let addon: SysAddon | null | undefined

/** The mount addon, when it was built and loads here. */
export function mountAddon(): SysAddon | undefined {
  if (addon === undefined) {
    const m = process.env['CAIRN_MOUNT'] === 'mount8' ? undefined : sysAddonWith<SysAddon>('mount', 'umount2')
    addon = m?.constants ? m : null
  }
  return addon ?? undefined
}

/** The overlay options the kernel takes as they are (mount(8) would turn others into flags). */
const OVERLAY_DATA = /^(index|lowerdir|upperdir|workdir|redirect_dir|metacopy|xino|userxattr|volatile|nfs_export)(=|$)/
/** The kernel's limit on a mount's data (one page, its terminating NUL included). */
const MAX_DATA = 4095

function sysFailure(what: string, err: unknown): CairnError {
  const message = err instanceof Error ? err.message : String(err)
  return new CairnError('NOT_SUPPORTED', `${what}: ${message}`, { cause: err })
}

/**
 * One mount through the system call; false when it is one for mount(8) (an option the kernel does
 * not take as data, or overlay paths that are too long once made absolute).
 */
function sysMount(sys: SysAddon, m: Mount, target: string): boolean {
  const c = sys.constants
  if (m.type === 'bind') {
    if (!m.options.every((o) => ['ro', 'rw', 'bind', 'rbind'].includes(o))) return false
    try {
      sys.mount(m.source, target, null, c.MS_BIND, null)
    } catch (err) {
      throw sysFailure(`mount --bind ${m.source} ${target}`, err)
    }
    if (m.options.includes('ro')) {
      try {
        sys.mount(null, target, null, c.MS_REMOUNT | c.MS_BIND | c.MS_RDONLY, null)
      } catch (err) {
        try {
          sys.umount2(target, c.MNT_DETACH)
        } catch {
          // it was mounted a moment ago; if it is gone already, so much the better
        }
        throw sysFailure(`mount -o remount,bind,ro ${target}`, err)
      }
    }
    return true
  }
  if (m.type !== 'overlay' || !m.options.every((o) => OVERLAY_DATA.test(o))) return false
  // the snapshotter's paths are relative to its folder (mount(8) ran there): made absolute here,
  // unless the folder's own path has a character the option syntax gives a meaning to
  if (m.cwd !== undefined && /[,:=\\\s]/.test(m.cwd)) return false
  const abs = (p: string): string => (m.cwd === undefined || isAbsolute(p) ? p : `${m.cwd}/${p}`)
  const data = m.options.map((o) => {
    const eq = o.indexOf('=')
    const key = eq < 0 ? o : o.slice(0, eq)
    if (key === 'lowerdir') return `lowerdir=${o.slice(eq + 1).split(':').map(abs).join(':')}`
    if (key === 'upperdir' || key === 'workdir') return `${key}=${abs(o.slice(eq + 1))}`
    return o
  }).join(',')
  if (data.length > MAX_DATA) return false
  try {
    sys.mount(m.source, target, m.type, 0, data)
  } catch (err) {
    throw sysFailure(`mount -t overlay ${m.source} ${target}`, err)
  }
  return true
}

async function sh(cmd: string, args: string[], cwd?: string): Promise<void> {
  try {
    await run(cmd, args, cwd ? { cwd } : {})
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown }
    if (e.code === 'ENOENT') throw new CairnError('NOT_SUPPORTED', `${cmd} is not installed (Debian package mount)`)
    const detail = (e.stderr ?? String(err)).trim()
    throw new CairnError('NOT_SUPPORTED', `${cmd} ${args.join(' ')}: ${detail}`, { cause: err })
  }
}

/** Mounts every description on `target` in order (the folder is created if needed). */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  await mkdir(target, { recursive: true })
  const done: string[] = []
  const sys = mountAddon()
  try {
    for (const m of mounts) {
      if (sys && sysMount(sys, m, target)) {
        done.push(target)
        continue
      }
      if (m.type === 'bind') {
        const ro = m.options.includes('ro')
        await sh('mount', ['--bind', m.source, target])
        done.push(target)
        if (ro) await sh('mount', ['-o', 'remount,bind,ro', target])
      } else {
        const opts = m.options.join(',')
        if (opts.length >= 4096) throw new CairnError('NOT_SUPPORTED', `mount options too long (${opts.length} bytes, the kernel takes at most 4095)`)
        await sh('mount', ['-t', m.type, m.source, target, ...(opts ? ['-o', opts] : [])], m.cwd)
        done.push(target)
      }
    }
  } catch (err) {
    for (const t of done.reverse()) await unmount(t).catch(() => undefined)
    throw err
  }
}

/** Unmounts `target` (every mount stacked on it); a target that is not mounted is fine. */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  const sys = mountAddon()
  if (sys) {
    for (let i = 0; i < 16; i++) {
      try {
        sys.umount2(target, opts.lazy ? sys.constants.MNT_DETACH : 0)
      } catch (err) {
        const errno = (err as { errno?: number }).errno
        // not a mount point (any more), or no such folder: nothing (left) mounted there
        if (errno === sys.constants.EINVAL || errno === sys.constants.ENOENT) return
        throw sysFailure(`umount ${opts.lazy ? '-l ' : ''}${target}`, err)
      }
    }
    return
  }
  for (let i = 0; i < 16 && (await isMounted(target)); i++) {
    await sh('umount', opts.lazy ? ['-l', target] : [target])
  }
}

/** True when something is mounted exactly at `path` (per /proc/self/mountinfo). */
export async function isMounted(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  const want = path.replace(/\/+$/, '')
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4]
    if (mp !== undefined && unescapeMountPath(mp) === want) return true
  }
  return false
}

/** Mount points at or below `dir`, deepest first (for cleaning up). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  const base = dir.replace(/\/+$/, '')
  const out: string[] = []
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4]
    if (mp === undefined) continue
    const p = unescapeMountPath(mp)
    if (p === base || p.startsWith(`${base}/`)) out.push(p)
  }
  return out.sort((a, b) => b.length - a.length)
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Whether this process may mount, and whether the kernel has overlayfs. */
export async function overlaySupported(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false
  const fs = await readFile('/proc/filesystems', 'utf8').catch(() => '')
  if (/\boverlay\b/.test(fs)) return true
  // the module may not be loaded yet
  try {
    await run('modprobe', ['overlay'])
    return /\boverlay\b/.test(await readFile('/proc/filesystems', 'utf8'))
  } catch {
    return false
  }
}
