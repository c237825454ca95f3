/**
 * Benchmark: `cairn registry serve` against Debian's `docker-registry` (CNCF distribution 2.8), side by
 * side in one run, same machine, same client, each registry a separate process on 127.0.0.1 with
 * filesystem storage in its own empty folder and no auth.
 *
 *   npm run build && node build/bench/registry.js [--iterations 3] [--blobs 200] [--big-mib 1024]
 *                                                 [--seconds 5] [--connections 64] [--no-docker] [--out FILE]
 *
 * The Markdown report goes to stdout (progress to stderr), and to FILE with --out.
 *
 * Figures (median of the iterations; the order of the two registries alternates):
 * - push of N blobs of mixed sizes (1 KiB … 8 MiB, 8 at a time; 4 in 5 monolithic POST+PUT, 1 in 5 in
 *   three PATCH chunks), plain HTTP;
 * - push (chunked PATCH) and GET throughput of one large blob (1 GiB by default; curl receives the
 *   GET, so that the client is not what is measured), and of a Range GET of its second quarter;
 * - requests per second of manifest GET (by tag), blob HEAD and GET of a small (1 KiB) blob at 64
 *   concurrent keep-alive connections;
 * - `docker push` (to an empty registry, so every layer is uploaded) and `docker pull` (after removing
 *   the image) of the Debian minbase image (200 MiB) through a private dockerd (root only; --no-docker
 *   skips it);
 * - each registry's peak RSS (VmHWM).
 * The load generator is this Node process (and curl for the large GET); it is the same for both
 * registries.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { rm, writeFile, open } from 'node:fs/promises'
import { Agent, request, type IncomingMessage } from 'node:http'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { debianRootfs } from '../test/helpers/rootfs.js'
import { median, DISTRIBUTION, procStatusMiB, startRegistryServer, stopRegistryServer, runMain, type RegistryServer } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '3' },
    blobs: { type: 'string', default: '200' },
    'big-mib': { type: 'string', default: '1024' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    'no-docker': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
})
const ITER = Number(args.iterations)
const NBLOBS = Number(args.blobs)
const BIG = Number(args['big-mib']) << 20
const SECONDS = Number(args.seconds)
const CONNS = Number(args.connections)

const log = (s: string): void => {
  process.stderr.write(`bench: ${s}\n`)
}

// --- the two registries -----------------------------------------------------------------------

type Registry = RegistryServer

// --- HTTP client ---------------------------------------------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 256 })

function call(url: string, method: string, headers: Record<string, string> = {}, body?: Buffer | NodeJS.ReadableStream): Promise<{ status: number; headers: IncomingMessage['headers']; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent }, (res) => {
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body === undefined) req.end()
    else if (Buffer.isBuffer(body)) req.end(body)
    else body.pipe(req)
  })
}

const execFileP = promisify(execFile)

/** GET with curl into /dev/null (of a byte range: `a-b`): bytes received and seconds taken, as curl measures them. */
async function curlGet(url: string, range?: string): Promise<{ bytes: number; seconds: number }> {
  const { stdout } = await execFileP('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', ...(range ? ['-r', range] : []), url])
  const [bytes, seconds] = stdout.trim().split(' ').map(Number)
  return { bytes: bytes ?? 0, seconds: seconds ?? NaN }
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

