/**
 * Helpers for the registry tests: `cairn registry serve` as a real process on a random port, a small
 * HTTP client over fetch, and pushes of small images.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises'
import { digestOf, type Digest } from '../../src/oci/digest.js'
import { CLI } from '../helpers/cairn.js'

export interface ServeProcess {
  readonly url: string
  readonly pid: number
  readonly child: ChildProcess
  /** Everything the process wrote on stderr so far. */
  stderr(): string
  stdout(): string
  /** SIGTERM, and wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>
}

const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL')
})

/** Starts `cairn registry serve --listen 127.0.0.1:0 --root ROOT ARGS…` and waits for its "listening on" line. */
export async function serveProcess(root: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(CLI, ['registry', 'serve', '--listen', '127.0.0.1:0', '--root', root, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  live.add(child)
  let err = ''
  let out = ''
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString()
  })
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const url = await new Promise<string>((resolve, reject) => {
    // generous: on a loaded machine (many processes of a test starting at once) start-up is slow; a
    // registry that does not start is killed, so that it cannot hold the port for the next one
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`registry did not start in 60 s:\n${err}`))
    }, 60_000)
    const onData = (): void => {
      const m = /listening on (\S+)/.exec(err)
      if (m) {
        clearTimeout(timer)
        child.stderr?.off('data', onData)
        resolve(m[1] as string)
      }
    }
    child.stderr?.on('data', onData)
    void exited.then((r) => {
      clearTimeout(timer)
      reject(new Error(`registry exited (${String(r.code ?? r.signal)}) while starting:\n${err}`))
    })
  })
  return {
    url,
    pid: child.pid ?? 0,
    child,
    stderr: () => err,
    stdout: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const r = await exited
      clearTimeout(t)
      return r
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

export interface Resp {
  status: number
  headers: Headers
  body: Buffer
  text(): string
  json<T = unknown>(): T
}

export interface ReqOpts {
  headers?: Record<string, string>
  body?: Buffer | string
  signal?: AbortSignal
}

/** One request; `path` may be absolute or relative to `base`. */
export async function request(base: string, method: string, path: string, opts: ReqOpts = {}): Promise<Resp> {
  const url = /^https?:/.test(path) ? path : `${base}${path}`
  const init: RequestInit = { method, redirect: 'manual' }
  if (opts.headers) init.headers = opts.headers
  if (opts.body !== undefined) init.body = typeof opts.body === 'string' ? opts.body : new Uint8Array(opts.body)
  if (opts.signal) init.signal = opts.signal
  const res = await fetch(url, init)
  const body = Buffer.from(await res.arrayBuffer())
  return {
    status: res.status,
    headers: res.headers,
    body,
    text: () => body.toString('utf8'),
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
  }
}

export function sha256(data: Buffer | string): Digest {
  return digestOf(data)
}

export function sha512(data: Buffer | string): Digest {
  return digestOf(data, 'sha512')
}

/** Pushes a blob monolithically (POST then PUT ?digest=); returns its digest. */
export async function pushBlob(base: string, repo: string, data: Buffer | string, headers: Record<string, string> = {}): Promise<string> {
  const digest = sha256(data)
  const start = await request(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers })
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.text()}`)
  const loc = start.headers.get('location') ?? ''
  const sep = loc.includes('?') ? '&' : '?'
  const put = await request(base, 'PUT', `${loc}${sep}digest=${digest}`, { body: data, headers: { 'Content-Type': 'application/octet-stream', ...headers } })
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${put.text()}`)
  return digest
}

export interface TinyImage {
  config: Buffer
  layer: Buffer
  manifest: Buffer
  digest: string
}

/** A small OCI image (random layer bytes, so each call makes a different one). */
export function tinyImage(layerSize = 1024): TinyImage {
  const layer = randomBytes(layerSize)
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  }))
  return { config, layer, manifest, digest: sha256(manifest) }
}

/** Pushes a tiny image's blobs and manifest under `tag`. */
export async function pushImage(base: string, repo: string, tag: string, img: TinyImage = tinyImage(), headers: Record<string, string> = {}): Promise<TinyImage> {
  await pushBlob(base, repo, img.config, headers)
  await pushBlob(base, repo, img.layer, headers)
  const r = await request(base, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    body: img.manifest,
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', ...headers },
  })
  if (r.status !== 201) throw new Error(`PUT manifest: ${r.status} ${r.text()}`)
  return img
}

