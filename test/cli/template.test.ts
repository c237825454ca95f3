/**
 * Cairn's Go template engine against Go's text/template semantics and Docker's documented
 * `--format` examples; every expected string and error here is what Docker 28's CLI prints.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { formatWrite, goContext, goMethod, Template } from '../../src/cli/template.js'

const exec = (t: string, data: unknown, missingKeyError = false): string => Template.parse(t).execute(data, { missingKeyError })
const err = (t: string, data: unknown, missingKeyError = false): string => {
  try {
    exec(t, data, missingKeyError)
  } catch (e) {
    return (e as Error).message
  }
  throw new Error(`no error from ${t}`)
}

describe('Go templates as Docker has them', () => {
  test('fields, nested fields, maps, index, and Go\'s printing of values', () => {
    const d = { State: { Status: 'running' }, Config: { Labels: { 'com.example': 'v' }, Cmd: ['sh', '-c', 'x'], Env: null }, Size: 1982846, F: 1983488.5 }
    assert.equal(exec('{{.State.Status}}', d), 'running')
    assert.equal(exec('{{index .Config.Labels "com.example"}} {{.Config.Labels}} {{.Config.Cmd}}', d), 'v map[com.example:v] [sh -c x]')
    assert.equal(exec('{{.Size}} {{.F}} {{.Config.Env}} {{.Nope}}', d), '1982846 1.9834885e+06 <no value> <no value>')
    assert.equal(exec('{{0.000012}} {{1.5}} {{123456.0}} {{1234567.5}}', {}), '1.2e-05 1.5 123456 1.2345675e+06')
  })

  test('range with variables, else, break and continue; if/else if; with', () => {
    assert.equal(exec('{{range $i, $v := .}}{{$i}}={{$v}} {{end}}', ['a', 'b']), '0=a 1=b ')
    assert.equal(exec('{{range .}}x{{else}}none{{end}}', []), 'none')
    assert.equal(exec('{{range $k, $v := .}}{{$k}}:{{$v}};{{end}}', { b: 2, a: 1 }), 'a:1;b:2;')
    assert.equal(exec('{{range .}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}', [1, 2, 3, 4, 5]), '13')
    assert.equal(exec('{{if eq .S "x"}}x{{else if eq .S "y"}}y{{else}}z{{end}}', { S: 'y' }), 'y')
    assert.equal(exec('{{with .X}}{{.}}{{else}}empty{{end}} {{with $x := .Y}}{{$x}}{{end}}', { X: '', Y: 'w' }), 'empty w')
    assert.equal(exec('{{$x := 1}}{{$x = 2}}{{$x}} {{$.A}}', { A: 'root' }), '2 root')
  })

  test('pipelines, parentheses and the functions of Go and Docker', () => {
    assert.equal(exec('{{.Names | upper}} {{lower "ABC"}} {{title "hello wORLD-x"}} {{pad "x" 1 2}}| {{truncate "abcdef" 3}}', { Names: 'web' }), 'WEB abc Hello WORLD-X  x  | abc')
    assert.equal(exec('{{join .L ","}} {{split "c2" "2"}} {{json .M}} {{json "<a&b>"}}', { L: ['a', 'b'], M: { z: '<x>', a: 1 } }), 'a,b [c ] {"a":1,"z":"<x>"} "<a&b>"')
    assert.equal(exec('{{printf "%5.2f|%-4s|%q|%x|%v" 3.14159 "ab" "q" 255 .N}}', { N: 'c2' }), ' 3.14|ab  |"q"|ff|c2')
    assert.equal(exec('{{print 1 2 "a" "b" 3}}|{{println "a" 1}}', {}), '1 2ab3|a 1\n')
    assert.equal(exec('{{(index .L 0).Name}} {{len .L}} {{"a" | len}} {{and 1 0 2}} {{or 0 "" "x"}} {{not true}}', { L: [{ Name: 'n' }] }), 'n 1 1 0 x false')
    assert.equal(exec('{{html "<a>"}} {{js "it\'s"}} {{urlquery "a b&c"}}', {}), '&lt;a&gt; it\\\'s a+b%26c')
    assert.equal(exec('{{lt 1 2}} {{ge "b" "a"}} {{eq .A 1 2 3}} {{ (1) }}', { A: 3 }), 'true true true 1')
  })

  test('whitespace trimming, comments, raw strings, define and template', () => {
    assert.equal(exec('{{- "a" -}}  \n  {{- "b"}} {{/* comment */}} {{- /* c2 */ -}} c', {}), 'ab c')
    assert.equal(exec('{{`raw\\n`}} {{"esc\\t|"}} {{\'a\'}} {{0x1F}}', {}), 'raw\\n esc\t| 97 31')
    assert.equal(exec('{{define "x"}}[{{.}}]{{end}}{{template "x" .A}}', { A: 'in' }), '[in]')
  })

  test('parse errors in Go\'s words', () => {
    const parse = (t: string): string => {
      try {
        Template.parse(t)
      } catch (e) {
        return (e as Error).message
      }
      return ''
    }
    assert.equal(parse('{{.ID }'), 'template: :1: unexpected "}" in operand')
    assert.equal(parse('{{.ID}'), "template: :1: bad character U+007D '}'")
    assert.equal(parse('{{.ID'), 'template: :1: unclosed action')
    assert.equal(parse('{{1 | 2}}'), 'template: :1: non executable command in pipeline stage 2')
    assert.equal(parse('{{if}}'), 'template: :1: missing value for if')
    assert.equal(parse('{{range $i, $v, $w := .}}{{end}}'), 'template: :1: too many declarations in range')
    assert.equal(parse('{{nope .}}'), 'template: :1: function "nope" not defined')
    assert.equal(parse('{{$y}}'), 'template: :1: undefined variable "$y"')
    assert.equal(parse('{{end}}'), 'template: :1: unexpected {{end}}')
    assert.equal(parse('{{if .A}}x'), 'template: :1: unexpected EOF')
    assert.equal(parse('{{.ID | }}'), '')
  })

  test('execution errors with Go\'s location and context', () => {
    assert.equal(err('{{.State.Nope}}', { State: {} }, true), 'template: :1:8: executing "" at <.State.Nope>: map has no entry for key "Nope"')
    assert.equal(err('{{json .Nope}}', {}, true), 'template: :1:7: executing "" at <.Nope>: map has no entry for key "Nope"')
    assert.equal(err('line1\n{{.A.Nope}}', { A: {} }, true), 'template: :2:4: executing "" at <.A.Nope>: map has no entry for key "Nope"')
    assert.equal(err('{{$x := 1}}{{$x.Y}}', {}), 'template: :1:15: executing "" at <$x.Y>: can\'t evaluate field Y in type int')
    assert.equal(err('{{ "a" "b" }}', {}), 'template: :1:3: executing "" at <"a">: can\'t give argument to non-function "a"')
    assert.equal(err('{{upper 5}}', {}), 'template: :1:8: executing "" at <5>: expected string; found 5')
    assert.equal(err('{{eq 1 "a"}}', {}), 'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison')
    const ctx = goContext('*formatter.ContainerContext', { Names: 'c2', Label: goMethod(['string'], (k: string) => k) })
    assert.equal(err('{{.Nope}}', ctx), 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext')
    assert.equal(err('{{.Names 1}}', ctx), 'template: :1:2: executing "" at <.Names>: wrong number of args for Names: want 0 got 1')
    assert.equal(err('{{.Label 5}}', ctx), 'template: :1:9: executing "" at <5>: expected string; found 5')
    assert.equal(err('{{.Label}}', ctx), 'template: :1:2: executing "" at <.Label>: wrong number of args for Label: want 1 got 0')
  })

  test('table: a header of Docker\'s words, Docker\'s tabwriter; json; errors', () => {
    const rows = [goContext('*formatter.ContainerContext', { ID: 'abc', Names: 'n1', Label: goMethod(['string'], () => 'v') })]
    const headers = { ID: 'CONTAINER ID', Names: 'NAMES' }
    assert.equal(formatWrite('table {{.ID}}\\t{{.Names | upper}}\\t{{.Label "com.ex.my-label"}}', rows, { headers }),
      'CONTAINER ID   NAMES     my label\nabc            N1        v\n')
    assert.equal(formatWrite('json', rows), '{"ID":"abc","Names":"n1"}\n')
    assert.equal(formatWrite('table {{.ID}}', [], { headers }), 'CONTAINER ID\n')
    assert.throws(() => formatWrite('{{.Nope}}', rows), /^FormatError: template parsing error: template: :1:2: executing "" at <\.Nope>/)
    assert.throws(() => formatWrite('{{.ID', rows, { errors: { parse: 'failed to parse template: ', exec: '' } }), (e: Error) => e.message === 'failed to parse template: template: :1: unclosed action')
  })
})