async function pushBlob(reg: Registry, repo: string, data: Buffer, chunks: number): Promise<string> {
  const d = sha256(data)
  const start = await call(`${reg.url}/v2/${repo}/blobs/uploads/`, 'POST', { 'Content-Length': '0' })
  if (start.status !== 202) throw new Error(`${reg.name}: POST ${start.status}`)
  let loc = String(start.headers.location)
  if (loc.startsWith('/')) loc = `${reg.url}${loc}`
  if (chunks <= 1) {
    const put = await call(`${loc}${loc.includes('?') ? '&' : '?'}digest=${d}`, 'PUT', { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) }, data)
    if (put.status !== 201) throw new Error(`${reg.name}: PUT ${put.status}`)
    return d
  }
  const size = Math.ceil(data.length / chunks)
  for (let off = 0; off < data.length; off += size) {
    const part = data.subarray(off, off + size)
    const p = await call(loc, 'PATCH', { 'Content-Type': 'application/octet-stream', 'Content-Length': String(part.length), 'Content-Range': `${off}-${off + part.length - 1}` }, part)
    if (p.status !== 202) throw new Error(`${reg.name}: PATCH ${p.status}`)
    loc = String(p.headers.location)
    if (loc.startsWith('/')) loc = `${reg.url}${loc}`
  }
  const put = await call(`${loc}${loc.includes('?') ? '&' : '?'}digest=${d}`, 'PUT', { 'Content-Length': '0' })
  if (put.status !== 201) throw new Error(`${reg.name}: final PUT ${put.status}`)
  return d
}

/** Mixed sizes from 1 KiB to 8 MiB, log-spread, deterministic order. */
function mixedSizes(n: number): number[] {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(Math.round(1024 * Math.pow(8192, ((i * 37) % n) / Math.max(1, n - 1))))
  return out
}

async function pushMixed(reg: Registry, blobs: Buffer[], repo: string): Promise<number> {
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < blobs.length) {
      const i = next++
      await pushBlob(reg, repo, blobs[i] as Buffer, i % 5 === 4 ? 3 : 1)
    }
  }))
  return (performance.now() - t0) / 1000
}

async function hammer(url: string, method: string, headers: Record<string, string>, conns: number, seconds: number): Promise<number> {
  const a = new Agent({ keepAlive: true, maxSockets: conns })
  const end = performance.now() + seconds * 1000
  let count = 0
  let errors = 0
  await Promise.all(Array.from({ length: conns }, async () => {
    while (performance.now() < end) {
      await new Promise<void>((resolve) => {
        const req = request(url, { method, headers, agent: a }, (res) => {
          res.resume()
          res.on('end', () => {
            if (res.statusCode === 200) count++
            else errors++
            resolve()
          })
        })
        req.on('error', () => {
          errors++
          resolve()
        })
        req.end()
      })
    }
  }))
  a.destroy()
  if (errors > 0) log(`${url}: ${errors} errors`)
  return count / seconds
}

// --- docker --------------------------------------------------------------------------------------

async function dockerRound(docker: Dockerd, reg: Registry, i: number): Promise<{ push: number; pull: number }> {
  const image = `${reg.host}/bench/debian:${i}`
  await docker.runOk(['tag', 'bench/debian:1', image])
  let t0 = performance.now()
  await docker.runOk(['push', image], { timeoutMs: 600_000 })
  const push = (performance.now() - t0) / 1000
  await docker.runOk(['rmi', image])
  await docker.run(['rmi', 'bench/debian:1'])
  t0 = performance.now()
  await docker.runOk(['pull', image], { timeoutMs: 600_000 })
  const pull = (performance.now() - t0) / 1000
  await docker.runOk(['tag', image, 'bench/debian:1'])
  await docker.runOk(['rmi', image])
  return { push, pull }
}

// --- main ----------------------------------------------------------------------------------------

interface Row {
  what: string
  unit: string
  cairn: number[]
  distribution: number[]
  /** true when a larger number is better (throughput); false for times */
  higherIsBetter: boolean
}

