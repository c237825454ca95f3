/**
 * `create`, `run`, `start`, `stop`, `kill`, `exec`, `logs`, `ps`, `rm`, `rename`, `cp`, `diff`,
 * `export`, `pause`, `unpause` (and `container …`): argument parsing and printing only.
 */
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import type { ImageStore } from '../image/store.js'
import type { BatchResult, ContainerSummary, RunOptions } from '../api/containers.js'
import type { CreateOptions, ExecOptions } from '../container/engine.js'
import { ago, bytesSize, ellipsis, humanSize, humanSizeWithPrecision, shortId, tabwrite } from '../util/format.js'
import { writeOutputFile } from '../util/userfiles.js'
import { parseDurationMs } from '../util/duration.js'
import { displayPorts, portLines } from '../network/display.js'
import { printError, reportError } from './errors.js'
import { collect, interruptSignal, withStore } from './context.js'
import { familiarString, parseReference } from '../oci/reference.js'
import { takeStandby } from './standby.js'
import { formatWrite, goContext, goMethod, goQuote } from './template.js'
import { parseFilterArgs } from '../api/filters.js'
import { inspectCommand } from './inspect.js'
import { terminalStdio } from './stdio.js'
import type * as ContainersApi from '../api/containers.js'
import type { ResourceLimits } from '../container/config.js'
import type { ContainerStats } from '../api/resources.js'
import type { HealthFlags } from '../api/flags.js'
import type * as ResourcesApi from '../api/resources.js'

export { goQuote }

/** The container verbs, loaded when a container command runs (other commands start faster). */
const api = (): Promise<typeof ContainersApi> => import('../api/containers.js')

/** Docker's exit codes: 125 the engine failed, 126 the command cannot run, 127 it was not found. */
const EXIT_ENGINE = 125

/** The flags of create and run: CreateOptions' own fields where the names agree, then the CLI's. */
type CreateFlags = Pick<CreateOptions, 'interactive' | 'tty' | 'name' | 'workdir' | 'user' | 'hostname' | 'domainname' | 'network' | 'runtime' | 'dns' | 'dnsSearch'
  | 'privileged' | 'capAdd' | 'capDrop' | 'groupAdd' | 'init' | 'cpusetCpus' | 'oomKillDisable'> & LimitFlags & Omit<HealthFlags, 'noHealthcheck'> & {
  securityOpt?: string[]
  readOnly?: boolean
  tmpfs?: string[]
  device?: string[]
  ulimit?: string[]
  shmSize?: string
  sysctl?: string[]
  /** `-e`, `--env-file` (resolved against this process's environment). */
  env?: string[]
  envFile?: string[]
  /** `--entrypoint` (one word; '' clears the image's). */
  entrypoint?: string
  /** `-v`, `--mount`, `--volumes-from`, repeatable. */
  volume?: string[]
  mount?: string[]
  volumesFrom?: string[]
  /** `--restart`. */
  restart?: string
  /** `--no-healthcheck` (commander's negation); the `--health-*` flags are HealthFlags'. */
  healthcheck?: boolean
  /** `-p`, `-P`. */
  publish?: string[]
  publishAll?: boolean
  networkAlias?: string[]
  ip?: string
  addHost?: string[]
  dnsOption?: string[]
  label?: string[]
  labelFile?: string[]
  /** Checked here (CreateOptions.storageDriver is typed). */
  storageDriver?: string
  /** `--rm` (CreateOptions.autoRemove). */
  rm?: boolean
  detach?: boolean
  detachKeys?: string
  pull?: string
}

const RUNTIME_HELP = 'OCI runtime: crun or runc (or a path); default crun when it works on this machine, else runc'

/** The cgroup limit flags of create, run and update, as given (Docker's syntaxes). */
interface LimitFlags {
  memory?: string
  memorySwap?: string
  memoryReservation?: string
  cpus?: string
  cpuShares?: string
  cpusetCpus?: string
  pidsLimit?: string
}

