/** The configuration files' YAML subset: what it reads as YAML 1.2 does, and what it refuses, by line. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseYaml } from '../../src/registry/yaml.js'

const failure = (s: string): string => {
  try {
    parseYaml(s)
  } catch (e) {
    return (e as Error).message
  }
  return 'no error'
}

describe('YAML subset', () => {
  test('scalars: the core schema\'s types, quoting, comments', () => {
    assert.deepEqual(parseYaml([
      '\uFEFF---',
      'a: ~',
      'b: Null',
      'c: TRUE',
      'd: False',
      'e: -12',
      'f: .5',
      'g: 1.5e3',
      'h: 0x1F',
      'i: 0o17',
      'j: 012',
      'k: "tab\\there \\/ # not a comment"',
      "l: 'it''s'",
      'm: plain text # a comment',
      '"quoted key": 1',
      "'single': 2",
      'n: a:b',
      'o:',
      '# a full-line comment',
      'p: |',
      '  line one',
      '  # kept',
      '',
      '  line three',
      '',
      'q: |-',
      '  kept',
      'r: |+',
      '  x',
      '',
    ].join('\n')), {
      a: null, b: null, c: true, d: false, e: -12, f: 0.5, g: 1500, h: 31, i: 15, j: '012',
      k: 'tab\there / # not a comment', l: "it's", m: 'plain text', 'quoted key': 1, single: 2, n: 'a:b', o: null,
      p: 'line one\n# kept\n\nline three\n', q: 'kept', r: 'x\n\n',
    })
    assert.equal(parseYaml(''), null)
    assert.equal(parseYaml('# nothing\n\n'), null)
    assert.equal(parseYaml('just text'), 'just text')
  })

  test('blocks: sequences, nested mappings, a sequence at its key\'s indentation, inline blocks', () => {
    assert.deepEqual(parseYaml([
      'list:',
      '- a',
      '-',
      '- - x',
      '  - y',
      '- k: v',
      '  k2: v2',
      '-',
      '  deep: 1',
      'map:',
      '  inner:',
      '    x: [1, "two", {y: z}, []]',
      '  flow: {a: 1, "b": [x, y,], c: {}}',
      '  empty:',
      'after: 1',
    ].join('\n')), {
      list: ['a', null, ['x', 'y'], { k: 'v', k2: 'v2' }, { deep: 1 }],
      map: { inner: { x: [1, 'two', { y: 'z' }, []] }, flow: { a: 1, b: ['x', 'y'], c: {} }, empty: null },
      after: 1,
    })
  })

  test('what it refuses, with the line', () => {
    assert.equal(failure('a: 1\n\tb: 2'), 'YAML line 2: tabs are not allowed for indentation')
    assert.equal(failure('a: 1\n---\nb: 2'), 'YAML line 2: multiple documents are not supported')
    assert.equal(failure('a: 1\na: 2'), 'YAML line 2: duplicate key "a"')
    assert.equal(failure('__proto__: 1'), 'YAML line 1: key __proto__ is not allowed')
    assert.equal(failure('a: {__proto__: 1}'), 'YAML line 1: key __proto__ is not allowed')
    assert.equal(failure('a: &x 1'), 'YAML line 1: anchors, aliases and tags are not supported')
    assert.equal(failure('- *x'), 'YAML line 1: anchors, aliases and tags are not supported')
    assert.equal(failure('a: "open'), 'YAML line 1: unterminated or trailing text after a double-quoted string')
    assert.equal(failure('a: "bad \\q"'), 'YAML line 1: invalid escape in a double-quoted string')
    assert.equal(failure("a: 'x' y"), 'YAML line 1: unterminated or trailing text after a single-quoted string')
    assert.equal(failure('a: [1, 2'), 'YAML line 1: expected , or ] in a flow sequence')
    assert.equal(failure('a: {b 1}'), 'YAML line 1: expected : in a flow mapping')
    assert.equal(failure('a: {b: [1] c}'), 'YAML line 1: expected , or } in a flow mapping')
    assert.deepEqual(parseYaml('a: {b: 1 c}'), { a: { b: '1 c' } })
    assert.equal(failure('a: [1] x'), 'YAML line 1: unexpected text after a flow collection: x')
    assert.equal(failure('a: ["x]'), 'YAML line 1: unterminated string')
    assert.equal(failure('a: 1\n  b: 2'), 'YAML line 2: unexpected indentation in a mapping')
    assert.equal(failure('- a\n  - b'), 'YAML line 2: unexpected indentation in a sequence')
    assert.equal(failure('a: 1\nb'), 'YAML line 2: unexpected indentation')
  })
})
