/** What the benchmarks share: timing a command, the median of samples, the registries they compare, /proc figures, report sections, clean-up. */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { runtimeStateRoot } from '../src/runtime/runtime.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { freePort } from '../test/helpers/distribution.js'
import type { Dockerd } from '../test/helpers/dockerd.js'
import { unmountUnder } from '../test/helpers/system.js'

export interface Cmd {
  cmd: string
  args: string[]
  env?: NodeJS.ProcessEnv
}

/** Runs a command to completion and times it (wall seconds); a non-zero exit throws unless allowed. */
export async function exec(c: Cmd, allowFail = false): Promise<{ code: number | null; stdout: string; stderr: string; wallS: number }> {
  const t0 = performance.now()
  const child = spawn(c.cmd, c.args, { stdio: ['ignore', 'pipe', 'pipe'], env: c.env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  const wallS = (performance.now() - t0) / 1000
  if (code !== 0 && !allowFail) throw new Error(`${c.cmd} ${c.args.join(' ')} exited ${String(code)}: ${stderr.slice(-2000)}`)
  return { code, stdout, stderr, wallS }
}

/** Runs a command under GNU time: wall seconds and peak resident memory (MiB). */
export async function measured(c: Cmd): Promise<{ wallS: number; maxRssMiB: number }> {
  const r = await exec({ cmd: '/usr/bin/time', args: ['-f', 'CAIRN-BENCH %M %e', c.cmd, ...c.args], ...(c.env ? { env: c.env } : {}) })
  const m = /CAIRN-BENCH (\d+) ([\d.]+)/.exec(r.stderr)
  if (!m) throw new Error(`no GNU time output from ${c.cmd}: ${r.stderr.slice(-500)}`)
  return { wallS: r.wallS, maxRssMiB: Number(m[1]) / 1024 }
}

/** A container's ~1 GB change (a shell command): four 200 MB files and 2,000 files of 100 KB, random bytes. */
export const BIG_CHANGE = 'mkdir -p /big/small && for i in 1 2 3 4; do head -c 200000000 /dev/urandom > /big/f$i; done && cd /big/small && seq 1 2000 | xargs -n 100 sh -c \'for f; do head -c 100000 /dev/urandom > "$f"; done\' sh && sync'

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

// --- the two registries the registry benchmarks compare -----------------------------------------

/** The CNCF registry (distribution) as Debian's docker-registry package installs it. */
export const DISTRIBUTION = '/usr/bin/docker-registry'

export interface RegistryServer {
  name: 'cairn' | 'distribution'
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `127.0.0.1:<port>` */
  host: string
  child: ChildProcess
  /** Its private folder (storage, config, log), removed by stopRegistryServer. */
  dir: string
}

/**
 * Starts Cairn's registry (`cairnCli registry serve`) or distribution on a free loopback port, on
 * a fresh folder, without access logs; resolves once `/v2/` answers 200.
 */
export async function startRegistryServer(name: RegistryServer['name'], cairnCli: string, prefix = 'bench'): Promise<RegistryServer> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-${name}-`))
  const port = await freePort()
  let child: ChildProcess
  if (name === 'cairn') {
    child = spawn(cairnCli, ['registry', 'serve', '--listen', `127.0.0.1:${port}`, '--root', `${dir}/root`, '--access-log', 'none'], { stdio: ['ignore', 'ignore', 'inherit'] })
  } else {
    await writeFile(`${dir}/config.yml`, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dir}/root
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:${port}
`)
    // distribution logs every 404 (HEADs before pushes) at level error: keep that out of the report
    const errLog = openSync(`${dir}/stderr.log`, 'a')
    child = spawn(DISTRIBUTION, ['serve', `${dir}/config.yml`], { stdio: ['ignore', 'ignore', errLog] })
    closeSync(errLog)
  }
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${name} (${url}) exited while starting`)
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) break
    } catch {
      // not yet
    }
    if (i >= 200) throw new Error(`${name} (${url}) did not start`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return { name, url, host: `127.0.0.1:${port}`, child, dir }
}

/** Stops a registry (SIGTERM, SIGKILL after 10 s) and removes its folder. */
export async function stopRegistryServer(r: RegistryServer): Promise<void> {
  if (r.child.exitCode === null) {
    const exited = new Promise((res) => r.child.once('exit', res))
    r.child.kill('SIGTERM')
    const t = setTimeout(() => r.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }
  await rm(r.dir, { recursive: true, force: true })
}

/** A memory figure of a process from /proc/<pid>/status in MiB (`VmRSS` now, `VmHWM` its peak); NaN once it is gone. */
export function procStatusMiB(pid: number | undefined, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

// --- reports ------------------------------------------------------------------------------------

/** When and where a report was made, in one line: date, CPUs, memory, kernel. */
export function machineLine(): string {
  return `${new Date().toISOString()}; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}`
}

/** A report's closing sections: every sample by series, then the machine. */
export function everyRunAndMachine(samples: Record<string, readonly number[]>): string[] {
  return [
    '### Every run',
    '',
    ...Object.entries(samples).map(([k, v]) => `- ${k}: ${v.map((x) => x.toFixed(2)).join(', ')}`),
    '',
    '### Machine',
    '',
    `- date: ${new Date().toISOString()}`,
    `- node: ${process.version}, kernel ${release()}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB`,
    '',
  ]
}

/** Runs a benchmark's main: a failure prints its stack (after `label: `, if given) and sets exit code 1. */
export function runMain(main: () => Promise<void>, label = ''): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${label === '' ? '' : `${label}: `}${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}

// --- container benchmarks -----------------------------------------------------------------------

/**
 * What a container benchmark leaves, removed: the containers of each Cairn store (and runc's state
 * folder of each), the private dockerd, every mount under `work`, then `work` itself.
 */
export async function cleanUpContainerBench(roots: readonly string[], work: string, dockerd: Dockerd | undefined, opts: { runcState?: boolean } = {}): Promise<void> {
  for (const root of roots) {
    await removeAllContainers(root).catch(() => undefined)
    if (opts.runcState ?? true) await rm(dirname(runtimeStateRoot(root, 'runc')), { recursive: true, force: true })
  }
  await dockerd?.stop().catch((err: unknown) => process.stderr.write(`${String(err)}\n`))
  unmountUnder(work)
  await rm(work, { recursive: true, force: true })
}

/** A finished report: on stdout, and in `file` (its folder made if need be). */
export function publishReport(text: string, file: string): void {
  process.stdout.write(text)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
}
