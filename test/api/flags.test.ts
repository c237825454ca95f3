/**
 * The run/create flag parsers against Docker 28's CLI: every message below is what
 * `docker create FLAG VALUE busybox` printed for the same value before it tried the daemon.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBytes, parseHealthFlags, parseLabels, parseMemorySwap, parseMountFlag, parsePublish, parseRamBytes, parseRestartPolicy, readLineFiles, resolveEnv } from '../../src/api/flags.js'

const message = (fn: () => unknown): string => {
  try {
    fn()
  } catch (e) {
    return (e as Error).message
  }
  return 'no error'
}

describe('flags as Docker reads them', () => {
  test('sizes: go-units\' number and suffix, Docker\'s errors', () => {
    assert.equal(parseBytes('1kb', '-m, --memory'), 1024)
    assert.equal(parseBytes('1KiB', '-m, --memory'), 1024)
    assert.equal(parseBytes('2b', '-m, --memory'), 2)
    assert.equal(parseBytes('1 m', '-m, --memory'), 2 ** 20)
    assert.equal(parseBytes('1e3', '-m, --memory'), 1000)
    assert.equal(parseBytes('1.5g', '-m, --memory'), 1.5 * 2 ** 30)
    assert.equal(parseMemorySwap('-1'), -1)
    const m = (v: string): string => message(() => parseBytes(v, '-m, --memory'))
    assert.equal(m('1x'), 'invalid argument "1x" for "-m, --memory" flag: invalid suffix: \'x\'')
    assert.equal(m('1KX'), 'invalid argument "1KX" for "-m, --memory" flag: invalid suffix: \'kx\'')
    assert.equal(m('1kbb'), 'invalid argument "1kbb" for "-m, --memory" flag: invalid suffix: \'kbb\'')
    assert.equal(m('1ki'), 'invalid argument "1ki" for "-m, --memory" flag: invalid suffix: \'ki\'')
    assert.equal(m('1bb'), 'invalid argument "1bb" for "-m, --memory" flag: invalid suffix: \'bb\'')
    assert.equal(m('1abcd'), 'invalid argument "1abcd" for "-m, --memory" flag: invalid suffix: \'abcd\'')
    assert.equal(m('x'), 'invalid argument "x" for "-m, --memory" flag: invalid size: \'x\'')
    assert.equal(m('1.5.5m'), 'invalid argument "1.5.5m" for "-m, --memory" flag: strconv.ParseFloat: parsing "1.5.5": invalid syntax')
    assert.equal(message(() => parseMemorySwap('-2')), 'invalid argument "-2" for "--memory-swap" flag: invalid size: \'-2\'')
    assert.equal(message(() => parseMemorySwap('1Q')), 'invalid argument "1Q" for "--memory-swap" flag: invalid suffix: \'q\'')
    assert.equal(parseRamBytes('1Q'), undefined)
    assert.equal(parseRamBytes('3MB'), 3 * 2 ** 20)
  })

  test('--mount: CSV quoting with Go\'s line and column, key=value fields', () => {
    const m = (v: string): string => message(() => parseMountFlag(v))
    assert.equal(m('type=bind,src="a,b'), 'invalid argument "type=bind,src="a,b" for "--mount" flag: parse error on line 1, column 15: bare " in non-quoted-field')
    assert.equal(m('type=bind,"src=a"x'), 'invalid argument "type=bind,"src=a"x" for "--mount" flag: parse error on line 1, column 17: extraneous or missing " in quoted-field')
    assert.equal(m('type=bind,"src=a'), 'invalid argument "type=bind,"src=a" for "--mount" flag: parse error on line 1, column 17: extraneous or missing " in quoted-field')
    assert.equal(m('type=volume,target=/a,volume-nocopy=maybe'), 'invalid argument "type=volume,target=/a,volume-nocopy=maybe" for "--mount" flag: invalid value for volume-nocopy: maybe')
    assert.equal(m('type=tmpfs,target=/a,tmpfs-size=abc'), 'invalid argument "type=tmpfs,target=/a,tmpfs-size=abc" for "--mount" flag: invalid value for tmpfs-size: abc')
    assert.equal(m('type=tmpfs,target=/a,tmpfs-mode=999'), 'invalid argument "type=tmpfs,target=/a,tmpfs-mode=999" for "--mount" flag: invalid value for tmpfs-mode: 999')
    assert.equal(m('type=tmpfs,target=/a,foo=1'), 'invalid argument "type=tmpfs,target=/a,foo=1" for "--mount" flag: unexpected key \'foo\' in \'foo=1\'')
    assert.equal(m('type=tmpfs,target=/a,junk'), 'invalid argument "type=tmpfs,target=/a,junk" for "--mount" flag: invalid field \'junk\' must be a key=value pair')
    // a quoted field may hold commas and doubled quotes
    assert.deepEqual(parseMountFlag('type=volume,"target=/a,b""c",src=x,volume-label=k,volume-opt=o=v=w,volume-driver=local,ro=0'),
      { type: 'volume', target: '/a,b"c', source: 'x', readonly: false, labels: { k: '' }, driverOptions: { o: 'v=w' }, driver: 'local' })
    assert.deepEqual(parseMountFlag('type=tmpfs,dst=/t//,tmpfs-size=1m,tmpfs-mode=1770,readonly'), { type: 'tmpfs', target: '/t', readonly: true, size: 2 ** 20, mode: 0o1770 })
  })

  test('-p: the host address is every field before the last two', () => {
    assert.deepEqual(parsePublish('[::1]:8080:80/udp'), [{ containerPort: 80, protocol: 'udp', hostIp: '::1', hostPort: 8080 }])
    assert.deepEqual(parsePublish('::1:8080:80'), [{ containerPort: 80, protocol: 'tcp', hostIp: '::1', hostPort: 8080 }])
    assert.deepEqual(parsePublish('0.0.0.0::81'), [{ containerPort: 81, protocol: 'tcp', hostIp: '', hostPort: 0 }])
    assert.equal(message(() => parsePublish('a:b:c:d')), 'invalid IP address: a:b')
    assert.equal(message(() => parsePublish('1.2.3:80:80')), 'invalid IP address: 1.2.3')
    assert.equal(message(() => parsePublish('80/xyz')), 'invalid proto: xyz')
    assert.equal(message(() => parsePublish(':')), 'no port specified: :<empty>')
    assert.equal(message(() => parsePublish('8000-8002:80-81')), 'invalid ranges specified for container and host Ports: 80-81 and 8000-8002')
  })

  test('--restart and the health flags', () => {
    assert.equal(message(() => parseRestartPolicy('on-failure:x')), 'invalid restart policy format: maximum retry count must be an integer')
    assert.equal(message(() => parseRestartPolicy('a:b:c')), 'invalid restart policy format: maximum retry count must be an integer')
    assert.equal(message(() => parseRestartPolicy(':3')), 'invalid restart policy format: no policy provided before colon')
    assert.deepEqual(parseRestartPolicy('on-failure:'), { name: 'on-failure' })
    assert.equal(message(() => parseHealthFlags({ healthInterval: '5' })), 'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"')
    assert.equal(message(() => parseHealthFlags({ healthTimeout: '1.5' })), 'invalid argument "1.5" for "--health-timeout" flag: time: missing unit in duration "1.5"')
    assert.equal(message(() => parseHealthFlags({ healthStartPeriod: 'x' })), 'invalid argument "x" for "--health-start-period" flag: time: invalid duration "x"')
    assert.deepEqual(parseHealthFlags({ healthCmd: 'true', healthInterval: '1m30s', healthStartInterval: '500ms', healthRetries: '2' }),
      { test: ['CMD-SHELL', 'true'], interval: 90_000, startInterval: 500, retries: 2 })
    assert.equal(parseHealthFlags({ healthInterval: '0s' }), undefined)
    assert.deepEqual(parseHealthFlags({ noHealthcheck: true }), { test: ['NONE'] })
  })

  test('-e, -l, --env-file and --label-file', async () => {
    assert.deepEqual(resolveEnv(['A=1', 'B', 'C'], { B: 'from-client' }), ['A=1', 'B=from-client', 'C'])
    assert.deepEqual(parseLabels(['a=1', 'b', 'a=2=3']), { a: '2=3', b: '' })
    assert.equal(message(() => parseLabels(['=a'])), 'invalid label \'=a\': empty name')
    const dir = await mkdtemp(join(tmpdir(), 'cairn-flags-'))
    try {
      await writeFile(join(dir, 'env'), '# comment\n\n  A=1\r\nB\nC=x y\n')
      await writeFile(join(dir, 'bad'), 'A B=1\n')
      assert.deepEqual(await readLineFiles([join(dir, 'env')]), ['A=1', 'B', 'C=x y'])
      await assert.rejects(readLineFiles([join(dir, 'bad')]), { message: 'variable \'A B\' contains whitespaces' })
      await assert.rejects(readLineFiles([join(dir, 'none')]), { message: `open ${join(dir, 'none')}: no such file or directory` })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
