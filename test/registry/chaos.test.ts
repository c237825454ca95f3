/**
 * Pushes racing garbage collection, as an operator would run them: 22 `cairn push` processes of
 * overlapping images (a shared base layer, some tags pushed twice: with the same image and with
 * different ones; four images pushed before and untagged as the round starts, so that gc deletes them
 * while the pushes send them again) to a real `cairn registry serve`, while `cairn registry gc
 * --grace-period 0s --delete-untagged` runs in a loop on the same root and the server runs its own gc
 * every two seconds.
 * No push may fail because gc ran; every tag a push reported pulls complete and verified, naming one
 * of the digests its pushes reported; `cairn registry check` finds nothing.
 *
 * Then the same with the registry SIGKILLed (and restarted on the same root) and gc processes SIGKILLed
 * at random moments: pushes cut by a kill are retried, and then the same must hold.
 *
 * Also: `cairn push` sends its manifest again when the registry's tag names a manifest that is gone.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { writeFile, rm, mkdir, unlink } from 'node:fs/promises'
import { buffer } from 'node:stream/consumers'
import { gzipSync } from 'node:zlib'
import { after, before, describe, it } from 'node:test'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'
import { hostPlatform } from '../../src/oci/types.js'
import { CLI, cairn, cairnOk, tarOf, tempDir } from '../helpers/cairn.js'
import type { RunResult } from '../helpers/exec.js'
import { checkManifest } from './consistency.js'
import { request, serveProcess, type ServeProcess } from './helpers.js'

/**
 * Rounds of each scenario (the race, the kills): one by default, to keep the suite short;
 * CAIRN_CHAOS_ROUNDS=N runs N of each, for a soak (a round takes some tens of seconds, more on a
 * loaded machine).
 */
const ROUNDS_ENV = Number.parseInt(process.env['CAIRN_CHAOS_ROUNDS'] ?? '', 10)
const ITERATIONS = Number.isSafeInteger(ROUNDS_ENV) && ROUNDS_ENV > 0 ? ROUNDS_ENV : 1
const KILL_ROUNDS = ITERATIONS
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

interface TestImage {
  name: string
  /** gzip-compressed layer tars, bottom first, and their diffIDs */
  layers: { gz: Buffer; diffId: string }[]
}

/** A `docker save` archive of several images (gzip layers, stored as they are), each with its tags. */
async function archive(images: { image: TestImage; tags: string[] }[]): Promise<Buffer> {
  const p = hostPlatform()
  const mtime = 1_704_067_200
  const entries: TarEntryInput[] = []
  const file = (path: string, body: Buffer): TarEntryInput => ({ header: { path, type: 'file', mode: 0o644, size: body.length, mtime }, body })
  const written = new Set<string>()
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = []
  for (const { image, tags } of images) {
    const config = Buffer.from(JSON.stringify({
      architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}), os: 'linux',
      config: { Cmd: ['/bin/sh'], Labels: { image: image.name } }, created: '2024-01-01T00:00:00Z',
      history: image.layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
      rootfs: { type: 'layers', diff_ids: image.layers.map((l) => l.diffId) },
    }))
    const configName = `${sha(config).slice(7)}.json`
    if (!written.has(configName)) entries.push(file(configName, config))
    written.add(configName)
    const paths: string[] = []
    for (const l of image.layers) {
      const dir = l.diffId.slice(7, 39)
      if (!written.has(dir)) {
        entries.push({ header: { path: `${dir}/`, type: 'directory', mode: 0o755, mtime } })
        entries.push(file(`${dir}/layer.tar`, l.gz))
      }
      written.add(dir)
      paths.push(`${dir}/layer.tar`)
    }
    manifest.push({ Config: configName, RepoTags: tags, Layers: paths })
  }
  entries.push(file('manifest.json', Buffer.from(JSON.stringify(manifest))))
  return buffer(writeTar(entries))
}

async function layer(name: string, size: number): Promise<{ gz: Buffer; diffId: string }> {
  const tar = await tarOf({ [`data/${name}.bin`]: randomBytes(size).toString('latin1') })
  return { gz: gzipSync(tar), diffId: sha(tar) }
}

/** Eight images over a shared base layer; the last two also share a middle one. */
async function makeImages(): Promise<TestImage[]> {
  const base = await layer('base', 96 << 10)
  const mid = await layer('mid', 32 << 10)
  const out: TestImage[] = []
  for (let i = 0; i < 8; i++) {
    const own = await layer(`img${i}`, (8 + i) << 10)
    out.push({ name: `img${i}`, layers: i >= 6 ? [base, mid, own] : [base, own] })
  }
  return out
}