export function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

/** What `damageRegistry` broke, by what the check must find. */
export interface Damage {
  /** Tag `gone`: its revision is gone. */
  gone: string
  /** Tag `nobytes`: the manifest's bytes are gone. */
  nobytes: string
  /** Tag `nolayer`: its layer's bytes are gone (`layer`), and its link dangles. */
  nolayer: TinyImage
  layer: string
  /** Tag `unlinked`: its layer is there but not linked in the repository. */
  unlinked: TinyImage
  unlinkedLayer: string
  /** Tag `multi`: an index whose entry (`child`) lost its revision (its bytes are there). */
  index: string
  child: string
  /** A link to a blob that is gone. */
  orphan: string
  /** A referrer (`sig`) of `subject` (tag `signed`) whose manifest revision is gone. */
  sig: string
  subject: string
  /** An upload folder without its records. */
  upload: string
  /** Tag `trashed`: its config blob is in trash/, as an older gc left it. */
  trashedConfig: string
}

/**
 * Breaks a registry's storage under `root` in every way `registry check` knows (also a tag that
 * names no digest: tag `junk`), through its API at `base` and then on disk.
 */
export async function damageRegistry(base: string, root: string, repo: string): Promise<Damage> {
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
  const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
  const hex = (d: string): string => d.slice(7)
  const status = async (method: string, path: string, want: number, opts: ReqOpts = {}): Promise<void> => {
    const r = await request(base, method, path, opts)
    if (r.status !== want) throw new Error(`${method} ${path}: ${r.status} ${r.text()}`)
  }
  const gone = (await pushImage(base, repo, 'gone')).digest
  await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(gone)}`)
  await pushImage(base, repo, 'junk')
  await writeFile(`${root}/repositories/${repo}/_manifests/tags/junk`, 'not a digest\n')
  const nobytes = (await pushImage(base, repo, 'nobytes')).digest
  await unlink(`${root}/blobs/sha256/${hex(nobytes)}`)
  const nolayer = await pushImage(base, repo, 'nolayer')
  const layer = sha256(nolayer.layer)
  await unlink(`${root}/blobs/sha256/${hex(layer)}`)
  const unlinked = await pushImage(base, repo, 'unlinked')
  const unlinkedLayer = sha256(unlinked.layer)
  await unlink(`${root}/repositories/${repo}/_layers/sha256/${hex(unlinkedLayer)}`)
  const child = await pushImage(base, repo, 'child')
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.manifest.length }] }))
  await status('PUT', `/v2/${repo}/manifests/multi`, 201, { headers: { 'Content-Type': OCI_INDEX }, body: index })
  await status('DELETE', `/v2/${repo}/manifests/child`, 202)
  await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(child.digest)}`)
  const orphan = await pushBlob(base, repo, 'orphan bytes')
  await unlink(`${root}/blobs/sha256/${hex(orphan)}`)
  const subject = await pushImage(base, repo, 'signed')
  const empty = await pushBlob(base, repo, '{}')
  const sig = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }, layers: [],
    subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
  }))
  await status('PUT', `/v2/${repo}/manifests/${sha256(sig)}`, 201, { headers: { 'Content-Type': OCI_MANIFEST }, body: sig })
  await unlink(`${root}/repositories/${repo}/_manifests/revisions/sha256/${hex(sha256(sig))}`)
  const upload = randomUUID()
  await mkdir(`${root}/uploads/${upload}`)
  await writeFile(`${root}/uploads/${upload}/data`, 'partial')
  const trashedConfig = sha256((await pushImage(base, repo, 'trashed')).config)
  await rename(`${root}/blobs/sha256/${hex(trashedConfig)}`, `${root}/trash/sha256-${hex(trashedConfig)}`)
  return {
    gone, nobytes, nolayer, layer, unlinked, unlinkedLayer, index: sha256(index), child: child.digest, orphan,
    sig: sha256(sig), subject: subject.digest, upload, trashedConfig,
  }
}
