/**
 * Cairn's own Node-API addons (native/, built by scripts/build-native.sh at `npm ci`) are found from
 * the module that loads them: the library runs from build/src/<folder>/, the bundled command from
 * build/cli/, and the package's native/ folder is some levels up from either.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

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
