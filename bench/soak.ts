/**
 * Soak: `cairn registry serve` and distribution 2.8 (Debian's docker-registry) side by side under the
 * same steady load of concurrent pushes and pulls for a long time (30 minutes by default), with the
 * resident memory of each server sampled every second. The question is whether a server's memory
 * stays flat once warm, or creeps.
 *
 *   npm run build && node build/bench/soak.js [--minutes 30] [--pushers 3] [--pullers 3] [--out-dir bench/results]
 *
 * Load, the same for each registry and at the same time (each has its own clients in this process):
 * - pushers: in a loop, an image of 3 to 6 layers drawn from a fixed pool of 48 random blobs (1 KiB to
 *   8 MiB, and two of 48 MiB), each layer uploaded whether or not the registry has it (monolithic
 *   POST+PUT, or three PATCH chunks for one in three), then the config and the manifest under one of
 *   8 tags of one of 4 repositories;
 * - pullers: in a loop, a tag's manifest, then every blob it names (one in four by Range halves),
 *   with a HEAD of each first.
 * Blobs come from a fixed pool, so the registries' disks do not fill whatever the length. A server's
 * 5xx answer is counted and reported, and its client goes on (distribution answered a manifest GET
 * with 500 eleven minutes into a run); any other unexpected answer ends the run.
 *
 * Output (in --out-dir): soak.md (the figures), soak.csv (every sample: seconds, MiB of each server,
 * requests done), soak.svg and soak.png (the two curves; the PNG by rsvg-convert, package
 * librsvg2-bin). The figures: each server's peak RSS, its median RSS over the last half, and the slope
 * of a least-squares line through the last half (MiB per 10 minutes): flat is near 0.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { Agent, request, type IncomingMessage } from 'node:http'
import { cpus, release } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { DISTRIBUTION, procStatusMiB, startRegistryServer, stopRegistryServer, runMain, type RegistryServer } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    pushers: { type: 'string', default: '3' },
    pullers: { type: 'string', default: '3' },
    'out-dir': { type: 'string', default: join(PROJECT, 'bench/results') },
  },
})
const MINUTES = Number(args.minutes)
const PUSHERS = Number(args.pushers)
const PULLERS = Number(args.pullers)
const OUT = args['out-dir']
const log = (s: string): void => {
  process.stderr.write(`soak: ${s}\n`)
}

type Name = RegistryServer['name']
type Registry = RegistryServer

// --- the load ---------------------------------------------------------------------------------------

const agent = new Agent({ keepAlive: true, maxSockets: 64 })

function call(url: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    // only manifests are kept; blob bodies are counted and dropped
    const keep = method === 'GET' && url.includes('/manifests/')
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => {
        if (keep) chunks.push(c)
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

interface Blob { data: Buffer; digest: string }

function blobPool(): Blob[] {
  const sizes: number[] = []
  for (let i = 0; i < 46; i++) sizes.push(Math.round(1024 * Math.pow(8192, i / 45)))
  sizes.push(48 << 20, 48 << 20)
  return sizes.map((s) => {
    const data = randomBytes(s)
    return { data, digest: sha256(data) }
  })
}

function absolute(reg: Registry, loc: string): string {
  return loc.startsWith('/') ? `${reg.url}${loc}` : loc
}

/** Requests a server answered, and its answers of 5xx (counted and reported: a server's error does not end the run). */
interface Tally { n: number; serverErrors: number; firstError?: string }

/** A 5xx answer is counted (the loop goes on after a pause); any other unexpected status ends the run. */
async function expect(reg: Registry, done: Tally, status: number, want: number, what: string): Promise<boolean> {
  if (status === want) return true
  if (status < 500) throw new Error(`${reg.name}: ${what} ${status}`)
  done.serverErrors++
  done.firstError ??= `${what} ${status}`
  await new Promise((r) => setTimeout(r, 200))
  return false
}

