/** `system df`, `info` (`system info`) and `version`: printing only, in Docker's layouts. */
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import type { ContainerSummary } from '../api/containers.js'
import { systemDiskUsage, systemInfo, versionInfo, type SystemDiskUsage } from '../api/system.js'
import type { ImageStore } from '../image/store.js'
import { ago, bytesSize, ellipsis, humanSize, humanSizeWithPrecision, shortId, tabwrite } from '../util/format.js'
import { collect, withStore } from './context.js'
import { pruneSystem } from '../api/prune.js'
import { parseFilterArgs } from '../api/filters.js'
import { registerEventCommands } from './events.js'
import { formatWrite, goContext, goQuote, goStruct, parseFormat, TemplateExecError } from './template.js'

const DF_HEADERS: Record<string, string> = { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' }
const DF_TABLE = 'table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}'

/** go-units' HumanSize: 4 significant digits. */
const size4 = (n: number): string => humanSizeWithPrecision(n, 4)

/** `12.5MB (40%)`: Docker's RECLAIMABLE, the share truncated to a whole percent. */
function reclaimable(bytes: number, total: number): string {
  return total > 0 ? `${size4(bytes)} (${Math.trunc((bytes * 100) / total)}%)` : size4(bytes)
}

const isActive = (c: ContainerSummary): boolean => c.state === 'running' || c.state === 'paused'

/** The four rows of `docker system df`, as Docker's disk usage contexts. */
function diskUsageRows(du: SystemDiskUsage): Record<string, unknown>[] {
  let used = 0
  for (const i of du.images) if (i.containers > 0) used += i.size - i.sharedSize
  const ctrTotal = du.containers.reduce((n, c) => n + (c.sizeRw ?? 0), 0)
  const ctrReclaimable = du.containers.filter((c) => !isActive(c)).reduce((n, c) => n + (c.sizeRw ?? 0), 0)
  const volTotal = du.volumes.reduce((n, v) => n + v.size, 0)
  const volReclaimable = du.volumes.filter((v) => v.links === 0).reduce((n, v) => n + v.size, 0)
  const cacheReclaimable = du.buildCache.filter((b) => !b.inUse && !b.shared).reduce((n, b) => n + b.size, 0)
  return [
    goContext('*formatter.diskUsageImagesContext', {
      Type: 'Images', TotalCount: String(du.images.length), Active: String(du.images.filter((i) => i.containers > 0).length),
      Size: size4(du.layersSize), Reclaimable: reclaimable(du.layersSize - used, du.layersSize),
    }),
    goContext('*formatter.diskUsageContainersContext', {
      Type: 'Containers', TotalCount: String(du.containers.length), Active: String(du.containers.filter(isActive).length),
      Size: size4(ctrTotal), Reclaimable: reclaimable(ctrReclaimable, ctrTotal),
    }),
    goContext('*formatter.diskUsageVolumesContext', {
      Type: 'Local Volumes', TotalCount: String(du.volumes.length), Active: String(du.volumes.filter((v) => v.links > 0).length),
      Size: size4(volTotal), Reclaimable: reclaimable(volReclaimable, volTotal),
    }),
    goContext('*formatter.diskUsageBuilderContext', {
      Type: 'Build Cache', TotalCount: String(du.buildCache.length), Active: String(du.buildCache.filter((b) => b.inUse).length),
      Size: size4(du.buildCacheSize), Reclaimable: size4(cacheReclaimable),
    }),
  ]
}

/** `docker system df -v`: a section per kind, each a table of its own. */
function verboseDiskUsage(du: SystemDiskUsage): string {
  const table = (head: string[], rows: string[][]): string => tabwrite([head, ...rows].map((r) => `${r.join('\t')}\n`).join(''))
  const images = du.images.map((i) => {
    let repo = '<none>'
    let tag = '<none>'
    const first = i.repoTags[0]
    const colon = first?.lastIndexOf(':') ?? -1
    if (first !== undefined && colon > first.lastIndexOf('/')) {
      repo = first.slice(0, colon)
      tag = first.slice(colon + 1)
    }
    return [repo, tag, shortId(i.id), ago(i.created), humanSize(i.size), size4(i.sharedSize), size4(i.size - i.sharedSize), String(i.containers)]
  })
  const containers = du.containers.map((c) => [
    shortId(c.id), c.image, goQuote(ellipsis(c.command, 20)), String(c.localVolumes ?? 0), humanSize(c.sizeRw ?? 0), ago(c.created), c.status, c.name,
  ])
  const volumes = du.volumes.map((v) => [v.name, String(v.links), size4(v.size)])
  const cache = du.buildCache.map((b) => [b.id.slice(0, 12), b.type, size4(b.size), ago(b.created), ago(b.lastUsed), String(b.usageCount), String(b.shared)])
  return `Images space usage:\n\n${table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], images)}` +
    `\nContainers space usage:\n\n${table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], containers)}` +
    `\nLocal Volumes space usage:\n\n${table(['VOLUME NAME', 'LINKS', 'SIZE'], volumes)}` +
    `\nBuild cache usage: ${size4(du.buildCacheSize)}\n\n${table(['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED'], cache)}`
}

/**
 * `version -f` and `info -f`: Docker runs these templates straight to the terminal, so what was
 * written before an error stays, a newline always follows, and a template that does not parse
 * exits 64.
 */
function printTemplate(format: string, data: unknown, name: string): void {
  // a template that does not parse throws FormatError, which the command's caller prints (exit 64)
  const tmpl = parseFormat(format === 'json' ? '{{json .}}' : format, undefined, name, 64)
  try {
    process.stdout.write(`${tmpl.execute(data)}\n`)
  } catch (err) {
    if (!(err instanceof TemplateExecError)) throw err
    process.stdout.write(`${err.output}\n`)
    process.stderr.write(`${err.message}\n`)
    process.exitCode = 1
  }
}

async function printVersion(format: string | undefined): Promise<void> {
  const v = await versionInfo()
  if (format !== undefined && format !== '') {
    const data = goStruct('system.versionInfo', {
      Client: goStruct('system.clientVersion', { ...v.Client }),
      Server: goStruct('*types.Version', {
        ...v.Server,
        Platform: goStruct('struct { Name string }', { ...v.Server.Platform }),
        Components: v.Server.Components.map((c) => goStruct('types.ComponentVersion', { ...c })),
      }),
    })
    printTemplate(format, data, 'version')
    return
  }
  const lines = [
    'Client:',
    ` Version:\t${v.Client.Version}`,
    ` API version:\t${v.Client.ApiVersion}`,
    ` Node.js version:\t${v.Client.GoVersion}`,
    ` OS/Arch:\t${v.Client.Os}/${v.Client.Arch}`,
    ` Context:\t${v.Client.Context}`,
    '',
    'Server:',
  ]
  for (const c of v.Server.Components) {
    lines.push(` ${c.Name}:`)
    if (c.Name === 'Engine') {
      lines.push(`  Version:\t${c.Version}`, `  API version:\t${v.Server.ApiVersion} (minimum version ${v.Server.MinAPIVersion})`,
        `  Node.js version:\t${v.Server.GoVersion}`, `  OS/Arch:\t${v.Server.Os}/${v.Server.Arch}`, `  Experimental:\t${c.Details['Experimental'] ?? 'false'}`)
    } else {
      lines.push(`  Version:\t${c.Version}`, `  GitCommit:\t${c.Details['GitCommit'] ?? ''}`)
    }
  }
  process.stdout.write(tabwrite(`${lines.join('\n')}\n`, { minWidth: 20, padding: 1, padChar: ' ' }))
}

async function printInfo(store: ImageStore, format: string | undefined): Promise<void> {
  const info = await systemInfo(store)
  const clientInfo = { Debug: false, Version: info.ServerVersion, Context: 'default', Plugins: [] as string[], Warnings: null }
  if (format !== undefined && format !== '') {
    const data = goStruct('system.dockerInfo', {
      ...info,
      RegistryConfig: goStruct('*registry.ServiceConfig', {
        ...info.RegistryConfig,
        IndexConfigs: Object.fromEntries(Object.entries(info.RegistryConfig.IndexConfigs).map(([k, c]) => [k, goStruct('*registry.IndexInfo', { ...c })])),
      }),
      Runtimes: Object.fromEntries(Object.entries(info.Runtimes).map(([k, r]) => [k, goStruct('system.RuntimeWithStatus', { ...r })])),
      ClientInfo: goStruct('*system.clientInfo', clientInfo),
    })
    printTemplate(format, data, '')
    return
  }
  const out = [
    'Client:',
    ` Version:    ${clientInfo.Version}`,
    ` Context:    ${clientInfo.Context}`,
    ` Debug Mode: ${String(clientInfo.Debug)}`,
    '',
    'Server:',
    ` Containers: ${info.Containers}`,
    `  Running: ${info.ContainersRunning}`,
    `  Paused: ${info.ContainersPaused}`,
    `  Stopped: ${info.ContainersStopped}`,
    ` Images: ${info.Images}`,
    ` Server Version: ${info.ServerVersion}`,
    ` Storage Driver: ${info.Driver}`,
    ...info.DriverStatus.map(([k, v]) => `  ${k}: ${v}`),
    ` Logging Driver: ${info.LoggingDriver}`,
    ` Cgroup Driver: ${info.CgroupDriver}`,
    ` Cgroup Version: ${info.CgroupVersion}`,
    ` Runtimes: ${Object.keys(info.Runtimes).sort().join(' ')}`,
    ` Default Runtime: ${info.DefaultRuntime}`,
    ` Kernel Version: ${info.KernelVersion}`,
    ` Operating System: ${info.OperatingSystem}`,
    ` OSType: ${info.OSType}`,
    ` Architecture: ${info.Architecture}`,
    ` CPUs: ${info.NCPU}`,
    ` Total Memory: ${bytesSize(info.MemTotal)}`,
    ` Name: ${info.Name}`,
    ` Cairn Root Dir: ${info.DockerRootDir}`,
    ' Debug Mode: false',
    ' Experimental: false',
  ]
  const insecure = [...Object.values(info.RegistryConfig.IndexConfigs).filter((c) => !c.Secure).map((c) => c.Name), ...info.RegistryConfig.InsecureRegistryCIDRs]
  if (insecure.length > 0) out.push(' Insecure Registries:', ...insecure.map((r) => `  ${r}`))
  out.push(` Live Restore Enabled: ${String(info.LiveRestoreEnabled)}`, '')
  process.stdout.write(`${out.join('\n')}\n`)
}

export function registerSystemCommands(program: Command): void {
  const system = program.command('system').description('Manage Cairn')
  registerEventCommands([program, system])
  system
    .command('df')
    .description('Show disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template")
    .action(async (opts: { verbose?: boolean; format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const du = await systemDiskUsage(store)
        if (opts.verbose && (opts.format === undefined || opts.format === 'table')) {
          process.stdout.write(verboseDiskUsage(du))
          return
        }
        const format = opts.format === undefined || opts.format === 'table' ? DF_TABLE : opts.format
        process.stdout.write(formatWrite(format, diskUsageRows(du), { headers: DF_HEADERS }))
      })
    })

  system
    .command('prune')
    .description('Remove unused data')
    .option('-a, --all', 'remove all unused images not just dangling ones')
    .option('--volumes', 'prune anonymous volumes')
    .option('--filter <filter>', 'provide filter values (e.g. label=<key>=<value>)', collect)
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { all?: boolean; volumes?: boolean; filter?: string[]; force?: boolean }, cmd: Command) => {
      const filters = parseFilterArgs(opts.filter ?? [])
      if (!opts.force) {
        const what = [
          'all stopped containers',
          'all networks not used by at least one container',
          ...(opts.volumes ? ['all anonymous volumes not used by at least one container'] : []),
          opts.all ? 'all images without at least one container associated to them' : 'all dangling images',
          opts.all ? 'all build cache' : 'unused build cache',
        ]
        const { confirm } = await import('./prompt.js')
        if (!(await confirm(`WARNING! This will remove:\n${what.map((w) => `  - ${w}\n`).join('')}\nAre you sure you want to continue? [y/N] `))) return
      }
      await withStore(cmd, async (store) => {
        const r = await pruneSystem(store, { all: opts.all ?? false, volumes: opts.volumes ?? false, filters })
        const { pruneBuildCache } = await import('../build/cache.js')
        const cache = await pruneBuildCache(store, { all: opts.all ?? false })
        const section = (title: string, lines: string[]): string => (lines.length > 0 ? `${title}:\n${lines.map((l) => `${l}\n`).join('')}\n` : '')
        process.stdout.write(section('Deleted Containers', r.containers))
        process.stdout.write(section('Deleted Networks', r.networks))
        process.stdout.write(section('Deleted Volumes', r.volumes))
        process.stdout.write(section('Deleted Images', r.images.map((x) => ('untagged' in x ? `untagged: ${x.untagged}` : `deleted: ${x.deleted}`))))
        process.stdout.write(section('Deleted build cache objects', cache.records.flatMap((x) => ('deleted' in x ? [x.deleted.slice(7, 32)] : []))))
        process.stdout.write(`Total reclaimed space: ${size4(r.reclaimed + cache.reclaimed)}\n`)
      })
    })

  system
    .command('service')
    .description('Serve the Docker Engine API (for docker, compose, SDKs) on a unix socket and optionally TCP')
    .option('--socket <unix://path>', 'the unix socket (default unix:///run/cairn/docker.sock; mode 0660)')
    .option('--tcp <host:port>', 'also listen on TCP (loopback only, unless --tlsverify)')
    .option('--tlsverify', 'require TLS client certificates on TCP (needs --tlscacert, --tlscert, --tlskey)')
    .option('--tlscacert <file>', 'CA that signs the clients\' certificates')
    .option('--tlscert <file>', "the server's certificate")
    .option('--tlskey <file>', "the server's private key")
    .action(async (o: { socket?: string; tcp?: string; tlsverify?: boolean; tlscacert?: string; tlscert?: string; tlskey?: string }, cmd: Command) => {
      const { serveEngineApi } = await import('../engine-api/server.js')
      let tls: { ca: string; cert: string; key: string } | undefined
      if (o.tlsverify || o.tlscacert !== undefined || o.tlscert !== undefined || o.tlskey !== undefined) {
        if (o.tlscacert === undefined || o.tlscert === undefined || o.tlskey === undefined) throw new CairnError('INVALID_ARGUMENT', '--tlsverify needs --tlscacert, --tlscert and --tlskey')
        if (o.tcp === undefined) throw new CairnError('INVALID_ARGUMENT', 'TLS applies to the TCP listener: give --tcp')
        tls = { ca: o.tlscacert, cert: o.tlscert, key: o.tlskey }
      }
      await withStore(cmd, async (store) => {
        const server = await serveEngineApi(store, {
          socket: o.socket ?? 'unix:///run/cairn/docker.sock', ...(o.tcp !== undefined ? { tcp: o.tcp } : {}), ...(tls ? { tls } : {}),
          onError: (err) => process.stderr.write(`cairn system service: error: ${err instanceof Error ? (process.env['CAIRN_DEBUG'] && err.stack ? err.stack : err.message) : String(err)}\n`),
        })
        process.stderr.write(`cairn system service: listening on ${server.addresses.join(', ')}\n`)
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve())
          process.once('SIGTERM', () => resolve())
        })
        await server.close()
        process.stderr.write('cairn system service: stopped\n')
      })
    })

  for (const parent of [program, system]) {
    parent
      .command('info')
      .description('Display system-wide information')
      .option('-f, --format <format>', "format the output using a Go template ('json' for JSON)")
      .action(async (opts: { format?: string }, cmd: Command) => {
        await withStore(cmd, (store) => printInfo(store, opts.format))
      })
  }

  program
    .command('version')
    .description('Show the Cairn version information')
    .option('-f, --format <format>', "format the output using a Go template ('json' for JSON)")
    .action(async (opts: { format?: string }) => {
      await printVersion(opts.format)
    })
}
