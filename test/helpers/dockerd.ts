/**
 * A private Docker engine for interop tests and benchmarks: Debian's dockerd 20.10 with its own
 * containerd, data root, exec root, socket and cgroup parent, all under one short temp dir, so that
 * it never touches (nor is confused by) a Docker engine the host may already run.
 *
 * Why a containerd of our own: dockerd 20.10 given no --containerd uses /run/containerd/containerd.sock
 * whenever that file exists (even a stale socket), and only otherwise supervises one under its exec root.
 * Starting ours and passing --containerd makes the outcome the same on every machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { CommandFailedError, run, tail, type RunResult } from './exec.js'
import {
  isAlive,
  killTrees,
  procsMentioning,
  processTree,
  readProc,
  removeCgroup,
  signal,
  unmountUnder,
  waitGoneSync,
  type ProcInfo,
} from './system.js'
import { missingTools, Tools } from './tools.js'

export interface DockerdOptions {
  /**
   * Where the private dir is made (default /tmp). Keep it short: unix socket paths are limited to
   * 107 bytes, and containerd's socket sits three levels below it.
   */
  parentDir?: string
  /** How long to wait for `docker version` to answer (default 30 s). */
  startTimeoutMs?: number
  /** Extra dockerd flags, after ours. */
  extraArgs?: readonly string[]
  /**
   * A bridge for the containers (BuildKit's RUN steps need one), made for this engine alone, with a
   * free private /24, and deleted with it. Not dockerd's default `docker0`: every dockerd started
   * with `--bridge none` deletes `docker0` as it starts, so engines started side by side would take
   * it from each other.
   */
  bridge?: boolean
}

export interface DockerRunOptions {
  /** Fed to the client's stdin (e.g. for `docker load` or `docker import -`). */
  input?: Buffer | string | Readable
  timeoutMs?: number
  signal?: AbortSignal
}

export interface Dockerd {
  /** The -H value, `unix:///tmp/cd-XXXXXX/docker.sock`. */
  readonly host: string
  /** The private dir holding everything below. */
  readonly dir: string
  readonly dataRoot: string
  readonly execRoot: string
  /** dockerd's and containerd's combined log. */
  readonly logFile: string
  readonly pid: number
  readonly containerdPid: number
  /** Environment for a docker client aimed at this daemon (private DOCKER_CONFIG, no inherited DOCKER_*). */
  readonly clientEnv: NodeJS.ProcessEnv
  /** Runs `/usr/bin/docker -H host ...args`; never throws for a non-zero exit. */
  run(args: readonly string[], opts?: DockerRunOptions): Promise<RunResult>
  /** Like run, but a non-zero exit throws a CommandFailedError with the client's stderr. */
  runOk(args: readonly string[], opts?: DockerRunOptions): Promise<RunResult>
  /** Live processes of this engine: dockerd, containerd, shims, containers, and clients talking to it. */
  processes(): ProcInfo[]
  /** Stops everything, unmounts, removes the dir. Safe to call twice (the second call awaits the first). */
  stop(): Promise<void>
}

const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
const DIR_PREFIX = 'cd-'
/** Marks a dir as ours and names the process that owns it, for the sweep of stale dirs. */
const OWNER_FILE = 'owner.pid'

const live = new Set<Engine>()

export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  const missing = missingTools(['dockerd', 'docker', 'containerd', 'runc', 'setpriv'])
  if (missing.length > 0) {
    throw new Error(`cannot start dockerd: missing ${missing.map((m) => Tools[m]).join(', ')} (run scripts/ensure-deps.sh)`)
  }
  if (process.getuid?.() !== 0) throw new Error('startDockerd needs root')

  const parent = opts.parentDir ?? '/tmp'
  sweepStale(parent)
  const dir = mkdtempSync(join(parent, DIR_PREFIX))
  const engine = new Engine(dir)
  live.add(engine)
  installExitHandlers()
  try {
    await engine.start(opts)
    return engine
  } catch (err) {
    await engine.stop().catch(() => {})
    throw err
  }
}

/** Runs `skopeo --insecure-policy ...args` and returns its stdout; a non-zero exit throws CommandFailedError. */
export async function skopeo(args: readonly string[], opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  const argv = ['--insecure-policy', ...args]
  const r = await run(Tools.skopeo, argv, { ...opts, env: { ...process.env, PATH: `${SYSTEM_PATH}:${process.env['PATH'] ?? ''}` } })
  if (r.code !== 0) throw new CommandFailedError(['skopeo', ...argv].join(' '), r)
  return r.stdout
}

