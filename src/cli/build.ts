/** `cairn build` and `cairn builder prune`: printing only. */
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import { buildImage, type BuildOptions } from '../build/builder.js'
import { pruneBuildCache } from '../build/cache.js'
import type { BuildEvent, StepRef } from '../build/events.js'
import { humanSize } from '../util/format.js'
import { collect, interruptSignal, withStore } from './context.js'

interface BuildFlags {
  tag?: string[]
  file?: string
  buildArg?: string[]
  target?: string
  cache: boolean
  pull?: boolean
  platform?: string
  quiet?: boolean
  iidfile?: string
  label?: string[]
  network: string
  progress: string
  output?: string
}

/** `K=V` pairs; a bare `K` takes the value from this environment (as Docker does), or is left out. */
function pairs(list: readonly string[] | undefined, what: string, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of list ?? []) {
    const i = item.indexOf('=')
    if (i === 0) throw new CairnError('INVALID_ARGUMENT', `invalid ${what}: ${item}`)
    if (i < 0) {
      const v = fromEnv ? process.env[item] : ''
      if (v !== undefined) out[item] = v
      continue
    }
    out[item.slice(0, i)] = item.slice(i + 1)
  }
  return out
}

/** `type=oci|docker,dest=F` (or a bare path: docker format). */
function parseOutput(spec: string): { type: 'oci' | 'docker'; dest: string } {
  if (!spec.includes('=')) return { type: 'docker', dest: spec }
  const kv = new Map(spec.split(',').map((p) => {
    const i = p.indexOf('=')
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const
  }))
  const type = kv.get('type') ?? 'docker'
  const dest = kv.get('dest')
  if (type !== 'oci' && type !== 'docker') throw new CairnError('INVALID_ARGUMENT', `unsupported output type ${type} (oci or docker)`)
  if (dest === undefined || dest === '') throw new CairnError('INVALID_ARGUMENT', `--output ${spec}: dest= is required`)
  return { type, dest }
}

