/** `images`, `tag`, `rmi`, `inspect`, `history`, `system df`, `image …`: printing only. */
import { createRequire } from 'node:module'
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import { diskUsage, imageHistory, inspectImage, listImages, pruneImages, removeImages, tagImage, type ImageSummary } from '../api/images.js'
import type { DeleteRecord } from '../image/store.js'
import { ago, ellipsis, humanSize, renderTable, shortId } from '../util/format.js'
import { withStore } from './context.js'
import { formatRows, type Row } from './template.js'

interface ImagesOpts { all?: boolean; quiet?: boolean; digests?: boolean; trunc?: boolean; format?: string }

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('Manage images')

  for (const [parent, name] of [[program, 'images'], [image, 'ls']] as const) {
    const c = parent
      .command(name)
      .description('List images')
      .argument('[repository]', 'REPOSITORY[:TAG] to show')
      .option('-a, --all', 'show all images (default hides intermediate images)')
      .option('-q, --quiet', 'only show image IDs')
      .option('--digests', 'show digests')
      .option('--no-trunc', "don't truncate output")
      .option('--format <format>', "'json', or a Go-style template such as '{{.Repository}}:{{.Tag}}'")
      .action(async (repository: string | undefined, opts: ImagesOpts, cmd: Command) => {
        await withStore(cmd, (store) => {
          const listOpts: { all?: boolean; reference?: string } = { all: opts.all ?? false }
          if (repository !== undefined) listOpts.reference = repository
          process.stdout.write(renderImages(listImages(store, listOpts), opts))
        })
      })
    if (name === 'ls') c.alias('list')
  }

  for (const [parent, name] of [[program, 'tag'], [image, 'tag']] as const) {
    parent
      .command(name)
      .description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
      .argument('<source>', 'SOURCE_IMAGE[:TAG]')
      .argument('<target>', 'TARGET_IMAGE[:TAG]')
      .action(async (source: string, target: string, _o: object, cmd: Command) => {
        await withStore(cmd, (store) => {
          tagImage(store, source, target)
        })
      })
  }

  for (const [parent, name] of [[program, 'rmi'], [image, 'rm']] as const) {
    const c = parent
      .command(name)
      .description('Remove one or more images')
      .argument('<image...>', 'images by name or ID (prefix)')
      .option('-f, --force', 'force removal of the image')
      .option('--no-prune', 'do not delete untagged parents')
      .action(async (images: string[], opts: { force?: boolean; prune?: boolean }, cmd: Command) => {
        await withStore(cmd, async (store) => {
          const res = await removeImages(store, images, { force: opts.force ?? false, noPrune: opts.prune === false })
          process.stdout.write(renderDeleteRecords(res.records))
          for (const e of res.errors) process.stderr.write(`Error: ${e.error.message}\n`)
          if (res.errors.length > 0) process.exitCode = 1
        })
      })
    if (name === 'rm') c.alias('remove')
  }

  for (const [parent, name] of [[program, 'inspect'], [image, 'inspect']] as const) {
    parent
      .command(name)
      .description('Display detailed information on one or more images')
      .argument('<name...>', 'images by name or ID')
      .option('-f, --format <format>', 'format the output using a Go-style template')
      .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
        await withStore(cmd, async (store) => {
          const out: unknown[] = []
          let failed = false
          for (const n of names) {
            try {
              // `cairn inspect` finds a container or an image, as Docker's does (containers first)
              const ctr = parent === program ? await (await import('../api/containers.js')).tryInspectContainer(store, n) : undefined
              out.push(ctr ?? (await inspectImage(store, n)))
            } catch (err) {
              if (!(err instanceof CairnError)) throw err
              process.stderr.write(`Error: ${err.message}\n`)
              failed = true
            }
          }
          if (opts.format !== undefined) process.stdout.write(formatRows(opts.format, out as Row[]))
          else process.stdout.write(`${JSON.stringify(out, null, 4)}\n`)
          if (failed) process.exitCode = 1
        })
      })
  }

  for (const [parent, name] of [[program, 'history'], [image, 'history']] as const) {
    parent
      .command(name)
      .description('Show the history of an image')
      .argument('<image>')
      .option('-H, --human [bool]', 'print sizes and dates in human readable format', (v) => v !== 'false', true)
      .option('--no-trunc', "don't truncate output")
      .option('-q, --quiet', 'only show image IDs')
      .option('--format <format>', "'json' or a Go-style template")
      .action(async (img: string, opts: { human: boolean; trunc?: boolean; quiet?: boolean; format?: string }, cmd: Command) => {
        await withStore(cmd, async (store) => {
          const rows = await imageHistory(store, img)
          const trunc = opts.trunc !== false
          const id = (d: string | undefined): string => (d === undefined ? '<missing>' : trunc ? shortId(d) : d)
          if (opts.quiet) {
            process.stdout.write(rows.map((r) => `${id(r.id)}\n`).join(''))
            return
          }
          const data = rows.map((r) => ({
            ID: id(r.id),
            CreatedAt: r.created ? r.created.toISOString() : '',
            CreatedSince: r.created ? ago(r.created) : 'N/A',
            CreatedBy: trunc ? ellipsis(r.createdBy.replace(/\s+/g, ' '), 45) : r.createdBy,
            Size: opts.human ? humanSize(r.size) : String(r.size),
            Comment: r.comment,
          }))
          if (opts.format !== undefined) {
            process.stdout.write(formatRows(opts.format, data))
            return
          }
          process.stdout.write(renderTable(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
            data.map((d) => [d.ID, opts.human ? d.CreatedSince : d.CreatedAt, d.CreatedBy, d.Size, d.Comment])))
        })
      })
  }

  const prune = (parent: Command): void => {
    parent
      .command('prune')
      .description('Remove unused images')
      .option('-a, --all', 'remove all unused images, not just dangling ones')
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (opts: { all?: boolean; force?: boolean }, cmd: Command) => {
        if (!opts.force) {
          const warning = opts.all
            ? 'WARNING! This will remove all images without at least one container associated to them.'
            : 'WARNING! This will remove all dangling images.'
          if (!(await confirm(`${warning}\nAre you sure you want to continue? [y/N] `))) return
        }
        await withStore(cmd, async (store) => {
          const res = await pruneImages(store, { all: opts.all ?? false })
          if (res.records.length > 0) {
            process.stdout.write('Deleted Images:\n')
            process.stdout.write(res.records.map((r) => ('untagged' in r ? `untagged: ${r.untagged}\n` : `deleted: ${r.deleted}\n`)).join(''))
            process.stdout.write('\n')
          }
          process.stdout.write(`Total reclaimed space: ${humanSize(res.reclaimed)}\n`)
        })
      })
  }
  prune(image)

  const system = program.command('system').description('Manage Cairn')
  system
    .command('df')
    .description('Show disk usage')
    .option('-v, --verbose', 'show detailed information on space usage')
    .option('--format <format>', "'json' or a Go-style template")
    .action(async (opts: { verbose?: boolean; format?: string }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const du = await diskUsage(store)
        const pct = (a: number, b: number): string => (b > 0 ? ` (${Math.round((a / b) * 100)}%)` : '')
        const rows = [
          { Type: 'Images', TotalCount: String(du.images.total), Active: String(du.images.active), Size: humanSize(du.images.size), Reclaimable: `${humanSize(du.images.reclaimable)}${pct(du.images.reclaimable, du.images.size)}` },
          { Type: 'Layers', TotalCount: String(du.layers.total), Active: String(du.layers.shared), Size: humanSize(du.layers.size), Reclaimable: `${humanSize(du.layers.sharedSize)} shared` },
          { Type: 'Blobs on disk', TotalCount: String(du.blobs.count), Active: '', Size: humanSize(du.blobs.size), Reclaimable: '' },
        ]
        if (opts.format !== undefined) {
          process.stdout.write(formatRows(opts.format, rows))
          return
        }
        if (!opts.verbose) {
          process.stdout.write(renderTable(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable])))
          return
        }
        process.stdout.write(`Images space usage:\n\n`)
        const imgRows: string[][] = []
        for (const p of du.perImage) {
          const names = p.repoTags.length ? p.repoTags : ['<none>:<none>']
          for (const n of names) {
            const { repo, tag } = splitFamiliar(n)
            imgRows.push([repo, tag, shortId(p.id), ago(p.created), humanSize(p.size), humanSize(p.sharedSize), humanSize(p.uniqueSize), String(p.containers)])
          }
        }
        process.stdout.write(renderTable(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], imgRows))
        process.stdout.write(`\nLayers space usage:\n\n`)
        process.stdout.write(renderTable(['TOTAL', 'SHARED', 'SIZE', 'SHARED SIZE', 'BLOBS ON DISK'], [[String(du.layers.total), String(du.layers.shared), humanSize(du.layers.size), humanSize(du.layers.sharedSize), humanSize(du.blobs.size)]]))
      })
    })
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    process.stderr.write(`${question}\n`)
    throw new CairnError('INVALID_ARGUMENT', 'not a terminal: give -f to confirm')
  }
  // loaded here, not at start-up: only a confirmation needs it
  const { createInterface } = createRequire(import.meta.url)('node:readline/promises') as typeof import('node:readline/promises')
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim())
  } finally {
    rl.close()
  }
}