function addLimitOptions(c: Command): Command {
  return c
    .option('-m, --memory <bytes>', 'memory limit (e.g. 32m, 1g)')
    .option('--memory-swap <bytes>', "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--memory-reservation <bytes>', 'memory soft limit')
    .option('--cpus <number>', 'number of CPUs (e.g. 0.5)')
    .option('-c, --cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <list>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--pids-limit <int>', 'tune container pids limit (set -1 for unlimited)')
}

/** The limit flags as typed limits (undefined: not given). */
async function limitOptions(f: LimitFlags): Promise<ResourceLimits> {
  const flags = await import('../api/flags.js')
  const r: ResourceLimits = {}
  if (f.memory !== undefined) r.memory = flags.parseBytes(f.memory, '-m, --memory')
  if (f.memorySwap !== undefined) r.memorySwap = flags.parseMemorySwap(f.memorySwap)
  if (f.memoryReservation !== undefined) r.memoryReservation = flags.parseBytes(f.memoryReservation, '--memory-reservation')
  if (f.cpus !== undefined) r.nanoCpus = flags.parseCpus(f.cpus)
  if (f.cpuShares !== undefined) r.cpuShares = flags.parseIntFlag(f.cpuShares, '-c, --cpu-shares')
  if (f.cpusetCpus !== undefined) r.cpusetCpus = f.cpusetCpus
  if (f.pidsLimit !== undefined) r.pidsLimit = flags.parseIntFlag(f.pidsLimit, '--pids-limit')
  return r
}

function addCreateOptions(c: Command, run: boolean): Command {
  c.helpOption('--help', 'display help for command')
    .option('-i, --interactive', 'keep STDIN open even if not attached')
    .option('-t, --tty', 'allocate a pseudo-TTY')
    .option('--name <name>', 'assign a name to the container')
    .option('-e, --env <K=V>', 'set environment variables (repeatable)', collect)
    .option('--env-file <file>', 'read in a file of environment variables (repeatable)', collect)
    .option('-l, --label <K=V>', 'set meta data on a container (repeatable)', collect)
    .option('--label-file <file>', 'read in a line delimited file of labels (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
    .option('--entrypoint <cmd>', "overwrite the default ENTRYPOINT of the image ('' clears it)")
    .option('-h, --hostname <name>', 'container host name')
    .option('--domainname <name>', 'container NIS domain name')
    .option('--network <mode>', 'connect a container to a network: bridge (the default), none, host, container:NAME, or a network\'s name', 'default')
    .option('--network-alias <alias>', 'add a network-scoped alias for the container (repeatable)', collect)
    .option('--ip <address>', 'IPv4 address on its user network (e.g., 172.30.100.104)')
    .option('-p, --publish <[ip:][host:]ctr[/proto]>', "publish a container's port(s) to the host (repeatable)", collect)
    .option('-P, --publish-all', 'publish all exposed ports to random ports')
    .option('--add-host <host:ip>', 'add a custom host-to-IP mapping (repeatable)', collect)
    .option('--dns <ip>', 'set custom DNS servers (repeatable)', collect)
    .option('--dns-search <domain>', 'set custom DNS search domains (repeatable)', collect)
    .option('--dns-option <option>', 'set DNS options (repeatable)', collect)
    .option('-v, --volume <[src:]ctr[:opts]>', 'bind mount a host directory (made if missing), mount a named volume (made on first use), or with a path alone an anonymous volume (repeatable)', collect)
    .option('--mount <spec>', 'attach a filesystem mount: type=bind|volume|tmpfs,source=…,target=/y[,readonly][,volume-nocopy][,tmpfs-size=…] (repeatable)', collect)
    .option('--volumes-from <container[:ro|rw]>', 'mount volumes from the specified container (repeatable)', collect)
    .option('--restart <policy>', 'restart policy to apply when a container exits: no, on-failure[:max-retries], always, unless-stopped', 'no')
    .option('--health-cmd <command>', 'command to run to check health')
    .option('--health-interval <duration>', 'time between running the check (ms|s|m|h) (default 30s)')
    .option('--health-retries <n>', 'consecutive failures needed to report unhealthy (default 3)')
    .option('--health-timeout <duration>', 'maximum time to allow one check to run (ms|s|m|h) (default 30s)')
    .option('--health-start-period <duration>', 'start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)')
    .option('--health-start-interval <duration>', 'time between running the check during the start period (ms|s|m|h) (default 5s)')
    .option('--no-healthcheck', 'disable any container-specified HEALTHCHECK')
    .option('--runtime <name>', RUNTIME_HELP)
    .option('--storage-driver <driver>', 'overlay or native (default: the store\'s)')
    .option('--rm', 'automatically remove the container when it exits')
    .option('--pull <policy>', 'pull the image before creating: "missing" (the default), "always" or "never"', 'missing')
    .option('--privileged', 'give extended privileges to this container (all capabilities and devices of the host, no seccomp)')
    .option('--cap-add <cap>', 'add Linux capabilities (repeatable; ALL for all)', collect)
    .option('--cap-drop <cap>', 'drop Linux capabilities (repeatable; ALL for all)', collect)
    .option('--security-opt <opt>', 'security options: seccomp=unconfined|FILE, no-new-privileges, apparmor=PROFILE (repeatable)', collect)
    .option('--read-only', "mount the container's root filesystem as read only")
    .option('--tmpfs <path[:opts]>', 'mount a tmpfs directory (repeatable)', collect)
    .option('--device <host[:ctr[:perms]]>', 'add a host device to the container (repeatable)', collect)
    .option('--ulimit <name=soft[:hard]>', 'ulimit options (repeatable)', collect)
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--group-add <group>', 'add additional groups to join (repeatable)', collect)
    .option('--sysctl <k=v>', 'namespaced kernel parameters (repeatable)', collect)
    .option('--init', 'run an init inside the container that forwards signals and reaps processes')
    .option('--oom-kill-disable', 'disable OOM killer')
    .argument('<image>')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions()
  addLimitOptions(c)
  if (run) {
    c.option('-d, --detach', 'run container in background and print container ID')
      .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)')
  }
  return c
}

/** The flags of create and run as the engine's typed options (Docker's syntaxes parsed here, at the edge). */
async function createOptions(image: string, command: string[], f: CreateFlags, cmd: Command): Promise<CreateOptions> {
  const flags = await import('../api/flags.js')
  const globals = cmd.optsWithGlobals<{ storageDriver?: string }>()
  const driver = f.storageDriver ?? globals.storageDriver
  if (driver !== undefined && driver !== 'overlay' && driver !== 'native') throw new CairnError('INVALID_ARGUMENT', `unknown storage driver ${JSON.stringify(driver)} (overlay or native)`)
  const o: CreateOptions = { image, command, network: f.network ?? 'default' }
  const env = [...(await flags.readLineFiles(f.envFile ?? [])), ...(f.env ?? [])]
  if (env.length > 0) o.env = flags.resolveEnv(env, process.env)
  const labels = [...(await flags.readLineFiles(f.labelFile ?? [])), ...(f.label ?? [])]
  if (labels.length > 0) o.labels = flags.parseLabels(labels)
  if (f.name !== undefined) o.name = f.name
  if (f.workdir !== undefined) o.workdir = f.workdir
  if (f.user !== undefined) o.user = f.user
  if (f.entrypoint !== undefined) o.entrypoint = f.entrypoint === '' ? [] : [f.entrypoint]
  if (f.hostname !== undefined) o.hostname = f.hostname
  if (f.domainname !== undefined) o.domainname = f.domainname
  const mounts = [...(f.volume ?? []).map(flags.parseVolumeFlag), ...(f.mount ?? []).map(flags.parseMountFlag)]
  if (mounts.length > 0) o.mounts = mounts
  if (f.volumesFrom) o.volumesFrom = f.volumesFrom.map(flags.parseVolumesFrom)
  if (f.restart !== undefined) o.restart = flags.parseRestartPolicy(f.restart)
  const health = flags.parseHealthFlags({
    ...(f.healthCmd !== undefined ? { healthCmd: f.healthCmd } : {}),
    ...(f.healthInterval !== undefined ? { healthInterval: f.healthInterval } : {}),
    ...(f.healthTimeout !== undefined ? { healthTimeout: f.healthTimeout } : {}),
    ...(f.healthStartPeriod !== undefined ? { healthStartPeriod: f.healthStartPeriod } : {}),
    ...(f.healthStartInterval !== undefined ? { healthStartInterval: f.healthStartInterval } : {}),
    ...(f.healthRetries !== undefined ? { healthRetries: f.healthRetries } : {}),
    noHealthcheck: f.healthcheck === false,
  })
  if (health) o.healthcheck = health
  const ports = (f.publish ?? []).flatMap(flags.parsePublish)
  if (ports.length > 0) o.ports = ports
  if (f.publishAll) o.publishAllPorts = true
  if (f.networkAlias) o.networkAliases = f.networkAlias
  if (f.ip !== undefined) o.ipv4Address = f.ip
  if (f.addHost) o.extraHosts = f.addHost.map(flags.parseAddHost)
  if (f.dns) o.dns = f.dns
  if (f.dnsSearch) o.dnsSearch = f.dnsSearch
  if (f.dnsOption) o.dnsOptions = f.dnsOption
  if (f.runtime !== undefined) o.runtime = f.runtime
  if (driver !== undefined) o.storageDriver = driver
  if (f.tty) o.tty = true
  if (f.interactive) o.interactive = true
  if (f.rm) o.autoRemove = true
  if (f.privileged) o.privileged = true
  if (f.capAdd) o.capAdd = f.capAdd
  if (f.capDrop) o.capDrop = f.capDrop
  Object.assign(o, await flags.parseSecurityOpts(f.securityOpt ?? []))
  if (f.readOnly) o.readonlyRootfs = true
  if (f.tmpfs) o.tmpfs = Object.fromEntries(f.tmpfs.map(flags.parseTmpfsFlag).map((t) => [t.path, t.options]))
  if (f.device) o.devices = f.device.map(flags.parseDeviceFlag)
  if (f.ulimit) o.ulimits = f.ulimit.map(flags.parseUlimit)
  if (f.shmSize !== undefined) o.shmSize = flags.parseBytes(f.shmSize, '--shm-size')
  if (f.groupAdd) o.groupAdd = f.groupAdd
  if (f.sysctl) o.sysctls = Object.fromEntries(f.sysctl.map(flags.parseSysctlFlag))
  if (f.init) o.init = true
  if (f.oomKillDisable) o.oomKillDisable = true
  Object.assign(o, await limitOptions(f))
  return o
}

/**
 * Docker's `--pull` for create and run: an image that is not in the store is pulled first
 * (`missing`, after "Unable to find image '…' locally"), or every time (`always`), or never.
 * Pull progress goes to stderr, as with Docker, so that stdout holds only what the command prints.
 */
async function ensureImage(store: ImageStore, image: string, policy: string | undefined): Promise<void> {
  const how = policy ?? 'missing'
  if (how !== 'missing' && how !== 'always' && how !== 'never') {
    throw new CairnError('INVALID_ARGUMENT', `invalid pull policy ${JSON.stringify(how)}: "missing", "always" or "never"`)
  }
  if (how === 'never') return
  if (how === 'missing') {
    if (store.tryResolve(image)) return
    const ref = parseReference(image)
    process.stderr.write(`Unable to find image '${familiarString(ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref)}' locally\n`)
  }
  const [{ pullImage }, { ProgressRenderer }] = await Promise.all([import('../api/pull.js'), import('./progress.js')])
  const renderer = new ProgressRenderer(process.stderr, { totals: true })
  try {
    await pullImage(store, image, { signal: interruptSignal(), onProgress: renderer.onProgress })
  } finally {
    renderer.finish()
  }
}

function printBatch(r: BatchResult): void {
  for (const n of r.done) process.stdout.write(`${n}\n`)
  for (const e of r.errors) printError(e.error)
  if (r.errors.length > 0) process.exitCode = 1
}

/** While attached: Ctrl-C and friends go to the container (Docker's --sig-proxy). */
function proxySignals(store: ImageStore, id: string): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>()
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const) {
    const h = (): void => {
      void api().then((a) => a.containerEngine(store).kill(id, sig)).catch(() => undefined)
    }
    handlers.set(sig, h)
    process.on(sig, h)
  }
  return () => {
    for (const [s, h] of handlers) process.off(s, h)
  }
}

