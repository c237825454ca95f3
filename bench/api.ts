/**
 * Benchmark: the Docker Engine API, Cairn's `system service` side by side with a private dockerd
 * 20.10 (overlay2, `--bridge none --iptables=false`, test/helpers/dockerd.ts) in the same run,
 * each holding ~20 images and ~20 containers made the same way:
 *
 *   - `GET /containers/json?all=1` and `GET /images/json`: requests/s at 16 connections (wrk,
 *     over TCP on 127.0.0.1: wrk speaks no unix sockets, so both servers also listen there);
 *   - create + start + wait of `true` (busybox, network none) through the API, one after the
 *     other over the unix socket, in containers/s (each removed afterwards, untimed).
 *
 *   npm run build && node build/bench/api.js [--iterations 20] [--seconds 5] [--out FILE]
 *
 * Needs root, dockerd (docker.io), runc or crun, busybox-static, wrk.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { freePort } from '../test/helpers/distribution.js'
import { runtimeStateRoot } from '../src/runtime/runtime.js'
import { exec, median, type Cmd } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/api.md')
const IMAGE = 'bench-busybox:1'
const COUNT = 20

/** One request over a unix socket; the body as text, a status other than 2xx throws. */
function call(socketPath: string, method: string, path: string, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const req = request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {} }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => ((res.statusCode ?? 0) >= 300 ? reject(new Error(`${method} ${path}: ${String(res.statusCode)} ${text}`)) : resolve(text)))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(data)
  })
}