export function registerBuildCommands(program: Command): void {
  const builder = program.command('builder').description('Manage builds')
  for (const [parent, name] of [[program, 'build'], [builder, 'build']] as const) {
    parent
      .command(name)
      .description('Build an image from a Dockerfile')
      .argument('<context>', 'a folder, a tarball, or - (a tar or a Dockerfile on standard input)')
      .option('-t, --tag <name>', 'name and optionally a tag in the name:tag format (repeatable)', collect)
      .option('-f, --file <path>', "name of the Dockerfile (default: 'CONTEXT/Dockerfile'; - reads it from standard input)")
      .option('--build-arg <k=v>', 'set build-time variables (repeatable)', collect)
      .option('--target <stage>', 'set the target build stage to build')
      .option('--no-cache', 'do not use cache when building the image')
      .option('--pull', 'always attempt to pull a newer version of the base images')
      .option('--platform <os/arch>', 'set platform (only this machine\'s)')
      .option('-q, --quiet', 'suppress the build output and print image ID on success')
      .option('--iidfile <file>', 'write the image ID to the file')
      .option('--label <k=v>', 'set metadata for an image (repeatable)', collect)
      .option('--network <mode>', 'the networking mode for the RUN instructions: default (the host\'s, for now), none, host', 'default')
      .option('--progress <mode>', 'type of progress output: auto, plain, tty', 'auto')
      .option('-o, --output <spec>', 'also write the image: type=oci|docker,dest=FILE (- for standard output)')
      .action(async (context: string, flags: BuildFlags, cmd: Command) => {
        if (!['auto', 'plain', 'tty'].includes(flags.progress)) throw new CairnError('INVALID_ARGUMENT', `invalid progress mode ${flags.progress} (auto, plain, tty)`)
        if (!['default', 'none', 'host'].includes(flags.network)) throw new CairnError('INVALID_ARGUMENT', `network mode "${flags.network}" not supported (default, none, host)`)
        if (context === '-' && flags.file === '-') throw new CairnError('INVALID_ARGUMENT', 'invalid argument: can\'t use stdin for both build context and dockerfile')
        const output = flags.output !== undefined ? parseOutput(flags.output) : undefined
        const toStdout = output?.dest === '-'
        const out = toStdout ? process.stderr : process.stdout
        const tty = flags.progress === 'tty' || (flags.progress === 'auto' && process.stderr.isTTY === true)
        const view = flags.quiet ? undefined : tty ? new LiveView(process.stderr) : new PlainView(out)
        const ts = process.env['SOURCE_DATE_EPOCH']
        if (ts !== undefined && ts !== '' && !/^\d+$/.test(ts)) throw new CairnError('INVALID_ARGUMENT', `invalid SOURCE_DATE_EPOCH ${JSON.stringify(ts)}: want seconds since the epoch`)
        let dockerfile: BuildOptions['dockerfile']
        if (flags.file === '-') {
          const chunks: Buffer[] = []
          for await (const c of process.stdin) chunks.push(c as Buffer)
          dockerfile = { text: Buffer.concat(chunks).toString('utf8') }
        } else if (flags.file !== undefined) dockerfile = flags.file
        await withStore(cmd, async (store) => {
          try {
            const res = await buildImage(store, {
              context: context === '-' ? process.stdin : context,
              ...(dockerfile !== undefined ? { dockerfile } : {}),
              tags: flags.tag ?? [],
              buildArgs: pairs(flags.buildArg, 'build-arg', true),
              ...(flags.target !== undefined ? { target: flags.target } : {}),
              noCache: !flags.cache,
              pull: flags.pull ?? false,
              ...(flags.platform !== undefined ? { platform: flags.platform } : {}),
              labels: pairs(flags.label, 'label', false),
              network: flags.network as 'default' | 'none' | 'host',
              ...(ts !== undefined && ts !== '' ? { timestamp: Number(ts) } : {}),
              ...(output ? { output: { type: output.type, dest: toStdout ? process.stdout : output.dest } } : {}),
              signal: interruptSignal(),
              ...(view ? { onProgress: view.onEvent } : {}),
            })
            view?.close(true)
            if (flags.quiet && !toStdout) process.stdout.write(`${res.id}\n`)
            if (flags.iidfile !== undefined) await writeFile(flags.iidfile, res.id)
          } catch (err) {
            view?.close(false)
            throw err
          }
        })
      })
  }

  builder
    .command('prune')
    .description('Remove build cache')
    .option('-a, --all', 'remove all build cache, also what tagged images stand on')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { all?: boolean; force?: boolean }, cmd: Command) => {
      await withStore(cmd, async (store) => {
        const res = await pruneBuildCache(store, { all: opts.all ?? false })
        const deleted = res.records.filter((r): r is Extract<typeof r, { deleted: unknown }> => 'deleted' in r)
        if (deleted.length > 0) {
          process.stdout.write('Deleted build cache objects:\n')
          for (const r of deleted) process.stdout.write(`${r.deleted.slice(7, 32)}\n`)
          process.stdout.write('\n')
        }
        process.stdout.write(`Total reclaimed space: ${humanSize(res.reclaimed)}\n`)
      })
    })
}

interface View {
  onEvent: (e: BuildEvent) => void
  close(ok: boolean): void
}

/** Docker's plain build output: `Step N/M : …`, ` ---> Using cache`, ` ---> Running in …`, ` ---> <id>`. */
class PlainView implements View {
  private atLineStart = true
  constructor(private readonly out: NodeJS.WritableStream) {}

  private line(s: string): void {
    if (!this.atLineStart) this.out.write('\n')
    this.out.write(`${s}\n`)
    this.atLineStart = true
  }

  readonly onEvent = (e: BuildEvent): void => {
    switch (e.type) {
      case 'step':
        this.line(`Step ${e.ref.step}/${e.ref.total} : ${e.ref.text}`)
        return
      case 'pull':
        if (e.event.current === undefined) this.line(`${e.event.id ? `${e.event.id}: ` : ''}${e.event.status}`)
        return
      case 'cached':
        this.line(' ---> Using cache')
        return
      case 'running':
        this.line(` ---> Running in ${e.container.slice(0, 12)}`)
        return
      case 'output':
        this.out.write(e.data)
        this.atLineStart = e.data.endsWith('\n')
        return
      case 'removed':
        this.line(`Removing intermediate container ${e.container.slice(0, 12)}`)
        return
      case 'done':
        if (e.id.length > 7) this.line(` ---> ${e.id.slice(7, 19)}`)
        return
      case 'warning':
        this.line(`[Warning] ${e.message}`)
        return
      case 'exporting':
        if (e.status !== 'done') this.line(e.status)
        return
      case 'built':
        this.line(`Successfully built ${e.id.slice(7, 19)}`)
        return
      case 'tagged':
        this.line(`Successfully tagged ${e.name}`)
        return
      default:
    }
  }