/** Go's time.Time.String() in UTC, as Docker shows CreatedAt. */
function goTime(d: Date): string {
  const iso = d.toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`
}

/** `docker ps`'s header words, by field. */
const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
  State: 'STATE', Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS', Platform: 'PLATFORM',
}

const PS_TABLE = 'table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}'

/** Docker's SIZE: the writable layer, and the whole when known (`0B (virtual 1.98MB)`). */
function sizeText(c: ContainerSummary): string {
  const rw = humanSize(c.sizeRw ?? 0)
  return c.sizeRootFs !== undefined && c.sizeRootFs > 0 ? `${rw} (virtual ${humanSize(c.sizeRootFs)})` : rw
}

/** What a `ps` template sees of a container: Docker's ContainerContext. */
export function psRows(list: ContainerSummary[], trunc: boolean): Record<string, unknown>[] {
  return list.map((c) => goContext('*formatter.ContainerContext', {
    Command: goQuote(trunc ? ellipsis(c.command, 20) : c.command),
    CreatedAt: goTime(c.created),
    ID: trunc ? shortId(c.id) : c.id,
    Image: c.image,
    Labels: Object.keys(c.labels).sort().map((k) => `${k}=${c.labels[k] ?? ''}`).join(','),
    LocalVolumes: String(c.localVolumes ?? 0),
    Mounts: c.mounts.map((m) => (trunc ? ellipsis(m, 15) : m)).join(','),
    Names: c.name,
    Networks: c.networks.join(','),
    Platform: null,
    Ports: displayPorts(c.ports, c.exposedPorts),
    RunningFor: ago(c.created),
    Size: sizeText(c),
    State: c.state,
    Status: c.status,
    Label: goMethod(['string'], (k: string) => c.labels[k] ?? ''),
  }))
}

/**
 * A container command: `usage` declares its description, arguments and options on commander's
 * Command (which parses them), `run` is its action. `managed` says how it differs under
 * `container`: another name (`container ls` for `ps`), aliases, or there only.
 */
interface ContainerCommand {
  usage: (c: Command) => Command
  run: Parameters<Command['action']>[0]
  managed?: { name?: string; aliases?: readonly string[]; only?: boolean }
}

/** `pause`, `unpause`: one verb on every container named. */
function everyContainer(fn: 'pauseContainers' | 'unpauseContainers', description: string): ContainerCommand {
  return {
    usage: (c) => c.description(description).argument('<container...>'),
    run: async (names: string[], _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => printBatch(await (await api())[fn](store, names)))
    },
  }
}

const resources = (): Promise<typeof ResourcesApi> => import('../api/resources.js')

/** The container commands by name, in the order help lists them; `update`, `stats`, `top` are a running container's resources. */
const CONTAINER_COMMANDS: Readonly<Record<string, ContainerCommand>> = {
  create: {
    usage: (c) => addCreateOptions(c.description('Create a new container'), false),
    run: async (image: string, command: string[], f: CreateFlags, cmd: Command) => {
      await withStore(cmd, async (store) => {
        try {
          await ensureImage(store, image, f.pull)
          const r = await (await api()).createContainer(store, await createOptions(image, command, f, cmd))
          process.stdout.write(`${r.id}\n`)
        } catch (err) {
          process.exitCode = reportError(err, EXIT_ENGINE)
        }
      })
    },
  },

  run: {
    usage: (c) => addCreateOptions(c.description('Run a command in a new container'), true),
    run: async (image: string, command: string[], f: CreateFlags, cmd: Command) => {
      if (f.tty && f.interactive && !f.detach && process.stdin.isTTY !== true) {
        printError(new CairnError('INVALID_ARGUMENT', 'the input device is not a TTY'))
        process.exitCode = 1
        return
      }
      await withStore(cmd, async (store) => {
        try {
          await ensureImage(store, image, f.pull)
          let unproxy: (() => void) | undefined
          const o: RunOptions = { ...(await createOptions(image, command, f, cmd)), detach: f.detach ?? false }
          if (f.interactive && !f.detach) o.stdinOnce = true
          const term = f.detach ? undefined : terminalStdio({ interactive: f.interactive ?? false, tty: f.tty ?? false, ...(f.detachKeys !== undefined ? { detachKeys: f.detachKeys } : {}) })
          if (term) o.stdio = term.stdio
          if (!f.detach && !f.tty) o.onStarted = (id) => (unproxy = proxySignals(store, id))
          const monitor = takeStandby()
          if (monitor) o.monitor = monitor
          const r = await (await api()).runContainer(store, o).finally(() => {
            monitor?.dismiss()
            term?.restore()
          })
          unproxy?.()
          if (f.detach) process.stdout.write(`${r.id}\n`)
          else process.exitCode = r.exitCode ?? 0
        } catch (err) {
          process.exitCode = reportError(err, EXIT_ENGINE)
        }
      })
    },
  },

  start: {
    usage: (c) => c
      .description('Start one or more stopped containers')
      .argument('<container...>')
      .option('-a, --attach', "attach STDOUT/STDERR and forward signals")
      .option('-i, --interactive', "attach container's STDIN")
      .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)'),
    run: async (names: string[], f: { attach?: boolean; interactive?: boolean; detachKeys?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const attach = (f.attach ?? false) || (f.interactive ?? false)
        if (attach && names.length > 1) throw new CairnError('INVALID_ARGUMENT', 'you cannot start and attach multiple containers at once')
        for (const n of names) {
          let term: ReturnType<typeof terminalStdio> | undefined
          try {
            let unproxy: (() => void) | undefined
            if (attach) {
              const c = (await (await api()).inspectContainer(store, n)).Config
              term = terminalStdio({ interactive: (f.interactive ?? false) && c.OpenStdin, tty: c.Tty, ...(f.detachKeys !== undefined ? { detachKeys: f.detachKeys } : {}) })
            }
            const r = await (await api()).startContainer(store, n, {
              ...(term ? { stdio: term.stdio } : {}),
              onStarted: (id) => {
                if (attach) unproxy = proxySignals(store, id)
              },
            }).finally(() => term?.restore())
            unproxy?.()
            if (attach) process.exitCode = r.exitCode ?? 0
            else process.stdout.write(`${n}\n`)
          } catch (err) {
            process.exitCode = reportError(err, 1)
          }
        }
      })
    },
  },

  stop: {
    usage: (c) => c
      .description('Stop one or more running containers')
      .argument('<container...>')
      .option('-t, --time <seconds>', 'seconds to wait for stop before killing it', '10'),
    run: async (names: string[], f: { time: string }, cmd: Command) => {
      const timeout = Number(f.time)
      if (!Number.isInteger(timeout)) throw new CairnError('INVALID_ARGUMENT', `invalid value for --time: ${f.time}`)
      await withStore(cmd, async (store) => printBatch(await (await api()).stopContainers(store, names, { timeout })))
    },
  },

  kill: {
    usage: (c) => c
      .description('Kill one or more running containers')
      .argument('<container...>')
      .option('-s, --signal <signal>', 'signal to send to the container', 'KILL'),
    run: async (names: string[], f: { signal: string }, cmd: Command) => {
      await withStore(cmd, async (store) => printBatch(await (await api()).killContainers(store, names, { signal: f.signal })))
    },
  },

  pause: everyContainer('pauseContainers', 'Pause all processes within one or more containers'),

  unpause: everyContainer('unpauseContainers', 'Unpause all processes within one or more containers'),

  exec: {
    usage: (c) => c
      .description('Run a command in a running container')
      .helpOption('--help', 'display help for command')
      .option('-i, --interactive', 'keep STDIN open even if not attached')
      .option('-t, --tty', 'allocate a pseudo-TTY')
      .option('-d, --detach', 'run the command in the background')
      .option('-e, --env <K=V>', 'set environment variables (repeatable)', collect)
      .option('-w, --workdir <dir>', 'working directory inside the container')
      .option('-u, --user <user>', 'username or UID (format: <name|uid>[:<group|gid>])')
      .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)')
      .argument('<container>')
      .argument('<command...>')
      .passThroughOptions(),
    run: async (name: string, command: string[], f: { interactive?: boolean; tty?: boolean; detach?: boolean; env?: string[]; workdir?: string; user?: string; detachKeys?: string }, cmd: Command) => {
      if (f.tty && f.interactive && process.stdin.isTTY !== true) {
        printError(new CairnError('INVALID_ARGUMENT', 'the input device is not a TTY'))
        process.exitCode = 1
        return
      }
      await withStore(cmd, async (store) => {
        try {
          const o: ExecOptions = { interactive: f.interactive ?? false, tty: f.tty ?? false, detach: f.detach ?? false }
          if (f.env) o.env = (await import('../api/flags.js')).resolveEnv(f.env, process.env)
          if (f.workdir !== undefined) o.workdir = f.workdir
          if (f.user !== undefined) o.user = f.user
          const term = f.detach ? undefined : terminalStdio({ interactive: f.interactive ?? false, tty: f.tty ?? false, ...(f.detachKeys !== undefined ? { detachKeys: f.detachKeys } : {}) })
          if (term) o.stdio = term.stdio
          const proc = await (await api()).startExecInContainer(store, name, command, o).catch((err: unknown) => {
            term?.restore()
            throw err
          })
          const outcome = await proc.attached.finally(() => term?.restore())
          process.exitCode = outcome.exitCode ?? 0
        } catch (err) {
          process.exitCode = reportError(err, 1, 126)
        }
      })
    },
  },

  logs: {
    usage: (c) => c
      .description('Fetch the logs of a container')
      .argument('<container>')
      .option('-f, --follow', 'follow log output')
      .option('-t, --timestamps', 'show timestamps')
      .option('-n, --tail <n>', 'number of lines to show from the end of the logs (default all)', 'all')
      .option('--since <time>', 'show logs since a timestamp (RFC 3339) or a relative time (e.g. 42s, 5m, 1h)')
      .option('--until <time>', 'show logs before a timestamp (RFC 3339) or a relative time (e.g. 42s, 5m, 1h)'),
    run: async (name: string, f: { follow?: boolean; timestamps?: boolean; tail: string; since?: string; until?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const o: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal } = { follow: f.follow ?? false }
        if (f.until !== undefined) o.until = parseSince(f.until, '--until')
        if (f.tail !== 'all') {
          const n = Number(f.tail)
          if (!Number.isInteger(n) || n < 0) throw new CairnError('INVALID_ARGUMENT', `invalid value for --tail: ${f.tail}`)
          o.tail = n
        }
        if (f.since !== undefined) o.since = parseSince(f.since, '--since')
        const ac = new AbortController()
        const stopFollowing = (): void => ac.abort()
        process.once('SIGINT', stopFollowing)
        o.signal = ac.signal
        try {
          for await (const e of (await api()).containerLogs(store, name, o)) {
            const line = f.timestamps ? `${e.time} ${e.log}` : e.log
            ;(e.stream === 'stderr' ? process.stderr : process.stdout).write(line)
          }
        } finally {
          process.off('SIGINT', stopFollowing)
        }
      })
    },
  },

  ps: {
    managed: { name: 'ls', aliases: ['ps', 'list'] },
    usage: (c) => c
      .description('List containers')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('-f, --filter <filter>', 'filter output based on conditions provided (repeatable)', collect)
      .option('-n, --last <n>', 'show n last created containers (includes all states)', '-1')
      .option('-l, --latest', 'show the latest created container (includes all states)')
      .option('-q, --quiet', 'only display container IDs')
      .option('-s, --size', 'display total file sizes')
      .option('--no-trunc', "don't truncate output")
      .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template such as '{{.ID}} {{.Names}}'"),
    run: async (f: { all?: boolean; filter?: string[]; last: string; latest?: boolean; quiet?: boolean; size?: boolean; trunc?: boolean; format?: string }, cmd: Command) => {
      const last = Number(f.last)
      if (!Number.isInteger(last)) throw new CairnError('INVALID_ARGUMENT', `invalid argument "${f.last}" for "-n, --last" flag: strconv.ParseInt: parsing ${JSON.stringify(f.last)}: invalid syntax`)
      const filters = parseFilterArgs(f.filter ?? [])
      await withStore(cmd, async (store) => {
        const trunc = f.trunc !== false
        const size = (f.size ?? false) || (f.format !== undefined && f.format.includes('.Size'))
        const list = await (await api()).listContainers(store, { all: f.all ?? false, filters, last: f.latest ? 1 : last, size: size && !f.quiet })
        if (f.quiet) {
          process.stdout.write(list.map((c) => `${trunc ? shortId(c.id) : c.id}\n`).join(''))
          return
        }
        const format = f.format === undefined || f.format === 'table' ? (f.size ? `${PS_TABLE}\\t{{.Size}}` : PS_TABLE) : f.format
        process.stdout.write(formatWrite(format, psRows(list, trunc), { headers: PS_HEADERS, errors: { parse: 'failed to parse template: ', exec: 'failed to execute template: ' } }))
      })
    },
  },

  rm: {
    managed: { aliases: ['remove'] },
    usage: (c) => c
      .description('Remove one or more containers')
      .argument('<container...>')
      .option('-f, --force', 'force the removal of a running container (uses SIGKILL)')
      .option('-v, --volumes', 'remove anonymous volumes associated with the container'),
    run: async (names: string[], f: { force?: boolean; volumes?: boolean }, cmd: Command) => {
      await withStore(cmd, async (store) => printBatch(await (await api()).removeContainers(store, names, { force: f.force ?? false, volumes: f.volumes ?? false })))
    },
  },

  inspect: {
    managed: { only: true },
    usage: (c) => c
      .description('Display detailed information on one or more containers')
      .argument('<container...>')
      .option('-f, --format <format>', "format the output using a Go template ('json' for JSON)")
      .option('-s, --size', 'display total file sizes (Cairn: accepted, not shown)'),
    run: async (names: string[], f: { format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => inspectCommand(store, names, { type: 'container', format: f.format }))
    },
  },

  port: {
    usage: (c) => c
      .description('List port mappings or a specific mapping for the container')
      .argument('<container>')
      .argument('[private-port]', 'PRIVATE_PORT[/PROTO]'),
    run: async (name: string, priv: string | undefined, _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const ports = await (await api()).containerPorts(store, name)
        let filter: { port: number; protocol: string } | undefined
        if (priv !== undefined) {
          const [port = '', protocol = 'tcp'] = priv.split('/')
          if (!/^\d+$/.test(port)) throw new CairnError('INVALID_ARGUMENT', `Error: invalid port (${port}): invalid syntax`)
          filter = { port: Number(port), protocol }
        }
        const lines = portLines(ports, filter)
        if (filter && lines.length === 0) throw new CairnError('INVALID_ARGUMENT', `No public port '${filter.port}/${filter.protocol}' published for ${name}`)
        process.stdout.write(lines.map((l) => `${l}\n`).join(''))
      })
    },
  },

  attach: {
    usage: (c) => c
      .description("Attach local standard input, output, and error streams to a running container")
      .argument('<container>')
      .option('--no-stdin', 'do not attach STDIN')
      .option('--sig-proxy <bool>', 'proxy all received signals to the process (without a terminal)', 'true')
      .option('--detach-keys <keys>', 'override the key sequence for detaching a container (default ctrl-p,ctrl-q)'),
    run: async (name: string, f: { stdin?: boolean; sigProxy: string; detachKeys?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const a = await api()
        const info = await a.inspectContainer(store, name)
        if (!info.State.Running) throw new CairnError('CONFLICT', 'You cannot attach to a stopped container, start it first')
        if (info.State.Paused) throw new CairnError('CONFLICT', 'You cannot attach to a paused container, unpause it first')
        const interactive = f.stdin !== false && info.Config.OpenStdin
        if (interactive && info.Config.Tty && process.stdin.isTTY !== true) throw new CairnError('INVALID_ARGUMENT', 'the input device is not a TTY')
        const term = terminalStdio({ interactive, tty: info.Config.Tty, ...(f.detachKeys !== undefined ? { detachKeys: f.detachKeys } : {}) })
        const unproxy = !info.Config.Tty && f.sigProxy !== 'false' ? proxySignals(store, info.Id) : undefined
        try {
          const r = await a.attachContainer(store, info.Id, term.stdio)
          if (r.exitCode !== undefined) process.exitCode = r.exitCode
        } finally {
          term.restore()
          unproxy?.()
        }
      })
    },
  },

  wait: {
    usage: (c) => c
      .description('Block until one or more containers stop, then print their exit codes')
      .argument('<container...>'),
    run: async (names: string[], _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const signal = interruptSignal()
        for (const n of names) {
          try {
            const code = await (await api()).waitContainer(store, n, { signal })
            process.stdout.write(`${code}\n`)
          } catch (err) {
            printError(err)
            process.exitCode = 1
          }
        }
      })
    },
  },

  prune: {
    managed: { only: true },
    usage: (c) => c
      .description('Remove all stopped containers')
      .option('--filter <filter>', 'provide filter values (e.g. until=<timestamp>, label=<key>=<value>)', collect)
      .option('-f, --force', 'do not prompt for confirmation'),
    run: async (f: { force?: boolean; filter?: string[] }, cmd: Command) => {
      const filters = parseFilterArgs(f.filter ?? [])
      const { confirm } = await import('./prompt.js')
      if (!f.force && !(await confirm('WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] '))) return
      await withStore(cmd, async (store) => {
        const r = await (await api()).pruneContainers(store, { filters })
        if (r.deleted.length > 0) process.stdout.write(`Deleted Containers:\n${r.deleted.map((d) => `${d}\n`).join('')}\n`)
        process.stdout.write(`Total reclaimed space: ${humanSizeWithPrecision(r.reclaimed, 4)}\n`)
      })
    },
  },

  rename: {
    usage: (c) => c
      .description('Rename a container')
      .argument('<container>')
      .argument('<new-name>'),
    run: async (name: string, newName: string, _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => (await api()).renameContainer(store, name, newName))
    },
  },

  cp: {
    usage: (c) => c
      .description('Copy files/folders between a container and the local filesystem (- for a tar stream)')
      .argument('<src>', 'CONTAINER:SRC_PATH or SRC_PATH (- reads a tar from STDIN)')
      .argument('<dest>', 'DEST_PATH or CONTAINER:DEST_PATH (- writes a tar to STDOUT)')
      .option('-a, --archive', 'archive mode (copy all uid/gid information)')
      .option('-L, --follow-link', 'always follow symbol link in SRC_PATH'),
    run: async (src: string, dest: string, f: { archive?: boolean; followLink?: boolean }, cmd: Command) => {
      const s = (await api()).splitContainerPath(src)
      const d = (await api()).splitContainerPath(dest)
      if ((s.container === undefined) === (d.container === undefined)) {
        throw new CairnError('INVALID_ARGUMENT', s.container === undefined ? 'must specify at least one container source' : 'copying between containers is not supported')
      }
      const o = { archive: f.archive ?? false, followLink: f.followLink ?? false }
      await withStore(cmd, async (store) => {
        if (s.container !== undefined) {
          if (d.path === '-' && process.stdout.isTTY) throw new CairnError('INVALID_ARGUMENT', 'cowardly refusing to write a tar stream to a terminal')
          await (await api()).copyFromContainer(store, s.container, s.path, d.path === '-' ? process.stdout : d.path, o)
        } else {
          await (await api()).copyToContainer(store, s.path === '-' ? process.stdin : s.path, d.container as string, d.path, o)
        }
      })
    },
  },

  diff: {
    usage: (c) => c
      .description("Inspect changes to files or directories on a container's filesystem")
      .argument('<container>'),
    run: async (name: string, _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const changes = await (await api()).containerDiff(store, name)
        process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''))
      })
    },
  },

  export: {
    usage: (c) => c
      .description("Export a container's filesystem as a tar archive")
      .argument('<container>')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT'),
    run: async (name: string, f: { output?: string }, cmd: Command) => {
      if (f.output === undefined && process.stdout.isTTY) {
        throw new CairnError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect')
      }
      await withStore(cmd, async (store) => {
        if (f.output === undefined) {
          await (await api()).exportContainer(store, name, process.stdout)
          return
        }
        const output = f.output
        await writeOutputFile(output, async (out) => (await api()).exportContainer(store, name, out))
      })
    },
  },

  update: {
    usage: (c) => addLimitOptions(c
      .description('Update configuration of one or more containers')
      .argument('<container...>')),
    run: async (names: string[], f: LimitFlags, cmd: Command) => {
      const limits = await limitOptions(f)
      if (Object.keys(limits).length === 0) throw new CairnError('INVALID_ARGUMENT', 'You must provide one or more flags when using this command.')
      await withStore(cmd, async (store) => printBatch(await (await resources()).updateContainers(store, names, limits)))
    },
  },

  stats: {
    usage: (c) => c
      .description('Display a live stream of container(s) resource usage statistics')
      .argument('[container...]')
      .option('-a, --all', 'show all containers (default shows just running)')
      .option('--no-stream', 'disable streaming stats and only pull the first result')
      .option('--no-trunc', 'do not truncate output')
      .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template such as '{{.Name}} {{.CPUPerc}}'"),
    run: async (names: string[], f: { all?: boolean; stream?: boolean; trunc?: boolean; format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const api = await resources()
        const format = f.format === undefined || f.format === 'table' ? STATS_TABLE : f.format
        const render = (list: readonly ContainerStats[]): string =>
          formatWrite(format, statsRows(list, names, f.trunc !== false), { headers: STATS_HEADERS, errors: { parse: 'failed to parse template: ', exec: 'failed to execute template: ' } })
        if (f.stream === false) {
          process.stdout.write(render(await api.containerStats(store, names, { all: f.all ?? false, signal: interruptSignal() })))
          return
        }
        const signal = interruptSignal()
        for await (const list of api.streamStats(store, names, { all: f.all ?? false, signal })) {
          // a terminal is redrawn (Docker's clear-screen), a pipe gets one table after another
          process.stdout.write(`${process.stdout.isTTY ? '\x1b[2J\x1b[H' : ''}${render(list)}`)
        }
      })
    },
  },

  top: {
    usage: (c) => c
      .description('Display the running processes of a container')
      .argument('<container>')
      .argument('[ps-options...]', 'options for ps (default -ef)')
      .passThroughOptions()
      .allowUnknownOption(),
    run: async (name: string, psArgs: string[], _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const top = await (await resources()).topContainer(store, name, psArgs)
        const text = [top.titles.join('\t'), ...top.processes.map((p) => p.join('\t'))].join('\n')
        process.stdout.write(tabwrite(`${text}\n`, { minWidth: 20, padding: 3, padChar: ' ' }))
      })
    },
  },
}

export function registerContainerCommands(program: Command, word?: string): void {
  // a container verb on the command line: that command alone (its option table is what a start pays for)
  const only = word !== undefined && Object.hasOwn(CONTAINER_COMMANDS, word) ? CONTAINER_COMMANDS[word] : undefined
  if (word !== undefined && only !== undefined && only.managed?.only !== true) {
    only.usage(program.command(word)).action(only.run)
    return
  }
  const container = program.command('container').description('Manage containers')
  for (const [parent, managed] of [[program, false], [container, true]] as const) {
    for (const [name, spec] of Object.entries(CONTAINER_COMMANDS)) {
      if (spec.managed?.only === true && !managed) continue
      const c = parent.command(managed ? spec.managed?.name ?? name : name)
      for (const alias of managed ? spec.managed?.aliases ?? [] : []) c.alias(alias)
      spec.usage(c).action(spec.run)
    }
  }
}

/** `docker stats`'s header words, by field. */
const STATS_HEADERS: Record<string, string> = {
  Container: 'CONTAINER', ID: 'CONTAINER ID', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
}

const STATS_TABLE = 'table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}'

/** What a `stats` template sees of a container: Docker's stats context. */
function statsRows(list: readonly ContainerStats[], given: readonly string[], trunc: boolean): Record<string, unknown>[] {
  return list.map((c, i) => goContext('*formatter.statsContext', {
    Container: given[i] ?? (trunc ? shortId(c.id) : c.id),
    Name: c.name,
    ID: trunc ? shortId(c.id) : c.id,
    CPUPerc: `${c.cpuPercent.toFixed(2)}%`,
    MemUsage: `${bytesSize(c.memoryUsage)} / ${bytesSize(c.memoryLimit)}`,
    MemPerc: `${c.memoryPercent.toFixed(2)}%`,
    NetIO: `${humanSizeWithPrecision(c.netRx, 3)} / ${humanSizeWithPrecision(c.netTx, 3)}`,
    BlockIO: `${humanSizeWithPrecision(c.blockRead, 3)} / ${humanSizeWithPrecision(c.blockWrite, 3)}`,
    PIDs: String(c.pids),
  }))
}

/** The units of a relative `--since`/`--until` (one number, one unit), in nanoseconds. */
const SINCE_UNITS = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const

/** `--since`/`--until`: RFC 3339, Unix seconds, or a duration before now (`42s`, `5m`, `1h`). */
function parseSince(s: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000
  const rel = parseDurationMs(s, { sign: false, looseFraction: false, compound: false, units: SINCE_UNITS })
  if (rel !== undefined) return Date.now() - rel
  const t = Date.parse(s)
  if (Number.isNaN(t)) throw new CairnError('INVALID_ARGUMENT', `invalid value for ${flag}: ${s}`)
  return t
}

