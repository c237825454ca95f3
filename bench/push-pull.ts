/**
 * Benchmark: `cairn push|pull` side by side with `skopeo copy` and `docker push|pull` (a private
 * dockerd) in one run, against Debian's docker-registry (distribution 2.8) on 127.0.0.1, on the
 * Debian minbase root filesystem (a one-layer image, ~200 MiB uncompressed, gzip on the wire).
 *
 *   npm run build && node build/bench/push-pull.js [-n 3] [--busybox] [--tools cairn,skopeo,docker] [--out FILE]
 *
 * Every iteration uses a fresh registry (so nothing is mounted or skipped) and fresh stores:
 * push = local image → empty registry; pull = registry → empty store. cairn and skopeo are run
 * under GNU time for their peak RSS; docker's work happens in dockerd, so only its wall time is
 * compared.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { startDistribution } from '../test/helpers/distribution.js'
import { busyboxRootfsTar, debianRootfs } from '../test/helpers/rootfs.js'
import { Tools } from '../test/helpers/tools.js'
import { median, runMain } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN = join(PROJECT, 'bin/cairn')
const GNU_TIME = '/usr/bin/time'

interface Sample { wallS: number; peakKiB?: number }
type Tool = 'cairn' | 'skopeo' | 'docker'
type Step = 'push' | 'pull'

async function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, rss: boolean): Promise<Sample> {
  const argv = rss ? ['-f', '@@RSS %M', cmd, ...args] : args
  const bin = rss ? GNU_TIME : cmd
  const t0 = performance.now()
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(bin, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (b: Buffer) => { err += b.toString() })
    child.once('error', reject)
    child.once('close', (c) => resolve({ code: c, stderr: err }))
  })
  const wallS = (performance.now() - t0) / 1000
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(code)}): ${stderr.slice(-2000)}`)
  const m = /@@RSS (\d+)/.exec(stderr)
  return m ? { wallS, peakKiB: Number(m[1]) } : { wallS }
}

async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await timed(cmd, args, env, false)
}


async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', short: 'n', default: '3' },
      busybox: { type: 'boolean', default: false },
      tools: { type: 'string', default: 'cairn,skopeo,docker' },
      out: { type: 'string' },
    },
  })
  const started = new Date()
  const iterations = Number(values.iterations)
  const tools = values.tools.split(',').filter(Boolean) as Tool[]
  const log = (s: string): void => { process.stderr.write(`push-pull: ${s}\n`) }
  const input = values.busybox ? await busyboxRootfsTar() : (await debianRootfs({ log })).tar
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-pp-'))
  const env = { ...process.env, DOCKER_CONFIG: join(work, 'docker-client'), CAIRN_CONFIG: join(work, 'none.json') }
  let docker: Dockerd | undefined
  const results = new Map<string, Sample[]>()
  const add = (tool: Tool, step: Step, s: Sample): void => {
    const k = `${tool} ${step}`
    results.set(k, [...(results.get(k) ?? []), s])
    log(`${k}: ${s.wallS.toFixed(2)} s${s.peakKiB ? `, ${(s.peakKiB / 1024).toFixed(0)} MiB` : ''}`)
  }
  try {
    if (tools.includes('docker')) docker = await startDockerd()
    for (let i = 0; i < iterations; i++) {
      const reg = await startDistribution()
      try {
        const h = reg.host
        if (tools.includes('cairn')) {
          const root = join(work, `cairn-${i}`)
          await run(CAIRN, ['--root', root, 'import', input, `${h}/cairn/img:1`], env)
          add('cairn', 'push', await timed(CAIRN, ['--root', root, 'push', '-q', `${h}/cairn/img:1`], env, true))
          add('cairn', 'pull', await timed(CAIRN, ['--root', join(work, `cairn-pull-${i}`), 'pull', '-q', `${h}/cairn/img:1`], env, true))
          await rm(root, { recursive: true, force: true })
          await rm(join(work, `cairn-pull-${i}`), { recursive: true, force: true })
        }
        if (tools.includes('skopeo')) {
          // skopeo's source: a docker-save archive of the same image (uncompressed layer), as Cairn holds it
          const root = join(work, `skopeo-src-${i}`)
          await run(CAIRN, ['--root', root, 'import', input, 'skopeo/img:1'], env)
          await run(CAIRN, ['--root', root, 'save', '-o', join(work, 'skopeo.tar'), 'skopeo/img:1'], env)
          add('skopeo', 'push', await timed(Tools.skopeo, ['--insecure-policy', 'copy', '-q', '--dest-tls-verify=false', `docker-archive:${join(work, 'skopeo.tar')}`, `docker://${h}/skopeo/img:1`], env, true))
          add('skopeo', 'pull', await timed(Tools.skopeo, ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${h}/skopeo/img:1`, `oci:${join(work, `skopeo-oci-${i}`)}:img`], env, true))
          await rm(root, { recursive: true, force: true })
          await rm(join(work, `skopeo-oci-${i}`), { recursive: true, force: true })
          await rm(join(work, 'skopeo.tar'), { force: true })
        }
        if (docker) {
          const ref = `${h}/docker/img:1`
          await docker.runOk(['import', input, ref])
          const t0 = performance.now()
          await docker.runOk(['push', ref], { timeoutMs: 15 * 60_000 })
          add('docker', 'push', { wallS: (performance.now() - t0) / 1000 })
          await docker.runOk(['rmi', ref])
          const t1 = performance.now()
          await docker.runOk(['pull', ref], { timeoutMs: 15 * 60_000 })
          add('docker', 'pull', { wallS: (performance.now() - t1) / 1000 })
          await docker.runOk(['rmi', ref])
        }
      } finally {
        await reg.stop()
      }
    }
  } finally {
    await docker?.stop()
    await rm(work, { recursive: true, force: true })
  }
  const lines: string[] = []
  lines.push(`# push / pull: cairn vs skopeo vs docker`, '')
  lines.push(`Input: ${values.busybox ? 'busybox test rootfs' : 'Debian bookworm minbase'} (${input}), one layer, gzip on the wire; ${iterations} iteration(s), median; ${cpus().length} CPUs; registry: docker-registry 2.8 on 127.0.0.1.`, '')
  lines.push('| step | tool | wall (s) | wall / cairn | peak RSS (MiB) |', '|---|---|---:|---:|---:|')
  for (const step of ['push', 'pull'] as const) {
    const base = results.get(`cairn ${step}`)
    const baseWall = base ? median(base.map((s) => s.wallS)) : undefined
    for (const tool of tools) {
      const xs = results.get(`${tool} ${step}`)
      if (!xs) continue
      const wall = median(xs.map((s) => s.wallS))
      const rss = xs.every((s) => s.peakKiB !== undefined) ? (median(xs.map((s) => s.peakKiB ?? 0)) / 1024).toFixed(0) : 'n/a (in dockerd)'
      lines.push(`| ${step} | ${tool} | ${wall.toFixed(2)} | ${baseWall ? `${(wall / baseWall).toFixed(2)}×` : '–'} | ${rss} |`)
    }
  }
  lines.push('', 'Every run (wall / peak RSS), in the order they ran (the tools alternate within an iteration):', '')
  for (const step of ['push', 'pull'] as const) {
    for (const tool of tools) {
      const xs = results.get(`${tool} ${step}`)
      if (xs) lines.push(`- ${step}, ${tool}: ${xs.map((x) => `${x.wallS.toFixed(2)} s${x.peakKiB !== undefined ? ` / ${(x.peakKiB / 1024).toFixed(0)} MiB` : ''}`).join(', ')}`)
    }
  }
  lines.push('', `${started.toISOString()} to ${new Date().toISOString()}, Node ${process.version}, ${String(cpus().length)} × ${cpus()[0]?.model.trim() ?? 'CPU'}.`)
  const report = `${lines.join('\n')}\n`
  process.stdout.write(report)
  if (values.out) await writeFile(values.out, report)
}

runMain(main)
