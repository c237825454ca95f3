/**
 * Benchmark: `cairn import|save|load` against `docker import|save|load` on the same input, side by side
 * in one run, against a private dockerd (test/helpers/dockerd.ts). See bench/README.md.
 *
 *   npm run build && node build/bench/import-save-load.js [--iterations 3] [--tar FILE | --busybox]
 *                                                         [--tools cairn,docker] [--out FILE]
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { tail } from '../test/helpers/exec.js'
import { busyboxRootfsTar, debianRootfs } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { median } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const GNU_TIME = '/usr/bin/time'
const DEFAULT_OUT = join(PROJECT, 'bench/results/import-save-load.md')
const STEP_TIMEOUT_MS = 15 * 60_000
const TAG = 'bench:1'

const Steps = ['import', 'save', 'load'] as const
type Step = (typeof Steps)[number]
const ToolNames = ['cairn', 'docker'] as const
type ToolName = (typeof ToolNames)[number]

/** One timed command. */
interface Sample {
  wallS: number
  /** Peak RSS of the work: the command's own (max over its processes) plus, for docker, dockerd's and containerd's peak. */
  peakKiB: number
  /** CPU seconds (user+sys) of the command and, for docker, of the daemons. */
  cpuS: number
  /** For docker: the daemons' RSS just before the command (their idle footprint, included in peakKiB). */
  daemonBaseKiB?: number
  /** For save: the archive's size. */
  outputBytes?: number
}

interface Outcome {
  samples: Sample[]
  /** Set when the step failed for this tool; the samples before the failure are kept. */
  error?: string
}

class StepFailed extends Error {}

// --- measuring ---------------------------------------------------------------------------------

interface Command {
  cmd: string
  args: string[]
  env?: NodeJS.ProcessEnv
  /** Long-lived processes doing the work on the command's behalf (dockerd, containerd). */
  daemons?: number[]
}

function readStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0)
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12]) // utime, stime (fields 14 and 15)
}
const TICKS_PER_S = 100

/**
 * Runs one command and measures it. Wall time is taken here; the command's peak RSS and CPU come from
 * GNU time (ru_maxrss, the largest of its processes), or when that is missing, from polling its VmHWM.
 * Daemons' peaks come from VmHWM after resetting it through /proc/PID/clear_refs.
 */
async function measure(c: Command): Promise<Sample> {
  spawnSync('sync') // don't charge this command with the writeback of the previous one
  const daemons = c.daemons ?? []
  let daemonBaseKiB = 0
  const daemonCpu0 = new Map<number, number>()
  for (const pid of daemons) {
    writeFileSync(`/proc/${pid}/clear_refs`, '5') // VmHWM := VmRSS
    daemonBaseKiB += readStatus(pid, 'VmRSS')
    daemonCpu0.set(pid, cpuTicks(pid))
  }
  const useTime = existsSync(GNU_TIME)
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-m-'))
  const timeOut = join(work, 'time')
  const [cmd, args] = useTime ? [GNU_TIME, ['-f', '%M %U %S', '-o', timeOut, '--', c.cmd, ...c.args]] : [c.cmd, c.args]
  try {
    const t0 = performance.now()
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: c.env ?? process.env, timeout: STEP_TIMEOUT_MS, killSignal: 'SIGKILL' })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr = tail(stderr + b.toString('utf8'), 8000)))
    let polledKiB = 0
    const poll = useTime
      ? undefined
      : setInterval(() => {
          try {
            polledKiB = Math.max(polledKiB, readStatus(child.pid ?? 0, 'VmHWM'))
          } catch {
            // exited between ticks
          }
        }, 20)
    const { code, sig } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code, sig) => resolve({ code, sig }))
    })
    const wallS = (performance.now() - t0) / 1000
    if (poll) clearInterval(poll)
    if (code !== 0) {
      const how = sig ? `killed by ${sig}${sig === 'SIGKILL' ? ' (timeout?)' : ''}` : `exit ${String(code)}`
      throw new StepFailed(`${how}: ${stderr.replace(/^Command exited with non-zero status \d+\n?/m, '').trim() || '(no stderr)'}`)
    }
    let peakKiB = polledKiB
    let cpuS = 0
    if (useTime) {
      const [maxrss, user, sys] = (await readFile(timeOut, 'utf8')).trim().split('\n').at(-1)?.split(' ') ?? []
      peakKiB = Number(maxrss)
      cpuS = Number(user) + Number(sys)
    }
    for (const pid of daemons) {
      peakKiB += readStatus(pid, 'VmHWM')
      cpuS += (cpuTicks(pid) - (daemonCpu0.get(pid) ?? 0)) / TICKS_PER_S
    }
    return { wallS, peakKiB, cpuS, ...(daemons.length > 0 ? { daemonBaseKiB } : {}) }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

