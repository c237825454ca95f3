/**
 * `docker build`: a Dockerfile's stages turned into images, step by step, each step's result
 * an image in the store (an untagged intermediate) found again through the build cache when
 * its inputs are the same.
 *
 * The pieces, as in BuildKit: parsing (dockerfile.ts, shell.ts), the stage graph (here: which
 * stages the target needs, in what order, cycles refused; independent stages run at once), the
 * cache (cache.ts), and running a step: metadata steps change the config alone; COPY, ADD and
 * WORKDIR write their layer's tar straight from the files (copy.ts); RUN runs in a container
 * (run.ts) whose changes are committed with the same code as `cairn commit`.
 */
import { createHash } from 'node:crypto'
import { createWriteStream, lstatSync } from 'node:fs'
import { mkdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { posix } from 'node:path'
import { PassThrough, Readable, type Writable } from 'node:stream'
import { once } from 'node:events'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream } from 'node:stream/web'
import { CairnError, hasCode, isCairnError } from '../errors/index.js'
import { chainId, chainIds, type ChainId, type DiffId, type ImageId } from '../oci/digest.js'
import { hostPlatform, type ContainerConfig, type HistoryEntry, type ImageConfig } from '../oci/types.js'
import { familiarString, parseReference, withDefaultTag, type Reference } from '../oci/reference.js'
import type { ImageRecord, ImageStore } from '../image/store.js'
import { writeTar, type TarEntryInput, type TarHeaderInit } from '../layer/tar.js'
import { processAlive, randomName } from '../util/fs.js'
import { formatDuration } from '../util/duration.js'
import { openSnapshotter, snapshotLayer, unpackImage } from '../snapshot/index.js'
import type { Snapshotter } from '../snapshot/types.js'
import { mountAll, overlaySupported, unmount } from '../mount/index.js'
import { applyLayer, layerWriter, type LayerWriter } from '../layer/apply.js'
import { commitImage } from '../api/commit.js'
import type { Credentials } from '../remote/credentials.js'
import { BuildCache, cacheKey, FileHashes } from './cache.js'
import { openContext, type BuildContext } from './context.js'
import { checksumSources, copyLayer, isLocalArchive, resolveChown, resolveSources, type HashMemo, type Source, type SourceRoot, type TreeEntry } from './copy.js'
import { parseDockerfile, parseDuration, type CommandForm, type Dockerfile, type Instruction, type Stage } from './dockerfile.js'
import type { BuildEvent, BuildListener, StepRef } from './events.js'
import type { BuildNetwork } from './run.js'
import { envMap, expandWord, expandWords } from './shell.js'

export interface BuildOptions {
  /** A folder, a tarball (plain, gzip or zstd), or a stream holding a tar, or a Dockerfile (then there is no context). */
  context: string | Readable
  /** The Dockerfile: a path (relative: to the current folder), or its text. Default: `Dockerfile` in the context. */
  dockerfile?: string | { text: string }
  /** `-t NAME[:TAG]`, each pointed at the result. */
  tags?: string[]
  /** `--build-arg K=V`. */
  buildArgs?: Record<string, string>
  /** `--target STAGE`: build up to that stage (default the last). */
  target?: string
  /** `--no-cache`: every step runs again (their results still refill the cache). */
  noCache?: boolean
  /** `--pull`: pull every base image even when the store has it. */
  pull?: boolean
  /** Credentials for pulling base images, by registry domain (`docker.io`, `host:5000`); else the stored logins. */
  registryCredentials?: Readonly<Record<string, Credentials>>
  /** `--platform os/arch`: only this machine's platform can run RUN steps. */
  platform?: string
  /** `--label K=V`, added to the result's labels. */
  labels?: Record<string, string>
  /** The network of RUN steps: `default` (the host's, for now), `none`, `host`. */
  network?: BuildNetwork
  /** SOURCE_DATE_EPOCH: every history entry's time, and the latest mtime kept in the layers. */
  timestamp?: number
  /** `--output type=oci|docker,dest=F`: the result also written as `docker save` would write it. */
  output?: { type: 'oci' | 'docker'; dest: string | Writable }
  signal?: AbortSignal
  onProgress?: BuildListener
}

export interface BuildResult {
  id: ImageId
  /** The names given, in familiar form. */
  tags: string[]
  /** Steps built, and of those taken from the cache. */
  steps: number
  cached: number
}

/** Build args every Dockerfile may use without declaring them; never recorded in the history. */
const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']

const DEFAULT_SHELL = ['/bin/sh', '-c']
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const HISTORY_COMMENT = 'buildkit.dockerfile.v0'

interface State {
  /** The current image; undefined only for `FROM scratch` before its first step. */
  image?: ImageRecord
  config: ImageConfig
  /** ARGs declared in this stage, with their values (undefined: declared without one). */
  args: Map<string, string | undefined>
  /** A CMD was set in this stage (else an ENTRYPOINT resets the inherited one). */
  cmdSet: boolean
}

/** How a step's layer reaches its snapshot while it is stored: the tar passed through `tee`, or each entry given to `apply`. */
interface Unpacker {
  tee: (tar: Readable) => Readable
  apply: ((header: TarHeaderInit, body?: Uint8Array | Readable | { copyFrom: string }) => Promise<void>) | undefined
}

/** What a step changes, before it is run or found in the cache. */
interface Plan {
  /** Everything the step's result depends on, besides its parent image. */
  parts: unknown
  /** The container config after the step. */
  config: ContainerConfig
  /** The history entry; undefined for a step that records none (ONBUILD). */
  createdBy?: string
  /** Extra top-level config changes (MAINTAINER's author). */
  author?: string
  /** The layer: a tar written from files, or a RUN's container. */
  layer?: {
    kind: 'tar'
    tar: (rootfs: string | undefined, onEntry: (h: TarHeaderInit) => void, apply?: Unpacker['apply']) => Readable
    /** The tar's entries can go to the snapshot one by one (`apply`), as they are made. */
    entries?: boolean
  } | { kind: 'run'; argv: string[]; env: string[]; network: BuildNetwork }
  /** Files to remove after the step (downloads, here-documents). */
  scratch?: string[]
}

/** Go's %q of a string (what BuildKit's history entries print). */
function goQuote(s: string): string {
  return JSON.stringify(s)
}

/** Go's %v of a string slice: `[a b]`. */
function goList(list: readonly string[]): string {
  return `[${list.join(' ')}]`
}

function goRune(n: number): string {
  if (n >= 32 && n < 127 && n !== 39 && n !== 92) return `'${String.fromCharCode(n)}'`
  return `'\\x${n.toString(16).padStart(2, '0')}'`
}

