/**
 * Downloading one layer blob into the store's `downloads/` folder while verifying it in the same
 * pass: the compressed bytes are hashed against the descriptor's digest and size, and
 * decompressed, hashed and parsed as a tar (examineLayer) to check the diffID the image config
 * promises. An interrupted download (broken connection, or a killed process) continues with an
 * HTTP Range request from what is on disk; the bytes already there are read again through the
 * same checks, so nothing unverified is ever used. The finished file is handed over as a staged
 * blob (renamed into `blobs/` inside the transaction that records the image).
 */
import { open, mkdir, readdir, readFile, stat, truncate, unlink } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, hasCode, isCairnError, isErrno } from '../errors/index.js'
import { type DiffId, type Digest, digestOfHash, parseDigest } from '../oci/digest.js'
import type { Descriptor } from '../oci/types.js'
import type { StagedBlob } from '../content/store.js'
import { assertDiffId, examineLayer, type LayerFacts } from '../image/layercheck.js'
import { randomName } from '../util/fs.js'
import type { Repository } from './client.js'
import { networkError } from './errors.js'

export interface DownloadOptions {
  signal?: AbortSignal
  /** Bytes verified so far (including what was on disk already), out of the blob's size. */
  onProgress?: (current: number, total: number) => void
  /** Called when the bytes are all in and being checked. */
  onVerifying?: () => void
  /** Attempts after failures that made no progress (default 5). */
  attempts?: number
  label?: string
}

export interface Downloaded {
  staged: StagedBlob
  facts: LayerFacts
  /** Bytes taken from a previous, interrupted download. */
  resumedFrom: number
  /** Bytes fetched over the network by this call. */
  fetched: number
}

/** True when the error or one of its causes is temporary (examineLayer re-wraps errors). */
function temporaryInChain(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (isCairnError(e) && e.temporary) return true
  }
  return false
}

export async function downloadLayer(repo: Repository, storeRoot: string, desc: Descriptor, diffId: DiffId, opts: DownloadOptions = {}): Promise<Downloaded> {
  const dir = `${storeRoot}/downloads`
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const { algorithm, hex } = parseDigest(desc.digest)
  const label = opts.label ?? `layer ${hex.slice(0, 12)}`
  let file = `${dir}/${algorithm}-${hex}`
  const lock = await takeLock(`${file}.lock`)
  if (!lock) file = `${file}.${randomName()}` // another live process is downloading it: a private copy
  let fetched = 0
  let restartedClean = false
  let failures = 0
  try {
    for (;;) {
      const have = await sizeOf(file)
      let onDisk = have
      if (onDisk > desc.size) {
        await truncate(file, 0)
        onDisk = 0
      }
      const before = onDisk
      try {
        const got = await fetchAndExamine(repo, file, desc, onDisk, opts, label, (n) => {
          fetched += n
        })
        if (got.digest !== desc.digest || got.size !== desc.size) {
          await unlink(file).catch(() => undefined)
          if (before > 0 && !restartedClean) {
            // the part on disk may be what was wrong: once more from the first byte
            restartedClean = true
            continue
          }
          if (got.size !== desc.size) {
            throw new CairnError('SIZE_INVALID', `${label}: ${repo.registry.domain}/${repo.name} sent ${got.size} bytes for ${desc.digest}, the manifest says ${desc.size}`)
          }
          throw new CairnError('DIGEST_INVALID', `${label}: ${repo.registry.domain}/${repo.name} sent a blob whose digest is ${got.digest}, not ${desc.digest}: refusing it`)
        }
        if (got.examError !== undefined || !got.facts) {
          await unlink(file).catch(() => undefined)
          throw got.examError
        }
        const facts = got.facts
        try {
          assertDiffId(facts, diffId, label)
        } catch (err) {
          await unlink(file).catch(() => undefined)
          throw err
        }
        return { staged: { digest: desc.digest, size: desc.size, tmpPath: file }, facts, resumedFrom: have, fetched }
      } catch (err) {
        if (opts.signal?.aborted) throw new CairnError('ABORTED', 'operation aborted', { cause: err })
        if (isCairnError(err) && !err.temporary && !temporaryInChain(err)) {
          if (hasCode(err, 'INVALID_LAYER') || hasCode(err, 'UNSAFE_PATH')) await unlink(file).catch(() => undefined)
          throw err
        }
        const wrapped = networkError(err, `GET ${desc.digest}`)
        if (!temporaryInChain(wrapped)) throw wrapped
        const now = await sizeOf(file)
        if (now <= before) failures++
        if (failures >= (opts.attempts ?? 5)) throw wrapped
        await sleep(Math.min(8000, 250 * 2 ** failures), undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => {
          throw new CairnError('ABORTED', 'operation aborted')
        })
      }
    }
  } catch (err) {
    if (!lock) await unlink(file).catch(() => undefined)
    throw err
  } finally {
    if (lock) await unlink(`${file}.lock`).catch(() => undefined)
  }
}

/**
 * Feeds the blob (the part on disk, then the network) to examineLayer while hashing it on the
 * side: when the layer check fails, the rest is still fetched and hashed, so that a registry
 * that sent the wrong bytes is reported as such (DIGEST_INVALID) rather than as a broken layer.
 */
