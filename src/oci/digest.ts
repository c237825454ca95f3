import type { Hash } from 'node:crypto'
import { createRequire } from 'node:module'
import { Transform, type TransformCallback } from 'node:stream'
import { CairnError } from '../errors/index.js'
import type * as Crypto from 'node:crypto'

/**
 * node:crypto, loaded when something is first hashed: commands that only read the store (`images`,
 * `ps`, `inspect`) never hash, and loading it is a few milliseconds of their start-up.
 */
let crypto: typeof Crypto | undefined

function createHash(algorithm: string): Hash {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof Crypto
  return crypto.createHash(algorithm)
}

/** A content digest, `algorithm:hex`, e.g. `sha256:e3b0…`. */
export type Digest = `${string}:${string}`

export const DigestAlgorithms = { sha256: 64, sha512: 128 } as const
export type DigestAlgorithm = keyof typeof DigestAlgorithms

const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/

export interface ParsedDigest {
  algorithm: DigestAlgorithm
  hex: string
}

/** Parses and validates a digest; only sha256 and sha512 are accepted. */
export function parseDigest(value: string): ParsedDigest {
  const m = DIGEST_RE.exec(value)
  if (!m) throw new CairnError('DIGEST_INVALID', `invalid digest format: ${JSON.stringify(value)}`)
  const algorithm = m[1] as string
  const hex = m[2] as string
  if (!Object.hasOwn(DigestAlgorithms, algorithm)) {
    throw new CairnError('UNSUPPORTED', `unsupported digest algorithm: ${algorithm}`)
  }
  const alg = algorithm as DigestAlgorithm
  if (hex.length !== DigestAlgorithms[alg] || !/^[a-f0-9]+$/.test(hex)) {
    throw new CairnError('DIGEST_INVALID', `invalid ${alg} digest: ${JSON.stringify(value)}`)
  }
  return { algorithm: alg, hex }
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value)
    return true
  } catch {
    return false
  }
}

export function digestHex(d: Digest): string {
  return parseDigest(d).hex
}

export function digestOf(data: string | Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`
}

/** The chain ID of a layer stack, as the OCI image spec defines it. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = []
  let prev: Digest | undefined
  for (const d of diffIds) {
    prev = prev === undefined ? d : digestOf(`${prev} ${d}`)
    out.push(prev)
  }
  return out
}

export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1)
}

/** A pass-through transform that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly algorithm: DigestAlgorithm
  private readonly hash: Hash
  private count = 0
  private result: Digest | undefined

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super()
    this.algorithm = algorithm
    this.hash = createHash(algorithm)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk)
    this.count += chunk.length
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    this.result = `${this.algorithm}:${this.hash.digest('hex')}`
    cb()
  }

  get size(): number {
    return this.count
  }

  /** The digest; only valid once the stream has ended. */
  get digest(): Digest {
    if (this.result === undefined) throw new Error('HashingStream: digest read before end of stream')
    return this.result
  }
}

/**
 * A pass-through transform that fails the stream (DIGEST_INVALID / SIZE_INVALID)
 * unless exactly `size` bytes hashing to `expected` flow through.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash
  private count = 0

  constructor(readonly expected: Digest, readonly expectedSize?: number) {
    super()
    this.hash = createHash(parseDigest(expected).algorithm)
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      cb(new CairnError('SIZE_INVALID', `content for ${this.expected} is larger than the expected ${this.expectedSize} bytes`))
      return
    }
    this.hash.update(chunk)
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      cb(new CairnError('SIZE_INVALID', `content for ${this.expected} has ${this.count} bytes, expected ${this.expectedSize}`))
      return
    }
    const actual = `${parseDigest(this.expected).algorithm}:${this.hash.digest('hex')}`
    if (actual !== this.expected) {
      cb(new CairnError('DIGEST_INVALID', `digest mismatch: expected ${this.expected}, got ${actual}`))
      return
    }
    cb()
  }
}