/** wrk's requests per second against `url` (16 connections, 2 threads). */
function wrk(url: string, seconds: number): number {
  const out = execFileSync('wrk', ['-t2', '-c16', `-d${seconds}s`, url], { encoding: 'utf8' })
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk: errors from ${url}: ${out}`)
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out)
  if (!m) throw new Error(`wrk: ${out}`)
  return Number(m[1])
}

/** Seconds for create + start + wait of `true`, then the container removed (untimed). */
async function createStartWait(sock: string): Promise<number> {
  const t0 = performance.now()
  const { Id } = JSON.parse(await call(sock, 'POST', '/v1.41/containers/create', { Image: IMAGE, Cmd: ['true'], HostConfig: { NetworkMode: 'none' } })) as { Id: string }
  await call(sock, 'POST', `/v1.41/containers/${Id}/start`)
  const { StatusCode } = JSON.parse(await call(sock, 'POST', `/v1.41/containers/${Id}/wait`)) as { StatusCode: number }
  const s = (performance.now() - t0) / 1000
  if (StatusCode !== 0) throw new Error(`true exited ${StatusCode}`)
  await call(sock, 'DELETE', `/v1.41/containers/${Id}?force=1`)
  return s
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20' }, seconds: { type: 'string', default: '5' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  const seconds = Number(values.seconds)
  if (process.getuid?.() !== 0) throw new Error('the API benchmark needs root')
  const tar = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-api-'))
  const root = join(work, 'store')
  const cairnSock = join(work, 'cairn.sock')
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  const ports = { cairn: await freePort(), docker: await freePort() }
  let dockerd: Dockerd | undefined
  let service: ChildProcess | undefined
  const load: number[][] = [loadavg()]
  const samples: Record<string, Record<string, number[]>> = {}
  const add = (step: string, tool: string, x: number): void => {
    ;((samples[step] ??= {})[tool] ??= []).push(x)
  }
  try {
    process.stderr.write('starting dockerd and cairn system service…\n')
    dockerd = await startDockerd({ extraArgs: ['-H', `tcp://127.0.0.1:${ports.docker}`], startTimeoutMs: 60_000 })
    const d = dockerd
    const dockerSock = d.host.slice('unix://'.length)
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: d.clientEnv })
    await exec(cairn(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    service = spawn(CAIRN_CLI, ['--root', root, 'system', 'service', '--socket', `unix://${cairnSock}`, '--tcp', `127.0.0.1:${ports.cairn}`], { stdio: ['ignore', 'ignore', 'inherit'] })
    for (let i = 0; !existsSync(cairnSock) || !(await call(cairnSock, 'GET', '/_ping').then(() => true, () => false)); i++) {
      if (i > 400 || service.exitCode !== null) throw new Error('cairn system service did not come up')
      await sleep(50)
    }
    await exec(docker(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))

    process.stderr.write(`${COUNT} images and ${COUNT} containers in each…\n`)
    for (let i = 1; i < COUNT; i++) {
      await exec(docker(['import', '-c', `LABEL n=${i}`, tar, `bench-img:${i}`]))
      await exec(cairn(['import', '-c', `LABEL n=${i}`, tar, `bench-img:${i}`]))
    }
    for (let i = 0; i < COUNT; i++) {
      for (const sock of [dockerSock, cairnSock]) {
        await call(sock, 'POST', `/v1.41/containers/create?name=present${i}`, { Image: IMAGE, Cmd: ['true'], Labels: { n: String(i) }, HostConfig: { NetworkMode: 'none' } })
      }
    }
    for (const sock of [dockerSock, cairnSock]) {
      const cs = JSON.parse(await call(sock, 'GET', '/v1.41/containers/json?all=1')) as unknown[]
      const is = JSON.parse(await call(sock, 'GET', '/v1.41/images/json')) as unknown[]
      if (cs.length !== COUNT || is.length !== COUNT) throw new Error(`${sock}: ${cs.length} containers, ${is.length} images`)
    }
    load.push(loadavg())

    for (const [path, step] of [['/v1.41/containers/json?all=1', '`GET /containers/json?all=1`, requests/s'], ['/v1.41/images/json', '`GET /images/json`, requests/s']] as const) {
      process.stderr.write(`${path}: wrk, 16 connections, ${seconds} s × 3 each…\n`)
      wrk(`http://127.0.0.1:${ports.docker}${path}`, 1)
      wrk(`http://127.0.0.1:${ports.cairn}${path}`, 1)
      for (let i = 0; i < 3; i++) {
        add(step, 'docker', wrk(`http://127.0.0.1:${ports.docker}${path}`, seconds))
        add(step, 'cairn', wrk(`http://127.0.0.1:${ports.cairn}${path}`, seconds))
      }
      load.push(loadavg())
    }

    process.stderr.write(`create + start + wait of true × ${n} each…\n`)
    await createStartWait(dockerSock)
    await createStartWait(cairnSock)
    for (let i = 0; i < n; i++) {
      add('create + start + wait of `true` (network none), seconds each', 'docker', await createStartWait(dockerSock))
      add('create + start + wait of `true` (network none), seconds each', 'cairn', await createStartWait(cairnSock))
    }
    load.push(loadavg())

    const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(3))
    const dockerVersion = (await exec(docker(['version', '--format', '{{.Server.Version}}']), true)).stdout.trim()
    let md = '# The Docker Engine API: Cairn\'s service and dockerd side by side\n\n'
    md += `${new Date().toISOString()}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node.js ${process.version}; `
    md += `dockerd ${dockerVersion} (overlay2, --bridge none, --iptables=false) and \`cairn system service\` (bin/cairn), each with ${COUNT} images and ${COUNT} containers (created, not started); `
    md += `load average (1 min) during the run: ${load.map((l) => (l[0] ?? 0).toFixed(1)).join(', ')} (the machine is shared with other work).\n\n`
    md += '| step | cairn | docker | cairn/docker |\n|---|---:|---:|---:|\n'
    for (const [step, bytool] of Object.entries(samples)) {
      const c = bytool['cairn']
      const dk = bytool['docker']
      if (!c || !dk) continue
      if (step.includes('requests/s')) md += `| ${step} | ${fmt(median(c))} | ${fmt(median(dk))} | ${(median(c) / median(dk)).toFixed(2)}× as many |\n`
      else {
        md += `| ${step} | ${fmt(median(c))} s | ${fmt(median(dk))} s | ${(median(c) / median(dk)).toFixed(2)}× |\n`
        md += `| the same in containers/s | ${(1 / median(c)).toFixed(2)} | ${(1 / median(dk)).toFixed(2)} | ${(median(dk) / median(c)).toFixed(2)}× as many |\n`
      }
    }
    md += '\nrequests/s: medians of 3 runs of wrk (2 threads, 16 connections) over TCP on 127.0.0.1; create + start + wait: medians of '
    md += `${n} runs, over each server's unix socket, one container at a time.\n\nEvery sample:\n\n`
    for (const [step, bytool] of Object.entries(samples)) for (const [tool, xs] of Object.entries(bytool)) md += `- ${step}, ${tool}: ${xs.map(fmt).join(' ')}\n`
    process.stdout.write(md)
    mkdirSync(dirname(values.out), { recursive: true })
    writeFileSync(values.out, md)
  } finally {
    if (service && service.exitCode === null) {
      service.kill('SIGTERM')
      await new Promise((resolve) => service?.once('exit', resolve))
    }
    await removeAllContainers(root).catch(() => undefined)
    await rm(dirname(runtimeStateRoot(root, 'runc')), { recursive: true, force: true })
    await dockerd?.stop().catch((err: unknown) => process.stderr.write(`${String(err)}\n`))
    unmountUnder(work)
    await rm(work, { recursive: true, force: true })
  }
}

await main()