/** Port specs of EXPOSE (`80`, `80/udp`, `8000-8002/tcp`) as Docker's keys. */
function exposedPorts(spec: string, line: number): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec)
  if (!m) throw new CairnError('INVALID_ARGUMENT', `Dockerfile:${line}: invalid containerPort: ${spec}`)
  const start = Number(m[1])
  const end = m[2] !== undefined ? Number(m[2]) : start
  const proto = (m[3] ?? 'tcp').toLowerCase()
  if (start < 1 || end > 65535 || end < start) throw new CairnError('INVALID_ARGUMENT', `Dockerfile:${line}: invalid port range ${spec}`)
  const out: string[] = []
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`)
  return out
}

function setEnv(env: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(env ?? [])]
  const i = out.findIndex((e) => (e.indexOf('=') < 0 ? e : e.slice(0, e.indexOf('='))) === key)
  if (i >= 0) out[i] = `${key}=${value}`
  else out.push(`${key}=${value}`)
  return out
}

export async function buildImage(store: ImageStore, opts: BuildOptions): Promise<BuildResult> {
  const tags = (opts.tags ?? []).map((t) => withDefaultTag(parseReference(t)))
  for (const t of tags) {
    if (t.digest !== undefined) throw new CairnError('INVALID_REFERENCE', `invalid tag ${JSON.stringify(familiarString(t))}: a tag cannot hold a digest`)
  }
  const network = opts.network ?? 'default'
  if (!['default', 'none', 'host'].includes(network)) throw new CairnError('INVALID_ARGUMENT', `network mode "${network as string}" not supported by buildkit (default, none, host)`)
  if (opts.platform !== undefined) {
    const here = hostPlatform()
    const [os, arch] = opts.platform.split('/')
    if (os !== here.os || (arch !== undefined && arch !== here.architecture)) {
      throw new CairnError('NOT_SUPPORTED', `platform ${opts.platform} cannot run here (this machine is ${here.os}/${here.architecture})`)
    }
  }
  await mkdir(`${store.root}/tmp`, { recursive: true, mode: 0o700 })
  const ctx = await openContext({
    context: opts.context,
    ...(opts.dockerfile !== undefined ? { dockerfile: opts.dockerfile } : {}),
    scratchDir: `${store.root}/tmp`,
    ...(opts.signal ? { signal: opts.signal } : {}),
  })
  try {
    const df = parseDockerfile(ctx.dockerfile)
    const b = new Builder(store, ctx, df, { ...opts, network })
    const id = await b.run()
    b.saveHashes()
    return await b.finish(id, tags)
  } finally {
    await ctx.cleanup()
  }
}

class Builder {
  private readonly cache: BuildCache
  private readonly memo: HashMemo & { save(): void }
  private readonly buildArgs: Map<string, string>
  private readonly consumed = new Set<string>()
  private readonly metaArgs = new Map<string, string | undefined>()
  private readonly results = new Map<number, Promise<State>>()
  private readonly abort = new AbortController()
  private readonly signal: AbortSignal
  private snapshotter: Promise<Snapshotter> | undefined
  private vertex = 0
  private steps = 0
  private cachedSteps = 0
  private readonly stepNumber = new Map<number, number>()
  private total = 0
  private multiStage = false
  /**
   * The stages whose layers make the result: the target and the stages it stands on (FROM).
   * The others' layers are written past the page cache: they are read back only by a later
   * build that copies from them, while the result's are read next by a push or a save.
   */
  private readonly resultStages = new Set<number>()

  constructor(
    private readonly store: ImageStore,
    private readonly ctx: BuildContext,
    private readonly df: Dockerfile,
    private readonly opts: BuildOptions & { network: BuildNetwork },
  ) {
    this.cache = new BuildCache(store)
    this.memo = ctx.dir !== undefined && ctx.dir.startsWith(`${store.root}/tmp/`) === false
      ? new FileHashes(store, ctx.dir)
      : Object.assign(new Map<string, string>(), { save: () => undefined })
    this.buildArgs = new Map(Object.entries(opts.buildArgs ?? {}))
    this.signal = opts.signal ? AbortSignal.any([opts.signal, this.abort.signal]) : this.abort.signal
    const p = hostPlatform()
    const platform = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`
    const auto: Record<string, string> = {
      TARGETPLATFORM: platform, TARGETOS: p.os, TARGETARCH: p.architecture, TARGETVARIANT: p.variant ?? '',
      BUILDPLATFORM: platform, BUILDOS: p.os, BUILDARCH: p.architecture, BUILDVARIANT: p.variant ?? '',
    }
    for (const [k, v] of Object.entries(auto)) this.metaArgs.set(k, v)
    for (const a of df.metaArgs) {
      for (const { name, value } of a.args) {
        const given = this.buildArgs.get(name)
        if (given !== undefined) this.consumed.add(name)
        this.metaArgs.set(name, given ?? (value !== undefined ? expandWord(value, this.metaEnv(), df.escape) : undefined))
      }
    }
  }

  private emit(e: BuildEvent): void {
    try {
      this.opts.onProgress?.(e)
    } catch {
      // a broken renderer must not break the build
    }
  }

  private metaEnv(): Map<string, string> {
    const m = new Map<string, string>()
    for (const [k, v] of this.metaArgs) if (v !== undefined) m.set(k, v)
    return m
  }

  /** A stage named (case-insensitively) or numbered so. */
  private stageNamed(name: string): Stage | undefined {
    const lower = name.toLowerCase()
    const byName = this.df.stages.find((s) => s.name === lower)
    if (byName) return byName
    if (/^\d+$/.test(name)) return this.df.stages[Number(name)]
    return undefined
  }

  private baseName(stage: Stage): string {
    return expandWord(stage.from.image, this.metaEnv(), this.df.escape)
  }

  /** The stages a stage needs first: its FROM (an earlier stage), and COPY --from / RUN --mount from. */
  private deps(stage: Stage): Stage[] {
    const out: Stage[] = []
    const base = this.stageNamed(this.baseName(stage))
    if (base && base.index < stage.index && base.name !== undefined) out.push(base)
    for (const ins of stage.steps) {
      for (const f of ins.flags) {
        let from: string | undefined
        if (f.name === 'from' && (ins.kind === 'COPY' || ins.kind === 'ADD')) from = f.value ?? undefined
        if (f.name === 'mount' && ins.kind === 'RUN') from = /(?:^|,)from=([^,]+)/.exec(f.value ?? '')?.[1]
        if (from === undefined) continue
        const s = this.stageNamed(expandWord(from, this.metaEnv(), this.df.escape))
        if (s && s !== stage && !out.includes(s)) out.push(s)
        if (s === stage) throw new CairnError('INVALID_ARGUMENT', `Dockerfile:${ins.line}: circular dependency detected on stage: ${stage.name ?? stage.index}`)
      }
    }
    return out
  }

  /** The stages to build for the target, in order; a cycle is refused. */
  private plan(): { target: Stage; needed: Stage[] } {
    let target: Stage | undefined
    if (this.opts.target !== undefined) {
      target = this.df.stages.find((s) => s.name === this.opts.target?.toLowerCase())
      if (!target) throw new CairnError('INVALID_ARGUMENT', `failed to reach build target ${this.opts.target} in Dockerfile`)
    } else {
      // a Dockerfile has a stage (the parser says so); the assertion narrows target, which the rule misses
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      target = this.df.stages.at(-1) as Stage
    }
    const needed = new Set<Stage>()
    const visiting = new Set<Stage>()
    const visit = (s: Stage): void => {
      if (needed.has(s)) return
      if (visiting.has(s)) throw new CairnError('INVALID_ARGUMENT', `circular dependency detected on stage: ${s.name ?? s.index}`)
      visiting.add(s)
      for (const d of this.deps(s)) visit(d)
      visiting.delete(s)
      needed.add(s)
    }
    visit(target)
    for (let s: Stage | undefined = target; s !== undefined && !this.resultStages.has(s.index);) {
      this.resultStages.add(s.index)
      const base = this.stageNamed(this.baseName(s))
      s = base && base.index < s.index && base.name !== undefined ? base : undefined
    }
    return { target, needed: [...needed].sort((a, b) => a.index - b.index) }
  }

  async run(): Promise<ImageId> {
    const { target, needed } = this.plan()
    this.multiStage = needed.length > 1
    for (const s of needed) {
      this.stepNumber.set(s.index, this.total)
      this.total += 1 + s.steps.length
    }
    this.emit({ type: 'context', ...(this.ctx.dir !== undefined ? { dir: this.ctx.dir } : {}) })
    this.checkSources(needed)
    await this.sweep()
    // every stage starts now: each waits for what it needs, the independent ones run at once
    // (startStage keeps each promise in this.results, awaited below)
    for (const s of needed) void this.startStage(s)
    try {
      const state = await (this.results.get(target.index) as Promise<State>)
      return (await this.ensureImage(state)).id
    } catch (err) {
      this.abort.abort(err)
      await Promise.allSettled(this.results.values())
      throw err
    } finally {
      await Promise.allSettled(this.results.values())
    }
  }

  /** What builds killed half-way left: their read-only mounts and unfinished snapshots. */
  private async sweep(): Promise<void> {
    const snap = await this.snap()
    for (const s of await snap.list({ prefix: 'build-' })) {
      if (!/^build-(view|unpack)-/.test(s.name)) continue
      const pid = Number(s.labels['cairn.build.pid'] ?? s.labels['cairn.unpack.pid'] ?? 0)
      if (pid > 0 && processAlive(pid)) continue
      const dir = `${this.store.root}/tmp/${s.name}`
      await unmount(dir).catch(() => unmount(dir, { lazy: true }).catch(() => undefined))
      await rm(dir, { recursive: true, force: true }).catch(() => undefined)
      await snap.remove(s.name).catch(() => undefined)
    }
  }

  /**
   * What COPY and ADD read from the context is looked for before anything runs (sources that
   * use no variable): a missing, excluded or escaping file stops the build at once.
   */
  private checkSources(stages: readonly Stage[]): void {
    if (this.ctx.dir === undefined) return
    const root: SourceRoot = { dir: this.ctx.dir, kind: 'context', ignored: (r) => this.ctx.ignored(r), hasExceptions: this.ctx.hasExceptions }
    for (const s of stages) {
      for (const ins of s.steps) {
        if ((ins.kind !== 'COPY' && ins.kind !== 'ADD') || ins.flags.some((f) => f.name === 'from')) continue
        const plain = ins.sources.filter((p) => !p.includes('$') && !p.startsWith('<<') && !/^https?:\/\//i.test(p))
        if (plain.length === 0) continue
        try {
          resolveSources(root, plain.map((p) => expandWord(p, new Map(), this.df.escape)))
        } catch (err) {
          const ref = { vertex: 0, stage: s.name ?? String(s.index), label: '', index: 0, count: 0, step: 0, total: 0, text: ins.text, line: ins.line }
          throw this.stepError(ref, err, performance.now())
        }
      }
    }
  }

  private startStage(stage: Stage): Promise<State> {
    let p = this.results.get(stage.index)
    if (!p) {
      p = this.buildStage(stage)
      p.catch((err: unknown) => this.abort.abort(err))
      this.results.set(stage.index, p)
    }
    return p
  }

  private ref(stage: Stage, index: number, ins: Instruction): StepRef {
    return {
      vertex: ++this.vertex,
      stage: stage.name ?? String(stage.index),
      label: this.multiStage ? stage.name ?? `stage-${stage.index}` : '',
      index,
      count: stage.steps.length + 1,
      step: (this.stepNumber.get(stage.index) ?? 0) + index,
      total: this.total,
      text: ins.text,
      line: ins.line,
    }
  }

  private async buildStage(stage: Stage): Promise<State> {
    const fromRef = this.ref(stage, 1, stage.from)
    this.emit({ type: 'step', ref: fromRef })
    const t0 = performance.now()
    let state: State
    try {
      state = await this.fromStep(stage, fromRef)
    } catch (err) {
      throw this.stepError(fromRef, err, t0)
    }
    this.emit({ type: 'done', ref: fromRef, id: state.image?.id ?? 'sha256:', cached: true, seconds: (performance.now() - t0) / 1000 })
    let steps = stage.steps
    const triggers = state.config.config?.OnBuild ?? []
    if (triggers.length > 0) {
      // the base's ONBUILD triggers run first, and are not inherited
      const parsed = parseDockerfile(`FROM scratch\n${triggers.join('\n')}\n`).stages[0]?.steps ?? []
      steps = [...parsed.map((p) => ({ ...p, line: stage.from.line })), ...steps]
      state.config = { ...state.config, config: { ...state.config.config, OnBuild: null } }
    }
    for (const [i, ins] of steps.entries()) {
      this.signal.throwIfAborted()
      const ref = this.ref(stage, Math.min(i + 2 - (steps.length - stage.steps.length), stage.steps.length + 1), ins)
      if (i < steps.length - stage.steps.length) ref.index = 1
      state = await this.step(stage, state, ins, ref)
    }
    return state
  }

  private async snap(): Promise<Snapshotter> {
    this.snapshotter ??= openSnapshotter(this.store, undefined, { overlaySupported })
    return this.snapshotter
  }

  /** The base of a stage: another stage's result, nothing (scratch), or an image (pulled when missing or with --pull). */
  private async fromStep(stage: Stage, ref: StepRef): Promise<State> {
    const name = this.baseName(stage)
    const fresh = (config: ImageConfig, image?: ImageRecord): State => ({ ...(image ? { image } : {}), config, args: new Map(), cmdSet: false })
    const dep = this.stageNamed(name)
    if (dep && dep.index < stage.index && dep.name !== undefined) {
      const s = await this.startStage(dep)
      return { ...fresh(s.config), ...(s.image ? { image: s.image } : {}) }
    }
    if (name === 'scratch') {
      const p = hostPlatform()
      return fresh({
        architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}), os: p.os,
        config: { Env: [DEFAULT_PATH], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] }, history: [],
      })
    }
    if (name === '') throw new CairnError('INVALID_ARGUMENT', `Dockerfile:${stage.from.line}: base name (${stage.from.image}) should not be blank`)
    const image = await this.image(name, ref)
    const config = await this.store.config(image)
    // as BuildKit: a base without PATH gets the default one
    if (!(config.config?.Env ?? []).some((e) => e.startsWith('PATH='))) config.config = { ...config.config, Env: [...(config.config?.Env ?? []), DEFAULT_PATH] }
    return fresh(config, image)
  }

  /** An image by name: from the store, or pulled. */
  private async image(name: string, ref: StepRef): Promise<ImageRecord> {
    const known = this.opts.pull ? undefined : this.store.tryResolve(name)
    if (known) return known
    const credentials = this.opts.registryCredentials?.[parseReference(name).domain]
    const { pullImage } = await import('../api/pull.js')
    const pulled = await pullImage(this.store, name, {
      signal: this.signal,
      ...(credentials ? { credentials } : {}),
      onProgress: (event) => this.emit({ type: 'pull', ref, event }),
      ...(this.opts.platform !== undefined ? { platform: this.opts.platform } : {}),
    })
    const id = pulled[0]?.id
    const img = id !== undefined ? this.store.get(id) : undefined
    if (!img) throw new CairnError('IMAGE_UNKNOWN', `pull access denied for ${name}, repository does not exist or may require 'docker login'`)
    return img
  }

  /** An image for the state (a `FROM scratch` stage with no step yet has none: an empty one is made). */
  private async ensureImage(state: State): Promise<ImageRecord> {
    if (state.image) return state.image
    const res = await commitImage(this.store, { config: () => state.config })
    const img = this.store.get(res.id) as ImageRecord
    state.image = img
    return img
  }

  private stepError(ref: StepRef, err: unknown, t0: number): unknown {
    const message = err instanceof Error ? err.message : String(err)
    this.emit({ type: 'failed', ref, message, seconds: (performance.now() - t0) / 1000 })
    if (isCairnError(err) && hasCode(err, 'ABORTED')) return err
    if (isCairnError(err) && (err.detail as { step?: boolean } | undefined)?.step) return err
    const code = isCairnError(err) ? err.code : 'INVALID_ARGUMENT'
    return new CairnError(code, `${this.ctx.dockerfileName}:${ref.line}: ${ref.text}: ${message}`, {
      cause: err,
      detail: { step: true, line: ref.line, ...(isCairnError(err) && typeof err.detail === 'object' && err.detail !== null ? err.detail : {}) },
    })
  }

  /** The environment a step expands its arguments with: the stage's ARGs, overridden by ENV. */
  private env(state: State): Map<string, string> {
    const m = new Map<string, string>()
    for (const [k, v] of state.args) if (v !== undefined) m.set(k, v)
    for (const [k, v] of envMap(state.config.config?.Env)) m.set(k, v)
    return m
  }

  private word(s: string, state: State): string {
    return expandWord(s, this.env(state), this.df.escape)
  }

  private flag(ins: Instruction, name: string, state: State): string | undefined {
    const f = ins.flags.find((x) => x.name === name)
    if (!f) return undefined
    return f.value === null ? '' : this.word(f.value, state)
  }

  private shell(state: State): string[] {
    return state.config.config?.Shell ?? DEFAULT_SHELL
  }

  private commandArgs(form: CommandForm, state: State): string[] {
    return form.kind === 'exec' ? form.args : [...this.shell(state), form.command]
  }

  private async step(stage: Stage, state: State, ins: Instruction, ref: StepRef): Promise<State> {
    this.emit({ type: 'step', ref })
    const t0 = performance.now()
    this.steps++
    let plan: Plan | undefined
    try {
      const next: State = { ...state, args: new Map(state.args) }
      plan = await this.planStep(ins, next)
      const key = cacheKey(state.image?.id, { step: plan.parts, timestamp: this.opts.timestamp ?? null, author: plan.author ?? null })
      const hit = this.cache.lookup(key)
      if (!this.opts.noCache) {
        const img = hit !== undefined ? this.store.get(hit) : undefined
        if (img) {
          this.cachedSteps++
          this.emit({ type: 'cached', ref, id: img.id })
          next.image = img
          next.config = await this.store.config(img)
          this.emit({ type: 'done', ref, id: img.id, cached: true, seconds: (performance.now() - t0) / 1000 })
          return next
        }
      }
      // the cache row is written in the transaction that records the step's image
      const img = await this.execute(stage, ins, state, plan, ref, hit, (id) => this.cache.record(key, id, state.image?.id, ins.text))
      next.image = img
      next.config = await this.store.config(img)
      this.emit({ type: 'done', ref, id: img.id, cached: false, seconds: (performance.now() - t0) / 1000 })
      return next
    } catch (err) {
      throw this.stepError(ref, err, t0)
    } finally {
      for (const f of plan?.scratch ?? []) await rm(f, { recursive: true, force: true }).catch(() => undefined)
    }
  }

  private created(): string {
    return (this.opts.timestamp !== undefined ? new Date(this.opts.timestamp * 1000) : new Date()).toISOString()
  }

  /**
   * Whether the tree of an earlier result of the same step (`--no-cache`) is unpacked: a layer
   * made from the same files is most likely the same, and is then not unpacked again (if it
   * differs after all, it is unpacked from the store when a later step needs it).
   */
  private async unpackedBefore(prior: ImageId | undefined): Promise<boolean> {
    const img = prior !== undefined ? this.store.get(prior) : undefined
    const top = img ? this.store.imageChains(img.id).at(-1) : undefined
    if (top === undefined) return false
    return (await (await this.snap()).tryStat(top))?.kind === 'committed'
  }

  /** Makes the step's image: its layer (if any), its config with one more history entry. */
  private async execute(stage: Stage, ins: Instruction, state: State, plan: Plan, ref: StepRef, prior: ImageId | undefined, alsoRecord: (id: ImageId) => void): Promise<ImageRecord> {
    const created = this.created()
    const makeConfig = (parent: ImageConfig, diffId: DiffId | undefined): ImageConfig => {
      const out: ImageConfig = { ...state.config, config: plan.config, created }
      delete out['container']
      delete out['container_config']
      if (plan.author !== undefined) out.author = plan.author
      out.rootfs = { type: 'layers', diff_ids: diffId !== undefined ? [...parent.rootfs.diff_ids, diffId] : [...parent.rootfs.diff_ids] }
      if (plan.createdBy !== undefined) {
        const entry: HistoryEntry = { created, created_by: plan.createdBy, comment: HISTORY_COMMENT }
        if (diffId === undefined) entry.empty_layer = true
        out.history = [...(state.config.history ?? []), entry]
      }
      return out
    }
    const layer = plan.layer
    if (!layer) {
      const res = await commitImage(this.store, { ...(state.image ? { parent: state.image } : {}), config: makeConfig, alsoRecord, signal: this.signal })
      return this.store.get(res.id) as ImageRecord
    }
    const parentDiffIds = state.config.rootfs.diff_ids
    const direct = !this.resultStages.has(stage.index)
    if (layer.kind === 'tar') {
      const commit = (tar: (onEntry: (h: TarHeaderInit) => void) => Readable): Promise<{ id: ImageId; diffId?: DiffId }> => commitImage(this.store, {
        ...(state.image ? { parent: state.image } : {}),
        layer: async (onEntry) => tar(onEntry),
        keepEmptyLayer: true,
        direct,
        config: makeConfig,
        alsoRecord,
        signal: this.signal,
      })
      const unpacked = await this.unpackedBefore(prior)
      const res = await this.withRootfs(state, (rootfs) => unpacked
        ? commit((onEntry) => layer.tar(rootfs, onEntry))
        : layer.entries === true
          ? this.unpackingEntries(parentDiffIds, (apply) => commit((onEntry) => layer.tar(rootfs, onEntry, apply)))
          : this.unpacking(parentDiffIds, (tee) => commit((onEntry) => tee(layer.tar(rootfs, onEntry)))))
      return this.store.get(res.id) as ImageRecord
    }
    const parent = await this.ensureImage(state)
    const ts = this.opts.timestamp
    let container = ''
    const { runStep } = await import('./run.js')
    const out = await runStep(this.store, {
      image: parent.id,
      argv: layer.argv,
      env: layer.env,
      network: layer.network,
      signal: this.signal,
      onContainer: (id) => {
        container = id
        this.emit({ type: 'running', ref, container: id })
      },
      onOutput: (stream, data) => this.emit({ type: 'output', ref, stream, data: data.toString('utf8') }),
    }, async (snapshotter, key) => {
      // on overlay the container's own upper folder holds exactly the layer: it becomes the
      // layer's snapshot as it is (without the container's init layer below it) instead of the
      // layer being unpacked again; with SOURCE_DATE_EPOCH the layer's clamped mtimes are unpacked
      if (snapshotter.driver === 'overlay' && ts === undefined) {
        const res = await commitImage(this.store, {
          parent,
          layer: async (onEntry) => snapshotLayer(snapshotter, key, { signal: this.signal, onEntry }),
          keepEmptyLayer: true,
          direct,
          config: makeConfig,
          alsoRecord,
          signal: this.signal,
        })
        if (res.diffId !== undefined) await this.keepSnapshot(snapshotter, key, [...parentDiffIds, res.diffId])
        return res
      }
      return this.unpacking(parentDiffIds, (tee) => commitImage(this.store, {
        parent,
        layer: async (onEntry) => tee(await snapshotLayer(snapshotter, key, { signal: this.signal, onEntry, ...(ts !== undefined ? { timestamp: ts } : {}) })),
        keepEmptyLayer: true,
        direct,
        config: makeConfig,
        alsoRecord,
        signal: this.signal,
      }))
    })
    if (out.exitCode !== 0 || out.committed === undefined) {
      throw new CairnError('BUILD_FAILED', `the command '${layer.argv.join(' ')}' returned a non-zero code: ${out.exitCode}`, { detail: { exitCode: out.exitCode } })
    }
    this.emit({ type: 'removed', ref, container })
    return this.store.get(out.committed.id) as ImageRecord
  }

  /**
   * A step's new layer is unpacked into its snapshot (named by its chain ID) while it streams
   * into the content store: the next step that needs the tree (a RUN's container, a COPY's
   * mount) finds it there instead of reading the layer back. `fn` passes the tar through `tee`.
   */
  private async unpacking<T extends { diffId?: DiffId }>(parentDiffIds: readonly DiffId[], fn: (tee: (tar: Readable) => Readable) => Promise<T>): Promise<T> {
    return this.unpackingWith(parentDiffIds, 'tar', (u) => fn(u.tee))
  }

  /**
   * `unpacking` for a layer written entry by entry (COPY): each entry is written into the
   * snapshot as it is made (`apply`), not parsed back out of the tar.
   */
  private async unpackingEntries<T extends { diffId?: DiffId }>(parentDiffIds: readonly DiffId[], fn: (apply: Unpacker['apply']) => Promise<T>): Promise<T> {
    return this.unpackingWith(parentDiffIds, 'entries', (u) => fn(u.apply))
  }

  private async unpackingWith<T extends { diffId?: DiffId }>(parentDiffIds: readonly DiffId[], mode: 'tar' | 'entries', fn: (u: Unpacker) => Promise<T>): Promise<T> {
    const snap = await this.snap()
    const parentChain = chainIds(parentDiffIds).at(-1)
    if (parentChain !== undefined && (await snap.tryStat(parentChain))?.kind !== 'committed') return fn({ tee: (tar) => tar, apply: undefined })
    const key = `build-unpack-${randomName()}`
    await snap.prepare(key, parentChain, { labels: { 'cairn.unpack.pid': String(process.pid) } })
    let applying: Promise<unknown> | undefined
    try {
      const { dir, whiteouts } = await snap.applyDir(key)
      const writer: LayerWriter | undefined = mode === 'entries' ? await layerWriter(dir, { whiteouts, signal: this.signal }) : undefined
      if (writer) applying = Promise.resolve()
      const apply = writer ? (header: TarHeaderInit, body?: Uint8Array | Readable | { copyFrom: string }): Promise<void> => writer.entry(header, body) : undefined
      const res = await fn({ apply, tee: (tar) => {
        if (mode === 'entries') return tar
        const toStore = new PassThrough({ highWaterMark: 1 << 20 })
        const toApply = new PassThrough({ highWaterMark: 1 << 20 })
        applying = applyLayer(toApply, dir, { whiteouts, signal: this.signal }).catch((err: unknown) => {
          const e = err instanceof Error ? err : new Error(String(err))
          toStore.destroy(e)
          throw e
        })
        void (async () => {
          for await (const chunk of tar) {
            toStore.write(chunk)
            toApply.write(chunk)
            // each side's drain may come while the other is awaited: ask, do not assume
            if (toStore.writableNeedDrain) await once(toStore, 'drain')
            if (toApply.writableNeedDrain) await once(toApply, 'drain')
          }
          toStore.end()
          toApply.end()
        })().catch((err: unknown) => {
          const e = err instanceof Error ? err : new Error(String(err))
          toStore.destroy(e)
          toApply.destroy(e)
        })
        return toStore
      } })
      if (applying) await applying
      if (writer) await writer.finish()
      if (!applying || res.diffId === undefined) {
        await snap.remove(key)
        return res
      }
      const chain = chainId([...parentDiffIds, res.diffId])
      try {
        await snap.commit(chain, key)
      } catch (err) {
        // the same layer was unpacked meanwhile: theirs is as good
        if (!hasCode(err, 'CONFLICT')) throw err
        await snap.remove(key)
      }
      return res
    } catch (err) {
      await applying?.catch(() => undefined)
      await snap.remove(key).catch(() => undefined)
      throw err
    }
  }

  /**
   * A RUN container's snapshot kept as its layer's (named by the chain ID, on the parent image's
   * snapshot), when the parent's is there and no other build made that one meanwhile; else it
   * goes with the container.
   */
  private async keepSnapshot(snapshotter: Snapshotter, key: string, diffIds: readonly DiffId[]): Promise<void> {
    const chains = chainIds(diffIds)
    const chain = chains.at(-1) as ChainId
    const parentChain = chains.at(-2) ?? null
    if (parentChain !== null && (await snapshotter.tryStat(parentChain))?.kind !== 'committed') return
    try {
      await snapshotter.commit(chain, key, { parent: parentChain })
    } catch (err) {
      // that layer's snapshot is there already (unpacked, or kept by another build)
      if (!hasCode(err, 'CONFLICT')) throw err
    }
  }

  /** Runs `fn` with the state's image mounted read-only (undefined: no image, an empty tree). */
  private async withRootfs<T>(state: State, fn: (rootfs: string | undefined) => Promise<T>): Promise<T> {
    if (!state.image || state.config.rootfs.diff_ids.length === 0) return fn(undefined)
    const snap = await this.snap()
    const top = await unpackImage(this.store, snap, state.image, { signal: this.signal })
    const key = `build-view-${randomName()}`
    const dir = `${this.store.root}/tmp/${key}`
    const mounts = await snap.view(key, top, { labels: { 'cairn.build.pid': String(process.pid) } })
    try {
      await mountAll(mounts, dir)
      try {
        return await fn(dir)
      } finally {
        await unmount(dir).catch(() => unmount(dir, { lazy: true }))
        await rm(dir, { recursive: true, force: true })
      }
    } finally {
      await snap.remove(key).catch(() => undefined)
    }
  }

  /** What a step will do, without doing it: its cache key's parts and its effect on the config. */
  private async planStep(ins: Instruction, state: State): Promise<Plan> {
    const cfg: ContainerConfig = structuredClone(state.config.config ?? {})
    const env = this.env(state)
    const esc = this.df.escape
    switch (ins.kind) {
      case 'ARG': {
        const shown: string[] = []
        for (const { name, value } of ins.args) {
          const given = this.buildArgs.get(name)
          if (given !== undefined || PROXY_ARGS.includes(name)) this.consumed.add(name)
          const v = given ?? (value !== undefined ? expandWord(value, env, esc) : this.metaArgs.get(name))
          state.args.set(name, v)
          shown.push(v !== undefined ? `${name}=${v}` : name)
        }
        return { parts: { ARG: shown }, config: cfg, createdBy: `ARG ${shown.join(' ')}` }
      }
      case 'ENV': {
        const pairs = ins.pairs.map((p) => [expandWord(p.key, env, esc), expandWord(p.value, env, esc)] as const)
        let list = cfg.Env ?? []
        for (const [k, v] of pairs) list = setEnv(list, k, v)
        cfg.Env = list
        const text = `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`
        return { parts: { ENV: pairs }, config: cfg, createdBy: text }
      }
      case 'LABEL': {
        const pairs = ins.pairs.map((p) => [expandWord(p.key, env, esc), expandWord(p.value, env, esc)] as const)
        cfg.Labels = { ...(cfg.Labels ?? {}) }
        for (const [k, v] of pairs) cfg.Labels[k] = v
        return { parts: { LABEL: pairs }, config: cfg, createdBy: `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}` }
      }
      case 'MAINTAINER': {
        const who = ins.value
        return { parts: { MAINTAINER: who }, config: cfg, createdBy: `MAINTAINER ${who}`, author: who }
      }
      case 'USER': {
        const user = expandWord(ins.value, env, esc)
        cfg.User = user
        return { parts: { USER: user }, config: cfg, createdBy: `USER ${user}` }
      }
      case 'STOPSIGNAL': {
        const sig = expandWord(ins.value, env, esc)
        if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/.test(sig)) throw new CairnError('INVALID_ARGUMENT', `Invalid signal: ${sig}`)
        cfg.StopSignal = sig
        return { parts: { STOPSIGNAL: sig }, config: cfg, createdBy: `STOPSIGNAL ${sig}` }
      }
      case 'EXPOSE': {
        const ports: string[] = []
        for (const w of ins.words) for (const word of expandWords(w, env, esc)) ports.push(...exposedPorts(word, ins.line))
        cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) }
        for (const p of ports) cfg.ExposedPorts[p] = {}
        const sorted = [...new Set(ports)].sort()
        return { parts: { EXPOSE: sorted }, config: cfg, createdBy: `EXPOSE map[${sorted.map((p) => `${p}:{}`).join(' ')}]` }
      }
      case 'VOLUME': {
        const paths = ins.json ? ins.paths.map((p) => expandWord(p, env, esc)) : ins.paths.flatMap((p) => expandWords(p, env, esc))
        if (paths.some((p) => p.trim() === '')) throw new CairnError('INVALID_ARGUMENT', 'VOLUME specified can not be an empty string')
        cfg.Volumes = { ...(cfg.Volumes ?? {}) }
        for (const p of paths) cfg.Volumes[p] = {}
        return { parts: { VOLUME: paths }, config: cfg, createdBy: `VOLUME ${goList(paths)}` }
      }
      case 'WORKDIR': {
        const raw = expandWord(ins.value, env, esc)
        const dir = posix.normalize(posix.isAbsolute(raw) ? raw : posix.join(cfg.WorkingDir || '/', raw))
        cfg.WorkingDir = dir
        const ts = this.opts.timestamp
        return {
          parts: { WORKDIR: dir }, config: cfg, createdBy: `WORKDIR ${dir}`,
          layer: { kind: 'tar', tar: (rootfs) => workdirLayer(rootfs, dir, ts) },
        }
      }
      case 'CMD': {
        const cmd = this.commandArgs(ins.command, state)
        cfg.Cmd = cmd
        state.cmdSet = true
        return { parts: { CMD: cmd }, config: cfg, createdBy: `CMD [${cmd.map(goQuote).join(' ')}]` }
      }
      case 'ENTRYPOINT': {
        const ep = this.commandArgs(ins.command, state)
        cfg.Entrypoint = ep
        if (!state.cmdSet) cfg.Cmd = null
        return { parts: { ENTRYPOINT: ep, resetCmd: !state.cmdSet }, config: cfg, createdBy: `ENTRYPOINT [${ep.map(goQuote).join(' ')}]` }
      }
      case 'SHELL':
        cfg.Shell = ins.shell
        return { parts: { SHELL: ins.shell }, config: cfg, createdBy: `SHELL ${goList(ins.shell)}` }
      case 'HEALTHCHECK': {
        if (ins.none) {
          cfg.Healthcheck = { Test: ['NONE'] }
          return { parts: { HEALTHCHECK: 'NONE' }, config: cfg, createdBy: `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\\x00'}` }
        }
        const test = ins.test.kind === 'exec' ? ['CMD', ...ins.test.args] : ['CMD-SHELL', ins.test.command]
        const dur = (n: string): number => parseDuration(ins.flags.find((f) => f.name === n)?.value ?? '0') ?? 0
        const retries = Number(ins.flags.find((f) => f.name === 'retries')?.value ?? '0')
        const hc: Record<string, unknown> = { Test: test }
        if (dur('interval')) hc['Interval'] = dur('interval')
        if (dur('timeout')) hc['Timeout'] = dur('timeout')
        if (dur('start-period')) hc['StartPeriod'] = dur('start-period')
        if (dur('start-interval')) hc['StartInterval'] = dur('start-interval')
        if (retries) hc['Retries'] = retries
        cfg.Healthcheck = hc
        const text = `HEALTHCHECK &{[${test.map(goQuote).join(' ')}] ${goQuote(formatDuration(dur('interval')))} ${goQuote(formatDuration(dur('timeout')))} ${goQuote(formatDuration(dur('start-period')))} ${goRune(retries)}}`
        return { parts: { HEALTHCHECK: hc }, config: cfg, createdBy: text }
      }
      case 'ONBUILD':
        cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.trigger]
        return { parts: { ONBUILD: ins.trigger }, config: cfg }
      case 'RUN':
        return this.planRun(ins, state, cfg)
      case 'COPY':
      case 'ADD':
        return this.planCopy(ins, state, cfg)
      case 'FROM':
        throw new CairnError('INVALID_ARGUMENT', 'FROM inside a stage')
    }
  }

  private planRun(ins: Extract<Instruction, { kind: 'RUN' }>, state: State, cfg: ContainerConfig): Plan {
    for (const f of ins.flags) {
      if (f.name === 'network' && f.value !== 'default' && f.value !== 'none' && f.value !== 'host') throw new CairnError('INVALID_ARGUMENT', `unsupported network mode ${f.value ?? ''}`)
      if (f.name === 'mount') throw new CairnError('NOT_SUPPORTED', `RUN --mount is not supported yet (${f.value ?? ''})`)
    }
    let argv: string[]
    if (ins.command.kind === 'exec') argv = ins.command.args
    else if (ins.heredocs.length > 0) {
      const only = /^<<-?["']?([A-Za-z0-9_]+)["']?$/.exec(ins.command.command.trim())
      const first = ins.heredocs[0]
      if (only && first && ins.heredocs.length === 1) argv = [...this.shell(state), first.content]
      else argv = [...this.shell(state), `${ins.command.command}\n${ins.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`]
    } else argv = [...this.shell(state), ins.command.command]
    const configEnv = envMap(cfg.Env)
    // the stage's ARGs (with values) are the command's environment, unless ENV sets the name
    const args = [...state.args].filter((e): e is [string, string] => e[1] !== undefined && !PROXY_ARGS.includes(e[0]))
    const env = args.filter(([k]) => !configEnv.has(k)).map(([k, v]) => `${k}=${v}`)
    for (const p of PROXY_ARGS) {
      const v = this.buildArgs.get(p)
      if (v !== undefined) {
        env.push(`${p}=${v}`)
        this.consumed.add(p)
      }
    }
    const prefix = args.length > 0 ? `|${args.length} ${args.map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''
    const network = ins.flags.find((f) => f.name === 'network')?.value ?? this.opts.network
    return {
      parts: { RUN: argv, args, network },
      config: cfg,
      createdBy: `RUN ${prefix}${argv.join(' ')} # buildkit`,
      layer: { kind: 'run', argv, env, network: network as BuildNetwork },
    }
  }

  private async planCopy(ins: Extract<Instruction, { kind: 'COPY' | 'ADD' }>, state: State, cfg: ContainerConfig): Promise<Plan> {
    const env = this.env(state)
    const esc = this.df.escape
    for (const f of ins.flags) {
      if (f.name === 'parents' || f.name === 'exclude') throw new CairnError('NOT_SUPPORTED', `${ins.kind} --${f.name} is not supported yet`)
    }
    const from = this.flag(ins, 'from', state)
    const chownSpec = this.flag(ins, 'chown', state)
    const chmodSpec = this.flag(ins, 'chmod', state)
    let chmod: number | undefined
    if (chmodSpec !== undefined) {
      if (!/^[0-7]{3,4}$/.test(chmodSpec)) throw new CairnError('INVALID_ARGUMENT', `invalid chmod parameter: ${chmodSpec} (an octal mode, e.g. 755)`)
      chmod = parseInt(chmodSpec, 8)
    }
    const rawDest = expandWord(ins.dest, env, esc)
    const workdir = cfg.WorkingDir || '/'
    const dest = posix.isAbsolute(rawDest) ? rawDest : `${posix.join(workdir, rawDest)}${rawDest.endsWith('/') || rawDest === '.' ? '/' : ''}`
    const scratch: string[] = []
    const patterns = ins.json ? ins.sources.map((s) => expandWord(s, env, esc)) : ins.sources.map((s) => expandWord(s, env, esc))

    // where the sources come from
    let root: SourceRoot
    let fromId: string = 'context'
    let rootImage: ImageRecord | undefined
    if (from !== undefined) {
      const stage = this.stageNamed(from)
      if (stage) {
        const s = await this.startStage(stage)
        rootImage = await this.ensureImage(s)
      } else {
        if (/^\d+$/.test(from)) throw new CairnError('INVALID_ARGUMENT', `invalid from flag value ${from}: there is no stage ${from}`)
        rootImage = await this.image(from, { vertex: 0, stage: '', label: '', index: 0, count: 0, step: 0, total: 0, text: '', line: ins.line })
      }
      fromId = rootImage.id
      root = { dir: '', kind: 'image' }
    } else {
      root = { dir: this.ctx.dir ?? '', kind: 'context', ignored: (r) => this.ctx.ignored(r), hasExceptions: this.ctx.hasExceptions }
    }

    // here-documents (COPY <<EOF /dest) and URLs (ADD https://…) become files of their own
    const extra: Source[] = []
    const local: string[] = []
    const urls: { url: string; digest: string }[] = []
    const tmp = `${this.store.root}/tmp/${randomName('build-src-')}`
    for (const p of patterns) {
      const doc = ins.heredocs.find((h) => p === `<<${h.name}` || p === `<<-${h.name}` || p === `<<"${h.name}"` || p === `<<'${h.name}'`)
      if (doc) {
        await mkdir(tmp, { recursive: true, mode: 0o700 })
        scratch.push(tmp)
        const host = `${tmp}/${doc.name}`
        await writeFile(host, doc.expand ? expandWord(doc.content, env, esc).replace(/\n?$/, '\n') : doc.content, { mode: 0o644 })
        extra.push({ pattern: p, rel: doc.name, host, st: await stat(host) })
        continue
      }
      if (ins.kind === 'ADD' && /^https?:\/\//i.test(p)) {
        await mkdir(tmp, { recursive: true, mode: 0o700 })
        scratch.push(tmp)
        const name = posix.basename(new URL(p).pathname) || 'index.html'
        const host = `${tmp}/${randomName()}-${name}`
        const digest = await download(p, host, this.signal)
        const want = this.flag(ins, 'checksum', state)
        if (want !== undefined && want !== `sha256:${digest}`) throw new CairnError('DIGEST_INVALID', `digest mismatch for ${p}: got sha256:${digest}, expected ${want}`)
        urls.push({ url: p, digest })
        const st = await stat(host)
        extra.push({ pattern: p, rel: name, host, st, download: true })
        continue
      }
      local.push(p)
    }
    if (local.length > 0 && root.kind === 'context' && this.ctx.dir === undefined) {
      throw new CairnError('INVALID_ARGUMENT', `${ins.kind} failed: no build context (the Dockerfile came on standard input): cannot read ${local.join(', ')}`)
    }
    const needsRoot = local.length > 0 && root.kind === 'image'
    let checksum = ''
    // the trees the checksum read are the ones the layer copies (the context is not walked twice)
    const trees = new Map<string, TreeEntry[]>()
    if (root.kind === 'context' && local.length > 0) {
      const sources = resolveSources(root, local)
      checksum = checksumSources(root, sources, this.memo, trees)
    }
    const layerSources = (rootDir: string | undefined): Source[] => {
      const r = rootDir !== undefined ? { ...root, dir: rootDir } : root
      const found = local.length > 0 ? resolveSources(r, local) : []
      if (ins.kind === 'ADD') for (const s of found) if (isLocalArchive(s.host, s.st)) s.archive = true
      return [...found, ...extra]
    }
    const ts = this.opts.timestamp
    const link = ins.flags.some((f) => f.name === 'link')
    const sig = this.signal
    const store = this.store
    const plan: Plan = {
      parts: {
        [ins.kind]: { from: fromId, patterns, dest, chown: chownSpec ?? null, chmod: chmod ?? null, checksum, urls, docs: extra.filter((e) => !e.download).map((e) => createHash('sha256').update(e.pattern).digest('hex')), link },
      },
      config: cfg,
      createdBy: `${ins.kind} ${[...patterns, rawDest].join(' ')} # buildkit`,
      layer: {
        kind: 'tar',
        // ADD may unpack a local archive, whose entries are read once: its tar is unpacked instead
        entries: ins.kind === 'COPY',
        tar: (rootfs, onEntry, apply) => {
          // a stage or an image to copy from is mounted for as long as its files are read
          const out = new PassThrough({ highWaterMark: 1 << 20 })
          void (async () => {
            try {
              const produce = async (srcRoot: string | undefined): Promise<void> => {
                const sources = layerSources(srcRoot)
                const chown = chownSpec !== undefined ? resolveChown(chownSpec, rootfs) : undefined
                const tar = copyLayer(sources, {
                  dest, rootKind: root.kind, root: srcRoot !== undefined ? { ...root, dir: srcRoot } : root,
                  ...(rootfs !== undefined ? { rootfs } : {}),
                  ...(chown ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
                  ...(ts !== undefined ? { timestamp: ts } : {}), signal: sig, onEntry,
                  ...(apply ? { apply } : {}), ...(root.kind === 'context' ? { trees } : {}),
                })
                await pipeline(tar, out)
              }
              if (needsRoot && rootImage) {
                await this.withRootfs({ image: rootImage, config: await store.config(rootImage), args: new Map(), cmdSet: false }, async (dir) => produce(dir ?? await emptyDir(store)))
              } else await produce(undefined)
            } catch (err) {
              out.destroy(err as Error)
            }
          })()
          return out
        },
      },
      scratch,
    }
    return plan
  }

  saveHashes(): void {
    this.memo.save()
  }

  /** Tags, labels, the saved output, and the last words. */
  async finish(id: ImageId, tags: Reference[]): Promise<BuildResult> {
    let finalId = id
    const labels = Object.entries(this.opts.labels ?? {})
    if (labels.length > 0) {
      const img = this.store.get(id) as ImageRecord
      const cfg = await this.store.config(img)
      const res = await commitImage(this.store, {
        parent: img,
        config: () => ({ ...cfg, config: { ...cfg.config, Labels: { ...(cfg.config?.Labels ?? {}), ...Object.fromEntries(labels) } } }),
      })
      finalId = res.id
    }
    const unused = [...this.buildArgs.keys()].filter((k) => !this.consumed.has(k))
    if (unused.length > 0) this.emit({ type: 'warning', message: `One or more build-args [${unused.join(' ')}] were not consumed` })
    if (this.opts.output) {
      const t0 = performance.now()
      this.emit({ type: 'exporting', status: `exporting to ${this.opts.output.type} image format` })
      const { dest } = this.opts.output
      const format = this.opts.output.type
      const { saveImages } = await import('../api/save.js')
      if (typeof dest === 'string') {
        const tmp = `${dest}.${randomName('tmp-')}`
        try {
          await saveImages(this.store, [finalId], createWriteStream(tmp, { flags: 'wx' }), { format, signal: this.signal })
          await rename(tmp, dest)
        } catch (err) {
          await rm(tmp, { force: true })
          throw err
        }
      } else await saveImages(this.store, [finalId], dest, { format, signal: this.signal })
      this.emit({ type: 'exporting', status: 'done', seconds: (performance.now() - t0) / 1000 })
    }
    this.emit({ type: 'built', id: finalId })
    const names: string[] = []
    for (const t of tags) {
      this.store.tag(t, finalId)
      names.push(familiarString(t))
      this.emit({ type: 'tagged', name: familiarString(t) })
    }
    return { id: finalId, tags: names, steps: this.steps, cached: this.cachedSteps }
  }
}

