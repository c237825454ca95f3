/**
 * Go's text/template with Docker's functions, case by case against Docker 28's CLI: every
 * expected output and error below is what `docker context ls --format TEMPLATE` printed for the
 * template (the data plays no part in these templates), less Docker's `template parsing error: `
 * prefix.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { formatWrite, Template } from '../../src/cli/template.js'

const OUTPUTS: [string, string][] = [
  ['{{ html 1 2 }} {{ js 1 "a" }} {{ urlquery 1 }}', '1 2 1a 1'],
  ['{{ json nil }} {{ json 1.5 }} {{ json "\\u2028" }} {{ json (split "a,b" ",") }} {{ json true }}', 'null 1.5 "\\u2028" ["a","b"] true'],
  ['{{ len "" }} {{ not 0 }} {{ not "" }} {{ not (split "a" ",") }}', '0 true true false'],
  ['{{ print "x" | printf "%s%s" "y" }}', 'yx'],
  ['{{ printf "%d" 1 2 }}', '1%!(EXTRA int=2)'],
  ['{{"\\u00e9" | len}}', '2'],
  ['{{"\\x41\\u00e9\\101\\a\\b\\f\\v\\\\"}}', 'AéA\u0007\b\f\u000b\\'],
  ['{{$v := 0}}{{range $v = (split "c,d" ",")}}{{end}}{{$v}}', 'd'],
  ['{{\'a\'}} {{\'\\x41\'}} {{\'\\u00e9\'}} {{\'\\\'\'}}', '97 65 233 39'],
  ['{{- 1 -}} {{- 2}}', '12'],
  ['{{-1}}', '-1'],
  ['{{1e21}} {{1e3}} {{-5}} {{0o17}} {{0b101}} {{017}} {{1_000}} {{0x_1F}} {{1.5e-7}} {{.5}}', '1e+21 1000 -5 15 5 15 1000 31 1.5e-07 0.5'],
  ['{{and 1 0 | not}} {{or 0 | not}} {{and 1 2}} {{or 0 ""}}', 'true true 2 '],
  ['{{block "b" "x"}}[{{.}}]{{end}}|{{template "b" "y"}}', '[x]|[y]'],
  ['{{define "x"}}{{end}}{{define "x"}}b{{end}}{{template "x"}}', 'b'],
  ['{{eq 1 2 3 1}} {{ne "a" "b"}} {{le 2 2}} {{gt "b" "a"}} {{lt 1 2}}', 'true true true true true'],
  ['{{eq 1 nil}}', 'false'],
  ['{{eq nil 1}} {{eq "a" nil}} {{ne 1 nil}}', 'false false true'],
  ['{{eq nil nil}}', 'true'],
  ['{{eq true true}} {{ne true false}}', 'true true'],
  ['{{html "a\\"b\'c&<>"}}', 'a&#34;b&#39;c&amp;&lt;&gt;'],
  ['{{if 0}}{{else if ""}}{{else if 1}}z{{end}}', 'z'],
  ['{{index "abc" 1}}', '98'],
  ['{{join (split "a,b" ",") "-"}}|{{title "élan vital"}}|{{upper "é"}}', 'a-b|Élan Vital|É'],
  ['{{js "a<=\\x01\'\\"&>\\\\"}}', 'a\\u003C\\u003D\\u0001\\\'\\"\\u0026\\u003E\\\\'],
  ['{{print "a" 1 2 "b" nil}}|{{print}}|{{println}}|{{print 1.5 true}}', 'a1 2b<nil>||\n|1.5 true'],
  ['{{printf "%"}}', '%!(NOVERB)'],
  ['{{printf "%%|%v|%#v" "a" "b"}}', '%|a|"b"'],
  ['{{printf "%.2s|%*d|%.*f" "abcdef" 4 7 2 3.14159}}', 'ab|   7|3.14'],
  ['{{printf "%.3g|%.3e|%10.2e|" 1234.5678 1234.5678 1234.5678}}', '1.23e+03|1.235e+03|  1.23e+03|'],
  ['{{printf "%05d|%-5d|%+d|%x|%5s|%-5s|" 42 7 3 "hi" "ab" "cd"}}', '00042|7    |+3|6869|   ab|cd   |'],
  ['{{printf "%6.2f|%-6.1f|%06d|%+05d" 3.14159 2.0 -42 7}}', '  3.14|2.0   |-00042|+0007'],
  ['{{printf "%d" "x"}}', '%!d(string=x)'],
  ['{{printf "%e|%g|%E|%G" 1234.5678 0.00001 1.0 1e21}}', '1.234568e+03|1e-05|1.000000E+00|1E+21'],
  ['{{printf "%g|%g|%g|%g" 100000.0 1000000.0 0.0001 123.456}}', '100000|1e+06|0.0001|123.456'],
  ['{{printf "%q|%q" 65 "a\\"b"}}', '\'A\'|"a\\"b"'],
  ['{{printf "%s" (split "a,b" ",")}}', '[a b]'],
  ['{{printf "%s"}}', '%!s(MISSING)'],
  ['{{printf "%t %c %U %o %b %X %#x %#X" true 65 65 8 5 255 255 255}}', 'true A U+0041 10 101 FF 0xff 0XFF'],
  ['{{printf "%t|%d|%s|%c|%x" "a" true 1 "x" true}}', '%!t(string=a)|%!d(bool=true)|%!s(int=1)|%!c(string=x)|%!x(bool=true)'],
  ['{{printf "%v %v" (split "a,b" ",") nil}}', '[a b] <nil>'],
  ['{{printf "%x|%X" "hi" "hi"}}', '6869|6869'],
  ['{{printf "%z" 1}}', '%!z(int=1)'],
  ['{{printf "a" 1 "b"}}', 'a%!(EXTRA int=1, string=b)'],
  ['{{range $i, $v := (split "a,b" ",")}}{{$i}}{{$v}}{{end}}|{{$i := 9}}{{$v := 8}}{{range $i, $v = (split "a,b" ",")}}{{end}}{{$i}}{{$v}}|{{range $v := (split "c" ",")}}{{$v}}{{end}}', '0a1b|1b|c'],
  ['{{range 3}}{{.}}{{end}}', '012'],
  ['{{slice "abcdef" 1 3}}|{{slice (split "a,b,c" ",") 1}}|{{slice "abc"}}|{{slice (split "a,b,c" ",") 1 2 3}}', 'bc|[b c]|abc|[b]'],
  ['{{slice "héllo" 1 3}}', 'é'],
  ['{{truncate "abc" 5}}|{{truncate "héllo" 2}}|{{pad "x" 0 0}}|{{split "abc" ""}}|{{split "" ","}}', 'abc|h�|x|[a b c]|[]'],
  ['{{urlquery "a b!\'()*~-_.é/?="}}', 'a+b%21%27%28%29%2A~-_.%C3%A9%2F%3F%3D'],
  ['{{with $x := "a"}}{{$x}}{{end}} {{with ""}}{{else with "b"}}{{.}}{{end}} {{with ""}}{{else with ""}}x{{else}}y{{end}}', 'a b y'],
]

const ERRORS: [string, string][] = [
  ['{{ "a" := 1 }}', 'template: :1: unexpected ":=" in operand'],
  ['{{ $x := }}', 'template: :1: missing value for command'],
  ['{{ (1 }}', 'template: :1: unclosed left paren'],
  ['{{ (print "a").X }}', 'template: :1:10: executing "" at <"a">: can\'t evaluate field X in type string'],
  ['{{ 1 ) }}', 'template: :1: unexpected right paren'],
  ['{{ 1 | 2 }}', 'template: :1: non executable command in pipeline stage 2'],
  ['{{ 1 }}{{"x"}}{{else}}', 'template: :1: unexpected {{else}}'],
  ['{{ := 1 }}', 'template: :1: unexpected ":=" in command'],
  ['{{ @ }}', 'template: :1: unexpected "@" in command'],
  ['{{ call }}', 'template: :1:3: executing "" at <call>: wrong number of args for call: want at least 1 got 0'],
  ['{{ index }}', 'template: :1:3: executing "" at <index>: wrong number of args for index: want at least 1 got 0'],
  ['{{ lower 1.5 }}', 'template: :1:9: executing "" at <1.5>: expected string; found 1.5'],
  ['{{ printf 1 }}', 'template: :1:10: executing "" at <1>: expected string; found 1'],
  ['{{"\\\'"}}', 'template: :1: invalid syntax'],
  ['{{"\\18"}}', 'template: :1: invalid syntax'],
  ['{{"\\q"}}', 'template: :1: invalid syntax'],
  ['{{"\\x4"}}', 'template: :1: invalid syntax'],
  ['{{"\\x41\\u00e9\\101\\a\\b\\f\\v\\\\\\\'"}}', 'template: :1: invalid syntax'],
  ['{{"a" | 1}}', 'template: :1: non executable command in pipeline stage 2'],
  ['{{"a".X}}', 'template: :1: unexpected . after term "\\"a\\""'],
  ['{{$x := "s"}}{{$x 1}}', 'template: :1:15: executing "" at <$x>: can\'t give argument to non-function $x'],
  ['{{$x := "s"}}{{$x.Y}}', 'template: :1:17: executing "" at <$x.Y>: can\'t evaluate field Y in type string'],
  ['{{$x := 1}}{{$x.Y.Z}}', 'template: :1:15: executing "" at <$x.Y.Z>: can\'t evaluate field Y in type int'],
  ['{{$x}}', 'template: :1: undefined variable "$x"'],
  ['{{\'ab\'}}', 'template: :1: malformed character constant: \'ab\''],
  ['{{( 1 }}', 'template: :1: unclosed left paren'],
  ['{{(1).X}}', 'template: :1:3: executing "" at <1>: can\'t evaluate field X in type int'],
  ['{{(nil)}}', 'template: :1:3: executing "" at <nil>: nil is not a command'],
  ['{{-1}} {{1-}}', 'template: :1: bad number syntax: "1-"'],
  ['{{/* c */ 1}}', 'template: :1: comment ends before closing delimiter'],
  ['{{/* unterminated }}', 'template: :1: unclosed comment'],
  ['{{0x}}', 'template: :1: illegal number syntax: "0x"'],
  ['{{1 2}}', 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'],
  ['{{1 | upper}}', 'template: :1:6: executing "" at <upper>: wrong type for value; expected string; got int'],
  ['{{1-}}', 'template: :1: bad number syntax: "1-"'],
  ['{{1a}}', 'template: :1: bad number syntax: "1a"'],
  ['{{and}}', 'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0'],
  ['{{block "a" .}}{{else}}{{end}}', 'template: :1: unexpected {{else}} in block clause'],
  ['{{block 1}}{{end}}', 'template: :1: unexpected "1" in block clause'],
  ['{{break}}', 'template: :1: {{break}} outside {{range}}'],
  ['{{continue}}', 'template: :1: {{continue}} outside {{range}}'],
  ['{{define "a" 1}}{{end}}', 'template: :1: unexpected "1" in define clause'],
  ['{{end}}', 'template: :1: unexpected {{end}}'],
  ['{{eq 1 "a"}}', 'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison'],
  ['{{if 1}}{{else}}{{else}}{{end}}', 'template: :1: expected end; found {{else}}'],
  ['{{if 1}}{{end 1}}', 'template: :1: unexpected "1" in end'],
  ['{{index (split "a,b" ",") "x"}}', 'template: :1:2: executing "" at <index (split "a,b" ",") "x">: error calling index: cannot index slice/array with type string'],
  ['{{index (split "a,b" ",") -1}}', 'template: :1:2: executing "" at <index (split "a,b" ",") -1>: error calling index: index out of range: -1'],
  ['{{index (split "a,b" ",") 5}}', 'template: :1:2: executing "" at <index (split "a,b" ",") 5>: error calling index: index out of range: 5'],
  ['{{index (split "a,b" ",") nil}}', 'template: :1:2: executing "" at <index (split "a,b" ",") nil>: error calling index: cannot index slice/array with nil'],
  ['{{index (split "a,b,c,d,e,f,g,h,i,j" ",") 50}}', 'template: :1:2: executing "" at <index (split "a,b,c,d,e,f,g,h,i,j" ",") 50>: error calling index: index out of range: 50'],
  ['{{index 3 1}}', 'template: :1:2: executing "" at <index 3 1>: error calling index: can\'t index item of type int'],
  ['{{index nil 1}}', 'template: :1:2: executing "" at <index nil 1>: error calling index: index of untyped nil'],
  ['{{len 3}}', 'template: :1:2: executing "" at <len 3>: error calling len: len of type int'],
  ['{{lt nil 1}}', 'template: :1:2: executing "" at <lt nil 1>: error calling lt: invalid type for comparison'],
  ['{{lt true false}}', 'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison'],
  ['{{nil}}', 'template: :1:2: executing "" at <nil>: nil is not a command'],
  ['{{or}}', 'template: :1:2: executing "" at <or>: wrong number of args for or: want at least 1 got 0'],
  ['{{pad "x" "a" 1}}', 'template: :1:10: executing "" at <"a">: expected integer; found "a"'],
  ['{{pad "x" 1.5 1}}', 'template: :1:10: executing "" at <1.5>: expected integer; found 1.5'],
  ['{{range "abc"}}{{.}}{{end}}', 'template: :1:8: executing "" at <"abc">: range can\'t iterate over abc'],
  ['{{range $i, $v := 1, 2}}{{end}}', 'template: :1: unexpected "," in operand'],
  ['{{range $i, $v := 3}}{{end}}', 'template: :1:18: executing "" at <3>: can\'t use 3 to iterate over more than one variable'],
  ['{{range $i, 1}}{{end}}', 'template: :1: range can only initialize variables'],
  ['{{range (split "a,b" ",")}}{{else}}{{else}}{{end}}', 'template: :1: expected end; found {{else}}'],
  ['{{range (split "a,b,c,d,e,f,g,h,i,j" ",")}}{{.X}}{{end}}', 'template: :1:45: executing "" at <.X>: can\'t evaluate field X in type string'],
  ['{{range .}}', 'template: :1: unexpected EOF'],
  ['{{range 3}}{{break 1}}{{end}}', 'template: :1: unexpected "1" in {{break}}'],
  ['{{slice "abc" 1 2 3 4}}', 'template: :1:2: executing "" at <slice "abc" 1 2 3 4>: error calling slice: too many slice indexes: 4'],
  ['{{slice "abc" 1 2 3}}', 'template: :1:2: executing "" at <slice "abc" 1 2 3>: error calling slice: cannot 3-index slice a string'],
  ['{{slice "abc" 2 1}}', 'template: :1:2: executing "" at <slice "abc" 2 1>: error calling slice: invalid slice index: 2 > 1'],
  ['{{slice "abc" 4}}', 'template: :1:2: executing "" at <slice "abc" 4>: error calling slice: index out of range: 4'],
  ['{{slice 3 1}}', 'template: :1:2: executing "" at <slice 3 1>: error calling slice: can\'t slice item of type int'],
  ['{{slice nil 1}}', 'template: :1:2: executing "" at <slice nil 1>: error calling slice: slice of untyped nil'],
  ['{{template "nope"}}', 'template: :1:11: executing "" at <{{template "nope"}}>: template "nope" not defined'],
  ['{{template 1}}', 'template: :1: unexpected "1" in template clause'],
  ['{{true.X}}', 'template: :1: unexpected . after term "true"'],
  ['{{upper "a" "b"}}', 'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 2'],
  ['{{upper 1}}', 'template: :1:8: executing "" at <1>: expected string; found 1'],
  ['{{upper nil}}', 'template: :1:8: executing "" at <nil>: cannot assign nil to string'],
  ['{{upper}}', 'template: :1:2: executing "" at <upper>: wrong number of args for upper: want 1 got 0'],
  ['{{with $a, $b := 1}}{{end}}', 'template: :1: too many declarations in with'],
  ['{{with}}', 'template: :1: missing value for with'],
  ['{{|}}', 'template: :1: unexpected "|" in command'],
]

