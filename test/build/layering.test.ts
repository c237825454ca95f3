/**
 * src/build sits above src/api (it uses the container engine, the image store, commit and pull)
 * and below src/cli: it imports no CLI code, and only the CLI and the library facade import it.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const SRC = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'src')

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name)
    if (e.isDirectory()) return files(p)
    return e.name.endsWith('.ts') ? [p] : []
  })
}

/** Module specifiers of static imports/exports and dynamic import() (as test/registry/deps.test.ts reads them). */
function specifiers(source: string): string[] {
  const res = [
    /\bimport\s+(?:type\s+)?(?:[\w*{}\s,]+\s+from\s+)?['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*|\{[^}]*\})\s*(?:as\s+\w+\s+)?from\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  return res.flatMap((re) => [...source.matchAll(re)].map((m) => m[1] as string))
}

/** The src folders a file imports. */
function folders(file: string): string[] {
  return specifiers(readFileSync(file, 'utf8'))
    .filter((s) => s.startsWith('.'))
    .map((s) => relative(SRC, resolve(dirname(file), s)).split('/')[0] as string)
}

test('src/build imports only folders above it, never src/cli', () => {
  const above = new Set(['errors', 'oci', 'util', 'content', 'metadata', 'layer', 'image', 'snapshot', 'mount', 'remote', 'runtime', 'container', 'api', 'build'])
  for (const f of files(join(SRC, 'build'))) {
    for (const d of folders(f)) assert.ok(above.has(d), `${relative(SRC, f)} imports src/${d}`)
  }
})

test('only src/cli and the library facade import src/build', () => {
  for (const f of files(SRC)) {
    const own = relative(SRC, f).split('/')[0]
    if (own === 'build' || own === 'cli' || own === 'index.ts') continue
    assert.ok(!folders(f).includes('build'), `${relative(SRC, f)} imports src/build`)
  }
})