async function main(): Promise<void> {
  if (!existsSync(DISTRIBUTION)) throw new Error(`${DISTRIBUTION} is missing: apt-get install docker-registry (scripts/ensure-deps.sh as root)`)
  const rows: Row[] = []
  const row = (what: string, unit: string, higherIsBetter: boolean): Row => {
    const r: Row = { what, unit, cairn: [], distribution: [], higherIsBetter }
    rows.push(r)
    return r
  }
  const mixed = row(`push ${NBLOBS} blobs, mixed sizes (s)`, 's', false)
  const bigPush = row(`push one ${args['big-mib']} MiB blob, 4 PATCH chunks (MiB/s)`, 'MiB/s', true)
  const bigGet = row(`GET one ${args['big-mib']} MiB blob (MiB/s)`, 'MiB/s', true)
  const rangeGet = row(`Range GET of its second quarter (MiB/s)`, 'MiB/s', true)
  const manifestRps = row(`manifest GET by tag, ${CONNS} connections (req/s)`, 'req/s', true)
  const headRps = row(`blob HEAD, ${CONNS} connections (req/s)`, 'req/s', true)
  const smallGetRps = row(`GET of a 1 KiB blob, ${CONNS} connections (req/s)`, 'req/s', true)
  const dockerPush = row('docker push, Debian minbase 200 MiB (s)', 's', false)
  const dockerPull = row('docker pull, Debian minbase 200 MiB (s)', 's', false)
  const rss = row('peak RSS of the registry (MiB)', 'MiB', false)

  const sizes = mixedSizes(NBLOBS)
  log(`${NBLOBS} blobs, ${(sizes.reduce((a, b) => a + b, 0) / (1 << 20)).toFixed(0)} MiB in all`)
  const bigFile = join(tmpdir(), `bench-big-${process.pid}.bin`)
  {
    const fh = await open(bigFile, 'w')
    for (let off = 0; off < BIG; off += 16 << 20) await fh.write(randomBytes(Math.min(16 << 20, BIG - off)))
    await fh.close()
  }
  const bigHash = createHash('sha256')
  for await (const c of createReadStream(bigFile)) bigHash.update(c as Buffer)
  const bigDigest = `sha256:${bigHash.digest('hex')}`

  let docker: Dockerd | undefined
  if (!args['no-docker'] && process.getuid?.() === 0) {
    const rootfs = await debianRootfs()
    docker = await startDockerd()
    await docker.runOk(['import', rootfs.tar, 'bench/debian:1'], { timeoutMs: 600_000 })
  }

  const regs = { cairn: await startRegistryServer('cairn', CAIRN_CLI), distribution: await startRegistryServer('distribution', CAIRN_CLI) }
  try {
    for (let it = 0; it < ITER; it++) {
      const order: Registry[] = it % 2 === 0 ? [regs.cairn, regs.distribution] : [regs.distribution, regs.cairn]
      const blobs = sizes.map((s) => randomBytes(s))
      for (const reg of order) {
        const r = reg.name
        log(`iteration ${it + 1}/${ITER}: ${r}`)
        mixed[r].push(await pushMixed(reg, blobs, `bench/mixed${it}`))
        // one large blob, in 4 chunks streamed from disk
        const t0 = performance.now()
        const start = await call(`${reg.url}/v2/bench/big${it}/blobs/uploads/`, 'POST', { 'Content-Length': '0' })
        let loc = String(start.headers.location)
        if (loc.startsWith('/')) loc = `${reg.url}${loc}`
        const chunk = Math.ceil(BIG / 4)
        for (let off = 0; off < BIG; off += chunk) {
          const end = Math.min(BIG, off + chunk) - 1
          const p = await call(loc, 'PATCH', { 'Content-Length': String(end - off + 1), 'Content-Range': `${off}-${end}` }, createReadStream(bigFile, { start: off, end, highWaterMark: 1 << 20 }))
          if (p.status !== 202) throw new Error(`${r}: big PATCH ${p.status}`)
          loc = String(p.headers.location)
          if (loc.startsWith('/')) loc = `${reg.url}${loc}`
        }
        const put = await call(`${loc}${loc.includes('?') ? '&' : '?'}digest=${bigDigest}`, 'PUT', { 'Content-Length': '0' })
        if (put.status !== 201) throw new Error(`${r}: big PUT ${put.status}`)
        bigPush[r].push(BIG / (1 << 20) / ((performance.now() - t0) / 1000))
        // curl receives: a Node.js client would take a core of its own, which on a small machine
        // competes with a Node.js server but not with a Go server's sendfile
        const got = await curlGet(`${reg.url}/v2/bench/big${it}/blobs/${bigDigest}`)
        if (got.bytes !== BIG) throw new Error(`${r}: big GET returned ${got.bytes} bytes`)
        bigGet[r].push(BIG / (1 << 20) / got.seconds)
        const quarter = Math.floor(BIG / 4)
        const part = await curlGet(`${reg.url}/v2/bench/big${it}/blobs/${bigDigest}`, `${quarter}-${2 * quarter - 1}`)
        if (part.bytes !== quarter) throw new Error(`${r}: Range GET returned ${part.bytes} bytes`)
        rangeGet[r].push(quarter / (1 << 20) / part.seconds)
        // a small image for the request-rate figures
        const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, it }))
        const layer = blobs[0] as Buffer
        await pushBlob(reg, 'bench/rps', config, 1)
        await pushBlob(reg, 'bench/rps', layer, 1)
        const manifest = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
        }))
        const mp = await call(`${reg.url}/v2/bench/rps/manifests/v1`, 'PUT', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(manifest.length) }, manifest)
        if (mp.status !== 201) throw new Error(`${r}: manifest PUT ${mp.status}`)
        manifestRps[r].push(await hammer(`${reg.url}/v2/bench/rps/manifests/v1`, 'GET', { Accept: 'application/vnd.oci.image.manifest.v1+json' }, CONNS, SECONDS))
        headRps[r].push(await hammer(`${reg.url}/v2/bench/rps/blobs/${sha256(layer)}`, 'HEAD', {}, CONNS, SECONDS))
        smallGetRps[r].push(await hammer(`${reg.url}/v2/bench/rps/blobs/${sha256(layer)}`, 'GET', {}, CONNS, SECONDS))
      }
    }
    rss.cairn.push(procStatusMiB(regs.cairn.child.pid, 'VmHWM'))
    rss.distribution.push(procStatusMiB(regs.distribution.child.pid, 'VmHWM'))
    // docker: a fresh registry (empty root) for every push, so that every layer is really uploaded
    for (let it = 0; docker && it < ITER; it++) {
      for (const name of it % 2 === 0 ? ['cairn', 'distribution'] as const : ['distribution', 'cairn'] as const) {
        log(`docker round ${it + 1}/${ITER}: ${name}`)
        const reg = await startRegistryServer(name, CAIRN_CLI)
        try {
          const d = await dockerRound(docker, reg, it)
          dockerPush[name].push(d.push)
          dockerPull[name].push(d.pull)
        } finally {
          await stopRegistryServer(reg)
        }
      }
    }
  } finally {
    await stopRegistryServer(regs.cairn)
    await stopRegistryServer(regs.distribution)
    await docker?.stop()
    await rm(bigFile, { force: true })
    agent.destroy()
  }

  const fmt = (n: number): string => (Number.isNaN(n) ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(2))
  const lines = [
    `# Registry benchmark: cairn registry serve vs distribution 2.8 (Debian docker-registry)`,
    '',
    `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}; median of ${ITER} iterations.`,
    '',
    '| figure | cairn | distribution | cairn vs distribution |',
    '|---|---:|---:|---:|',
  ]
  for (const r of rows) {
    if (r.cairn.length === 0) continue
    const c = median(r.cairn)
    const d = median(r.distribution)
    const ratio = r.higherIsBetter ? c / d : d / c
    lines.push(`| ${r.what} | ${fmt(c)} | ${fmt(d)} | ${ratio.toFixed(2)}× ${r.what.includes('RSS') ? '(less is better)' : ratio >= 1 ? 'faster' : 'slower'} |`)
  }
  lines.push('', 'The last column is how many times better cairn does (> 1: cairn ahead), for times and RSS the inverse ratio.')
  lines.push('', '| samples | cairn | distribution |', '|---|---|---|')
  for (const r of rows) if (r.cairn.length > 0) lines.push(`| ${r.what} | ${r.cairn.map(fmt).join(', ')} | ${r.distribution.map(fmt).join(', ')} |`)
  const report = `${lines.join('\n')}\n`
  process.stdout.write(report)
  if (args.out) {
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(args.out, '..'), { recursive: true })
    await writeFile(args.out, report)
  }
}

runMain(main, 'bench')