interface Push {
  /** The local store it is pushed from (a name can only name one image per store). */
  store: number
  ref: string
  image: number
}

/** 22 pushes over three repositories: tags pushed twice with the same image and with different ones, mounts across repositories. */
function plan(): Push[] {
  const p: Push[] = []
  for (let i = 0; i < 8; i++) p.push({ store: 0, ref: `chaos/a:t${i}`, image: i })
  // x0, x1, x2 get two (x0 three) different images: the losers become untagged, gc deletes them
  for (let i = 0; i < 6; i++) p.push({ store: i < 3 ? 0 : 1, ref: `chaos/b:x${i % 3}`, image: i })
  p.push({ store: 2, ref: 'chaos/b:x0', image: 7 })
  // the same tag and image twice at once, from one store; two images on one tag from two stores
  p.push({ store: 0, ref: 'chaos/c:dup', image: 6 }, { store: 0, ref: 'chaos/c:dup', image: 6 })
  p.push({ store: 0, ref: 'chaos/c:same', image: 6 }, { store: 1, ref: 'chaos/c:same', image: 7 })
  p.push({ store: 0, ref: 'chaos/c:m2', image: 2 }, { store: 1, ref: 'chaos/c:r0', image: 0 }, { store: 2, ref: 'chaos/c:r1', image: 1 })
  return p
}

interface World {
  dir: string
  host: string
  stores: string[]
  env: NodeJS.ProcessEnv
  config: string
}

/** A registry port, three local stores loaded with the images under the names the plan pushes. */
async function setup(pushes: readonly Push[]): Promise<World & { cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('cairn-registry-chaos-')
  // the port stays the same for every registry started here (the names pushed carry it)
  const probe = await serveProcess(`${dir}/probe`, ['--access-log', 'none'])
  const host = new URL(probe.url).host
  await probe.stop()
  await rm(`${dir}/probe`, { recursive: true, force: true })
  const images = await makeImages()
  const env = { ...process.env, DOCKER_CONFIG: `${dir}/docker`, CAIRN_CONFIG: `${dir}/cairn.json` }
  await mkdir(`${dir}/docker`)
  await writeFile(`${dir}/cairn.json`, '{}')
  const stores = [0, 1, 2].map((i) => `${dir}/store${i}`)
  for (const [s, store] of stores.entries()) {
    const tagsOf = new Map<number, string[]>()
    for (const p of pushes) if (p.store === s) tagsOf.set(p.image, [...new Set([...(tagsOf.get(p.image) ?? []), `${host}/${p.ref}`])])
    if (tagsOf.size === 0) continue
    const file = `${dir}/images${s}.tar`
    await writeFile(file, await archive([...tagsOf].map(([i, tags]) => ({ image: images[i] as TestImage, tags }))))
    await cairnOk(store, ['load', '-q', '-i', file], { env })
    await unlink(file)
  }
  // the server's own gc, as aggressive as the command's
  const config = `${dir}/registry.yaml`
  await writeFile(config, 'gc:\n  interval: 2s\n  gracePeriod: 0s\n  deleteUntagged: true\nlog:\n  access: none\n')
  return { dir, host, stores, env, config, cleanup }
}

/** `cairn registry gc --grace-period 0s --delete-untagged` again and again until stopped. */
interface GcStats {
  runs: number
  deleted: number
  killed: number
  /** Runs refused because the server's own gc held the lock. */
  busy: number
}

function gcLoop(world: World, root: string, opts: { killAtRandom?: boolean } = {}): { stop: () => Promise<GcStats> } {
  let running = true
  let runs = 0
  let deleted = 0
  let killed = 0
  let busy = 0
  let lastRunMs = 300
  let failed: unknown
  const loop = (async () => {
    while (running) {
      const c = spawn(CLI, ['registry', 'gc', '--root', root, '--grace-period', '0s', '--delete-untagged', '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'], env: world.env })
      let out = ''
      let err = ''
      c.stdout?.on('data', (b: Buffer) => (out += b.toString()))
      c.stderr?.on('data', (b: Buffer) => (err += b.toString()))
      // half the runs (every run until one was killed) are killed at a random moment of the time a
      // whole run took last, so that kills land inside runs however fast this machine runs them
      const started = Date.now()
      const killer = opts.killAtRandom && (killed === 0 || Math.random() < 0.5)
        ? setTimeout(() => c.kill('SIGKILL'), (0.1 + 0.8 * Math.random()) * lastRunMs)
        : undefined
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => c.once('close', (cd, sg) => resolve([cd, sg])))
      if (killer) clearTimeout(killer)
      if (signal === 'SIGKILL') killed++
      else if (code === 0) {
        lastRunMs = Date.now() - started
        runs++
        const r = JSON.parse(out) as { blobsDeleted: number; manifestsDeleted: unknown[] }
        deleted += r.blobsDeleted + r.manifestsDeleted.length
      } else if (!/already running/.test(err)) {
        // the server's own gc holding the lock is the one expected refusal
        throw new Error(`cairn registry gc exited ${String(code)}: ${err}`)
      } else {
        busy++
        await sleep(50)
      }
    }
  })().catch((err: unknown) => {
    failed = err
  })
  return {
    stop: async () => {
      running = false
      await loop
      if (failed !== undefined) throw failed instanceof Error ? failed : new Error(JSON.stringify(failed))
      return { runs, deleted, killed, busy }
    },
  }
}