export function renderDeleteRecords(records: DeleteRecord[]): string {
  return records.map((r) => ('untagged' in r ? `Untagged: ${r.untagged}\n` : `Deleted: ${r.deleted}\n`)).join('')
}

function splitFamiliar(name: string): { repo: string; tag: string; digest?: string } {
  const at = name.indexOf('@')
  if (at >= 0) return { repo: name.slice(0, at), tag: '<none>', digest: name.slice(at + 1) }
  const colon = name.lastIndexOf(':')
  if (colon > name.lastIndexOf('/')) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) }
  return { repo: name, tag: '<none>' }
}

/** The rows of `docker images`: one per tag, digest-only names as `<none>` tags, dangling as `<none> <none>`. */
export function imageRows(images: ImageSummary[]): { repo: string; tag: string; digest: string; img: ImageSummary }[] {
  const rows: { repo: string; tag: string; digest: string; img: ImageSummary }[] = []
  for (const img of images) {
    const digestsByRepo = new Map<string, string>()
    for (const d of img.repoDigests) {
      const s = splitFamiliar(d)
      if (s.digest !== undefined) digestsByRepo.set(s.repo, s.digest)
    }
    const taggedRepos = new Set<string>()
    for (const t of img.repoTags) {
      const s = splitFamiliar(t)
      taggedRepos.add(s.repo)
      rows.push({ repo: s.repo, tag: s.tag, digest: digestsByRepo.get(s.repo) ?? '<none>', img })
    }
    for (const [repo, digest] of digestsByRepo) {
      if (!taggedRepos.has(repo)) rows.push({ repo, tag: '<none>', digest, img })
    }
    if (img.repoTags.length === 0 && img.repoDigests.length === 0) rows.push({ repo: '<none>', tag: '<none>', digest: '<none>', img })
  }
  return rows
}

function renderImages(images: ImageSummary[], opts: ImagesOpts): string {
  const trunc = opts.trunc !== false
  const rows = imageRows(images)
  const id = (d: string): string => (trunc ? shortId(d) : d)
  if (opts.quiet) return rows.map((r) => `${id(r.img.id)}\n`).join('')
  const data = rows.map((r) => ({
    Containers: String(r.img.containers),
    CreatedAt: r.img.created.toISOString(),
    CreatedSince: ago(r.img.created),
    Digest: r.digest,
    ID: id(r.img.id),
    Repository: r.repo,
    SharedSize: 'N/A',
    Size: humanSize(r.img.size),
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: humanSize(r.img.size),
  }))
  if (opts.format !== undefined) {
    return formatRows(opts.format, data, { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE', Digest: 'DIGEST' })
  }
  const headers = opts.digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']
  return renderTable(headers, data.map((d) => (opts.digests ? [d.Repository, d.Tag, d.Digest, d.ID, d.CreatedSince, d.Size] : [d.Repository, d.Tag, d.ID, d.CreatedSince, d.Size])))
}

