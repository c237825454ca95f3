/** `import`, `save`, `load`: printing only. */
import type { Readable } from 'node:stream'
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import { importImage } from '../api/import.js'
import { loadImages } from '../api/load.js'
import { saveImages, type ArchiveFormat } from '../api/save.js'
import type { Compression } from '../oci/mediatype.js'
import { openInputFile, writeOutputFile } from '../util/userfiles.js'
import { collect, interruptSignal, withStore } from './context.js'
import { ProgressRenderer } from './progress.js'

export function registerTransferCommands(program: Command): void {
  const image = program.commands.find((c) => c.name() === 'image')
  for (const parent of image ? [program, image] : [program]) {
    parent
      .command('import')
      .description('Import the contents from a tarball to create a filesystem image')
      .argument('<file>', 'a tarball (any compression), or - for standard input')
      .argument('[repository]', 'REPOSITORY[:TAG]')
      .option('-m, --message <message>', 'set the commit message for the imported image')
      .option('-c, --change <instruction>', 'apply a Dockerfile instruction to the created image (repeatable)', collect)
      .option('--compression <type>', 'store the layer uncompressed (none, the default), gzip or zstd', 'none')
      .option('--oci', 'write an OCI manifest instead of Docker schema2')
      .option('--timestamp <seconds>', 'creation time, and the latest mtime kept (default: $SOURCE_DATE_EPOCH, else now)')
      .option('--platform <os/arch>', 'set the platform recorded in the image')
      .action(async (file: string, repository: string | undefined, opts: { message?: string; change?: string[]; compression: string; oci?: boolean; timestamp?: string; platform?: string }, cmd: Command) => {
        const compression = parseCompression(opts.compression)
        const timestamp = parseTimestamp(opts.timestamp ?? process.env['SOURCE_DATE_EPOCH'])
        const source = await openInput(file)
        await withStore(cmd, async (store) => {
          const renderer = process.stderr.isTTY ? new ProgressRenderer(process.stderr) : undefined
          const res = await importImage(store, source, {
            ...(renderer ? { onProgress: renderer.onProgress } : {}),
            ...('size' in source && typeof source.size === 'number' ? { sourceSize: source.size } : {}),
            ...(repository !== undefined ? { reference: repository } : {}),
            ...(opts.message !== undefined ? { message: opts.message } : {}),
            changes: opts.change ?? [],
            sourceName: file,
            compression,
            format: opts.oci ? 'oci' : 'docker',
            ...(timestamp !== undefined ? { timestamp } : {}),
            ...(opts.platform !== undefined ? { platform: parsePlatform(opts.platform) } : {}),
            signal: interruptSignal(),
          }).finally(() => renderer?.finish())
          process.stdout.write(`${res.id}\n`)
        })
      })

    parent
      .command('save')
      .description('Save one or more images to a tar archive (streamed to STDOUT by default)')
      .argument('<image...>')
      .option('-o, --output <file>', 'write to a file, instead of STDOUT')
      .option('--format <format>', 'docker (default) or oci', 'docker')
      .option('--compression <type>', 'compress the whole archive: none (the default), gzip or zstd', 'none')
      .action(async (images: string[], opts: { output?: string; format: string; compression: string }, cmd: Command) => {
        if (opts.format !== 'docker' && opts.format !== 'oci') throw new CairnError('INVALID_ARGUMENT', `unknown archive format ${JSON.stringify(opts.format)} (docker or oci)`)
        const compression = parseCompression(opts.compression)
        if (opts.output === undefined && process.stdout.isTTY) {
          throw new CairnError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect')
        }
        await withStore(cmd, async (store) => {
          const signal = interruptSignal()
          const format = opts.format as ArchiveFormat
          const renderer = process.stderr.isTTY ? new ProgressRenderer(process.stderr) : undefined
          const o = { format, compression, signal, ...(renderer ? { onProgress: renderer.onProgress } : {}) }
          try {
            if (opts.output === undefined || opts.output === '-') await saveImages(store, images, process.stdout, o)
            else await writeOutputFile(opts.output, (out) => saveImages(store, images, out, o))
          } finally {
            renderer?.finish()
          }
        })
      })

    parent
      .command('load')
      .description('Load images from a tar archive (docker save or OCI layout) or STDIN')
      .option('-i, --input <file>', 'read from a tar archive file, instead of STDIN')
      .option('-q, --quiet', 'suppress the load output')
      .action(async (opts: { input?: string; quiet?: boolean }, cmd: Command) => {
        if (opts.input === undefined && process.stdin.isTTY) {
          throw new CairnError('INVALID_ARGUMENT', 'requested load from stdin, but stdin is empty')
        }
        const source = await openInput(opts.input ?? '-')
        await withStore(cmd, async (store) => {
          const renderer = !opts.quiet && process.stdout.isTTY ? new ProgressRenderer(process.stdout) : undefined
          const res = await loadImages(store, source, { signal: interruptSignal(), ...(renderer ? { onProgress: renderer.onProgress } : {}) })
            .finally(() => renderer?.finish())
          for (const img of res.images) {
            for (const r of img.retagged) {
              process.stdout.write(`The image ${r.tag} already exists, renaming the old one with ID ${r.previous} to empty string\n`)
            }
            if (img.tags.length === 0) process.stdout.write(`Loaded image ID: ${img.id}\n`)
            for (const t of img.tags) process.stdout.write(`Loaded image: ${t}\n`)
          }
        })
      })
  }
}

function openInput(file: string): Promise<Readable> {
  return file === '-' ? Promise.resolve(process.stdin) : openInputFile(file)
}

function parseCompression(s: string): Compression {
  if (s === 'gzip' || s === 'zstd' || s === 'none') return s
  throw new CairnError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(s)} (gzip, zstd or none)`)
}

function parseTimestamp(s: string | undefined): number | undefined {
  if (s === undefined || s === '') return undefined
  if (!/^\d+$/.test(s)) throw new CairnError('INVALID_ARGUMENT', `invalid timestamp ${JSON.stringify(s)}: want seconds since the epoch`)
  return Number(s)
}

function parsePlatform(s: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = s.split('/')
  if (!os || !architecture) throw new CairnError('INVALID_ARGUMENT', `invalid platform ${JSON.stringify(s)}: want os/arch[/variant]`)
  return variant ? { os, architecture, variant } : { os, architecture }
}

