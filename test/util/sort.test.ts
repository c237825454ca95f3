import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sortByUtf8 } from '../../src/util/sort.js'

const byBytes = (xs: string[]): string[] => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))

test('sortByUtf8: the order of the UTF-8 bytes, also where UTF-16 order differs (characters beyond U+FFFF)', () => {
  const astral = ['\uFF21', '\u{1F600}', 'a', '\u00E9', 'Z', '\uE000', 'a/b', 'a-c', '']
  // JavaScript's own order puts U+1F600 (a surrogate pair) before U+FF21; UTF-8 puts it after
  assert.notDeepEqual([...astral].sort(), byBytes(astral))
  assert.deepEqual(sortByUtf8([...astral], (s) => s), byBytes(astral))
  const plain = ['usr/lib', 'usr', 'usr-local', 'Usr', 'é', 'e', 'usr/bin']
  assert.deepEqual(sortByUtf8([...plain], (s) => s), byBytes(plain))
  // by a key, keeping the items
  const items = astral.map((name, i) => ({ name, i }))
  assert.deepEqual(sortByUtf8(items, (x) => x.name).map((x) => x.name), byBytes(astral))
})
