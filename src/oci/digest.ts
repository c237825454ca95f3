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

/**
 * Four kinds of digest, kept apart as go-containerregistry keeps them: each is an `algorithm:hex`
 * string to read, but none is assignable to another, and a plain string becomes one only through
 * a named function here (`asDigest`, `asDiffId`, …) that checks it, or by hashing.
 */
type DigestOfKind<K extends string> = `${string}:${string}` & { readonly __kind: K }

/** A content digest: of the bytes of a blob, a manifest or a config as stored (`sha256:e3b0…`). */
export type Digest = DigestOfKind<'digest'>
/** A layer's diffID: the digest of its uncompressed tar (a config's `rootfs.diff_ids`). */
export type DiffId = DigestOfKind<'diffId'>
/** The chain ID of a stack of layers, as the OCI image spec defines it. */
export type ChainId = DigestOfKind<'chainId'>
/** An image's ID: the digest of its config, as Docker names an image. */
export type ImageId = DigestOfKind<'imageId'>
/** Any of the four. */
export type AnyDigest = Digest | DiffId | ChainId | ImageId

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

/** A content digest from a string, checked (DIGEST_INVALID, UNSUPPORTED). */
export function asDigest(value: string): Digest {
  parseDigest(value)
  return value as Digest
}

/** A diffID from a string, checked; or the digest of a layer's uncompressed tar. */
export function asDiffId(value: string): DiffId {
  parseDigest(value)
  return value as DiffId
}

/** A chain ID from a string (a record of the store), checked. */
export function asChainId(value: string): ChainId {
  parseDigest(value)
  return value as ChainId
}

/** An image ID from a string, checked; or the digest of an image's config. */
export function asImageId(value: string): ImageId {
  parseDigest(value)
  return value as ImageId
}

export function digestHex(d: AnyDigest): string {
  return parseDigest(d).hex
}

export function digestOf(data: string | Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return digestOfHash(algorithm, createHash(algorithm).update(data))
}

/** `algorithm:hex` of a finished hash (of `algorithm`): the one place a hash becomes a Digest. */
export function digestOfHash(algorithm: DigestAlgorithm, hash: Hash): Digest {
  return `${algorithm}:${hash.digest('hex')}` as Digest
}

/** The chain IDs of a layer stack, as the OCI image spec defines them: the first is the first diffID. */
export function chainIds(diffIds: readonly DiffId[]): ChainId[] {
  const out: ChainId[] = []
  let prev: string | undefined
  for (const d of diffIds) {
    prev = prev === undefined ? d : digestOf(`${prev} ${d}`)
    out.push(prev as ChainId)
  }
  return out
}

/** The chain ID of the whole stack (of at least one layer), or undefined for none. */
export function chainId(diffIds: readonly [...DiffId[], DiffId]): ChainId
export function chainId(diffIds: readonly DiffId[]): ChainId | undefined
export function chainId(diffIds: readonly DiffId[]): ChainId | undefined {
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
    this.result = digestOfHash(this.algorithm, this.hash)
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

  /** The digest as a diffID, for a stream of a layer's uncompressed tar. */
  get diffId(): DiffId {
    return this.digest as string as DiffId
  }
}

/**
 * A pass-through transform that fails the stream (DIGEST_INVALID / SIZE_INVALID)
 * unless exactly `size` bytes hashing to `expected` flow through.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash
  private count = 0

  constructor(readonly expected: AnyDigest, readonly expectedSize?: number) {
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