// --- the tools ---------------------------------------------------------------------------------

/** What each tool must do for the three steps; `prepare*` run untimed before each timed command. */
interface Tool {
  name: ToolName
  prepareImport(i: number): Promise<void>
  import(file: string): Command
  save(out: string): Command
  prepareLoad(i: number): Promise<void>
  load(file: string): Command
  cleanup(): Promise<void>
}

function cairnTool(work: string): Tool {
  let root = ''
  const cli = (args: string[]): Command => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  const fresh = async (name: string): Promise<void> => {
    if (root) await removeTree(root)
    root = join(work, name)
    await mkdir(root, { recursive: true })
  }
  return {
    name: 'cairn',
    prepareImport: (i) => fresh(`cairn-import-${i}`),
    import: (file) => cli(['import', file, TAG]),
    save: (out) => cli(['save', '-o', out, TAG]), // from the last import's root
    prepareLoad: (i) => fresh(`cairn-load-${i}`),
    load: (file) => cli(['load', '-i', file]),
    cleanup: async () => {
      if (root) await removeTree(root)
    },
  }
}

function dockerTool(d: Dockerd): Tool {
  const cmd = (args: string[]): Command => ({
    cmd: '/usr/bin/docker',
    args: ['-H', d.host, ...args],
    env: d.clientEnv,
    daemons: [d.pid, d.containerdPid],
  })
  /** No image left, so that nothing (a shared layer) is reused by the next import or load. */
  const empty = async (): Promise<void> => {
    const ids = (await d.runOk(['image', 'ls', '--all', '--quiet', '--no-trunc'])).stdout.split(/\s+/).filter(Boolean)
    if (ids.length > 0) await d.runOk(['rmi', '--force', ...new Set(ids)])
  }
  return {
    name: 'docker',
    prepareImport: empty,
    import: (file) => cmd(['import', file, TAG]),
    save: (out) => cmd(['save', '-o', out, TAG]),
    prepareLoad: empty,
    load: (file) => cmd(['load', '-i', file]),
    cleanup: empty,
  }
}

async function removeTree(dir: string): Promise<void> {
  unmountUnder(dir)
  await rm(dir, { recursive: true, force: true })
}

// --- the run -----------------------------------------------------------------------------------

interface Options {
  iterations: number
  tar: string
  inputLabel: string
  tools: ToolName[]
  out: string | undefined
}

interface BenchResults {
  outcomes: Map<Step, Map<ToolName, Outcome>>
  /** Which save produced the archive that both tools loaded. */
  loadSource: string | undefined
}

/** `docker` is undefined when dockerd did not start; `dockerError` then says why, in every docker row. */
async function runBench(opts: Options, docker: Dockerd | undefined, dockerError: string, work: string): Promise<BenchResults> {
  const tools: Tool[] = []
  if (opts.tools.includes('cairn')) tools.push(cairnTool(work))
  if (opts.tools.includes('docker') && docker) tools.push(dockerTool(docker))
  const results = new Map<Step, Map<ToolName, Outcome>>(Steps.map((s) => [s, new Map()]))
  const outcome = (step: Step, tool: ToolName): Outcome => {
    const byTool = results.get(step) as Map<ToolName, Outcome>
    let o = byTool.get(tool)
    if (!o) byTool.set(tool, (o = { samples: [] }))
    return o
  }
  const failed = (step: Step, tool: ToolName): boolean => outcome(step, tool).error !== undefined
  if (opts.tools.includes('docker') && !docker) for (const s of Steps) outcome(s, 'docker').error = dockerError
  if (opts.tools.includes('cairn') && !existsSync(CAIRN_CLI)) {
    for (const s of Steps) outcome(s, 'cairn').error = `${CAIRN_CLI} does not exist (npm run build, or set CAIRN_CLI)`
  }

  /** Runs `step` N times for each tool, alternating which goes first to spread drift (cache, thermal) evenly. */
  const stepLoop = async (step: Step, body: (t: Tool, i: number) => Promise<Sample>): Promise<void> => {
    for (let i = 0; i < opts.iterations; i++) {
      const order = i % 2 === 0 ? tools : [...tools].reverse()
      for (const t of order) {
        const o = outcome(step, t.name)
        if (o.error !== undefined) continue
        try {
          const s = await body(t, i)
          o.samples.push(s)
          progress(`${step} ${t.name} #${i + 1}: ${s.wallS.toFixed(2)} s, peak ${mib(s.peakKiB)} MiB`)
        } catch (err) {
          o.error = err instanceof Error ? err.message : String(err)
          progress(`${step} ${t.name} #${i + 1}: FAILED ${summary(o.error)}`)
        }
      }
    }
  }

  await stepLoop('import', async (t, i) => {
    await t.prepareImport(i)
    return measure(t.import(opts.tar))
  })

  const archives = new Map<ToolName, string>()
  await stepLoop('save', async (t, i) => {
    if (failed('import', t.name)) throw new StepFailed('skipped: import failed')
    const out = join(work, `${t.name}-save-${i}.tar`)
    const prev = archives.get(t.name)
    if (prev) await rm(prev, { force: true })
    const s = await measure(t.save(out))
    archives.set(t.name, out)
    return { ...s, outputBytes: (await stat(out)).size }
  })

  // Both tools load the same bytes: docker's archive when there is one.
  const loadInput = archives.get('docker') ?? archives.get('cairn')
  await stepLoop('load', async (t, i) => {
    if (!loadInput) throw new StepFailed('skipped: no saved archive to load')
    await t.prepareLoad(i)
    return measure(t.load(loadInput))
  })

  for (const t of tools) await t.cleanup().catch(() => {})
  const loadSource = loadInput === undefined ? undefined : archives.get('docker') ? 'docker save' : 'cairn save'
  return { outcomes: results, loadSource }
}

