// Properties of the lexical containment check used for every unpacked entry.
import assert from 'node:assert/strict'
import { isAbsolute, relative } from 'node:path'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isInside } from '../../src/layer/path.js'

/** The definition: path.relative's answer, whatever form the paths come in. */
function byRelative(root: string, hostPath: string): boolean {
  const rel = relative(root, hostPath)
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel))
}

const part = fc.constantFrom('a', 'b', 'ab', '.', '..', '', '.a', '..a', 'a.', '...', 'x y')
const path = fc.tuple(fc.boolean(), fc.array(part, { maxLength: 6 }), fc.boolean()).map(([abs, parts, slash]) => `${abs ? '/' : ''}${parts.join('/')}${slash ? '/' : ''}`)

describe('isInside (properties)', () => {
  it('agrees with path.relative on any pair of paths, canonical or not', () => {
    fc.assert(fc.property(path, path, (root, p) => {
      assert.equal(isInside(root, p), byRelative(root, p), `${JSON.stringify(root)} ${JSON.stringify(p)}`)
    }), { numRuns: 20_000 })
  })

  it('agrees on a path below the root, beside it, and on prefixes that are not folders', () => {
    const cases: [string, string, boolean][] = [
      ['/r', '/r', true],
      ['/r', '/r/a', true],
      ['/r', '/rr/a', false],
      ['/r', '/r/../x', false],
      ['/r', '/r/a/..', true],
      ['/r/', '/r/a', true],
      ['/', '/anything', true],
      ['/r', '/', false],
      ['/r/a', '/r', false],
    ]
    for (const [root, p, want] of cases) {
      assert.equal(isInside(root, p), want, `${root} ${p}`)
      assert.equal(byRelative(root, p), want, `${root} ${p}`)
    }
  })
})
