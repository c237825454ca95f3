/** `cairn commit`: printing only. */
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import { commitContainer } from '../api/commit.js'
import { collect, interruptSignal, withStore } from './context.js'

interface CommitFlags {
  message?: string
  author?: string
  change?: string[]
  pause: boolean
  squash?: boolean
  compression: string
  timestamp?: string
  oci?: boolean
}

export function registerCommitCommand(program: Command): void {
  const container = program.commands.find((c) => c.name() === 'container')
  for (const parent of container ? [program, container] : [program]) {
    parent
      .command('commit')
      .description("Create a new image from a container's changes")
      .argument('<container>', 'container name or ID (prefix)')
      .argument('[repository]', 'REPOSITORY[:TAG]')
      .option('-m, --message <message>', 'commit message')
      .option('-a, --author <author>', 'author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the created image (repeatable)', collect)
      .option('-p, --pause [bool]', 'pause the container during commit (default true; --pause=false to not)', (v: string) => v !== 'false', true)
      .option('--squash', 'one layer holding the whole file system (history kept)')
      .option('--compression <type>', 'store the new layer uncompressed (none, the default), gzip or zstd', 'none')
      .option('--timestamp <seconds>', 'creation time, and the latest mtime kept (default: $SOURCE_DATE_EPOCH, else now)')
      .option('--oci', 'write an OCI manifest (default: the parent image\'s format)')
      .action(async (ctr: string, repository: string | undefined, flags: CommitFlags, cmd: Command) => {
        const compression = flags.compression
        if (compression !== 'none' && compression !== 'gzip' && compression !== 'zstd') {
          throw new CairnError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(compression)} (none, gzip or zstd)`)
        }
        const ts = flags.timestamp ?? process.env['SOURCE_DATE_EPOCH']
        if (ts !== undefined && ts !== '' && !/^\d+$/.test(ts)) throw new CairnError('INVALID_ARGUMENT', `invalid timestamp ${JSON.stringify(ts)}: want seconds since the epoch`)
        await withStore(cmd, async (store) => {
          const res = await commitContainer(store, ctr, {
            ...(repository !== undefined ? { reference: repository } : {}),
            ...(flags.message !== undefined ? { message: flags.message } : {}),
            ...(flags.author !== undefined ? { author: flags.author } : {}),
            changes: flags.change ?? [],
            pause: flags.pause,
            squash: flags.squash ?? false,
            compression,
            ...(ts !== undefined && ts !== '' ? { timestamp: Number(ts) } : {}),
            ...(flags.oci ? { format: 'oci' as const } : {}),
            signal: interruptSignal(),
          })
          process.stdout.write(`${res.id}\n`)
        })
      })
  }
}