// --- reporting ---------------------------------------------------------------------------------

const mib = (kib: number): string => (kib / 1024).toFixed(0)
const firstLine = (s: string): string => s.split('\n').find((l) => l.trim() !== '')?.trim() ?? s
/** The line of an error output a reader wants first: an `Error: ...` line if any, else the first line. */
const summary = (s: string): string => {
  const how = /^(exit \d+|killed by \S+)/.exec(s)?.[1]
  const line = s.split('\n').find((l) => /^\s*(\w*Error\b|error:)/i.test(l))?.trim() ?? firstLine(s)
  return how && !line.startsWith(how) ? `${how}: ${line}` : line
}
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ')

function report(opts: Options, bench: BenchResults, env: Record<string, string>): string {
  const results = bench.outcomes
  const lines: string[] = []
  const tools = ToolNames.filter((t) => opts.tools.includes(t))
  lines.push(`## import / save / load: cairn vs docker`, '')
  lines.push(`Input: ${opts.inputLabel}. Median of ${opts.iterations} runs per cell; peak RSS in MiB (docker: client + dockerd + containerd).`, '')
  const both = tools.length === 2
  lines.push(
    both
      ? '| step | cairn wall (s) | docker wall (s) | wall cairn/docker | cairn peak RSS | docker peak RSS | RSS cairn/docker |'
      : `| step | ${tools[0] ?? ''} wall (s) | ${tools[0] ?? ''} peak RSS |`,
  )
  lines.push(both ? '|---|---:|---:|---:|---:|---:|---:|' : '|---|---:|---:|')
  const failures: string[] = []
  for (const step of Steps) {
    const stat = (t: ToolName): { wall?: number; rss?: number; text: string } => {
      const o = results.get(step)?.get(t)
      if (!o) return { text: '–' }
      if (o.error !== undefined) {
        failures.push(`**${step} / ${t}**`, '', '```', o.error.trim(), '```', '')
        return { text: `FAILED: ${cell(summary(o.error)).slice(0, 120)}` }
      }
      if (o.samples.length === 0) return { text: '–' }
      return { wall: median(o.samples.map((s) => s.wallS)), rss: median(o.samples.map((s) => s.peakKiB)), text: '' }
    }
    const ratio = (a?: number, b?: number): string => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}×` : '–')
    if (both) {
      const c = stat('cairn')
      const d = stat('docker')
      const wall = (x: typeof c): string => (x.wall !== undefined ? x.wall.toFixed(2) : x.text)
      const rss = (x: typeof c): string => (x.rss !== undefined ? mib(x.rss) : '–')
      lines.push(`| ${step} | ${wall(c)} | ${wall(d)} | ${ratio(c.wall, d.wall)} | ${rss(c)} | ${rss(d)} | ${ratio(c.rss, d.rss)} |`)
    } else {
      const x = stat(tools[0] as ToolName)
      lines.push(`| ${step} | ${x.wall !== undefined ? x.wall.toFixed(2) : x.text} | ${x.rss !== undefined ? mib(x.rss) : '–'} |`)
    }
  }
  if (failures.length > 0) lines.push('', '### Failures', '', ...failures)

  lines.push('', '### Every run', '', '| step | tool | wall (s) | peak RSS (MiB) | CPU (s) | daemon RSS before (MiB) | output (MiB) |', '|---|---|---|---|---|---|---|')
  for (const step of Steps) {
    for (const t of tools) {
      const s = results.get(step)?.get(t)?.samples ?? []
      if (s.length === 0) continue
      const list = (f: (x: Sample) => string): string => s.map(f).join(', ')
      lines.push(
        `| ${step} | ${t} | ${list((x) => x.wallS.toFixed(2))} | ${list((x) => mib(x.peakKiB))} | ${list((x) => x.cpuS.toFixed(2))} | ${
          s[0]?.daemonBaseKiB === undefined ? '–' : list((x) => mib(x.daemonBaseKiB ?? 0))
        } | ${s[0]?.outputBytes === undefined ? '–' : list((x) => ((x.outputBytes ?? 0) / 2 ** 20).toFixed(1))} |`,
      )
    }
  }
  if (bench.loadSource) lines.push('', `Load input: the archive written by \`${bench.loadSource}\` (the same file for both tools).`)
  lines.push('', '### Machine', '', ...Object.entries(env).map(([k, v]) => `- ${k}: ${v}`), '')
  return lines.join('\n')
}

