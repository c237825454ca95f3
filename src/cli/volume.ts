/** `volume create|ls|inspect|rm|prune`: argument parsing and printing only. */
import type { Command } from 'commander'
import { parseFilterArgs } from '../api/filters.js'
import { humanSizeWithPrecision } from '../util/format.js'
import { collect, withStore } from './context.js'
import { printError } from './errors.js'
import { printInspect } from './inspect.js'
import { confirm } from './prompt.js'
import { parseKeyValues } from '../api/flags.js'
import { formatWrite, goContext, goMethod } from './template.js'
import type * as VolumesApi from '../api/volumes.js'

const api = (): Promise<typeof VolumesApi> => import('../api/volumes.js')

const LS_HEADERS = { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' }
const LS_TABLE = 'table {{.Driver}}\t{{.Name}}'

export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('Manage volumes')

  volume
    .command('create')
    .description('Create a volume')
    .argument('[name]')
    .option('-d, --driver <driver>', 'specify volume driver name', 'local')
    .option('--label <K=V>', 'set metadata for a volume (repeatable)', collect)
    .option('-o, --opt <K=V>', 'set driver specific options: type, device, o (repeatable)', collect)
    .action(async (name: string | undefined, f: { driver: string; label?: string[]; opt?: string[] }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const v = (await api()).createVolume(store, {
          ...(name !== undefined ? { name } : {}), driver: f.driver, labels: parseKeyValues(f.label ?? [], 'label'), options: parseKeyValues(f.opt ?? [], 'option'),
        })
        process.stdout.write(`${v.Name}\n`)
      })
    })

  volume
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-q, --quiet', 'only display volume names')
    .option('-f, --filter <key=value>', 'provide filter values (e.g. dangling=true)', collect)
    .option('--format <format>', "format the output using a Go template ('table', 'json')")
    .action(async (f: { quiet?: boolean; filter?: string[]; format?: string }, cmd: Command) => {
      const filters = parseFilterArgs(f.filter ?? [])
      await withStore(cmd, async (store) => {
        const list = (await api()).listVolumes(store, { filters })
        if (f.quiet) {
          process.stdout.write(list.map((v) => `${v.Name}\n`).join(''))
          return
        }
        const rows = list.map((v) => goContext('*formatter.volumeContext', {
          Name: v.Name,
          Driver: v.Driver,
          Scope: v.Scope,
          Mountpoint: v.Mountpoint,
          Labels: Object.keys(v.Labels ?? {}).sort().map((k) => `${k}=${v.Labels?.[k] ?? ''}`).join(','),
          // as Docker's: known only to `system df -v`
          Links: 'N/A',
          Size: 'N/A',
          Label: goMethod(['string'], (k: string) => v.Labels?.[k] ?? ''),
        }))
        process.stdout.write(formatWrite(f.format ?? LS_TABLE, rows, { headers: LS_HEADERS, defaultTable: LS_TABLE }))
      })
    })

  volume
    .command('inspect')
    .description('Display detailed information on one or more volumes')
    .argument('<volume...>')
    .option('-f, --format <format>', 'format the output using a Go template')
    .action(async (names: string[], f: { format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const a = await api()
        await printInspect(names, 'volume', f.format, async (n) => {
          try {
            return a.inspectVolume(store, n)
          } catch (err) {
            if ((err as { code?: unknown }).code === 'NAME_UNKNOWN') return undefined
            throw err
          }
        })
      })
    })

  volume
    .command('rm')
    .alias('remove')
    .description('Remove one or more volumes (never one a container uses)')
    .argument('<volume...>')
    .option('-f, --force', 'force the removal of one or more volumes (missing ones are not an error)')
    .action(async (names: string[], f: { force?: boolean }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const r = await (await api()).removeVolumes(store, names, { force: f.force ?? false })
        for (const n of r.done) process.stdout.write(`${n}\n`)
        for (const e of r.errors) printError(e.error)
        if (r.errors.length > 0) process.exitCode = 1
      })
    })

  volume
    .command('prune')
    .description('Remove unused local volumes (anonymous ones, or with -a all of them)')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <key=value>', "provide filter values (e.g. 'label=<label>')", collect)
    .action(async (f: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) => {
      const filters = parseFilterArgs(f.filter ?? [])
      const what = f.all ? 'all local volumes' : 'anonymous local volumes'
      if (!f.force && !(await confirm(`WARNING! This will remove ${what} not used by at least one container.\nAre you sure you want to continue? [y/N] `))) return
      await withStore(cmd, async (store) => {
        const r = await (await api()).pruneVolumes(store, { all: f.all ?? false, filters })
        let out = ''
        if (r.removed.length > 0) out += `Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`
        out += `Total reclaimed space: ${humanSizeWithPrecision(r.reclaimed, 4)}\n`
        process.stdout.write(out)
      })
    })
}
