/**
 * The Dockerfile grammar, with examples taken from the Dockerfile reference: parser directives,
 * line continuations, here-documents, flags, shell and exec forms, key=value pairs, variable
 * substitution, and the syntax errors that must stop a build before anything runs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseDockerfile, parseDuration, type Instruction } from '../../src/build/dockerfile.js'
import { expandWord, expandWords, splitWords } from '../../src/build/shell.js'
import { hasCode } from '../../src/errors/index.js'
import { matchSegment, cleanSource } from '../../src/build/copy.js'

function steps(text: string): Instruction[] {
  return parseDockerfile(text).stages.flatMap((s) => [s.from as Instruction, ...s.steps])
}

function parseFails(text: string, pattern: RegExp): void {
  assert.throws(() => parseDockerfile(text), (err: unknown) => hasCode(err, 'INVALID_ARGUMENT') && pattern.test((err as Error).message))
}

test('stages: FROM … AS name, ARG before FROM, steps in order with their lines', () => {
  const df = parseDockerfile('ARG VERSION=latest\nFROM busybox:$VERSION AS Build\nRUN echo a\n\nFROM scratch\nCOPY --from=build /a /a\n')
  assert.equal(df.metaArgs.length, 1)
  assert.deepEqual(df.metaArgs[0]?.args, [{ name: 'VERSION', value: 'latest' }])
  assert.equal(df.stages.length, 2)
  assert.equal(df.stages[0]?.name, 'build', 'stage names are case-insensitive')
  assert.equal(df.stages[0]?.from.image, 'busybox:$VERSION')
  assert.equal(df.stages[1]?.steps[0]?.line, 6)
  assert.deepEqual(df.stages[1]?.steps[0]?.flags, [{ name: 'from', value: 'build' }])
})

test('line continuations: the escape character joins lines; comment and empty lines inside are dropped', () => {
  const [, run] = steps('FROM a\nRUN apt-get update \\\n  # a comment in the middle\n\n  && apt-get install -y curl\n')
  assert.equal(run?.kind, 'RUN')
  if (run?.kind !== 'RUN' || run.command.kind !== 'shell') throw new Error('shell form expected')
  assert.equal(run.command.command, 'apt-get update   && apt-get install -y curl')
  assert.equal(run.line, 2)
})

test('the escape directive: a backtick continues lines and leaves backslashes alone (Windows paths)', () => {
  const df = parseDockerfile('# escape=`\nFROM a\nCOPY testfile.txt c:\\ `\n    d:\\\n')
  assert.equal(df.escape, '`')
  const copy = df.stages[0]?.steps[0]
  assert.equal(copy?.kind, 'COPY')
  if (copy?.kind !== 'COPY') throw new Error('COPY expected')
  assert.deepEqual(copy.sources, ['testfile.txt', 'c:\\'])
  assert.equal(copy.dest, 'd:\\')
})

test('here-documents: RUN <<EOF runs the body; <<-EOT strips tabs; COPY <<EOF names a file; quoted names do not expand', () => {
  const df = parseDockerfile('FROM a\nRUN <<EOF\necho hello\necho world > /x\nEOF\nRUN <<-EOT sh\n\techo tab\n\tEOT\nCOPY <<"EOF" /etc/conf\na=$HOME\nEOF\nRUN echo done\n')
  const [r1, r2, c, last] = df.stages[0]?.steps ?? []
  if (r1?.kind !== 'RUN' || r2?.kind !== 'RUN' || c?.kind !== 'COPY' || last?.kind !== 'RUN') throw new Error('RUN RUN COPY RUN expected')
  assert.deepEqual(r1.heredocs, [{ name: 'EOF', content: 'echo hello\necho world > /x\n', expand: true }])
  assert.equal(r2.heredocs[0]?.content, 'echo tab\n')
  assert.deepEqual(c.heredocs, [{ name: 'EOF', content: 'a=$HOME\n', expand: false }])
  assert.deepEqual(c.sources, ['<<"EOF"'])
  assert.equal(last.line, 12, 'the body lines are not instructions')
})

test('flags: COPY --from --chown --chmod --link, FROM --platform, HEALTHCHECK durations; unknown flags refused', () => {
  const [from, copy, hc] = steps('FROM --platform=linux/amd64 a AS b\nCOPY --from=b --chown=1:2 --chmod=755 --link src dst/\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n')
  assert.equal(from?.kind === 'FROM' ? from.platform : undefined, 'linux/amd64')
  assert.deepEqual(copy?.flags, [{ name: 'from', value: 'b' }, { name: 'chown', value: '1:2' }, { name: 'chmod', value: '755' }, { name: 'link', value: null }])
  assert.equal(hc?.kind, 'HEALTHCHECK')
  parseFails('FROM a\nCOPY --frm=b x y\n', /line 2: unknown flag: frm/)
  parseFails('FROM a\nHEALTHCHECK --interval=5 CMD true\n', /line 2: invalid value for --interval/)
  assert.equal(parseDuration('1m30s'), 90e9)
  assert.equal(parseDuration('500ms'), 500e6)
  assert.equal(parseDuration('5'), undefined)
})

test('exec and shell forms: JSON arrays, and anything else as a shell command', () => {
  const [, a, b, c, d] = steps('FROM a\nCMD ["echo", "hi"]\nCMD echo hi\nENTRYPOINT [not json\nSHELL ["/bin/bash", "-c"]\n')
  assert.deepEqual(a?.kind === 'CMD' ? a.command : undefined, { kind: 'exec', args: ['echo', 'hi'] })
  assert.deepEqual(b?.kind === 'CMD' ? b.command : undefined, { kind: 'shell', command: 'echo hi' })
  assert.deepEqual(c?.kind === 'ENTRYPOINT' ? c.command : undefined, { kind: 'shell', command: '[not json' })
  assert.deepEqual(d?.kind === 'SHELL' ? d.shell : undefined, ['/bin/bash', '-c'])
  parseFails('FROM a\nSHELL /bin/bash -c\n', /line 2: SHELL requires the arguments to be in JSON form/)
})

test('ENV and LABEL: key=value pairs with quotes and escapes, and the legacy one-pair form', () => {
  const [, env, old, label] = steps('FROM a\nENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog \\\n    MY_CAT=fluffy\nENV MY_VAR my-value with spaces\nLABEL "com.example.vendor"="ACME Incorporated" version=1.0\n')
  if (env?.kind !== 'ENV' || old?.kind !== 'ENV' || label?.kind !== 'LABEL') throw new Error('ENV ENV LABEL expected')
  const values = env.pairs.map((p) => [p.key, expandWord(p.value, new Map())])
  assert.deepEqual(values, [['MY_NAME', 'John Doe'], ['MY_DOG', 'Rex The Dog'], ['MY_CAT', 'fluffy']])
  assert.deepEqual(old.pairs, [{ key: 'MY_VAR', value: 'my-value with spaces' }])
  assert.deepEqual(label.pairs.map((p) => [expandWord(p.key, new Map()), expandWord(p.value, new Map())]), [['com.example.vendor', 'ACME Incorporated'], ['version', '1.0']])
})

test('variable substitution: $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}, ${VAR-word}, patterns, quotes and escapes', () => {
  const env = new Map([['FOO', '/bar'], ['EMPTY', ''], ['FILE', 'archive.tar.gz']])
  assert.equal(expandWord('$FOO', env), '/bar')
  assert.equal(expandWord('${FOO}/baz', env), '/bar/baz')
  assert.equal(expandWord('${MISSING:-default}', env), 'default')
  assert.equal(expandWord('${EMPTY:-default}', env), 'default')
  assert.equal(expandWord('${EMPTY-default}', env), '')
  assert.equal(expandWord('${FOO:+set}', env), 'set')
  assert.equal(expandWord('${MISSING:+set}', env), '')
  assert.equal(expandWord('${FILE%.gz}', env), 'archive.tar')
  assert.equal(expandWord('${FILE%%.*}', env), 'archive')
  assert.equal(expandWord('${FILE#*.}', env), 'tar.gz')
  assert.equal(expandWord('${FILE##*.}', env), 'gz')
  assert.equal(expandWord("'$FOO'", env), '$FOO', 'single quotes are literal')
  assert.equal(expandWord('"$FOO x"', env), '/bar x')
  assert.equal(expandWord('\\$FOO', env), '$FOO', 'an escaped dollar stays')
  assert.equal(expandWord('`$FOO', env, '`'), '$FOO', 'with the backtick escape')
  assert.throws(() => expandWord('${MISSING:?must be set}', env), /MISSING: must be set/)
  assert.deepEqual(expandWords('$PORTS 22', new Map([['PORTS', '80 443']])), ['80', '443', '22'], 'unquoted expansions split')
  assert.deepEqual(splitWords('a "b c" d\\ e'), ['a', '"b c"', 'd\\ e'])
})

test('syntax errors are refused with their line before anything runs', () => {
  parseFails('FROM a\nRUN true\nFOOBAR baz\n', /dockerfile parse error on line 3: unknown instruction: FOOBAR/)
  parseFails('RUN true\nFROM a\n', /line 1: no build stage in current context/)
  parseFails('FROM a b\n', /line 1: FROM requires either one or three arguments/)
  parseFails('FROM a\nCOPY onlyone\n', /line 2: COPY requires at least two arguments/)
  parseFails('FROM a AS x\nFROM b AS X\n', /line 2: duplicate name X/)
  parseFails('FROM a AS 1x\n', /invalid name for build stage/)
  parseFails('FROM a\nONBUILD ONBUILD RUN x\n', /Chaining ONBUILD/)
  parseFails('FROM a\nENV\n', /line 2: ENV requires at least one argument/)
  parseFails('FROM a\nRUN <<EOF\necho never ends\n', /unterminated heredoc EOF/)
  parseFails('# only a comment\n', /cannot be empty/)
})

test('COPY sources: globs match one segment as Go does; ../ cannot leave the context', () => {
  assert.ok(matchSegment('*.txt', 'a.txt'))
  assert.ok(!matchSegment('*.txt', 'a.txt.bak'))
  assert.ok(matchSegment('file?.[ch]', 'file1.c'))
  assert.ok(!matchSegment('[!a]*', 'abc'))
  assert.equal(cleanSource('/src/./app/'), 'src/app')
  assert.equal(cleanSource('.'), '')
  assert.equal(cleanSource('a/../b'), 'b')
  assert.throws(() => cleanSource('../etc/passwd'), (err: unknown) => hasCode(err, 'UNSAFE_PATH') && /forbidden path outside the build context: \.\.\/etc\/passwd/.test((err as Error).message))
  assert.throws(() => cleanSource('a/../../b'), (err: unknown) => hasCode(err, 'UNSAFE_PATH'))
})
