/**
 * `run` and `create` pull an image the store does not have, as Docker does (`--pull missing`,
 * the default; `always`; `never`), from Cairn's own registry on loopback.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cairn, cairnOk, tempDir } from '../helpers/cairn.js'
import { serveProcess } from '../registry/helpers.js'
import { containerStore, removeAllContainers, requireContainers } from './helpers.js'

test('run and create pull a missing image first (Docker\'s --pull missing|always|never)', async (t) => {
  if (!(await requireContainers(t))) return
  const src = await containerStore('overlay')
  const { dir, cleanup } = await tempDir('cairn-autopull-')
  const reg = await serveProcess(`${dir}/registry`)
  const roots = [`${dir}/a`, `${dir}/b`, `${dir}/c`]
  try {
    const host = new URL(reg.url).host
    const image = `${host}/auto/busybox:1`
    await src.cliOk(['tag', 'busybox', image])
    await src.cliOk(['push', '-q', image])

    // missing: the message, the pull's progress on stderr, then the container's own output
    const [a, b, c] = roots as [string, string, string]
    const first = await cairn(a, ['run', '--rm', '--network', 'none', image, 'sh', '-c', 'echo pulled'])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.stdout, 'pulled\n')
    assert.match(first.stderr, new RegExp(`^Unable to find image '${image.replace(/[.]/g, '\\.')}' locally\n`))
    assert.match(first.stderr, /Pull complete/)
    assert.match(first.stderr, /Status: Downloaded newer image for /)
    // present now: no pull
    const second = await cairnOk(a, ['run', '--rm', '--network', 'none', image, 'true'])
    assert.equal(second.stderr, '')
    // always: pulls again (the layers are there already)
    const always = await cairnOk(a, ['run', '--rm', '--pull', 'always', '--network', 'none', image, 'true'])
    assert.doesNotMatch(always.stderr, /Unable to find image/)
    assert.match(always.stderr, /Image is up to date|Already exists/)

    // never: Docker's error, nothing created
    const never = await cairn(b, ['run', '--rm', '--pull', 'never', image, 'true'])
    assert.equal(never.code, 125)
    assert.match(never.stderr, /No such image/)
    const bad = await cairn(b, ['run', '--pull', 'sometimes', image, 'true'])
    assert.equal(bad.code, 125)
    assert.match(bad.stderr, /invalid pull policy/)

    // create pulls too, and prints only the container ID on stdout
    const created = await cairn(c, ['create', image, 'true'])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /^[0-9a-f]{64}\n$/)
    assert.match(created.stderr, /Unable to find image/)
    // an image that is nowhere: the pull's error, exit 125
    const nowhere = await cairn(c, ['run', `${host}/auto/absent:1`, 'true'])
    assert.equal(nowhere.code, 125)
    assert.match(nowhere.stderr, /Unable to find image/)
    assert.match(nowhere.stderr, /Error: .*(not found|unknown)/i)
  } finally {
    for (const r of roots) await removeAllContainers(r).catch(() => undefined)
    await reg.stop()
    await src.cleanup()
    await cleanup()
  }
})