class Engine implements Dockerd {
  readonly dir: string
  readonly host: string
  readonly dataRoot: string
  readonly execRoot: string
  readonly logFile: string
  readonly clientEnv: NodeJS.ProcessEnv
  pid = 0
  containerdPid = 0
  private readonly ctrdDir: string
  private readonly ctrdSock: string
  private readonly cgroupParent: string
  private readonly bridgeName: string
  private dockerd: ChildProcess | undefined
  private containerd: ChildProcess | undefined
  private stopping: Promise<void> | undefined

  constructor(dir: string) {
    this.dir = dir
    this.host = `unix://${join(dir, 'docker.sock')}`
    this.dataRoot = join(dir, 'data')
    this.execRoot = join(dir, 'exec')
    this.logFile = join(dir, 'daemon.log')
    this.ctrdDir = join(dir, 'ctrd')
    this.ctrdSock = join(this.ctrdDir, 'containerd.sock')
    this.cgroupParent = `cairn-test-${dir.slice(dir.lastIndexOf('/') + 1)}`
    this.bridgeName = bridgeNameOf(dir.slice(dir.lastIndexOf('/') + 1))
    const env: NodeJS.ProcessEnv = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DOCKER_')) env[k] = v
    env['DOCKER_CONFIG'] = join(dir, 'client')
    env['PATH'] = `${SYSTEM_PATH}:${process.env['PATH'] ?? ''}`
    this.clientEnv = env
  }

