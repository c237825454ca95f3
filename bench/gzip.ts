/**
 * Benchmark: gzip as Cairn makes it for push, `save --compression gzip` and `import --compression
 * gzip` (parallel libdeflate, src/layer/pgzip.ts), side by side in the same run with zlib level 6 in
 * one stream (the reference ratio: Docker's and Go's default level), Cairn's zlib fallback (the same
 * parallel blocks through node:zlib, what Cairn did before), `pigz -6` (zlib on every core) and
 * GNU `gzip -6`, on the same inputs.
 *
 *   npm run build && node build/bench/gzip.js [--iterations 3] [--out FILE]
 *
 * Inputs: the Debian minbase root filesystem tar (test/helpers/rootfs.ts; binaries and text), and the
 * text of TypeScript's own `lib/` (node_modules/typescript, JavaScript source: where fast deflate
 * levels lose the most ratio). Figures: wall seconds, CPU seconds (user + system, every thread), and
 * the size against zlib -6's. Then the commands, as a user runs them (bin/cairn, spawn to exit): `import
 * --compression gzip` of the Debian tar into an empty store and `save --compression gzip` of that
 * image, with the addon and with CAIRN_GZIP=zlib (Cairn's zlib path, what these commands did before).
 * Needs pigz and gzip (scripts/ensure-deps.sh).
 */
import { spawn } from 'node:child_process'
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createGzip } from 'node:zlib'
import { gzipBackend, zlibBackend, type GzipBackend } from '../src/layer/deflate.js'
import { parallelGzip } from '../src/layer/pgzip.js'
import { debianRootfs } from '../test/helpers/rootfs.js'
import { exec, median, runMain, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const DEFAULT_OUT = join(PROJECT, 'bench/results/gzip.md')

interface Sample { wallS: number; cpuS: number; bytes: number }

async function inProcess(file: string, make: () => Transform): Promise<Sample> {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  let bytes = 0
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), make(), async (src: AsyncIterable<Buffer | string>) => {
    for await (const c of src) bytes += c.length
  })
  const c = process.cpuUsage(c0)
  return { wallS: (performance.now() - t0) / 1000, cpuS: (c.user + c.system) / 1e6, bytes }
}