const run = (t: string, data: unknown = {}): string => Template.parse(t).execute(data)
const failure = (t: string, data: unknown = {}): string => {
  try {
    run(t, data)
  } catch (e) {
    return (e as Error).message
  }
  return `no error from ${t}`
}

describe('Go templates beside Docker 28', () => {
  test('functions, numbers, strings, printf verbs and control structures print what Docker prints', () => {
    for (const [t, want] of OUTPUTS) assert.equal(run(t), want, t)
  })

  test('parse and execution errors carry Go\'s words, line, column and the whole node', () => {
    for (const [t, want] of ERRORS) assert.equal(failure(t), want, t)
  })

  test('js escapes control characters as \\u00XX, newlines included', () => {
    assert.equal(run('{{js .}}', 'a\nb\tc\rd\x1f'), 'a\\u000Ab\\u0009c\\u000Dd\\u001F')
  })

  test('maps: sorted range, index of a missing key, len, and missingkey=error', () => {
    const d = { M: { b: 2, a: 1, n: null } }
    assert.equal(run('{{range $k, $v := .M}}{{$k}}={{$v}},{{end}}', d), 'a=1,b=2,n=<nil>,')
    assert.equal(run('{{index .M "zz"}}|{{index .M "n"}}|{{len .M}}|{{.M.n}}|{{.M.n.x}}', d), '<no value>|<no value>|3|<no value>|<no value>')
    assert.equal(run('{{range .M}}{{break}}{{end}}{{range $k, $v := .E}}x{{else}}empty{{end}}', { M: d.M, E: {} }), 'empty')
    assert.throws(() => Template.parse('{{.M.n.x}}').execute(d, { missingKeyError: true }), { message: 'template: :1:4: executing "" at <.M.n.x>: nil data; no entry for key "x"' })
    assert.equal(failure('{{.M.b 1}}', d), 'template: :1:4: executing "" at <.M.b>: b is not a method but has arguments')
    assert.equal(failure('{{index .M 1}}', d), 'template: :1:2: executing "" at <index .M 1>: error calling index: value has type int; should be string')
  })
})

