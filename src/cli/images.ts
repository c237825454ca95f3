/** `images`, `tag`, `rmi`, `inspect`, `history`, `system df`, `image …`: printing only. */
import type { Command } from 'commander'
import { imageHistory, listImages, pruneImages, removeImages, tagImage, type ImageSummary } from '../api/images.js'
import { parseFilterArgs } from '../api/filters.js'
import type { DeleteRecord } from '../image/store.js'
import { ago, formatCreatedBy, humanSize, humanSizeWithPrecision, shortId } from '../util/format.js'
import { collect, withStore } from './context.js'
import { printError } from './errors.js'
import { confirm } from './prompt.js'
import { inspectCommand } from './inspect.js'
import { formatWrite, goContext } from './template.js'

interface ImagesOpts { all?: boolean; quiet?: boolean; digests?: boolean; trunc?: boolean; format?: string; filter?: string[] }

/** Go's time.Time.String() in UTC, as Docker shows an image's CreatedAt. */
function goTime(d: Date): string {
  const iso = d.toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000 UTC`
}

/** Docker's header words of `images` and `history` columns, by field. */
const IMAGE_HEADERS: Record<string, string> = {
  ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT',
  Size: 'SIZE', Containers: 'CONTAINERS', VirtualSize: 'SIZE', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE',
}
const HISTORY_HEADERS: Record<string, string> = {
  ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT',
}
const IMAGES_TABLE = 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}'
const IMAGES_TABLE_DIGESTS = 'table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}'
const HISTORY_TABLE = 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}'

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
      .option('-f, --filter <filter>', 'filter output based on conditions provided (repeatable): dangling, label, before, since, reference', collect)
      .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template such as '{{.Repository}}:{{.Tag}}'")
      .action(async (repository: string | undefined, opts: ImagesOpts, cmd: Command) => {
        const filters = parseFilterArgs(opts.filter ?? [])
        await withStore(cmd, (store) => {
          const listOpts: { all?: boolean; reference?: string; filters: Record<string, string[]> } = { all: opts.all ?? false, filters }
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
          for (const e of res.errors) printError(e.error)
          if (res.errors.length > 0) process.exitCode = 1
        })
      })
    if (name === 'rm') c.alias('remove')
  }

  for (const [parent, name] of [[program, 'inspect'], [image, 'inspect']] as const) {
    const c = parent
      .command(name)
      .description(parent === program ? 'Return low-level information on containers or images' : 'Display detailed information on one or more images')
      .argument('<name...>', parent === program ? 'containers or images, by name or ID' : 'images by name or ID')
      .option('-f, --format <format>', "format the output using a Go template ('json' for JSON)")
    if (parent === program) c.option('--type <type>', 'only containers or only images: container or image')
    c.action(async (names: string[], opts: { format?: string; type?: string }, cmd: Command) => {
      await withStore(cmd, (store) => inspectCommand(store, names, { type: parent === program ? opts.type : 'image', format: opts.format }))
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
      .option('--format <format>', "'table', 'table TEMPLATE', 'json' or a Go template")
      .action(async (img: string, opts: { human: boolean; trunc?: boolean; quiet?: boolean; format?: string }, cmd: Command) => {
        await withStore(cmd, async (store) => {
          const rows = await imageHistory(store, img)
          const trunc = opts.trunc !== false
          const id = (d: string | undefined): string => (d === undefined ? '<missing>' : trunc ? shortId(d) : d)
          if (opts.quiet) {
            process.stdout.write(rows.map((r) => `${id(r.id)}\n`).join(''))
            return
          }
          const data = rows.map((r) => {
            const createdAt = r.created ? r.created.toISOString().replace(/\.\d+Z$/, 'Z') : '0001-01-01T00:00:00Z'
            return goContext('*image.historyContext', {
              Comment: r.comment,
              CreatedAt: createdAt,
              CreatedBy: formatCreatedBy(r.createdBy, trunc),
              CreatedSince: !opts.human ? createdAt : r.created ? ago(r.created) : 'N/A',
              ID: id(r.id),
              Size: opts.human ? humanSize(r.size) : String(r.size),
            })
          })
          const format = opts.format === undefined || opts.format === 'table' ? HISTORY_TABLE : opts.format
          const headers = opts.human ? HISTORY_HEADERS : { ...HISTORY_HEADERS, CreatedSince: 'CREATED AT' }
          process.stdout.write(formatWrite(format, data, { headers }))
        })
      })
  }

  const prune = (parent: Command): void => {
    parent
      .command('prune')
      .description('Remove unused images')
      .option('-a, --all', 'remove all unused images, not just dangling ones')
      .option('--filter <filter>', 'provide filter values (e.g. until=<timestamp>, label=<key>=<value>)', collect)
      .option('-f, --force', 'do not prompt for confirmation')
      .action(async (opts: { all?: boolean; force?: boolean; filter?: string[] }, cmd: Command) => {
        const filters = parseFilterArgs(opts.filter ?? [])
        if (!opts.force) {
          const warning = opts.all
            ? 'WARNING! This will remove all images without at least one container associated to them.'
            : 'WARNING! This will remove all dangling images.'
          if (!(await confirm(`${warning}\nAre you sure you want to continue? [y/N] `))) return
        }
        await withStore(cmd, async (store) => {
          const res = await pruneImages(store, { all: opts.all ?? false, filters })
          if (res.records.length > 0) {
            process.stdout.write('Deleted Images:\n')
            process.stdout.write(res.records.map((r) => ('untagged' in r ? `untagged: ${r.untagged}\n` : `deleted: ${r.deleted}\n`)).join(''))
            process.stdout.write('\n')
          }
          process.stdout.write(`Total reclaimed space: ${humanSizeWithPrecision(res.reclaimed, 4)}\n`)
        })
      })
  }
  prune(image)

}

function renderDeleteRecords(records: DeleteRecord[]): string {
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
function imageRows(images: ImageSummary[]): { repo: string; tag: string; digest: string; img: ImageSummary }[] {
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

/** What an `images` template sees of a row: Docker's imageContext. */
function imageContexts(images: ImageSummary[], trunc: boolean): Record<string, unknown>[] {
  return imageRows(images).map((r) => goContext('*formatter.imageContext', {
    Containers: 'N/A',
    CreatedAt: goTime(r.img.created),
    CreatedSince: ago(r.img.created),
    Digest: r.digest,
    ID: trunc ? shortId(r.img.id) : r.img.id,
    Repository: r.repo,
    SharedSize: 'N/A',
    Size: humanSize(r.img.size),
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: humanSizeWithPrecision(r.img.size, 4),
  }))
}

function renderImages(images: ImageSummary[], opts: ImagesOpts): string {
  const trunc = opts.trunc !== false
  if (opts.quiet) return imageRows(images).map((r) => `${trunc ? shortId(r.img.id) : r.img.id}\n`).join('')
  const format = opts.format === undefined || opts.format === 'table' ? (opts.digests ? IMAGES_TABLE_DIGESTS : IMAGES_TABLE) : opts.format
  return formatWrite(format, imageContexts(images, trunc), { headers: IMAGE_HEADERS })
}
