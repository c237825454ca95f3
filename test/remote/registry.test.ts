/**
 * The registry client against a real CNCF distribution registry (Debian's docker-registry 2.8)
 * with an htpasswd user, through the CLI as a user types it: login, push, pull, the article's
 * workflow, resume after SIGKILL (push and pull), a corrupting and failing proxy in front of the
 * registry, manifest lists by platform, zstd layers.
 */
import { describe, test, before, after, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cairn, cairnOk, CLI, tempDir, tarOf } from '../helpers/cairn.js'
import { missingDistributionTools, startDistribution, type Distribution } from '../helpers/distribution.js'
import { FaultProxy } from './faults.js'
import { archiveOf, randomLayer } from './images.js'
import { Registry } from '../../src/remote/client.js'
import { defaultRemoteConfig } from '../../src/remote/config.js'
import { MediaTypes } from '../../src/oci/mediatype.js'
import { digestOf } from '../../src/oci/digest.js'
import { Cairn, hasCode } from '../../src/index.js'

const USER = { username: 'alice', password: 'correct horse' }
const MiB = 1 << 20

describe('registry client against docker-registry (distribution 2.8)', () => {
  let reg: Distribution | undefined
  let proxy: FaultProxy | undefined
  let dir = ''
  let cleanup: () => Promise<void> = async () => undefined
  let env: NodeJS.ProcessEnv = {}
  let n = 0
  const skip = missingDistributionTools()

  /** A fresh store root. */
  const store = (): string => `${dir}/store-${n++}`

  before(async () => {
    const t = await tempDir('cairn-remote-')
    dir = t.dir
    cleanup = t.cleanup
    if (skip.length > 0) return
    reg = await startDistribution({ user: USER })
    proxy = new FaultProxy({ host: '127.0.0.1', port: reg.port })
    await proxy.start()
    // logged in to both addresses (the registry and the proxy in front of it)
    const auth = Buffer.from(`${USER.username}:${USER.password}`).toString('base64')
    await mkdir(`${dir}/docker`, { recursive: true })
    await writeFile(`${dir}/docker/config.json`, JSON.stringify({ auths: { [reg.host]: { auth }, [proxy.host]: { auth } } }))
    await writeFile(`${dir}/cairn.json`, JSON.stringify({ 'upload-chunk-size': MiB }))
    env = { ...process.env, DOCKER_CONFIG: `${dir}/docker`, CAIRN_CONFIG: `${dir}/cairn.json` }
  })
  after(async () => {
    await proxy?.stop()
    await reg?.stop()
    await cleanup()
  })

  const ready = (t: TestContext): boolean => {
    if (skip.length === 0) return true
    if (process.env['CI']) throw new Error(`missing ${skip.join(', ')}: scripts/ensure-deps.sh should have installed it`)
    t.skip(`missing ${skip.join(', ')} (run scripts/ensure-deps.sh as root)`)
    return false
  }

  const shortDiffIds = async (root: string, image: string): Promise<string[]> => {
    const [info] = JSON.parse((await cairnOk(root, ['inspect', image], { env })).stdout) as [{ RootFS: { Layers: string[] } }]
    return info.RootFS.Layers.map((d) => d.slice(7, 19))
  }

  test('login: a wrong password fails clearly and stores nothing; the right one is stored as Docker does; logout removes it', async (t) => {
    if (!ready(t)) return
    assert.ok(reg)
    const home = `${dir}/login-docker`
    const e = { ...env, DOCKER_CONFIG: home }
    const root = store()
    const bad = await cairn(root, ['login', '-u', USER.username, '-p', 'wrong', reg.host], { env: e })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /WARNING! Using --password via the CLI is insecure\. Use --password-stdin\./)
    assert.match(bad.stderr, /Error: login attempt to http:\/\/127\.0\.0\.1:\d+\/v2\/ failed with status: 401 Unauthorized/)
    assert.equal(existsSync(`${home}/config.json`), false)

    const ok = await cairn(root, ['login', '--username', USER.username, '--password-stdin', reg.host], { env: e, input: `${USER.password}\n` })
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^Login Succeeded$/m)
    assert.doesNotMatch(ok.stderr, /--password via the CLI/)
    assert.match(ok.stderr, /WARNING! Your password will be stored unencrypted in .*config\.json\./)
    const cfg = JSON.parse(await readFile(`${home}/config.json`, 'utf8')) as { auths: Record<string, { auth: string }> }
    assert.equal(Buffer.from(cfg.auths[reg.host]?.auth ?? '', 'base64').toString(), `${USER.username}:${USER.password}`)

    const again = await cairnOk(root, ['login', reg.host], { env: e })
    assert.match(again.stdout, /Authenticating with existing credentials\.\.\.\nLogin Succeeded/)

    const out = await cairnOk(root, ['logout', reg.host], { env: e })
    assert.equal(out.stdout, `Removing login credentials for ${reg.host}\n`)
    const after = JSON.parse(await readFile(`${home}/config.json`, 'utf8')) as { auths: Record<string, unknown> }
    assert.deepEqual(after.auths, {})
    assert.equal((await cairnOk(root, ['logout', reg.host], { env: e })).stdout, `Not logged in to ${reg.host}\n`)
    // without credentials the registry refuses a push
    await cairnOk(root, ['import', await tmpTar({ 'a.txt': 'a' }), `${reg.host}/nologin/x:1`], { env: e })
    const denied = await cairn(root, ['push', `${reg.host}/nologin/x:1`], { env: e })
    assert.equal(denied.code, 1)
    assert.match(denied.stderr, /unauthorized/)
  })

  const tmpTar = async (files: Record<string, string>): Promise<string> => {
    const p = `${dir}/tar-${n++}.tar`
    await writeFile(p, await tarOf(files))
    return p
  }

  test('the article: import a base, an image on top of it, tag, push, rmi -f, pull (base layer "Already exists")', async (t) => {
    if (!ready(t)) return
    assert.ok(reg)
    const root = store()
    await writeFile(`${dir}/base.tar`, await tarOf({ 'etc/os-release': 'NAME=cairn\n', 'bin/tool': 'x'.repeat(5000) }))
    await cairnOk(root, ['import', `${dir}/base.tar`, 'base:1.0'], { env })
    // the app image is the base's layer (as import stored it, uncompressed) plus one of its own
    const [baseInfo] = JSON.parse((await cairnOk(root, ['inspect', 'base:1.0'], { env })).stdout) as [{ RootFS: { Layers: string[] } }]
    const baseDiff = baseInfo.RootFS.Layers[0]
    assert.ok(baseDiff)
    const baseTar = await readFile(`${root}/blobs/sha256/${baseDiff.slice(7)}`)
    const topTar = await tarOf({ 'usr/bin/vim': 'vim'.repeat(3000) })
    await writeFile(`${dir}/app.tar`, await archiveOf([baseTar, topTar], 'ubuntuwithvim:1.0.0'))
    await cairnOk(root, ['load', '-i', `${dir}/app.tar`], { env })
    const id = (await cairnOk(root, ['images', '-q', 'ubuntuwithvim:1.0.0'], { env })).stdout.trim()
    const target = `${reg.host}/huzd/test:1.0.0`
    await cairnOk(root, ['tag', id, target], { env })

    const push = await cairnOk(root, ['push', target], { env })
    const lines = push.stdout.trim().split('\n')
    assert.equal(lines[0], `The push refers to repository [${reg.host}/huzd/test]`)
    const [baseId, topId] = await shortDiffIds(root, target)
    assert.ok(baseId && topId)
    // layers top first, as Docker lists them
    assert.deepEqual(lines.filter((l) => l.endsWith(': Preparing')), [`${topId}: Preparing`, `${baseId}: Preparing`])
    assert.ok(lines.includes(`${topId}: Pushed`) && lines.includes(`${baseId}: Pushed`), push.stdout)
    const last = lines.at(-1) ?? ''
    const m = /^1\.0\.0: digest: (sha256:[a-f0-9]{64}) size: (\d+)$/.exec(last)
    assert.ok(m, last)
    const digest = m[1] as string
    const size = Number(m[2])
    for (const l of lines) assert.match(l, /^(The push refers to repository \[.*\]|[a-f0-9]{12}: (Preparing|Waiting|Pushing|Pushed)|1\.0\.0: digest: .*)$/)

    // the digest is a repository digest of the image, as with Docker
    const digests = (await cairnOk(root, ['images', '--digests', '--format', '{{.Repository}} {{.Digest}}', `${reg.host}/huzd/test`], { env })).stdout
    assert.equal(digests.trim(), `${reg.host}/huzd/test ${digest}`)

    // a second push sends nothing and gives the same digest
    const again = await cairnOk(root, ['push', target], { env })
    assert.ok(again.stdout.includes(`${topId}: Layer already exists`) && again.stdout.includes(`${baseId}: Layer already exists`), again.stdout)
    assert.equal(again.stdout.trim().split('\n').at(-1), `1.0.0: digest: ${digest} size: ${size}`)

    const rmi = await cairnOk(root, ['rmi', '-f', id.slice(0, 3)], { env })
    assert.match(rmi.stdout, new RegExp(`Untagged: ${reg.host.replace(/\./g, '\\.')}/huzd/test@${digest}`))
    assert.match(rmi.stdout, new RegExp(`Deleted: sha256:${id}`))

    const pull = await cairnOk(root, ['pull', target], { env })
    const pl = pull.stdout.trim().split('\n')
    assert.equal(pl[0], '1.0.0: Pulling from huzd/test')
    const manifest = JSON.parse((await fetchManifest(reg, 'huzd/test', '1.0.0')).bytes.toString()) as { layers: { digest: string }[] }
    const [baseBlob, topBlob] = manifest.layers.map((l) => l.digest.slice(7, 19))
    assert.ok(pl.includes(`${baseBlob}: Already exists`), pull.stdout)
    assert.ok(pl.includes(`${topBlob}: Pull complete`), pull.stdout)
    assert.ok(!pl.includes(`${baseBlob}: Pull complete`))
    const order = ['Pulling fs layer', 'Downloading', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete']
    const topLines = pl.filter((l) => l.startsWith(`${topBlob}: `)).map((l) => l.slice(14))
    assert.deepEqual(topLines.filter((s) => order.includes(s)), order, pull.stdout)
    assert.equal(pl.at(-3), `Digest: ${digest}`)
    assert.equal(pl.at(-2), `Status: Downloaded newer image for ${target}`)
    assert.equal(pl.at(-1), target)
    const images = (await cairnOk(root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { env })).stdout
    assert.match(images, new RegExp(`${reg.host.replace(/\./g, '\\.')}/huzd/test:1\\.0\\.0 ${id.slice(0, 12)}`))
    // pulled again: nothing to do
    const up = await cairnOk(root, ['pull', '-q', target], { env })
    assert.equal(up.stdout, `${target}\n`)
    const upv = await cairnOk(root, ['pull', target], { env })
    assert.match(upv.stdout, new RegExp(`Status: Image is up to date for ${target.replace(/\./g, '\\.')}`))
    // and it saves and round-trips like any other image
    await cairnOk(root, ['save', '-o', `${dir}/pulled.tar`, target], { env })

    // cross-repository mount from the repository the layers were pushed to
    const other = `${reg.host}/team/vim:1`
    await cairnOk(root, ['tag', target, other], { env })
    const mount = await cairnOk(root, ['push', other], { env })
    assert.ok(mount.stdout.includes(`${topId}: Mounted from huzd/test`), mount.stdout)
    assert.ok(mount.stdout.includes(`${baseId}: Mounted from huzd/test`) || mount.stdout.includes(`${baseId}: Layer already exists`), mount.stdout)
    assert.equal(mount.stdout.trim().split('\n').at(-1), `1: digest: ${digest} size: ${size}`)
  })

  const fetchManifest = async (r: Distribution, repo: string, ref: string) => {
    const client = new Registry(r.host, { config: defaultRemoteConfig(), credentials: USER })
    try {
      return await client.repository(repo).manifest(ref)
    } finally {
      client.close()
    }
  }

  /** Pushes an image with one random layer of `size` bytes through the registry; returns its ID and layer blob. */
  const pushRandom = async (root: string, name: string, size: number): Promise<{ id: string; layer: string; layerSize: number }> => {
    assert.ok(reg)
    await writeFile(`${dir}/r${n}.tar`, await randomLayer(size))
    const id = (await cairnOk(root, ['import', `${dir}/r${n}.tar`, `${reg.host}/${name}`], { env })).stdout.trim()
    n++
    await cairnOk(root, ['push', `${reg.host}/${name}`], { env })
    const m = JSON.parse((await fetchManifest(reg, name.split(':')[0] as string, name.split(':')[1] ?? 'latest')).bytes.toString()) as { layers: { digest: string; size: number }[] }
    const layer = m.layers[0]
    assert.ok(layer)
    return { id, layer: layer.digest, layerSize: layer.size }
  }

  const spawnCairn = (root: string, args: string[]) => {
    const child = spawn(CLI, ['--root', root, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (b: Buffer) => { out += b.toString() })
    child.stderr.on('data', (b: Buffer) => { out += b.toString() })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, sig) => resolve({ code, signal: sig })))
    return { child, exited, output: () => out }
  }

  test('push killed with SIGKILL mid-upload resumes at the registry\'s offset and sends less', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    const root = store()
    const size = 6 * MiB
    await writeFile(`${dir}/kill-push.tar`, await randomLayer(size))
    const target = `${proxy.host}/kill/push:1`
    const id = (await cairnOk(root, ['import', `${dir}/kill-push.tar`, target], { env })).stdout.trim()
    // 1 MiB chunks (CAIRN_CONFIG); the proxy holds the fourth PATCH, and the client is killed
    proxy.reset({ stallUpload: { afterPatches: 3 } })
    const run = spawnCairn(root, ['push', target])
    await Promise.race([proxy.stalled, run.exited.then(() => { throw new Error(`push ended before the stall: ${run.output()}`) })])
    run.child.kill('SIGKILL')
    assert.equal((await run.exited).signal, 'SIGKILL')
    const firstRun = proxy.uploadBytes
    assert.ok(firstRun >= 3 * MiB, `first run sent ${firstRun}`)

    proxy.reset()
    const res = await cairnOk(root, ['push', target], { env })
    assert.match(res.stdout, /: Pushed$/m)
    const pushed = JSON.parse((await fetchManifest(reg, 'kill/push', '1')).bytes.toString()) as { layers: { size: number }[] }
    const blobSize = pushed.layers[0]?.size ?? 0
    assert.ok(blobSize > size, 'random data does not compress')
    assert.ok(proxy.uploadBytes > 0)
    assert.ok(proxy.uploadBytes <= blobSize - 3 * MiB + 64 * 1024, `resumed push re-sent ${proxy.uploadBytes} bytes of ~${blobSize}`)
    // what the registry assembled is the right blob: a fresh store pulls it and gets the same image
    const fresh = store()
    await cairnOk(fresh, ['pull', `${reg.host}/kill/push:1`], { env })
    assert.equal((await cairnOk(fresh, ['images', '-q', '--no-trunc'], { env })).stdout.trim(), `sha256:${id.replace(/^sha256:/, '')}`)
  })

  test('pull killed with SIGKILL mid-download resumes with a Range request from what is on disk', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    const src = store()
    const { id, layer, layerSize } = await pushRandom(src, 'kill/pull:1', 4 * MiB)
    const root = store()
    const target = `${proxy.host}/kill/pull:1`
    proxy.reset({ cutBlob: { digest: layer, bytes: 3 * MiB, stall: true } })
    const run = spawnCairn(root, ['pull', target])
    await Promise.race([proxy.stalled, run.exited.then(() => { throw new Error(`pull ended before the stall: ${run.output()}`) })])
    // give the client a moment to write what it got
    await new Promise((r) => setTimeout(r, 300))
    run.child.kill('SIGKILL')
    await run.exited
    const partial = `${root}/downloads/sha256-${layer.slice(7)}`
    assert.ok(existsSync(partial), 'the partial download is kept')

    proxy.reset()
    const res = await cairnOk(root, ['pull', target], { env })
    assert.match(res.stdout, /Pull complete/)
    const get = proxy.seen.find((s) => s.method === 'GET' && s.url.endsWith(layer))
    assert.ok(get, 'the layer was requested')
    assert.match(String(get.headers['range']), /^bytes=\d+-$/)
    assert.ok(proxy.blobBytes < layerSize - 2 * MiB, `resumed pull fetched ${proxy.blobBytes} of ${layerSize} bytes`)
    assert.equal((await cairnOk(root, ['images', '-q', '--no-trunc'], { env })).stdout.trim(), id)
    assert.equal(existsSync(partial), false, 'the download became the stored blob')
  })

  test('a registry that sends a corrupted blob: a clear error, and nothing is stored', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    const src = store()
    const { layer } = await pushRandom(src, 'bad/blob:1', 256 * 1024)
    const root = store()
    proxy.reset({ corruptBlob: layer })
    const r = await cairn(root, ['pull', `${proxy.host}/bad/blob:1`], { env })
    assert.equal(r.code, 1)
    assert.match(r.stderr, new RegExp(`Error: layer ${layer.slice(7, 19)}: .* sent a blob whose digest is sha256:[a-f0-9]{64}, not ${layer}`))
    assert.equal((await cairnOk(root, ['images', '-q'], { env })).stdout, '')
    assert.equal(existsSync(`${root}/blobs/sha256/${layer.slice(7)}`), false)
    assert.deepEqual(readdirSync(`${root}/downloads`).filter((f) => f.includes(layer.slice(7))), [])
    // the same pull without the fault works
    proxy.reset()
    await cairnOk(root, ['pull', `${proxy.host}/bad/blob:1`], { env })
  })

  test('5xx answers and dropped connections are retried, on pull and on push', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    const src = store()
    const { id, layer } = await pushRandom(src, 'flaky/img:1', 2 * MiB)
    const root = store()
    proxy.reset({
      failNext: { n: 2, status: 503, match: (m, u) => m === 'GET' && u.includes('/blobs/') },
      cutBlob: { digest: layer, bytes: MiB },
    })
    const res = await cairnOk(root, ['pull', `${proxy.host}/flaky/img:1`], { env })
    assert.match(res.stdout, /Pull complete/)
    assert.equal(proxy.seen.filter((s) => s.status === 503).length, 2)
    assert.ok(proxy.seen.some((s) => s.url.endsWith(layer) && s.headers['range'] !== undefined), 'the cut download went on with Range')
    assert.equal((await cairnOk(root, ['images', '-q', '--no-trunc'], { env })).stdout.trim(), id)

    // push: failures on HEAD, on the upload and on the manifest
    await cairnOk(root, ['import', await tmpTar({ 'f.txt': 'flaky push' }), `${proxy.host}/flaky/push:1`], { env })
    proxy.reset({ failNext: { n: 3, status: 500, match: (m) => m === 'PUT' || m === 'HEAD' } })
    const push = await cairnOk(root, ['push', `${proxy.host}/flaky/push:1`], { env })
    assert.match(push.stdout, /^1: digest: sha256:[a-f0-9]{64} size: \d+$/m)
    assert.equal(proxy.seen.filter((s) => s.status === 500).length, 3)
    // a registry that keeps failing: a clear error after the retries
    proxy.reset({ failNext: { n: 100, status: 503 } })
    const dead = await cairn(store(), ['pull', `${proxy.host}/flaky/img:1`], { env })
    assert.equal(dead.code, 1)
    assert.match(dead.stderr, /Error: .*(injected failure|unavailable)/i)
    proxy.reset()
  })

  test('push without chunking streams each layer as it is compressed; a registry refusing that gets the stored blob', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    // the default configuration: no upload chunk size
    const plainEnv = { ...env, CAIRN_CONFIG: `${dir}/none.json` }
    const root = store()
    await writeFile(`${dir}/stream.tar`, await randomLayer(3 * MiB))
    const id = (await cairnOk(root, ['import', `${dir}/stream.tar`, `${proxy.host}/stream/img:1`], { env: plainEnv })).stdout.trim()
    proxy.reset()
    const first = await cairnOk(root, ['push', `${proxy.host}/stream/img:1`], { env: plainEnv })
    assert.match(first.stdout, /: Pushed$/m)
    // one PATCH without Content-Range carried the whole compressed layer, then a PUT without a body
    const patches = proxy.seen.filter((x) => x.method === 'PATCH')
    assert.equal(patches.length, 1)
    assert.equal(patches[0]?.headers['content-range'], undefined)
    assert.ok(proxy.uploadBytes > 3 * MiB, `sent ${proxy.uploadBytes}`)
    const fresh = store()
    await cairnOk(fresh, ['pull', `${reg.host}/stream/img:1`], { env: plainEnv })
    assert.equal((await cairnOk(fresh, ['images', '-q', '--no-trunc'], { env: plainEnv })).stdout.trim(), id)

    // a registry that refuses the streamed PATCH: the push goes on with the blob the compression stored
    const other = store()
    await writeFile(`${dir}/stream2.tar`, await randomLayer(2 * MiB))
    const id2 = (await cairnOk(other, ['import', `${dir}/stream2.tar`, `${proxy.host}/stream/img:2`], { env: plainEnv })).stdout.trim()
    proxy.reset({ failNext: { n: 1, status: 405, match: (m) => m === 'PATCH' } })
    const second = await cairnOk(other, ['push', `${proxy.host}/stream/img:2`], { env: plainEnv })
    assert.match(second.stdout, /: Pushed$/m)
    assert.equal(proxy.seen.filter((x) => x.status === 405).length, 1)
    assert.ok(proxy.seen.some((x) => x.method === 'PUT' && x.url.includes('/blobs/uploads/')), 'the stored blob was uploaded')
    const fresh2 = store()
    await cairnOk(fresh2, ['pull', `${reg.host}/stream/img:2`], { env: plainEnv })
    assert.equal((await cairnOk(fresh2, ['images', '-q', '--no-trunc'], { env: plainEnv })).stdout.trim(), id2)
    // pushed again: the same compressed bytes, so the same manifest, and nothing sent
    proxy.reset()
    const again = await cairnOk(other, ['push', `${proxy.host}/stream/img:2`], { env: plainEnv })
    assert.match(again.stdout, /: Layer already exists$/m)
    assert.equal(proxy.uploadBytes, 0)
    proxy.reset()
  })

  test('a push aborted while its layer streams ends ABORTED, leaves no partial file, and the next push works', async (t) => {
    if (!ready(t)) return
    assert.ok(reg && proxy)
    const plainEnv = { ...env, CAIRN_CONFIG: `${dir}/none.json` }
    const root = store()
    await writeFile(`${dir}/abort.tar`, await randomLayer(8 * MiB))
    const target = `${proxy.host}/abort/img:1`
    await cairnOk(root, ['import', `${dir}/abort.tar`, target], { env: plainEnv })
    // the proxy holds the streamed PATCH (it reads the body, and never answers)
    proxy.reset({ stallUpload: { afterPatches: 0 } })
    const lib = await Cairn.open({ root })
    try {
      const ac = new AbortController()
      void proxy.stalled.then(() => setTimeout(() => ac.abort(), 300))
      await assert.rejects(lib.push(target, { signal: ac.signal, env: plainEnv, config: defaultRemoteConfig() }), (err: unknown) => hasCode(err, 'ABORTED'))
      assert.deepEqual(readdirSync(`${root}/ingest`), [], 'no half-written blob is left')
    } finally {
      lib.close()
    }
    proxy.reset()
    const r = await cairnOk(root, ['push', target], { env: plainEnv })
    assert.match(r.stdout, /: Pushed$/m)
    proxy.reset()
  })

  test('pull resolves a manifest list to the platform asked for', async (t) => {
    if (!ready(t)) return
    assert.ok(reg)
    const root = store()
    const ids: Record<string, string> = {}
    const descs: { mediaType: string; digest: string; size: number; platform: { os: string; architecture: string; variant?: string } }[] = []
    for (const [arch, variant] of [['amd64', undefined], ['arm64', 'v8']] as const) {
      const plat = `linux/${arch}${variant ? `/${variant}` : ''}`
      ids[arch] = (await cairnOk(root, ['import', '--platform', plat, await tmpTar({ 'arch.txt': arch }), `${reg.host}/multi/img:${arch}`], { env })).stdout.trim()
      const out = await cairnOk(root, ['push', `${reg.host}/multi/img:${arch}`], { env })
      const m = /digest: (sha256:[a-f0-9]{64}) size: (\d+)/.exec(out.stdout)
      assert.ok(m)
      descs.push({ mediaType: MediaTypes.DockerManifest, digest: m[1] as string, size: Number(m[2]), platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) } })
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.DockerManifestList, manifests: descs }, null, 3))
    const client = new Registry(reg.host, { config: defaultRemoteConfig(), credentials: USER })
    try {
      await client.repository('multi/img').putManifest('latest', index, MediaTypes.DockerManifestList)
    } finally {
      client.close()
    }
    const fresh = store()
    const arm = await cairnOk(fresh, ['pull', '--platform', 'linux/arm64', `${reg.host}/multi/img:latest`], { env })
    assert.match(arm.stdout, new RegExp(`Digest: ${digestOf(index)}`))
    assert.equal((await cairnOk(fresh, ['images', '-q', '--no-trunc', `${reg.host}/multi/img:latest`], { env })).stdout.trim(), ids['arm64'])
    const fresh2 = store()
    await cairnOk(fresh2, ['pull', '--platform', 'linux/amd64', `${reg.host}/multi/img`], { env })
    assert.equal((await cairnOk(fresh2, ['images', '-q', '--no-trunc'], { env })).stdout.trim(), ids['amd64'])
    const none = await cairn(store(), ['pull', '--platform', 'linux/s390x', `${reg.host}/multi/img:latest`], { env })
    assert.equal(none.code, 1)
    assert.match(none.stderr, /no matching manifest for linux\/s390x in the manifest list entries/)
  })

  test('push --compression zstd sends OCI zstd layers; --all-tags pushes every tag; pull -a fetches them', async (t) => {
    if (!ready(t)) return
    assert.ok(reg)
    const root = store()
    await cairnOk(root, ['import', '--oci', await tmpTar({ 'z.txt': 'zstd '.repeat(1000) }), `${reg.host}/zstd/img:1`], { env })
    await cairnOk(root, ['tag', `${reg.host}/zstd/img:1`, `${reg.host}/zstd/img:2`], { env })
    const out = await cairnOk(root, ['push', '--compression', 'zstd', '--all-tags', `${reg.host}/zstd/img`], { env })
    assert.match(out.stdout, /^1: digest: sha256:[a-f0-9]{64} size: \d+$/m)
    assert.match(out.stdout, /^2: digest: sha256:[a-f0-9]{64} size: \d+$/m)
    const m = JSON.parse((await fetchManifest(reg, 'zstd/img', '1')).bytes.toString()) as { mediaType: string; layers: { mediaType: string }[] }
    assert.equal(m.mediaType, MediaTypes.OciManifest)
    assert.equal(m.layers[0]?.mediaType, MediaTypes.OciLayerZstd)
    const fresh = store()
    const pulled = await cairnOk(fresh, ['pull', '-a', `${reg.host}/zstd/img`], { env })
    assert.match(pulled.stdout, /^1: Pulling from zstd\/img$/m)
    assert.match(pulled.stdout, /^2: Pulling from zstd\/img$/m)
    assert.equal(pulled.stdout.trim().split('\n').at(-1), `${reg.host}/zstd/img`)
    const tags = (await cairnOk(fresh, ['images', '--format', '{{.Tag}}'], { env })).stdout.trim().split('\n').sort()
    assert.deepEqual(tags, ['1', '2'])
  })
})
