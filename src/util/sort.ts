/**
 * Sorting by the bytes of UTF-8 strings (the order of names in a tar, of paths in `diff`).
 * JavaScript compares strings by UTF-16 code units, which is the same order unless a string
 * holds a character beyond U+FFFF (surrogates sort below U+E000–U+FFFF in UTF-16, above them
 * in UTF-8): only then are the strings encoded, each once.
 */
const SURROGATE = /[\uD800-\uDFFF]/

/** Sorts `items` in place by the UTF-8 bytes of `key(item)`; returns them. */
export function sortByUtf8<T>(items: T[], key: (item: T) => string): T[] {
  if (!items.some((x) => SURROGATE.test(key(x)))) {
    return items.sort((x, y) => {
      const a = key(x)
      const b = key(y)
      return a < b ? -1 : a > b ? 1 : 0
    })
  }
  const keyed = items.map((item) => ({ item, bytes: Buffer.from(key(item), 'utf8') }))
  keyed.sort((x, y) => Buffer.compare(x.bytes, y.bytes))
  keyed.forEach((k, i) => (items[i] = k.item))
  return items
}