interface Outcome {
  push: Push
  result: RunResult
  /** The digest the push reported, when it succeeded. */
  digest?: string
}

async function runPush(world: World, p: Push, delayMs: number): Promise<Outcome> {
  await sleep(delayMs)
  const result = await cairn(world.stores[p.store] as string, ['push', `${world.host}/${p.ref}`], { env: world.env, timeoutMs: 120_000 })
  const tag = p.ref.split(':')[1] as string
  const m = new RegExp(`^${tag}: digest: (sha256:[a-f0-9]{64}) size: \\d+$`, 'm').exec(result.stdout)
  return m && result.code === 0 ? { push: p, result, digest: m[1] as string } : { push: p, result }
}

/** Every tag pushed pulls complete and verified, and names a digest one of its pushes reported. */
async function verify(url: string, outcomes: readonly Outcome[]): Promise<number> {
  const reported = new Map<string, Set<string>>()
  for (const o of outcomes) {
    if (o.digest === undefined) continue
    const set = reported.get(o.push.ref) ?? new Set<string>()
    set.add(o.digest)
    reported.set(o.push.ref, set)
  }
  for (const [ref, digests] of reported) {
    const [repo, tag] = ref.split(':') as [string, string]
    const head = await request(url, 'HEAD', `/v2/${repo}/manifests/${tag}`)
    assert.equal(head.status, 200, `${ref}: HEAD ${head.status}`)
    const digest = head.headers.get('docker-content-digest') ?? ''
    assert.ok(digests.has(digest), `${ref} names ${digest}, which none of its pushes reported (${[...digests].join(', ')})`)
    await checkManifest(url, repo, tag)
    await checkManifest(url, repo, digest)
  }
  return reported.size
}

/** One complete `cairn registry gc --grace-period 0s --delete-untagged` (after the server's own, if that one runs). */
async function gcOnce(world: World, root: string): Promise<void> {
  for (const until = Date.now() + 60_000; ;) {
    const r = await cairn(root, ['registry', 'gc', '--root', root, '--grace-period', '0s', '--delete-untagged'], { env: world.env })
    if (r.code === 0) return
    if (!/already running/.test(r.stderr) || Date.now() > until) throw new Error(`cairn registry gc: ${r.stderr}`)
    await sleep(100)
  }
}

/** Digests pushed to a tag that another push then took, and that no other tag names: gc deletes them. */
async function losers(outcomes: readonly Outcome[], url: string): Promise<string[]> {
  const pushed = new Set<string>()
  for (const o of outcomes) if (o.digest !== undefined) pushed.add(`${o.push.ref.split(':')[0] as string}@${o.digest}`)
  const named = new Set<string>()
  for (const repo of new Set([...pushed].map((p) => p.split('@')[0] as string))) {
    for (const tag of (await request(url, 'GET', `/v2/${repo}/tags/list`)).json<{ tags: string[] }>().tags) {
      named.add(`${repo}@${(await request(url, 'GET', `/v2/${repo}/manifests/${tag}`)).headers.get('docker-content-digest') ?? ''}`)
    }
  }
  return [...pushed].filter((p) => !named.has(p))
}

/** What the server's own gc deleted so far (its metrics). */
async function serverGc(url: string): Promise<{ runs: number; deleted: number }> {
  const text = (await request(url, 'GET', '/metrics')).text()
  const n = (name: string): number => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  return { runs: n('cairn_registry_gc_runs_total'), deleted: n('cairn_registry_gc_manifests_deleted_total') + n('cairn_registry_gc_blobs_deleted_total') }
}

