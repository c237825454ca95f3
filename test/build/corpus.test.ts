/**
 * A corpus of real-world Dockerfiles (test/build/corpus/: a Debian image that installs a package
 * with apt through the network, a Node.js app with `npm ci`, a Go-style multi-stage build FROM
 * scratch, a static site served by busybox httpd), each built by Cairn and by Docker (BuildKit,
 * through Debian's 20.10 client), and the images compared: the same files (type, mode, owner,
 * content), the same config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels), the
 * same number of layers and of history entries. Then a Cairn-built image goes through Debian's
 * docker-registry and runs in Docker.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { createReadStream, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { applyLayer } from '../../src/layer/apply.js'
import { cairnOk, tempDir } from '../helpers/cairn.js'
import { busyboxRootfsTar, debianRootfs } from '../helpers/rootfs.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { missingDistributionTools, startDistribution, type Distribution } from '../helpers/distribution.js'
import { run, type RunResult } from '../helpers/exec.js'
import { requireRoot } from '../helpers/root.js'
import { requireTools, Tools } from '../helpers/tools.js'
import { removeAllContainers } from '../container/helpers.js'
import { unmountUnder } from '../helpers/system.js'

const CORPUS = fileURLToPath(new URL('../../../test/build/corpus/', import.meta.url))

/** Paths whose contents differ between any two runs (logs, caches, timestamps): compared by name and mode only. */
const VOLATILE = [/^var\/log\//, /^var\/cache\//, /^var\/lib\/apt\//, /^var\/lib\/dpkg\/[^/]*-old$/, /^root\/\.npm\//, /^tmp\//, /^etc\/(shadow|gshadow|passwd|group)-$/]

interface Image {
  config: { config?: Record<string, unknown>; history?: unknown[]; rootfs: { diff_ids: string[] } }
  files: Map<string, string>
}

/** An image of a `save` archive: its config, and its layers applied in order, as a map path → description. */
async function readArchive(archive: string, work: string): Promise<Image> {
  const dir = `${work}/x`
  mkdirSync(dir, { recursive: true })
  execFileSync('tar', ['-xf', archive, '-C', dir])
  const manifest = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8')) as { Config: string; Layers: string[] }[]
  const m = manifest[0] as { Config: string; Layers: string[] }
  const config = JSON.parse(readFileSync(`${dir}/${m.Config}`, 'utf8')) as Image['config']
  const root = `${work}/root`
  mkdirSync(root, { recursive: true })
  for (const l of m.Layers) await applyLayer(createReadStream(`${dir}/${l}`), root)
  const files = new Map<string, string>()
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = `${d}/${name}`
      const r = rel ? `${rel}/${name}` : name
      const st = lstatSync(p)
      const head = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`
      if (st.isDirectory()) {
        files.set(`${r}/`, `dir ${head}`)
        walk(p, r)
      } else if (st.isSymbolicLink()) files.set(r, `link ${readlinkSync(p)}`)
      else if (st.isFile()) {
        const volatile = VOLATILE.some((v) => v.test(r))
        files.set(r, `file ${head}${volatile ? '' : ` ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}`}`)
      } else files.set(r, `other ${head}`)
    }
  }
  walk(root, '')
  return { config, files }
}

const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Labels'] as const

function pick(cfg: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of CONFIG_FIELDS) {
    const v = cfg?.[k]
    // Docker leaves empty fields out or null; they mean the same
    if (v === undefined || v === null || v === '' || (typeof v === 'object' && Object.keys(v).length === 0)) continue
    out[k] = v
  }
  return out
}

describe('the corpus, built by Cairn and by Docker', { concurrency: false }, () => {
  let docker: Dockerd | undefined
  let reg: Distribution | undefined
  let dir = ''
  let cleanup: (() => Promise<void>) | undefined
  let store = ''

  before(async () => {
    if (process.getuid?.() !== 0) return
    ;({ dir, cleanup } = await tempDir('cairn-corpus-'))
    store = `${dir}/store`
    // Docker's BuildKit needs a bridge for its RUN steps: this dockerd gets its default one
    docker = await startDockerd({ bridge: true })
    const busybox = await busyboxRootfsTar()
    const debian = await debianRootfs()
    for (const [tar, name] of [[busybox, 'busybox:latest'], [debian.tar, 'debian-minbase:latest']] as const) {
      await cairnOk(store, ['import', '-c', 'CMD ["sh"]', tar, name])
      await docker.runOk(['import', '-c', 'CMD ["sh"]', tar, name], { timeoutMs: 300_000 })
    }
  })

  after(async () => {
    await docker?.stop()
    await reg?.stop()
    if (store) await removeAllContainers(store)
    if (dir) unmountUnder(dir)
    await cleanup?.()
  })

  const ready = (t: TestContext): boolean => requireRoot(t, 'dockerd, containers') && requireTools(t, ['dockerd', 'docker', 'runc', 'debootstrap', 'busybox'])

  async function dockerBuild(args: string[]): Promise<RunResult> {
    const d = docker as Dockerd
    const r = await run(Tools.docker, ['-H', d.host, 'build', ...args], { env: { ...d.clientEnv, DOCKER_BUILDKIT: '1' }, timeoutMs: 600_000 })
    if (r.code !== 0) throw new Error(`docker build ${args.join(' ')} exited ${String(r.code)}: ${r.stderr.slice(-3000)}`)
    return r
  }

  /** The corpus entry as a context folder (the node app gets this machine's node and npm as its runtime). */
  function contextOf(name: string): string {
    const ctx = `${dir}/ctx-${name}`
    execFileSync('cp', ['-a', `${CORPUS}${name}`, ctx])
    if (name === 'node') {
      mkdirSync(`${ctx}/.runtime`, { recursive: true })
      execFileSync('cp', ['-a', '/usr/bin/node', `${ctx}/.runtime/node`])
      execFileSync('cp', ['-a', '/usr/lib/node_modules/npm', `${ctx}/.runtime/npm`])
    }
    return ctx
  }

  async function compare(name: string, check: (run: (img: string, args: string[]) => Promise<string>) => Promise<void>): Promise<void> {
    const ctx = contextOf(name)
    const tag = `corpus-${name}:1`
    // both on the host's network: the apt example reaches Debian's mirror, npm stays offline
    await cairnOk(store, ['build', '--progress', 'plain', '--network', 'host', '-t', tag, ctx], { timeoutMs: 600_000 })
    await dockerBuild(['--progress', 'plain', '--network', 'host', '-t', tag, ctx])
    await cairnOk(store, ['save', '-o', `${dir}/${name}-cairn.tar`, tag])
    await (docker as Dockerd).runOk(['save', '-o', `${dir}/${name}-docker.tar`, tag], { timeoutMs: 300_000 })
    const ours = await readArchive(`${dir}/${name}-cairn.tar`, `${dir}/${name}-cairn`)
    const theirs = await readArchive(`${dir}/${name}-docker.tar`, `${dir}/${name}-docker`)
    assert.deepEqual(pick(ours.config.config), pick(theirs.config.config), `${name}: the same config`)
    assert.equal(ours.config.rootfs.diff_ids.length, theirs.config.rootfs.diff_ids.length, `${name}: the same number of layers`)
    assert.equal(ours.config.history?.length, theirs.config.history?.length, `${name}: the same number of history entries`)
    const diff: string[] = []
    for (const [p, d] of theirs.files) if (ours.files.get(p) !== d) diff.push(`${p}: docker ${d}, cairn ${ours.files.get(p) ?? 'missing'}`)
    for (const [p, d] of ours.files) if (!theirs.files.has(p)) diff.push(`${p}: cairn ${d}, docker missing`)
    assert.deepEqual(diff, [], `${name}: the same files`)
    await check(async (img, args) => (await cairnOk(store, ['run', '--rm', img, ...args])).stdout)
  }

  test('apt: a Debian image that installs a package through the network', { timeout: 900_000 }, async (t) => {
    if (!ready(t)) return
    await compare('apt', async (runIt) => {
      assert.match(await runIt('corpus-apt:1', []), /^Hello, world!\n$/)
    })
  })

  test('node: an app installed with npm ci', { timeout: 900_000 }, async (t) => {
    if (!ready(t)) return
    await compare('node', async (runIt) => {
      assert.match(await runIt('corpus-node:1', ['node', 'server.js', '--once']), /^hello, corpus, from node v\d+/)
      assert.equal((await runIt('corpus-node:1', ['id', '-un'])).trim(), 'node')
    })
  })

  test('go-style: a static binary built in one stage, shipped FROM scratch', { timeout: 600_000 }, async (t) => {
    if (!ready(t)) return
    await compare('go-style', async (runIt) => {
      assert.equal(await runIt('corpus-go-style:1', []), 'hello from a static binary\n')
    })
  })

  test('static-site: generated in one stage, served by busybox httpd; pushed to docker-registry, it runs in Docker', { timeout: 600_000 }, async (t) => {
    if (!ready(t)) return
    await compare('static-site', async (runIt) => {
      assert.match(await runIt('corpus-static-site:1', ['cat', '/www/index.html']), /<a href="about.html">about<\/a>/)
    })
    if (missingDistributionTools().length > 0) {
      if (process.env['CI']) throw new Error(`missing ${missingDistributionTools().join(', ')}`)
      t.skip('no docker-registry')
      return
    }
    reg = await startDistribution()
    const target = `${reg.host}/corpus/static-site:1`
    await cairnOk(store, ['tag', 'corpus-static-site:1', target])
    const env = { ...process.env, DOCKER_CONFIG: `${dir}/docker-config`, CAIRN_CONFIG: `${dir}/none.json` }
    await cairnOk(store, ['push', target], { env })
    const d = docker as Dockerd
    await d.runOk(['pull', target], { timeoutMs: 120_000 })
    const out = await d.runOk(['run', '--rm', '--network', 'none', target, 'cat', '/www/about.html'])
    assert.equal(out.stdout, '<h1>about</h1>\n<p>Cairn builds images.\n<p>Layer by layer.\n')
    const cairnId = (await cairnOk(store, ['inspect', '--format', '{{.Id}}', target])).stdout.trim()
    assert.equal((await d.runOk(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim(), cairnId, 'the same IMAGE ID in Docker')
  })
})
