/**
 * Per-client rate limiting: a token bucket per key (the client's address), refilled at `rate`
 * requests per second up to `burst`. Idle buckets are forgotten so that memory stays bounded.
 */

export interface RateLimitOptions {
  /** Sustained requests per second per client. */
  rate: number
  /** Requests a client may make at once after being idle (default: 2 × rate, at least 1). */
  burst?: number
  /** Most clients tracked at once (default 100 000); beyond it the oldest are forgotten. */
  maxClients?: number
}

interface Bucket {
  tokens: number
  at: number
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly rate: number
  private readonly burst: number
  private readonly maxClients: number

  constructor(opts: RateLimitOptions) {
    if (!(opts.rate > 0)) throw new RangeError('rate limit: rate must be > 0')
    this.rate = opts.rate
    this.burst = Math.max(1, opts.burst ?? Math.ceil(opts.rate * 2))
    this.maxClients = opts.maxClients ?? 100_000
  }

  /** Takes one token for `key`: 0 when allowed, else the seconds to wait before the next try. */
  take(key: string, now = Date.now()): number {
    let b = this.buckets.get(key)
    if (b === undefined) {
      if (this.buckets.size >= this.maxClients) this.evict(now)
      b = { tokens: this.burst, at: now }
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate)
      b.at = now
      this.buckets.delete(key) // re-inserted below: Map order is recency order
    }
    this.buckets.set(key, b)
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate))
  }

  private evict(now: number): void {
    const full = (this.burst / this.rate) * 1000
    for (const [k, b] of this.buckets) {
      if (now - b.at > full || this.buckets.size >= this.maxClients) this.buckets.delete(k)
      else break
    }
  }
}