/** `cmd args < file`, stdout counted; CPU from GNU time. */
async function tool(file: string, cmd: string, args: string[]): Promise<Sample> {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '@@CPU %U %S', cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let bytes = 0
    let err = ''
    child.stdout.on('data', (b: Buffer) => (bytes += b.length))
    child.stderr.on('data', (b: Buffer) => (err += b.toString()))
    createReadStream(file).pipe(child.stdin)
    child.once('error', reject)
    child.once('close', (code) => {
      const m = /@@CPU ([\d.]+) ([\d.]+)/.exec(err)
      if (code !== 0 || !m) reject(new Error(`${cmd} failed: ${err.slice(-500)}`))
      else resolve({ wallS: (performance.now() - t0) / 1000, cpuS: Number(m[1]) + Number(m[2]), bytes })
    })
  })
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', short: 'n', default: '3' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  const lib: GzipBackend = gzipBackend()
  if (lib.name !== 'libdeflate') process.stderr.write('gzip bench: the native addon is not loaded: Cairn\'s row is zlib\'s\n')
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-gzip-'))
  try {
    const debian = (await debianRootfs({ log: (m: string) => process.stderr.write(`${m}\n`) })).tar
    // TypeScript's lib/, concatenated in name order
    const tsDir = join(PROJECT, 'node_modules/typescript/lib')
    const text = join(work, 'typescript-lib.txt')
    await writeFile(text, Buffer.concat(readdirSync(tsDir).sort().filter((f) => statSync(join(tsDir, f)).isFile()).map((f) => readFileSync(join(tsDir, f)))))
    const inputs = [{ name: 'Debian minbase tar', file: debian }, { name: 'TypeScript lib/ (JavaScript text)', file: text }]
    const tools: { name: string; run: (file: string) => Promise<Sample> }[] = [
      { name: `cairn (libdeflate ${lib.version}, level 4, 5 or 7 by block, stored where incompressible, parallel)`, run: (f) => inProcess(f, () => parallelGzip({ backend: lib })) },
      { name: 'cairn fallback (zlib -6, parallel)', run: (f) => inProcess(f, () => parallelGzip({ backend: zlibBackend })) },
      { name: 'zlib -6, one stream (reference)', run: (f) => inProcess(f, () => createGzip({ level: 6 })) },
      { name: `pigz -6 -p ${cpus().length}`, run: (f) => tool(f, 'pigz', ['-6', '-c', '-p', String(cpus().length)]) },
      { name: 'gzip -6', run: (f) => tool(f, 'gzip', ['-6', '-c']) },
    ]
    const samples = new Map<string, Sample[]>()
    for (let i = 0; i < n; i++) {
      for (const input of inputs) {
        const order = i % 2 === 0 ? tools : [...tools].reverse()
        for (const t of order) {
          const s = await t.run(input.file)
          const k = `${input.name}|${t.name}`
          samples.set(k, [...(samples.get(k) ?? []), s])
          process.stderr.write(`gzip bench: ${input.name}, ${t.name}: ${s.wallS.toFixed(2)} s, ${s.cpuS.toFixed(2)} s CPU, ${s.bytes} bytes\n`)
        }
      }
    }
    // the commands
    const cli = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
    const store = join(work, 'store')
    await exec({ cmd: cli, args: ['--root', store, 'import', debian, 'bench/debian:1'] })
    const commands: { name: string; env: NodeJS.ProcessEnv }[] = [
      { name: 'libdeflate', env: { ...process.env, CAIRN_GZIP: '' } },
      { name: 'zlib (CAIRN_GZIP=zlib)', env: { ...process.env, CAIRN_GZIP: 'zlib' } },
    ]
    const cmdSamples = new Map<string, number[]>()
    for (let i = 0; i < n; i++) {
      for (const c of i % 2 === 0 ? commands : [...commands].reverse()) {
        const root = join(work, `import-${i}`)
        const imp = await exec({ cmd: cli, args: ['--root', root, 'import', '--compression', 'gzip', debian, 'x:1'], env: c.env })
        await rm(root, { recursive: true, force: true })
        const sav = await exec({ cmd: cli, args: ['--root', store, 'save', '--compression', 'gzip', '-o', join(work, 'saved.tar.gz'), 'bench/debian:1'], env: c.env })
        await rm(join(work, 'saved.tar.gz'), { force: true })
        cmdSamples.set(`import|${c.name}`, [...(cmdSamples.get(`import|${c.name}`) ?? []), imp.wallS])
        cmdSamples.set(`save|${c.name}`, [...(cmdSamples.get(`save|${c.name}`) ?? []), sav.wallS])
        process.stderr.write(`gzip bench: import ${imp.wallS.toFixed(2)} s, save ${sav.wallS.toFixed(2)} s with ${c.name}\n`)
      }
    }
    const lines = ['# gzip: Cairn\'s parallel libdeflate beside zlib, pigz and gzip', '',
      `${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version} (zlib ${process.versions.zlib}); median of ${n} runs; the tools alternate order.`, '']
    for (const input of inputs) {
      const size = statSync(input.file).size
      const ref = median((samples.get(`${input.name}|${tools[2]?.name ?? ''}`) ?? []).map((s) => s.bytes))
      lines.push(`## ${input.name}, ${(size / 2 ** 20).toFixed(0)} MiB`, '', '| tool | wall (s) | CPU (s) | MB/s (wall) | bytes | vs zlib -6 |', '|---|---:|---:|---:|---:|---:|')
      for (const t of tools) {
        const xs = samples.get(`${input.name}|${t.name}`) ?? []
        const wall = median(xs.map((s) => s.wallS))
        const bytes = median(xs.map((s) => s.bytes))
        lines.push(`| ${t.name} | ${wall.toFixed(2)} | ${median(xs.map((s) => s.cpuS)).toFixed(2)} | ${(size / 1e6 / wall).toFixed(0)} | ${bytes} | ${((bytes / ref - 1) * 100).toFixed(2)}% |`)
      }
      lines.push('')
    }
    const cm = (k: string): number => median(cmdSamples.get(k) ?? [NaN])
    const [withLib, withZlib] = commands.map((c) => c.name) as [string, string]
    lines.push('## Commands on the Debian minbase tar (wall seconds)', '', '| command | libdeflate | zlib (CAIRN_GZIP=zlib) | libdeflate / zlib |', '|---|---:|---:|---:|')
    for (const [label, k] of [['`import --compression gzip`', 'import'], ['`save --compression gzip`', 'save']] as const) {
      lines.push(`| ${label} | ${cm(`${k}|${withLib}`).toFixed(2)} | ${cm(`${k}|${withZlib}`).toFixed(2)} | ${(cm(`${k}|${withLib}`) / cm(`${k}|${withZlib}`)).toFixed(2)}× |`)
    }
    lines.push('')
    lines.push('Every run (wall s / CPU s / bytes):', '')
    for (const [k, xs] of samples) lines.push(`- ${k.replace('|', ', ')}: ${xs.map((s) => `${s.wallS.toFixed(2)}/${s.cpuS.toFixed(2)}/${s.bytes}`).join(' ')}`)
    for (const [k, xs] of cmdSamples) lines.push(`- ${k.replace('|', ', ')} (wall s): ${xs.map((x) => x.toFixed(2)).join(' ')}`)
    const report = `${lines.join('\n')}\n`
    publishReport(report, values.out)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

runMain(main)
