/** `network create|ls|inspect|rm|prune|connect|disconnect`: argument parsing and printing only. */
import type { Command } from 'commander'
import { parseFilterArgs } from '../api/filters.js'
import { shortId } from '../util/format.js'
import { collect, rootOf, withStore } from './context.js'
import { printError } from './errors.js'
import { printInspect } from './inspect.js'
import { confirm } from './prompt.js'
import { parseKeyValues } from '../api/flags.js'
import { formatWrite, goContext } from './template.js'
import type * as NetworksApi from '../api/networks.js'

const api = (): Promise<typeof NetworksApi> => import('../api/networks.js')

const LS_HEADERS = { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', IPv6: 'IPV6', Internal: 'INTERNAL', Labels: 'LABELS', CreatedAt: 'CREATED AT' }
const LS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}'

export function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description('Manage networks')

  network
    .command('create')
    .description('Create a network (the bridge driver: a Linux bridge with NAT, and name resolution between its containers)')
    .argument('<name>')
    .option('-d, --driver <driver>', 'driver to manage the network', 'bridge')
    .option('--subnet <cidr>', 'subnet in CIDR format (default: a free one from the address pools)')
    .option('--gateway <ip>', 'IPv4 gateway for the subnet')
    .option('--internal', 'restrict external access to the network')
    .option('--label <K=V>', 'set metadata on a network (repeatable)', collect)
    .option('-o, --opt <K=V>', 'set driver specific options (repeatable)', collect)
    .action(async (name: string, f: { driver: string; subnet?: string; gateway?: string; internal?: boolean; label?: string[]; opt?: string[] }, cmd: Command) => {
      const r = (await api()).createNetwork({
        name, driver: f.driver, internal: f.internal ?? false, labels: parseKeyValues(f.label ?? [], 'label'), options: parseKeyValues(f.opt ?? [], 'option'),
        ...(f.subnet !== undefined ? { subnet: f.subnet } : {}),
        ...(f.gateway !== undefined ? { gateway: f.gateway } : {}),
      }, rootOf(cmd))
      process.stdout.write(`${r.Id}\n`)
    })

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'only display network IDs')
    .option('--no-trunc', "don't truncate the output")
    .option('-f, --filter <key=value>', 'provide filter values (e.g. driver=bridge)', collect)
    .option('--format <format>', "format the output using a Go template ('table', 'json')")
    .action(async (f: { quiet?: boolean; trunc?: boolean; filter?: string[]; format?: string }) => {
      const list = (await api()).listNetworks({ filters: parseFilterArgs(f.filter ?? []) })
      const trunc = f.trunc !== false
      if (f.quiet) {
        process.stdout.write(list.map((n) => `${trunc ? shortId(n.Id) : n.Id}\n`).join(''))
        return
      }
      const rows = list.map((n) => goContext('*formatter.networkContext', {
        ID: trunc ? shortId(n.Id) : n.Id,
        Name: n.Name,
        Driver: n.Driver,
        Scope: n.Scope,
        IPv6: String(n.EnableIPv6),
        Internal: String(n.Internal),
        Labels: Object.keys(n.Labels).sort().map((k) => `${k}=${n.Labels[k] ?? ''}`).join(','),
        CreatedAt: n.Created,
      }))
      process.stdout.write(formatWrite(f.format ?? LS_TABLE, rows, { headers: LS_HEADERS, defaultTable: LS_TABLE }))
    })

  network
    .command('inspect')
    .description('Display detailed information on one or more networks')
    .argument('<network...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (names: string[], f: { format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const a = await api()
        await printInspect(names, 'network', f.format, async (n) => a.inspectNetwork(store, n).catch((err: unknown) => {
          if ((err as { code?: unknown }).code === 'NAME_UNKNOWN') return undefined
          throw err
        }))
      })
    })

  network
    .command('rm')
    .alias('remove')
    .description('Remove one or more networks')
    .argument('<network...>')
    .action(async (names: string[], _f: object, cmd: Command) => {
      const a = await api()
      for (const n of names) {
        try {
          await a.removeNetwork(n, rootOf(cmd))
          process.stdout.write(`${n}\n`)
        } catch (err) {
          printError(err)
          process.exitCode = 1
        }
      }
    })

  network
    .command('prune')
    .description('Remove all unused networks')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <key=value>', 'provide filter values (e.g. until=<timestamp>)', collect)
    .action(async (f: { force?: boolean; filter?: string[] }, cmd: Command) => {
      if (!f.force && !(await confirm('WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] '))) return
      const removed = await (await api()).pruneNetworks({ filters: parseFilterArgs(f.filter ?? []) }, rootOf(cmd))
      if (removed.length > 0) process.stdout.write(`Deleted Networks:\n${removed.map((n) => `${n}\n`).join('')}\n`)
    })

  network
    .command('connect')
    .description('Connect a container to a network')
    .argument('<network>')
    .argument('<container>')
    .option('--alias <alias>', 'add a network-scoped alias for the container (repeatable)', collect)
    .option('--ip <address>', 'IPv4 address (e.g., 172.30.100.104)')
    .action(async (net: string, container: string, f: { alias?: string[]; ip?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => (await api()).connectNetwork(store, net, container, {
        aliases: f.alias ?? [], ...(f.ip !== undefined ? { ipv4Address: f.ip } : {}),
      }))
    })

  network
    .command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'force the container to disconnect from a network')
    .action(async (net: string, container: string, _f: object, cmd: Command) => {
      await withStore(cmd, async (store) => (await api()).disconnectNetwork(store, net, container))
    })
}