async function emptyDir(store: ImageStore): Promise<string> {
  const d = `${store.root}/tmp/build-empty`
  await mkdir(d, { recursive: true, mode: 0o755 })
  return d
}

/** WORKDIR's layer: the folders of `dir` the image lacks (0755, root), or an empty tar. */
function workdirLayer(rootfs: string | undefined, dir: string, timestamp: number | undefined): Readable {
  const parts = dir.split('/').filter(Boolean)
  const entries: TarEntryInput[] = []
  const mtime = timestamp ?? Math.floor(Date.now() / 1000)
  let missing = rootfs === undefined
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join('/')
    if (!missing) {
      try {
        lstatSync(`${rootfs as string}/${rel}`)
        continue
      } catch {
        missing = true
      }
    }
    entries.push({ header: { path: `${rel}/`, type: 'directory', mode: 0o755, mtime } })
  }
  return writeTar(entries)
}

/** Downloads a URL into a file (ADD https://…); its sha256. */
async function download(url: string, dest: string, signal: AbortSignal): Promise<string> {
  let res: Response
  try {
    res = await fetch(url, { signal, redirect: 'follow' })
  } catch (err) {
    throw new CairnError('UNAVAILABLE', `failed to load ${url}: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok || !res.body) throw new CairnError('UNAVAILABLE', `failed to load ${url}: ${res.status} ${res.statusText}`)
  const hash = createHash('sha256')
  const body = Readable.fromWeb(res.body as ReadableStream<Uint8Array>)
  body.on('data', (c: Buffer) => hash.update(c))
  await pipeline(body, createWriteStream(dest, { mode: 0o600 }), { signal })
  const lm = res.headers.get('last-modified')
  if (lm) {
    const t = Date.parse(lm)
    if (!Number.isNaN(t)) await utimes(dest, t / 1000, t / 1000)
  }
  return hash.digest('hex')
}
