/**
 * Sizes in bytes as Docker reads them (docker/go-units): `RAMInBytes` for memory, shm and tmpfs
 * sizes (`64m`, `1.5g`, `512KiB`: powers of 1024) and `FromHumanSize` (`10MB`: powers of 1000).
 * Written here rather than taken from a package because the errors must be go-units' own words
 * (`invalid suffix: 'kx'`), which the flags' messages carry.
 */

const BINARY: Readonly<Record<string, number>> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 }
const DECIMAL: Readonly<Record<string, number>> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 }

/** A size, or go-units' message for what is wrong with it. */
export type SizeResult = { readonly bytes: number } | { readonly error: string }

/** go-units' RAMInBytes: a number, then b, k, m, g, t or p (any case) with an optional `b` or `ib`, in powers of 1024. */
export function ramInBytes(text: string): SizeResult {
  return parseSize(text, BINARY)
}

/** go-units' FromHumanSize: as ramInBytes, in powers of 1000 (`KiB` too, as go-units has it). */
export function fromHumanSize(text: string): SizeResult {
  return parseSize(text, DECIMAL)
}

/**
 * go-units' parseSize: the number is everything up to the last digit, dot or space (a space there
 * is left out), the suffix (at most 3 characters) a multiple with an optional `b` or `ib`, or `b`.
 */
function parseSize(s: string, multiples: Readonly<Record<string, number>>): SizeResult {
  let sep = -1
  for (let i = s.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(s[i] as string)) {
      sep = i
      break
    }
  }
  if (sep < 0) return { error: `invalid size: '${s}'` }
  const num = s[sep] === ' ' ? s.slice(0, sep) : s.slice(0, sep + 1)
  const suffix = s.slice(sep + 1)
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(num)) return { error: `strconv.ParseFloat: parsing ${JSON.stringify(num)}: invalid syntax` }
  const size = Number(num)
  if (size < 0) return { error: `invalid size: '${s}'` }
  if (suffix === '') return { bytes: Math.trunc(size) }
  const sfx = suffix.toLowerCase()
  const bad = { error: `invalid suffix: '${suffix.length > 3 ? suffix : sfx}'` }
  if (suffix.length > 3) return bad
  if (sfx[0] === 'b') return sfx.length === 1 ? { bytes: Math.trunc(size) } : bad
  const mult = multiples[sfx[0] as string]
  if (mult === undefined) return bad
  if ((sfx.length === 2 && sfx[1] !== 'b') || (sfx.length === 3 && sfx.slice(1) !== 'ib')) return bad
  return { bytes: Math.trunc(size * mult) }
}