/** A blob pushed, whole or in three chunks; false when the server answered 5xx (counted). */
async function upload(reg: Registry, repo: string, b: Blob, chunked: boolean, done: Tally): Promise<boolean> {
  const s = await call(`${reg.url}/v2/${repo}/blobs/uploads/`, 'POST', { 'Content-Length': '0' })
  if (!(await expect(reg, done, s.status, 202, 'POST'))) return false
  let loc = absolute(reg, String(s.headers.location))
  if (chunked && b.data.length >= 3) {
    const size = Math.ceil(b.data.length / 3)
    for (let off = 0; off < b.data.length; off += size) {
      const part = b.data.subarray(off, off + size)
      const p = await call(loc, 'PATCH', { 'Content-Type': 'application/octet-stream', 'Content-Length': String(part.length), 'Content-Range': `${off}-${off + part.length - 1}` }, part)
      if (!(await expect(reg, done, p.status, 202, 'PATCH'))) return false
      loc = absolute(reg, String(p.headers.location))
    }
    const put = await call(`${loc}${loc.includes('?') ? '&' : '?'}digest=${b.digest}`, 'PUT', { 'Content-Length': '0' })
    return expect(reg, done, put.status, 201, 'PUT')
  }
  const put = await call(`${loc}${loc.includes('?') ? '&' : '?'}digest=${b.digest}`, 'PUT', { 'Content-Type': 'application/octet-stream', 'Content-Length': String(b.data.length) }, b.data)
  return expect(reg, done, put.status, 201, 'PUT')
}

/** A small deterministic generator, so that both registries get the same sequence of work. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 2 ** 32
  }
}

const REPOS = ['soak/a', 'soak/b', 'soak/c', 'soak/d']
const TAGS = 8

async function pusher(reg: Registry, pool: Blob[], seed: number, until: number, done: Tally): Promise<void> {
  const rand = rng(seed)
  while (Date.now() < until) {
    const repo = REPOS[Math.floor(rand() * REPOS.length)] as string
    const count = 3 + Math.floor(rand() * 4)
    const layers: Blob[] = []
    for (let i = 0; i < count; i++) layers.push(pool[Math.floor(rand() * pool.length)] as Blob)
    // after a 5xx the iteration goes on without its manifest, drawing the same numbers
    let ok = true
    for (const l of layers) {
      ok = (await upload(reg, repo, l, rand() < 1 / 3, done)) && ok
      done.n++
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, seed: rand() }))
    const cfg = { data: config, digest: sha256(config) }
    ok = (await upload(reg, repo, cfg, false, done)) && ok
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.data.length })),
    }))
    const tag = `t${Math.floor(rand() * TAGS)}`
    if (!ok) continue
    const m = await call(`${reg.url}/v2/${repo}/manifests/${tag}`, 'PUT', { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': String(manifest.length) }, manifest)
    if (!(await expect(reg, done, m.status, 201, 'manifest PUT'))) continue
    done.n += 2
  }
}

async function puller(reg: Registry, seed: number, until: number, done: Tally): Promise<void> {
  const rand = rng(seed)
  while (Date.now() < until) {
    const repo = REPOS[Math.floor(rand() * REPOS.length)] as string
    const tag = `t${Math.floor(rand() * TAGS)}`
    const m = await call(`${reg.url}/v2/${repo}/manifests/${tag}`, 'GET', { Accept: 'application/vnd.oci.image.manifest.v1+json' })
    done.n++
    if (m.status === 404) {
      await new Promise((r) => setTimeout(r, 200))
      continue
    }
    if (!(await expect(reg, done, m.status, 200, 'manifest GET'))) continue
    const manifest = JSON.parse(m.body.toString()) as { layers: { digest: string; size: number }[] }
    for (const l of manifest.layers) {
      const url = `${reg.url}/v2/${repo}/blobs/${l.digest}`
      const h = await call(url, 'HEAD')
      if (!(await expect(reg, done, h.status, 200, 'HEAD'))) break
      if (rand() < 0.25 && l.size > 2) {
        const half = Math.floor(l.size / 2)
        for (const range of [`bytes=0-${half - 1}`, `bytes=${half}-`]) {
          const r = await call(url, 'GET', { Range: range })
          if (!(await expect(reg, done, r.status, 206, 'range GET'))) break
        }
      } else {
        const g = await call(url, 'GET')
        await expect(reg, done, g.status, 200, 'GET')
      }
      done.n += 2
    }
  }
}

// --- the picture ------------------------------------------------------------------------------------

function svg(rows: { t: number; cairn: number; distribution: number }[], title: string): string {
  const W = 900
  const H = 420
  const L = 60
  const R = 20
  const T = 40
  const B = 50
  const tMax = Math.max(60, ...rows.map((r) => r.t))
  const yMax = Math.ceil(Math.max(50, ...rows.flatMap((r) => [r.cairn, r.distribution]).filter(Number.isFinite)) / 25) * 25
  const x = (t: number): number => L + (t / tMax) * (W - L - R)
  const y = (v: number): number => H - B - (v / yMax) * (H - T - B)
  const line = (k: 'cairn' | 'distribution'): string => rows.filter((r) => Number.isFinite(r[k])).map((r) => `${x(r.t).toFixed(1)},${y(r[k]).toFixed(1)}`).join(' ')
  let g = ''
  for (let v = 0; v <= yMax; v += 25) g += `<line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" font-size="12">${v}</text>`
  const step = tMax > 1200 ? 300 : 60
  for (let t = 0; t <= tMax; t += step) g += `<text x="${x(t)}" y="${H - B + 18}" text-anchor="middle" font-size="12">${Math.round(t / 60)}</text>`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>
${g}
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>
<text x="${W / 2}" y="${H - 12}" text-anchor="middle" font-size="13">minutes</text>
<text x="16" y="${H / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 16 ${H / 2})">resident memory (MiB)</text>
<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="${line('cairn')}"/>
<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${line('distribution')}"/>
<rect x="${W - R - 230}" y="${T + 4}" width="222" height="44" fill="white" stroke="#999"/>
<line x1="${W - R - 220}" y1="${T + 18}" x2="${W - R - 195}" y2="${T + 18}" stroke="#d62728" stroke-width="2"/><text x="${W - R - 188}" y="${T + 22}" font-size="12">cairn registry serve</text>
<line x1="${W - R - 220}" y1="${T + 36}" x2="${W - R - 195}" y2="${T + 36}" stroke="#1f77b4" stroke-width="2"/><text x="${W - R - 188}" y="${T + 40}" font-size="12">distribution 2.8</text>
</svg>
`
}

/** Least-squares slope of v over t (per second). */
function slope(points: { t: number; v: number }[]): number {
  const n = points.length
  if (n < 2) return NaN
  const mt = points.reduce((a, p) => a + p.t, 0) / n
  const mv = points.reduce((a, p) => a + p.v, 0) / n
  let num = 0
  let den = 0
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv)
    den += (p.t - mt) ** 2
  }
  return den === 0 ? NaN : num / den
}