  async start(opts: DockerdOptions): Promise<void> {
    if (Buffer.byteLength(`${this.ctrdSock}.ttrpc`) > 100) {
      throw new Error(`dockerd dir ${this.dir} is too long for unix socket paths; pass a shorter parentDir`)
    }
    writeFileSync(join(this.dir, OWNER_FILE), `${process.pid}\n`)
    for (const d of [this.dataRoot, this.execRoot, this.ctrdDir, join(this.dir, 'client')]) mkdirSync(d, { recursive: true })
    writeFileSync(join(this.dir, 'daemon.json'), '{}\n')
    writeFileSync(join(this.ctrdDir, 'config.toml'), containerdConfig(this.ctrdDir, this.ctrdSock))

    this.containerd = this.spawnDaemon(Tools.containerd, ['--config', join(this.ctrdDir, 'config.toml')])
    this.containerdPid = this.containerd.pid ?? 0
    await this.waitFor('containerd', this.containerd, 15_000, async () => existsSync(this.ctrdSock))

    this.dockerd = this.spawnDaemon(Tools.dockerd, [
      '--config-file', join(this.dir, 'daemon.json'),
      '--containerd', this.ctrdSock,
      '--data-root', this.dataRoot,
      '--exec-root', this.execRoot,
      '--pidfile', join(this.dir, 'docker.pid'),
      '-H', this.host,
      '--storage-driver', 'overlay2',
      ...(opts.bridge === true ? ['--bridge', this.makeBridge()] : ['--bridge', 'none']),
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--userland-proxy=false',
      '--cgroup-parent', `/${this.cgroupParent}`,
      '--shutdown-timeout', '5',
      ...(opts.extraArgs ?? []),
    ])
    this.pid = this.dockerd.pid ?? 0
    await this.waitFor('dockerd', this.dockerd, opts.startTimeoutMs ?? 30_000, async () => {
      const r = await this.run(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 })
      return r.code === 0
    })
  }

  run(args: readonly string[], opts: DockerRunOptions = {}): Promise<RunResult> {
    return run(Tools.docker, ['-H', this.host, ...args], { ...opts, env: this.clientEnv })
  }

  async runOk(args: readonly string[], opts: DockerRunOptions = {}): Promise<RunResult> {
    const r = await this.run(args, opts)
    if (r.code !== 0) throw new CommandFailedError(['docker', ...args].join(' '), r)
    return r
  }

  processes(): ProcInfo[] {
    const roots = procsMentioning(this.dir).map((p) => p.pid)
    return processTree(roots)
      .map((pid) => readProc(pid))
      .filter((p): p is ProcInfo => p !== undefined && p.state !== 'Z' && p.pid !== process.pid)
  }

  stop(): Promise<void> {
    this.stopping ??= this.teardown()
    return this.stopping
  }

  private async teardown(): Promise<void> {
    try {
      // dockerd gives each running container its stop timeout (10 s) on shutdown; tests don't need that grace.
      if (this.dockerd && this.dockerd.exitCode === null && this.dockerd.signalCode === null) {
        const ids = (await this.run(['ps', '--quiet'], { timeoutMs: 10_000 })).stdout.split(/\s+/).filter(Boolean)
        if (ids.length > 0) await this.run(['kill', ...ids], { timeoutMs: 10_000 })
      }
      await this.terminate(this.dockerd, 'dockerd', 20_000)
      await this.terminate(this.containerd, 'containerd', 10_000)
      // Shims outlive containerd by design; their containers are their children.
      for (let round = 0; round < 5; round++) {
        const left = this.processes()
        if (left.length === 0) break
        killLeftovers(left)
      }
      const stuck = this.processes()
      const mounted = unmountUnder(this.dir)
      removeCgroup(this.cgroupParent)
      deleteLink(this.bridgeName)
      if (mounted.length === 0) await rm(this.dir, { recursive: true, force: true, maxRetries: 3 })
      const problems = [
        ...stuck.map((p) => `process ${p.pid} (${p.argv.join(' ')}) is still running`),
        ...mounted.map((m) => `${m} is still mounted`),
      ]
      if (problems.length > 0) throw new Error(`dockerd in ${this.dir} did not stop cleanly:\n${problems.join('\n')}`)
    } finally {
      live.delete(this)
      if (live.size === 0) removeExitHandlers()
    }
  }

  /** For a dying process: no awaiting, so it works in an 'exit' handler, also while an async stop() is under way. */
  stopSync(): void {
    if (!live.has(this)) return
    // Containers first (children of their shims): dockerd would otherwise give each its 10 s stop timeout.
    const shims = this.processes().filter((p) => p.comm.startsWith('containerd-shim')).map((p) => p.pid)
    for (const pid of processTree(shims)) if (!shims.includes(pid)) signal(pid, 'SIGKILL')
    for (const [child, ms] of [[this.dockerd, 10_000], [this.containerd, 5_000]] as const) {
      const pid = child?.pid
      if (pid === undefined || !isAlive(pid)) continue
      signal(pid, 'SIGTERM')
      if (!waitGoneSync(pid, ms)) signal(pid, 'SIGKILL')
      waitGoneSync(pid, 2_000)
    }
    for (let round = 0; round < 3; round++) {
      const left = this.processes()
      if (left.length === 0) break
      killLeftovers(left)
    }
    if (unmountUnder(this.dir).length === 0) rmSync(this.dir, { recursive: true, force: true })
    removeCgroup(this.cgroupParent)
    deleteLink(this.bridgeName)
    live.delete(this)
  }

  /** Makes this engine's bridge with the first free 10.199.N.1/24; its name, for --bridge. */
  private makeBridge(): string {
    const routes = spawnSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }).stdout
    const addrs = spawnSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }).stdout
    for (let n = 0; n < 256; n++) {
      const net = `10.199.${n}.`
      if (routes.includes(net) || addrs.includes(net)) continue
      const steps = [
        ['link', 'add', this.bridgeName, 'type', 'bridge'],
        ['addr', 'add', `${net}1/24`, 'dev', this.bridgeName],
        ['link', 'set', this.bridgeName, 'up'],
      ]
      for (const step of steps) {
        const r = spawnSync('ip', step, { encoding: 'utf8' })
        if (r.status !== 0) {
          deleteLink(this.bridgeName)
          throw new Error(`ip ${step.join(' ')}: ${r.stderr.trim()}`)
        }
      }
      return this.bridgeName
    }
    throw new Error('no free 10.199.N.0/24 for a dockerd bridge')
  }

  private spawnDaemon(bin: string, args: string[]): ChildProcess {
    const log = openSync(this.logFile, 'a')
    try {
      // --pdeathsig: if this Node process dies without running its exit handlers (SIGKILL, OOM),
      // the daemon still gets SIGTERM and shuts down.
      const child = spawn(Tools.setpriv, ['--pdeathsig', 'TERM', '--', bin, ...args], {
        stdio: ['ignore', log, log],
        env: { ...this.clientEnv, PATH: `${SYSTEM_PATH}:${process.env['PATH'] ?? ''}` },
        cwd: this.dir,
      })
      child.on('error', () => {}) // reported through waitFor's exit check
      child.unref() // a test that forgets stop() still exits; the exit handler then cleans up
      return child
    } finally {
      closeSync(log)
    }
  }

  private async waitFor(name: string, child: ChildProcess, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        throw new Error(`${name} exited (${String(child.exitCode ?? child.signalCode)}) while starting; log:\n${this.logTail()}`)
      }
      if (await ready()) return
      if (Date.now() > deadline) throw new Error(`${name} did not answer within ${timeoutMs} ms; log:\n${this.logTail()}`)
      await sleep(100)
    }
  }

  private async terminate(child: ChildProcess | undefined, name: string, timeoutMs: number): Promise<void> {
    const pid = child?.pid
    if (child === undefined || pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    signal(pid, 'SIGTERM')
    const timer = new AbortController()
    const ok = await Promise.race([
      exited.then(() => true),
      sleep(timeoutMs, false, { signal: timer.signal }).catch(() => false),
    ])
    timer.abort() // a pending timer would keep the process alive for the rest of timeoutMs
    if (!ok) {
      process.emitWarning(`${name} (pid ${pid}) ignored SIGTERM for ${timeoutMs} ms; killing it`)
      killTrees([pid])
      await exited
    }
  }

  logTail(): string {
    try {
      return tail(readFileSync(this.logFile, 'utf8'), 4000)
    } catch {
      return '(no log)'
    }
  }
}