async function check(root: string): Promise<void> {
  const r = await cairn(root, ['registry', 'check', '--root', root])
  assert.equal(r.code, 0, `registry check:\n${r.stdout}${r.stderr}`)
  assert.match(r.stdout, /^No problems found/m)
}

function failures(outcomes: readonly Outcome[]): string[] {
  return outcomes.filter((o) => o.digest === undefined).map((o) => `${o.push.ref} (store ${o.push.store}): exit ${String(o.result.code ?? o.result.signal)}: ${o.result.stderr.trim().split('\n').slice(-3).join(' | ')}`)
}

const GONE: Push = { store: 0, ref: 'chaos/gone:v1', image: 0 }

describe('pushes racing garbage collection (cairn push, cairn registry serve, cairn registry gc)', () => {
  // one set of local stores for every scenario (each has registry roots of its own): loading them is
  // the slow part of the set-up
  let world: World
  let cleanup: (() => Promise<void>) | undefined
  before(async () => {
    const w = await setup([...plan(), GONE])
    world = w
    cleanup = w.cleanup
  })
  after(async () => {
    await cleanup?.()
  })

  it(`loses no push and fails none, over ${ITERATIONS} round(s) of 22 concurrent pushes with gc looping (grace period 0)`, { timeout: 240_000 * ITERATIONS }, async (t) => {
    const pushes = plan()
    let gcRuns = 0
    let deletedDuringPushes = 0
    let untaggedGone = 0
    for (let round = 0; round < ITERATIONS; round++) {
      const root = `${world.dir}/race${round}`
      const reg = await serveProcess(root, ['--listen', world.host, '-c', world.config])
      t.after(() => reg.kill())
      // four of the images are there already, and untagged as the pushes start: gc is deleting their
      // manifests and blobs while the pushes check the same blobs and tag the same manifests again
      const early = pushes.filter((p) => p.store === 0 && /^chaos\/a:t[0-3]$/.test(p.ref))
      assert.deepEqual(failures(await Promise.all(early.map((p) => runPush(world, p, 0)))), [])
      for (const p of early) assert.equal((await request(reg.url, 'DELETE', `/v2/chaos/a/manifests/${p.ref.split(':')[1] as string}`)).status, 202)
      // old enough for gc's first run (it leaves alone what was touched in the second before it
      // began): on a fast machine the loop could otherwise find nothing to delete while the pushes ran
      await sleep(1200)
      const gc = gcLoop(world, root)
      t.after(() => gc.stop().catch(() => undefined))
      const t0 = Date.now()
      const outcomes = await Promise.all(pushes.map((p) => runPush(world, p, Math.random() * 1500)))
      const tPush = Date.now() - t0
      const g = await gc.stop()
      const server = await serverGc(reg.url)
      gcRuns += g.runs
      deletedDuringPushes += g.deleted + server.deleted
      assert.deepEqual(failures(outcomes), [], `round ${round}: no push fails because gc runs`)
      const tags = await verify(reg.url, outcomes)
      assert.equal(tags, new Set(pushes.map((p) => p.ref)).size)
      // what the pushes untagged goes with the next gc, and nothing else
      const untagged = await losers(outcomes, reg.url)
      assert.ok(untagged.length >= 3, `${untagged.length} manifests untagged by later pushes`)
      await sleep(1200) // gc leaves alone what was touched in the second before it began (file times are coarse)
      await gcOnce(world, root)
      for (const u of untagged) {
        const [repo, digest] = u.split('@') as [string, string]
        assert.equal((await request(reg.url, 'GET', `/v2/${repo}/manifests/${digest}`)).status, 404, `${u} is deleted`)
        untaggedGone++
      }
      assert.equal(await verify(reg.url, outcomes), tags)
      if (round === 0) {
        // and a real pull, into a store of its own, of tags that several pushes fought over
        const fresh = `${world.dir}/pulled`
        for (const ref of ['chaos/b:x0', 'chaos/c:dup']) await cairnOk(fresh, ['pull', '-q', `${world.host}/${ref}`], { env: world.env })
      }
      await check(root)
      assert.equal((await reg.stop()).code, 0)
      t.diagnostic(`round ${round}: pushes ${tPush} ms, all ${Date.now() - t0} ms; gc runs ${g.runs} (${g.busy} refused: the server's gc had the lock), server gc runs ${server.runs}, deletions during the pushes ${g.deleted + server.deleted}`)
    }
    assert.ok(gcRuns >= ITERATIONS, `cairn registry gc ran ${gcRuns} times during the pushes`)
    assert.ok(deletedDuringPushes > 0, 'gc deleted untagged manifests and blobs while the pushes ran')
    assert.ok(untaggedGone > 0)
  })

  it(`stays consistent when the registry and gc are SIGKILLed at random moments; retried pushes then succeed (${KILL_ROUNDS} round(s))`, { timeout: 240_000 * KILL_ROUNDS }, async (t) => {
    const pushes = plan()
    for (let round = 0; round < KILL_ROUNDS; round++) {
      const root = `${world.dir}/kill${round}`
      let reg: ServeProcess = await serveProcess(root, ['--listen', world.host, '-c', world.config])
      t.after(() => reg.kill())
      const gc = gcLoop(world, root, { killAtRandom: true })
      t.after(() => gc.stop().catch(() => undefined)) // also when an assertion fails half-way
      let pushing = true
      let kills = 0
      let killerError: unknown
      const killer = (async () => {
        // four kills at random moments of the pushes, each followed by a restart on the same root;
        // the first while pushes are still starting (within their first 1.5 s), so that a fast
        // machine, whose pushes may all be done in two seconds, sees one too
        while (pushing && kills < 4) {
          await sleep(kills === 0 ? 200 + Math.random() * 1000 : 500 + Math.random() * 2500)
          if (!pushing) break
          await reg.kill()
          kills++
          reg = await serveProcess(root, ['--listen', world.host, '-c', world.config])
        }
      })().catch((err: unknown) => {
        killerError = err
      })
      const outcomes = await Promise.all(pushes.map((p) => runPush(world, p, Math.random() * 1500)))
      pushing = false
      await killer
      if (killerError !== undefined) throw killerError instanceof Error ? killerError : new Error(JSON.stringify(killerError))
      const g = await gc.stop()
      // the pushes a kill cut short, again (gc still looping, nothing killed now)
      const again = gcLoop(world, root)
      t.after(() => again.stop().catch(() => undefined))
      const failed = outcomes.filter((o) => o.digest === undefined)
      const retried = await Promise.all(failed.map((o) => runPush(world, o.push, 0)))
      await again.stop()
      assert.deepEqual(failures(retried), [], 'retried pushes succeed')
      const all = [...outcomes.filter((o) => o.digest !== undefined), ...retried]
      assert.equal(await verify(reg.url, all), new Set(pushes.map((p) => p.ref)).size)
      await check(root)
      assert.equal((await reg.stop()).code, 0)
      assert.ok(kills > 0, 'the registry was killed')
      assert.ok(g.killed > 0 && g.runs > 0, `gc processes ran (${g.runs}) and were killed (${g.killed})`)
      t.diagnostic(`round ${round}: registry kills ${kills}, gc runs ${g.runs}, gc kills ${g.killed}, pushes cut short ${failed.length}`)
    }
  })

  it('cairn push sends the manifest again when the tag on the registry names a manifest that is gone', async (t) => {
    const pushes: Push[] = [GONE]
    const root = `${world.dir}/registry-gone`
    const reg = await serveProcess(root, ['--listen', world.host, '--access-log', 'none'])
    t.after(() => reg.kill())
    const first = await runPush(world, pushes[0] as Push, 0)
    assert.ok(first.digest, first.result.stderr)
    // the revision goes (as a gc of an older version could do): the tag names nothing
    const hex = first.digest.slice(7)
    await unlink(`${root}/repositories/chaos/gone/_manifests/revisions/sha256/${hex}`)
    for (const method of ['HEAD', 'GET']) {
      const r = await request(reg.url, method, '/v2/chaos/gone/manifests/v1')
      assert.equal(r.status, 404, `${method} by tag answers 404`)
      if (method === 'GET') assert.equal(r.json<{ errors: { code: string }[] }>().errors[0]?.code, 'MANIFEST_UNKNOWN')
    }
    // the same with the revision there and its bytes gone
    const again = await runPush(world, pushes[0] as Push, 0)
    assert.equal(again.digest, first.digest, again.result.stderr)
    await checkManifest(reg.url, 'chaos/gone', 'v1')
    await unlink(`${root}/blobs/sha256/${hex}`)
    assert.equal((await request(reg.url, 'HEAD', '/v2/chaos/gone/manifests/v1')).status, 404)
    const third = await runPush(world, pushes[0] as Push, 0)
    assert.equal(third.digest, first.digest, third.result.stderr)
    await checkManifest(reg.url, 'chaos/gone', 'v1')
    await check(root)
    assert.equal((await reg.stop()).code, 0)
  })
})