async function fetchAndExamine(
  repo: Repository, file: string, desc: Descriptor, onDisk: number, opts: DownloadOptions, label: string, countFetched: (n: number) => void,
): Promise<{ facts?: LayerFacts; examError?: unknown; digest: Digest; size: number }> {
  let start = onDisk
  let body: Readable | undefined
  if (start < desc.size) {
    const { res, partial } = await repo.blob(desc.digest, { offset: start, ...(opts.signal ? { signal: opts.signal } : {}) })
    if (!partial && start > 0) {
      await truncate(file, 0) // the registry ignored the Range: take the whole blob
      start = 0
    }
    body = res.body
  }
  const fh = await open(file, start === 0 ? 'w' : 'a', 0o600)
  const size = desc.size
  const hash = createHash(parseDigest(desc.digest).algorithm)
  let total = 0
  const feed = new PassThrough({ highWaterMark: 1 << 20 })
  let feedOpen = true
  feed.once('close', () => {
    feedOpen = false
  })
  const give = async (chunk: Buffer): Promise<void> => {
    hash.update(chunk)
    total += chunk.length
    if (!feedOpen) return
    if (!feed.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          feed.off('drain', done)
          feed.off('close', done)
          resolve()
        }
        feed.on('drain', done)
        feed.on('close', done)
      })
    }
  }
  const pump = async (): Promise<void> => {
    if (start > 0) {
      for await (const c of createReadStream(file, { start: 0, end: start - 1, highWaterMark: 1 << 20 })) await give(c as Buffer)
    }
    if (body) {
      let got = start
      try {
        for await (const c of body) {
          const chunk = c as Buffer
          got += chunk.length
          if (got > size) throw new CairnError('SIZE_INVALID', `${label}: the registry sent more than the ${size} bytes the manifest says`)
          await fh.write(chunk)
          countFetched(chunk.length)
          await give(chunk)
        }
      } catch (err) {
        throw networkError(err, `GET ${desc.digest}`)
      }
      if (got < size) {
        // the connection ended early (or the registry sent less): continue from here next time
        throw new CairnError('UNAVAILABLE', `${label}: the connection closed after ${got} of ${size} bytes`, { temporary: true })
      }
    }
    feed.end()
  }
  try {
    const ex: { signal?: AbortSignal; onBytes?: (n: number) => void; label: string } = { label }
    if (opts.signal) ex.signal = opts.signal
    if (opts.onProgress) {
      const cb = opts.onProgress
      ex.onBytes = (n) => cb(n, size)
    }
    const pumping = pump().catch((err: unknown) => {
      feed.destroy(err instanceof Error ? err : new Error(String(err)))
      throw err
    })
    const [exam, pumped] = await Promise.allSettled([examineLayer(feed, ex), pumping])
    if (pumped.status === 'rejected') throw pumped.reason
    opts.onVerifying?.()
    await fh.sync()
    const digest = digestOfHash(parseDigest(desc.digest).algorithm, hash)
    if (exam.status === 'rejected') return { examError: exam.reason, digest, size: total }
    return { facts: exam.value, digest, size: total }
  } finally {
    body?.destroy()
    await fh.close()
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0
    throw err
  }
}

/** How long a resumable partial download is kept without a write before `sweepDownloads` removes it. */
export const PARTIAL_KEEP_MS = 7 * 24 * 3600 * 1000
/** Private copies (`<digest>.<random>`, made while another process held the digest) are never resumed. */
const PRIVATE_KEEP_MS = 3600 * 1000

/**
 * Removes what abandoned downloads left in `downloads/`: resumable partials not written for
 * `PARTIAL_KEEP_MS`, private copies not written for `PRIVATE_KEEP_MS`, and locks of dead
 * processes. A file whose lock belongs to a live process is left alone. Returns the names removed.
 */
export async function sweepDownloads(storeRoot: string, now = Date.now()): Promise<string[]> {
  const dir = `${storeRoot}/downloads`
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  const removed: string[] = []
  const drop = async (name: string): Promise<void> => {
    await unlink(`${dir}/${name}`).then(() => removed.push(name), () => undefined)
  }
  const liveLock = (name: string): Promise<boolean> => lockHeldByLiveProcess(`${dir}/${name}.lock`)
  for (const name of names) {
    const m = /^([a-z0-9]+-[a-f0-9]+)(\.lock|\.[A-Za-z0-9-]+)?$/.exec(name)
    if (!m) continue
    const [, base, suffix] = m as unknown as [string, string, string | undefined]
    if (suffix === '.lock') {
      if (!(await liveLock(base))) {
        if (!names.includes(base)) await drop(name)
      }
      continue
    }
    const st = await stat(`${dir}/${name}`).catch(() => undefined)
    if (!st?.isFile()) continue
    const idle = now - st.mtimeMs
    if (suffix === undefined) {
      if (idle > PARTIAL_KEEP_MS && !(await liveLock(base))) {
        await drop(name)
        await drop(`${name}.lock`)
      }
    } else if (idle > PRIVATE_KEEP_MS) {
      await drop(name)
    }
  }
  return removed
}

/** An exclusive lock file holding our pid; a dead holder's lock is taken over. False if a live process holds it. */
async function takeLock(path: string): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      return true
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
      if (await lockHeldByLiveProcess(path)) return false
      await unlink(path).catch(() => undefined)
    }
  }
  return false
}

/** Whether the lock file names a process that is alive (this one included). */
async function lockHeldByLiveProcess(path: string): Promise<boolean> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
  return Number.isInteger(pid) && pid > 0 && alive(pid)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isErrno(err, 'EPERM')
  }
}