async function main(): Promise<void> {
  if (!existsSync(DISTRIBUTION)) throw new Error(`${DISTRIBUTION} is missing: apt-get install docker-registry (scripts/ensure-deps.sh as root)`)
  log(`${MINUTES} minutes, ${PUSHERS} pushers and ${PULLERS} pullers per registry`)
  const pool = blobPool()
  log(`blob pool: ${pool.length} blobs, ${(pool.reduce((a, b) => a + b.data.length, 0) / 2 ** 20).toFixed(0)} MiB`)
  const regs = [await startRegistryServer('cairn', CAIRN_CLI, 'soak'), await startRegistryServer('distribution', CAIRN_CLI, 'soak')]
  const rows: { t: number; cairn: number; distribution: number; requests: number }[] = []
  const done: Record<Name, Tally> = { cairn: { n: 0, serverErrors: 0 }, distribution: { n: 0, serverErrors: 0 } }
  const t0 = Date.now()
  const until = t0 + MINUTES * 60_000
  const sampler = setInterval(() => {
    const [c, d] = regs as [Registry, Registry]
    rows.push({ t: (Date.now() - t0) / 1000, cairn: procStatusMiB(c.child.pid, 'VmRSS'), distribution: procStatusMiB(d.child.pid, 'VmRSS'), requests: done.cairn.n + done.distribution.n })
    const last = rows.at(-1)
    if (last && rows.length % 60 === 0) log(`${(last.t / 60).toFixed(0)} min: cairn ${last.cairn.toFixed(0)} MiB, distribution ${last.distribution.toFixed(0)} MiB, ${last.requests} requests`)
  }, 1000)
  try {
    const work: Promise<void>[] = []
    for (const reg of regs) {
      for (let i = 0; i < PUSHERS; i++) work.push(pusher(reg, pool, 1000 + i, until, done[reg.name]))
      // pullers start once something is there to pull
      for (let i = 0; i < PULLERS; i++) work.push(puller(reg, 2000 + i, until, done[reg.name]))
    }
    await Promise.all(work)
  } finally {
    clearInterval(sampler)
    for (const r of regs) await stopRegistryServer(r)
    agent.destroy()
  }
  const half = rows.filter((r) => r.t >= (MINUTES * 60) / 2)
  const stats = (k: Name): { peak: number; medianLate: number; slope10: number; first: number } => {
    const vs = rows.map((r) => r[k]).filter(Number.isFinite)
    const late = half.map((r) => r[k]).filter(Number.isFinite).sort((a, b) => a - b)
    return {
      peak: Math.max(...vs),
      first: vs[0] ?? NaN,
      medianLate: late[Math.floor(late.length / 2)] ?? NaN,
      slope10: slope(half.filter((r) => Number.isFinite(r[k])).map((r) => ({ t: r.t, v: r[k] }))) * 600,
    }
  }
  const c = stats('cairn')
  const d = stats('distribution')
  await mkdir(OUT, { recursive: true })
  const csv = ['seconds,cairn_mib,distribution_mib,requests', ...rows.map((r) => `${r.t.toFixed(1)},${r.cairn.toFixed(1)},${r.distribution.toFixed(1)},${r.requests}`)].join('\n')
  writeFileSync(join(OUT, 'soak.csv'), `${csv}\n`)
  const title = `Registry resident memory under ${MINUTES} min of concurrent pushes and pulls (${new Date().toISOString().slice(0, 10)})`
  writeFileSync(join(OUT, 'soak.svg'), svg(rows, title))
  let png = 'soak.png'
  try {
    execFileSync('rsvg-convert', ['-o', join(OUT, 'soak.png'), join(OUT, 'soak.svg')])
  } catch {
    png = '(not drawn: rsvg-convert missing, package librsvg2-bin)'
  }
  const f = (n: number): string => n.toFixed(1)
  const md = [
    `# Registry soak: cairn registry serve and distribution 2.8 side by side`,
    '',
    `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}. ${MINUTES} minutes; per registry ${PUSHERS} pushers and ${PULLERS} pullers at once (see bench/soak.ts); resident memory (VmRSS) of each server every second.`,
    '',
    '| figure | cairn | distribution | cairn / distribution |',
    '|---|---:|---:|---:|',
    `| RSS at the start (MiB) | ${f(c.first)} | ${f(d.first)} | ${(c.first / d.first).toFixed(2)}× |`,
    `| peak RSS (MiB) | ${f(c.peak)} | ${f(d.peak)} | ${(c.peak / d.peak).toFixed(2)}× |`,
    `| median RSS, second half (MiB) | ${f(c.medianLate)} | ${f(d.medianLate)} | ${(c.medianLate / d.medianLate).toFixed(2)}× |`,
    `| slope over the second half (MiB per 10 min) | ${f(c.slope10)} | ${f(d.slope10)} | |`,
    `| requests served | ${done.cairn.n} | ${done.distribution.n} | ${(done.cairn.n / done.distribution.n).toFixed(2)}× |`,
    `| answers of 5xx (counted, the run went on) | ${done.cairn.serverErrors}${done.cairn.firstError ? ` (first: ${done.cairn.firstError})` : ''} | ${done.distribution.serverErrors}${done.distribution.firstError ? ` (first: ${done.distribution.firstError})` : ''} | |`,
    '',
    `The curve: ${png} (and soak.svg); every sample: soak.csv.`,
    '',
  ].join('\n')
  writeFileSync(join(OUT, 'soak.md'), md)
  process.stdout.write(md)
}

runMain(main, 'soak')