function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`)
}

function environment(docker: Dockerd | undefined, dockerInfo: string, inputBytes: number): Record<string, string> {
  const sh = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: PROJECT })
    return r.status === 0 ? r.stdout.trim() : '?'
  }
  const commit = sh('git', ['rev-parse', '--short', 'HEAD'])
  const dirty = sh('git', ['status', '--porcelain']) !== '' ? ' (with uncommitted changes)' : ''
  return {
    date: new Date().toISOString(),
    'cairn commit': `${commit}${dirty}`,
    node: process.version,
    kernel: release(),
    cpu: `${cpus()[0]?.model ?? '?'} × ${cpus().length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    docker: docker ? dockerInfo : 'not run',
    'input size': `${(inputBytes / 2 ** 20).toFixed(1)} MiB`,
    'peak RSS from': existsSync(GNU_TIME) ? 'GNU time (ru_maxrss) + daemons VmHWM after clear_refs' : '/proc VmHWM polling',
    'work dir': tmpdir(),
  }
}

// --- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      iterations: { type: 'string', short: 'n', default: '3' },
      tar: { type: 'string' },
      busybox: { type: 'boolean', default: false },
      tools: { type: 'string', default: 'cairn,docker' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write('usage: node build/bench/import-save-load.js [-n N] [--tar FILE | --busybox] [--tools cairn,docker] [--out FILE]\n')
    return 0
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('the benchmark needs root (a private dockerd; debootstrap for its input)\n')
    return 1
  }
  const iterations = Number(values.iterations)
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations: not a positive integer: ${values.iterations}`)
  const tools = values.tools.split(',').map((t) => t.trim())
  for (const t of tools) if (!(ToolNames as readonly string[]).includes(t)) throw new Error(`--tools: unknown tool ${t}`)

  let tar: string
  let inputLabel: string
  let out: string | undefined = values.out
  if (values.tar) {
    tar = values.tar
    inputLabel = `\`${tar}\``
  } else if (values.busybox) {
    tar = await busyboxRootfsTar()
    inputLabel = 'the busybox test rootfs'
  } else {
    const deb = await debianRootfs({ log: progress })
    tar = deb.tar
    inputLabel = `Debian ${deb.suite} minbase (debootstrap), \`${deb.tar}\``
    out ??= DEFAULT_OUT
  }
  const inputBytes = (await stat(tar)).size
  inputLabel += ` (${(inputBytes / 2 ** 20).toFixed(0)} MiB)`

  // Same page-cache state for everyone: read the input once before any timed command.
  spawnSync('cat', [tar], { stdio: ['ignore', 'ignore', 'inherit'] })

  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-'))
  let docker: Dockerd | undefined
  try {
    let dockerInfo = ''
    let dockerError = ''
    if (tools.includes('docker')) {
      try {
        docker = await startDockerd()
        dockerInfo = (await docker.runOk(['version', '--format', 'dockerd {{.Server.Version}}'])).stdout.trim()
        dockerInfo += `, ${(await docker.runOk(['info', '--format', '{{.Driver}}'])).stdout.trim()}`
        progress(`${dockerInfo} at ${docker.host}`)
      } catch (err) {
        dockerError = `dockerd did not start: ${err instanceof Error ? err.message : String(err)}`
        progress(dockerError)
      }
    }
    const opts: Options = { iterations, tar, inputLabel, tools: tools as ToolName[], out }
    const results = await runBench(opts, docker, dockerError, work)
    const md = report(opts, results, environment(docker, dockerInfo, inputBytes))
    process.stdout.write(md)
    if (out) {
      await mkdir(dirname(out), { recursive: true })
      await writeFile(out, md)
      progress(`written to ${out}`)
    }
    return 0
  } finally {
    await docker?.stop()
    await removeTree(work)
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
