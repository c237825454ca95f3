/**
 * The registry server imports only what it should: its own folder and the foundation folders
 * (errors, oci, util, content), Node's built-ins, bcryptjs and better-sqlite3 (for its file locks). Never the registry client (src/remote)
 * nor the image store, the API or the layer code: client and server meet only in tests.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const SRC = join(REPO, 'src')
const ALLOWED_FOLDERS = new Set(['registry', 'errors', 'oci', 'util', 'content'])
const ALLOWED_PACKAGES = new Set(['bcryptjs', 'better-sqlite3'])

/** Every module specifier in a TypeScript file: static imports/exports and dynamic import(). */
export function specifiers(source: string): string[] {
  const out: string[] = []
  const res = [
    /\bimport\s+(?:type\s+)?(?:[\w*{}\s,]+\s+from\s+)?['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*|\{[^}]*\})\s*(?:as\s+\w+\s+)?from\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]
  for (const re of res) for (const m of source.matchAll(re)) out.push(m[1] as string)
  return out
}

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...tsFiles(p))
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p)
  }
  return out
}

test('the import graph of src/registry stays within registry, errors, oci, util, content', () => {
  const start = tsFiles(join(SRC, 'registry'))
  assert.ok(start.length >= 10, 'src/registry has its modules')
  const seen = new Set<string>()
  const queue = [...start]
  const violations: string[] = []
  while (queue.length > 0) {
    const file = queue.pop() as string
    if (seen.has(file)) continue
    seen.add(file)
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const from = relative(REPO, file)
      if (spec.startsWith('node:')) continue
      if (!spec.startsWith('.')) {
        if (!ALLOWED_PACKAGES.has(spec.split('/')[0] as string)) violations.push(`${from} imports package ${spec}`)
        continue
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'))
      const rel = relative(SRC, target)
      const folder = rel.split('/')[0] as string
      if (rel.startsWith('..') || !rel.includes('/') || !ALLOWED_FOLDERS.has(folder)) {
        violations.push(`${from} imports ${spec} (src/${rel})`)
        continue
      }
      if (!existsSync(target)) violations.push(`${from} imports ${spec}, which does not exist`)
      else queue.push(target)
    }
  }
  assert.deepEqual(violations, [])
  // the walk did reach the foundation it uses
  assert.ok([...seen].some((f) => f.includes('/src/oci/')))
})

test('the scanner sees every form of import (so that the check above cannot pass vacuously)', () => {
  const src = `
    import { a } from '../remote/client.js'
    import type { B } from "../image/store.js"
    import * as c from './c.js'
    import './side-effect.js'
    export { d } from '../api/x.js'
    export * from '../layer/y.js'
    const e = await import('../remote/z.js')
  `
  assert.deepEqual(specifiers(src).sort(), ['../api/x.js', '../image/store.js', '../layer/y.js', '../remote/client.js', '../remote/z.js', './c.js', './side-effect.js'].sort())
})
