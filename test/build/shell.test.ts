/**
 * The Dockerfile shell-word expansion (BuildKit's shell lexer): quoting, escapes, the `${…}`
 * modifiers, word splitting of unquoted expansions, and the lexer's errors.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { envMap, expandWord, expandWords, splitWords } from '../../src/build/shell.js'

const env = envMap(['P=a/b/c', 'E=', 'S=1 2', 'N=x', 'F=file.tar.gz'])
const word = (s: string, escape = '\\'): string => expandWord(s, env, escape)
const failure = (s: string): string => {
  try {
    word(s)
  } catch (e) {
    return (e as Error).message
  }
  return 'no error'
}

describe('Dockerfile words', () => {
  test('envMap: the last value of a name wins; a bare name is empty; =x is no variable', () => {
    assert.deepEqual([...envMap(['A=1', 'B', '=x', 'A=2=3'])], [['A', '2=3'], ['B', '']])
    assert.deepEqual([...envMap(undefined)], [])
  })

  test('the ${} modifiers: defaults, alternatives, required values', () => {
    assert.equal(word('${U:-d}|${E:-d}|${N:-d}|${U-d}|${E-d}'), 'd|d|x|d|')
    assert.equal(word('${U:+a}|${E:+a}|${N:+a}|${U+a}|${E+a}'), '||a||a')
    assert.equal(word('${N:?must}|${E?must}'), 'x|')
    assert.equal(failure('${U:?must be set}'), 'U: must be set')
    assert.equal(failure('${E:?is empty}'), 'E: is empty')
    assert.equal(failure('${U?}'), 'U: is not allowed to be unset')
  })

  test('the ${} patterns: shortest and longest prefix and suffix, replacement', () => {
    assert.equal(word('${P#*/}|${P##*/}|${P%/*}|${P%%/*}'), 'b/c|c|a/b|a')
    assert.equal(word('${F%.*}|${F%%.*}|${F#?}|${F#[ef]ile}|${F#[!f]}'), 'file.tar|file|ile.tar.gz|.tar.gz|file.tar.gz')
    assert.equal(word('${P/b/B}|${P/?/X}|${P/z/y}|${U#x}'), 'a/B/c|X/b/c|a/b/c|')
    assert.equal(word('${P/[a-b]/-}|${P/a}'), '-/b/c|/b/c')
  })

  test('the word of a modifier is quoted, escaped and expanded in its turn', () => {
    assert.equal(word('${U:-"a b"}|${U:-\'$N\'}|${U:-$N}|${U:-a\\}b}|${U:-${N}y}'), 'a b|$N|x|a}b|xy')
  })

  test('quotes and escapes: single quotes literal, double quotes expand, the escape character', () => {
    assert.equal(word('\'$N\\\'"$N"'), '$N\\x')
    assert.equal(word('"a\\"b\\$c\\\\d\\e"'), 'a"b$c\\d\\e')
    assert.equal(word('a\\$N\\'), 'a$N\\')
    assert.equal(word('a`$N`"`"`"', '`'), 'a$N"""')
    assert.equal(word('$|$-|${N}$N$1'), '$|$-|xx')
  })

  test('unquoted expansions split into words; quoted ones do not', () => {
    assert.deepEqual(expandWords('$S b', env), ['1', '2', 'b'])
    assert.deepEqual(expandWords('"$S" b', env), ['1 2', 'b'])
    assert.deepEqual(expandWords('  a\t$E  ""  ', env), ['a', ''])
    assert.deepEqual(splitWords('a "b c" \'d e\' f\\ g  '), ['a', '"b c"', "'d e'", 'f\\ g'])
    assert.deepEqual(splitWords('a` b', '`'), ['a` b'])
  })

  test('the lexer\'s errors', () => {
    assert.equal(failure("'open"), 'unexpected end of statement while looking for matching single-quote')
    assert.equal(failure('"open'), 'unexpected end of statement while looking for matching double-quote')
    assert.equal(failure('${N'), 'syntax error: missing \'}\'')
    assert.equal(failure('${N:-x'), 'syntax error: missing \'}\'')
    assert.equal(failure('${N^}'), 'unsupported modifier (^) in substitution')
    assert.match(failure('${}'), /^bad substitution/)
  })
})