describe('Docker\'s formatter', () => {
  test('a table whose header fails part-way keeps the header written so far, as Docker does', () => {
    const rows = [{ Description: 'Current DOCKER_HOST based configuration', Name: 'default' }]
    const out = formatWrite('table {{.Description}}\t{{slice .Name 0 7}}|x', rows, { headers: { Description: 'DESCRIPTION', Name: 'NAME' } })
    assert.equal(out, 'DESCRIPTION                               \nCurrent DOCKER_HOST based configuration   default|x\n')
  })

  test('a row that fails is an error with Docker\'s prefix and nothing is printed', () => {
    const rows = [{ Name: 'default', Current: true }]
    assert.throws(() => formatWrite('table {{.Name}}\t{{.Current}}\t{{.Name.X}}', rows, { headers: { Name: 'NAME', Current: 'CURRENT' } }), (err: unknown) => {
      const e = err as { name: string; exitCode: number; message: string }
      assert.equal(e.name, 'FormatError')
      assert.equal(e.exitCode, 1)
      assert.equal(e.message, 'template parsing error: template: :1:30: executing "" at <.Name.X>: can\'t evaluate field X in type string')
      return true
    })
  })

  test('json is {{json .}}; a parse error is Docker\'s message', () => {
    assert.equal(formatWrite('json', [{ b: 1, a: '<x>' }]), '{"a":"<x>","b":1}\n')
    assert.throws(() => formatWrite('{{.A', []), /^Error|template parsing error: template: :1: unclosed action$/)
  })
})
