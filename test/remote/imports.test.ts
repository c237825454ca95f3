/**
 * The registry client and the registry server meet only in tests: nothing reachable from
 * src/remote (nor from the push/pull/login verbs and their CLI) imports src/registry.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src')

/** Relative imports of a TypeScript file (static, dynamic, re-exports, type-only too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  const re = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3]
    if (spec?.startsWith('.')) out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
  }
  return out
}

function reachable(entries: string[]): Set<string> {
  const seen = new Set<string>()
  const todo = [...entries]
  while (todo.length > 0) {
    const f = todo.pop() as string
    if (seen.has(f) || !existsSync(f)) continue
    seen.add(f)
    todo.push(...importsOf(f))
  }
  return seen
}

test('the import graph of src/remote (and push/pull/login) never reaches src/registry', () => {
  const remote = readdirSync(join(SRC, 'remote')).filter((f) => f.endsWith('.ts')).map((f) => join(SRC, 'remote', f))
  assert.ok(remote.length >= 5, 'found the client sources')
  const entries = [...remote, join(SRC, 'api/push.ts'), join(SRC, 'api/pull.ts'), join(SRC, 'api/login.ts'), join(SRC, 'cli/remote.ts')]
  const all = reachable(entries)
  const offending = [...all].filter((f) => f.startsWith(join(SRC, 'registry') + '/'))
  assert.deepEqual(offending, [])
  // and the walk did see the client's own dependencies
  assert.ok(all.has(join(SRC, 'image/layercheck.ts')))
})

test('the import walker sees what it should (a file importing src/registry is caught)', () => {
  const probe = join(SRC, 'remote', 'client.ts')
  const deps = importsOf(probe)
  assert.ok(deps.some((d) => d.endsWith('/remote/http.ts')))
  assert.ok(deps.some((d) => d.endsWith('/errors/index.ts')))
})
