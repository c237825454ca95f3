/**
 * Cairn's own Node-API addons (native/, built by scripts/build-native.sh at `npm ci`) are found from
 * the module that loads them: the library runs from build/src/<folder>/, the bundled command from
 * build/cli/, and the package's native/ folder is some levels up from either.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** `rel` (a path inside the package, e.g. `native/build/Release/x.node`) found upwards from `from`. */
export function findUpwards(rel: string, from: string): string | undefined {
  let dir = from
  for (let i = 0; i < 6; i++) {
    const p = join(dir, rel)
    if (existsSync(p)) return p
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

const SYS_ADDON = 'native/sys/build/Release/cairn_sys.node'
let sys: Record<string, unknown> | null | undefined

/**
 * The system-call addon (native/sys/: mount, umount2, xattrs) as it loaded, once; undefined when
 * it was not built or does not load here. Callers check for the functions they use: an addon
 * built by an older version has fewer.
 */
export function sysAddon(): Record<string, unknown> | undefined {
  if (sys === undefined) {
    sys = null
    const path = findUpwards(SYS_ADDON, dirname(fileURLToPath(import.meta.url)))
    if (path !== undefined) {
      try {
        sys = createRequire(import.meta.url)(path) as Record<string, unknown>
      } catch {
        // an addon built for another platform: the callers' fallbacks
      }
    }
  }
  return sys ?? undefined
}

/** The system-call addon when it has every function named (one built by an older version has fewer). */
export function sysAddonWith<T>(...functions: string[]): T | undefined {
  const m = sysAddon()
  return m && functions.every((f) => typeof m[f] === 'function') ? m as T : undefined
}
