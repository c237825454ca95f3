/**
 * How `cairn` starts (bin/cairn, src/cli/launch.cts, the standby monitor of `run`): the pieces
 * that make a command start fast must never change what it does.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { extraCertificates } from '../../src/remote/config.js'
import { cairn, cairnOk, tarOf, tempDir } from '../helpers/cairn.js'
import { requireContainers } from '../container/helpers.js'

const CACHE_DIR = fileURLToPath(new URL('../../../build/cli/.v8cache/', import.meta.url))

test('bin/cairn keeps NODE_EXTRA_CA_CERTS away from Node.js start-up and hands it on as CAIRN_EXTRA_CA_CERTS', async () => {
  const { dir, cleanup } = await tempDir()
  try {
    // Node.js warns at start-up about an unreadable NODE_EXTRA_CA_CERTS: the command must not
    const r = await cairnOk(`${dir}/store`, ['images'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: `${dir}/missing.pem` } })
    assert.doesNotMatch(r.stderr, /extra certs/i)
    assert.match(r.stdout, /^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n$/)
    // the registry client reads the file itself (and ignores an unreadable one, as Node.js does)
    writeFileSync(`${dir}/ca.pem`, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    assert.deepEqual(extraCertificates({ CAIRN_EXTRA_CA_CERTS: `${dir}/ca.pem` }), [readFileSync(`${dir}/ca.pem`, 'utf8')])
    assert.deepEqual(extraCertificates({ CAIRN_EXTRA_CA_CERTS: `${dir}/missing.pem` }), [])
    assert.deepEqual(extraCertificates({}), [])
  } finally {
    await cleanup()
  }
})

test('the code cache: written per command word, and a damaged one is replaced, not trusted', async (t) => {
  if (typeof (await import('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function') {
    t.skip('this Node.js has module.enableCompileCache(), which keeps its own cache')
    return
  }
  const { dir, cleanup } = await tempDir()
  try {
    const root = `${dir}/store`
    await cairnOk(root, ['import', '-', 'cached:1'], { input: await tarOf({ 'a.txt': 'a' }) })
    await cairnOk(root, ['history', 'cached:1'])
    const files = readdirSync(CACHE_DIR).filter((f) => f.startsWith('main.cjs.history.') && !f.endsWith('.tmp'))
    assert.equal(files.length, 1, `one cache file for "history": ${files.join(', ')}`)
    const file = `${CACHE_DIR}${files[0] as string}`
    assert.ok(readFileSync(file).length > 1000)
    // garbage in place of the cache: V8 rejects it, the command works, the cache is written again
    const garbage = Buffer.alloc(4096, 0x5a)
    writeFileSync(file, garbage)
    const r = await cairnOk(root, ['history', 'cached:1'])
    assert.match(r.stdout, /^IMAGE +CREATED +CREATED BY +SIZE +COMMENT\n/)
    assert.ok(!readFileSync(file).equals(garbage), 'a rejected cache is replaced')
    // the run that writes a cache keeps every function's bytecode with a V8 flag of its own, set back
    // before the cache is made: a cache carrying that flag's hash would be refused (and written
    // again) at every later start. Asked of the command itself (CAIRN_DEBUG): other test files
    // run `history` meanwhile, and one that started while the garbage was there writes the file too
    const next = await cairnOk(root, ['history', 'cached:1'], { env: { ...process.env, CAIRN_DEBUG: '1' } })
    assert.ok(next.stderr.includes(`code cache ${files[0] as string}: accepted`), `the cache written is accepted next time: ${next.stderr}`)
  } finally {
    await cleanup()
  }
})

test('run: the standby monitor serves an attached run, and one not needed goes away', async (t) => {
  if (!(await requireContainers(t))) return
  const { dir, cleanup } = await tempDir()
  const mark = `cairn-standby-test-${process.pid}-${Date.now()}`
  const env = { ...process.env, CAIRN_TEST_MARK: mark }
  /** Processes that carry this test's mark in their environment. */
  const marked = (): number[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/environ`, 'utf8').includes(mark)
    } catch {
      return false
    }
  }).map(Number)
  const settle = async (): Promise<number[]> => {
    for (let i = 0; i < 50 && marked().length > 0; i++) await sleep(100)
    return marked()
  }
  try {
    const root = `${dir}/store`
    // an image that does not exist: the standby started for it ends with the command
    const missing = await cairn(root, ['run', '--rm', '--pull', 'never', 'no-such-image:1', 'true'], { env })
    assert.equal(missing.code, 125)
    assert.match(missing.stderr, /No such image/)
    assert.deepEqual(await settle(), [])
    // an attached run: output split by stream, exit code passed through, nothing left running
    await cairnOk(root, ['import', '-c', 'CMD ["sh"]', '-', 'img:1'], { input: readFileSync((await import('../helpers/rootfs.js').then((m) => m.busyboxRootfsTar()))) })
    const r = await cairn(root, ['run', '--rm', '--network', 'none', 'img:1', 'sh', '-c', 'echo out; echo err >&2; exit 7'], { env })
    assert.equal(r.code, 7)
    assert.equal(r.stdout, 'out\n')
    assert.equal(r.stderr, 'err\n')
    assert.deepEqual(await settle(), [])
    assert.equal((await cairnOk(root, ['ps', '-aq'])).stdout, '')
  } finally {
    await cleanup()
  }
})