  close(): void {
    if (!this.atLineStart) this.out.write('\n')
  }
}

interface Vertex {
  ref?: StepRef
  name: string
  start: number
  end?: number
  cached: boolean
  error: boolean
  logs: string[]
}

/** BuildKit's live view on a terminal: `[+] Building 3.1s (5/9)`, a line per step with CACHED or its time, the last lines of running steps. */
class LiveView implements View {
  private readonly vertices: Vertex[] = []
  private readonly byVertex = new Map<number, Vertex>()
  private readonly started = performance.now()
  private drawn = 0
  private readonly timer: NodeJS.Timeout
  private warnings: string[] = []

  constructor(private readonly out: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.draw(), 150)
    this.timer.unref()
  }

  private vertex(ref: StepRef): Vertex {
    let v = this.byVertex.get(ref.vertex)
    if (!v) {
      const name = `[${ref.label ? `${ref.label} ` : ''}${ref.index}/${ref.count}] ${ref.text}`
      v = { ref, name, start: performance.now(), cached: false, error: false, logs: [] }
      this.byVertex.set(ref.vertex, v)
      this.vertices.push(v)
    }
    return v
  }

  readonly onEvent = (e: BuildEvent): void => {
    switch (e.type) {
      case 'context':
        this.vertices.push({ name: '[internal] load build definition from Dockerfile', start: performance.now(), end: performance.now(), cached: false, error: false, logs: [] })
        return
      case 'step':
        this.vertex(e.ref)
        return
      case 'cached':
        this.vertex(e.ref).cached = true
        return
      case 'output': {
        const v = this.vertex(e.ref)
        const lines = e.data.split('\n').filter((l) => l !== '')
        v.logs.push(...lines)
        if (v.logs.length > 200) v.logs.splice(0, v.logs.length - 200)
        return
      }
      case 'done':
        this.vertex(e.ref).end = performance.now()
        return
      case 'failed': {
        const v = this.vertex(e.ref)
        v.end = performance.now()
        v.error = true
        return
      }
      case 'warning':
        this.warnings.push(e.message)
        return
      case 'exporting':
        if (e.status === 'done') {
          const last = this.vertices.at(-1)
          if (last) last.end = performance.now()
        } else this.vertices.push({ name: e.status, start: performance.now(), cached: false, error: false, logs: [] })
        return
      case 'built':
        this.vertices.push({ name: `writing image ${e.id}`, start: performance.now(), end: performance.now(), cached: false, error: false, logs: [] })
        return
      case 'tagged':
        this.vertices.push({ name: `naming to ${e.name}`, start: performance.now(), end: performance.now(), cached: false, error: false, logs: [] })
        return
      default:
    }
  }

  private render(final: boolean, ok: boolean): string[] {
    const now = performance.now()
    // columns is undefined when the output is not a terminal, whatever its type says
    const width = Math.max(40, ((this.out.columns as number | undefined) ?? 100) - 1)
    const done = this.vertices.filter((v) => v.end !== undefined).length
    const secs = ((now - this.started) / 1000).toFixed(1)
    const lines = [`[+] Building ${secs}s (${done}/${this.vertices.length})${final ? (ok ? ' FINISHED' : '') : ''}`]
    for (const v of this.vertices) {
      const t = v.cached ? 'CACHED' : `${(((v.end ?? now) - v.start) / 1000).toFixed(1)}s`
      const prefix = v.error ? ' => ERROR ' : v.cached ? ' => CACHED ' : ' => '
      let text = `${prefix}${v.name}`
      const room = width - t.length - 1
      if (text.length > room) text = `${text.slice(0, Math.max(0, room - 3))}...`
      lines.push(`${text.padEnd(room)} ${v.cached ? '' : t}`.trimEnd())
      if ((v.end === undefined || v.error) && v.logs.length > 0) {
        for (const l of v.logs.slice(v.error ? -20 : -6)) lines.push(` => => # ${l}`.slice(0, width))
      }
    }
    for (const w of this.warnings) lines.push(`[Warning] ${w}`)
    return lines
  }

  private draw(final = false, ok = true): void {
    const lines = this.render(final, ok)
    let s = ''
    if (this.drawn > 0) s += `\x1b[${this.drawn}A`
    for (const l of lines) s += `\x1b[2K${l}\n`
    this.out.write(s)
    this.drawn = lines.length
  }

  close(ok: boolean): void {
    clearInterval(this.timer)
    this.draw(true, ok)
  }
}