/**
 * containerd 1.6 puts every shim's socket in /run/containerd/s/<sha256(address/namespace/id)>, whatever
 * its own state dir; a shim that is killed leaves it behind. The name, from the shim's argv.
 */
function shimSocket(argv: readonly string[]): string | undefined {
  const arg = (flag: string): string | undefined => {
    const i = argv.indexOf(flag)
    return i >= 0 ? argv[i + 1] : undefined
  }
  const [ns, id, address] = [arg('-namespace'), arg('-id'), arg('-address')]
  if (!ns || !id || !address) return undefined
  return join('/run/containerd/s', createHash('sha256').update(join(address, ns, id)).digest('hex'))
}

/** SIGKILLs the given processes with their descendants, waits, and removes the sockets of shims among them. */
function killLeftovers(procs: readonly ProcInfo[]): void {
  killTrees(procs.map((p) => p.pid))
  for (const p of procs) waitGoneSync(p.pid, 2_000)
  for (const p of procs) {
    const sock = p.comm.startsWith('containerd-shim') ? shimSocket(p.argv) : undefined
    if (sock) rmSync(sock, { force: true })
  }
}

function containerdConfig(dir: string, sock: string): string {
  const q = (s: string): string => JSON.stringify(s)
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${q(sock)}

[ttrpc]
  address = ${q(`${sock}.ttrpc`)}

[debug]
  address = ""
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}
`
}

/**
 * Removes dirs of earlier runs whose owning process is gone (a test runner that was SIGKILLed):
 * their daemons got SIGTERM through --pdeathsig, but their mounts and files stayed.
 */
/** The bridge name of the engine in the folder `name` (at most 15 bytes: the kernel's IFNAMSIZ). */
function bridgeNameOf(name: string): string {
  return `cdk${createHash('sha256').update(name).digest('hex').slice(0, 10)}`
}

/** Deletes a network link if it exists. */
function deleteLink(name: string): void {
  if (existsSync(`/sys/class/net/${name}`)) spawnSync('ip', ['link', 'del', name])
}

function sweepStale(parent: string): void {
  let names: string[]
  try {
    names = readdirSync(parent).filter((n) => n.startsWith(DIR_PREFIX))
  } catch {
    return
  }
  for (const name of names) {
    const dir = join(parent, name)
    let owner: number
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8').trim())
    } catch {
      continue // not ours, or still being set up
    }
    if (!Number.isInteger(owner) || owner <= 0 || isAlive(owner)) continue
    killLeftovers(procsMentioning(dir))
    if (unmountUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true })
    removeCgroup(`cairn-test-${name}`)
    deleteLink(bridgeNameOf(name))
  }
}

// --- cleanup when the process ends without calling stop() -------------------------------------

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
let installed = false

function cleanupAll(): void {
  for (const e of [...live]) {
    try {
      e.stopSync()
    } catch {
      // keep going: the others still need cleaning
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  cleanupAll()
  removeExitHandlers()
  // Nobody else handles it: die of the signal as we would have without our handler.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
}

function installExitHandlers(): void {
  if (installed) return
  installed = true
  process.on('exit', cleanupAll)
  for (const s of SIGNALS) process.on(s, onSignal)
}

function removeExitHandlers(): void {
  if (!installed) return
  installed = false
  process.off('exit', cleanupAll)
  for (const s of SIGNALS) process.off(s, onSignal)
}
