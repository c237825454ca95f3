/**
 * Performs the mount descriptions that snapshotters return, with mount(8) and umount(8)
 * (Node has no mount system call). The only place in Cairn that mounts anything.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { CairnError } from '../errors/index.js'
import type { Mount } from '../snapshot/types.js'

const run = promisify(execFile)

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
  try {
    for (const m of mounts) {
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
