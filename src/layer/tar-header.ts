/**
 * The tar header model and the byte-level codec for header blocks and PAX records
 * (POSIX ustar + pax; reads GNU and v7 too). Streaming lives in `tar.ts`.
 *
 * Strings (paths, link names, user names) are UTF-8. PAX record values are raw
 * bytes: `SCHILY.xattr.*` values go into `xattrs` unchanged, so binary xattrs such
 * as `security.capability` survive a round trip.
 */
import { posix } from 'node:path'
import { CairnError } from '../errors/index.js'
import { sortByUtf8 } from '../util/sort.js'

export const BLOCK_SIZE = 512

/** The largest PAX header or GNU long name/link we accept (bounds reader memory). */
export const MAX_META_SIZE = 1024 * 1024

export const TarEntryTypes = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  hardlink: 'hardlink',
  char: 'char',
  block: 'block',
  fifo: 'fifo',
} as const
export type TarEntryType = (typeof TarEntryTypes)[keyof typeof TarEntryTypes]

/**
 * One tar entry's metadata.
 *
 * Time: `mtime` is whole seconds since the epoch (floor, may be negative) and
 * `mtimeNsec` the sub-second part (0..999 999 999) carried by a PAX `mtime` record.
 * A header with `mtimeNsec === 0` and an mtime in octal range needs no PAX record.
 */
export interface TarHeader {
  /** The entry name exactly as stored (no `./` or `/` normalisation). */
  path: string
  type: TarEntryType
  /** Permission bits including setuid/setgid/sticky (`& 0o7777`). */
  mode: number
  uid: number
  gid: number
  uname: string
  gname: string
  /** Content size; 0 for every type but `file`. */
  size: number
  mtime: number
  mtimeNsec: number
  /** Symlink target, or the hard link's target entry name. */
  linkname: string
  devmajor: number
  devminor: number
  /** Extended attributes (`SCHILY.xattr.<name>` PAX records), values are raw bytes. */
  xattrs: Map<string, Buffer>
  /** Every other PAX record (atime, ctime, comment, …), kept so they round-trip. */
  pax: Map<string, string>
}

/** What a caller must give to build a header; everything else has a default. */
export type TarHeaderInit = Pick<TarHeader, 'path' | 'type'> & Partial<Omit<TarHeader, 'path' | 'type'>>

/** Fills the defaults of a header: root-owned, mode 0644 (0755 for dirs, 0777 for symlinks), mtime 0. */
export function tarHeader(init: TarHeaderInit): TarHeader {
  const defaultMode = init.type === 'directory' ? 0o755 : init.type === 'symlink' ? 0o777 : 0o644
  return {
    path: init.path,
    type: init.type,
    mode: init.mode ?? defaultMode,
    uid: init.uid ?? 0,
    gid: init.gid ?? 0,
    uname: init.uname ?? '',
    gname: init.gname ?? '',
    size: init.type === 'file' ? (init.size ?? 0) : 0,
    mtime: init.mtime ?? 0,
    mtimeNsec: init.mtimeNsec ?? 0,
    linkname: init.linkname ?? '',
    devmajor: init.devmajor ?? 0,
    devminor: init.devminor ?? 0,
    xattrs: new Map(init.xattrs ?? []),
    pax: new Map(init.pax ?? []),
  }
}

// ---------------------------------------------------------------------------
// Field layout of a ustar header block.

const F = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155],
} as const satisfies Record<string, readonly [number, number]>
type FieldName = keyof typeof F

function field(block: Buffer, name: FieldName): Buffer {
  const [off, len] = F[name]
  return block.subarray(off, off + len)
}

const TYPEFLAG_OF: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
}

function invalid(message: string): CairnError {
  return new CairnError('INVALID_LAYER', message)
}

// ---------------------------------------------------------------------------
// Decoding.

/** The raw fields of one header block, before PAX / GNU long-name records apply. */
export interface RawHeader {
  typeflag: string
  name: string
  linkname: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  uname: string
  gname: string
  devmajor: number
  devminor: number
  format: 'ustar' | 'gnu' | 'v7'
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false
  return true
}

/** A NUL-terminated string field, decoded as UTF-8. */
function cString(buf: Buffer): string {
  const nul = buf.indexOf(0)
  return (nul === -1 ? buf : buf.subarray(0, nul)).toString('utf8')
}

/** Parses a numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function parseNumeric(buf: Buffer, what: string): number {
  const first = buf[0] ?? 0
  if (first & 0x80) {
    const inv = first & 0x40 ? 0xff : 0x00
    let x = 0n
    for (let i = 0; i < buf.length; i++) {
      let c = (buf[i] ?? 0) ^ inv
      if (i === 0) c &= 0x7f
      x = (x << 8n) | BigInt(c)
    }
    const value = inv ? -x - 1n : x
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw invalid(`tar header ${what} field is out of range`)
    }
    return Number(value)
  }
  let start = 0
  let end = buf.length
  while (start < end && (buf[start] === 0x20 || buf[start] === 0)) start++
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0)) end--
  let value = 0
  for (let i = start; i < end; i++) {
    const c = buf[i] ?? 0
    if (c < 0x30 || c > 0x37) throw invalid(`tar header ${what} field is not an octal number`)
    value = value * 8 + (c - 0x30)
  }
  return value
}

function checksums(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
    unsigned += b
    signed += b >= 0x80 ? b - 0x100 : b
  }
  return { unsigned, signed }
}

/** Decodes and validates (checksum) one 512-byte header block. */
export function decodeHeaderBlock(block: Buffer): RawHeader {
  if (block.length !== BLOCK_SIZE) throw invalid('truncated tar header')
  let stored: number
  try {
    stored = parseNumeric(field(block, 'chksum'), 'checksum')
  } catch {
    throw invalid('invalid tar header: bad checksum field (not a tar archive?)')
  }
  const sums = checksums(block)
  if (stored !== sums.unsigned && stored !== sums.signed) {
    throw invalid('invalid tar header: checksum mismatch (corrupt or not a tar archive)')
  }
  const magic = field(block, 'magic').toString('latin1')
  const version = field(block, 'version').toString('latin1')
  const format = magic === 'ustar\0' ? 'ustar' : magic === 'ustar ' && version === ' \0' ? 'gnu' : 'v7'
  let name = cString(field(block, 'name'))
  if (format === 'ustar') {
    // star puts atime/ctime in the tail of the prefix field and marks it with "tar\0" at 508.
    const star = block.subarray(508, 512).toString('latin1') === 'tar\0'
    const prefix = cString(star ? block.subarray(345, 476) : field(block, 'prefix'))
    if (prefix !== '') name = `${prefix}/${name}`
  }
  const typeByte = block[156] ?? 0
  return {
    typeflag: String.fromCharCode(typeByte),
    name,
    linkname: cString(field(block, 'linkname')),
    mode: parseNumeric(field(block, 'mode'), 'mode'),
    uid: parseNumeric(field(block, 'uid'), 'uid'),
    gid: parseNumeric(field(block, 'gid'), 'gid'),
    size: parseNumeric(field(block, 'size'), 'size'),
    mtime: parseNumeric(field(block, 'mtime'), 'mtime'),
    uname: format === 'v7' ? '' : cString(field(block, 'uname')),
    gname: format === 'v7' ? '' : cString(field(block, 'gname')),
    devmajor: format === 'v7' ? 0 : parseNumeric(field(block, 'devmajor'), 'devmajor'),
    devminor: format === 'v7' ? 0 : parseNumeric(field(block, 'devminor'), 'devminor'),
    format,
  }
}

/** Parses the records of a PAX extended header. Values stay raw bytes. */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let pos = 0
  while (pos < data.length) {
    // GNU tar and others may pad the data with NULs.
    if (data[pos] === 0) break
    const space = data.indexOf(0x20, pos)
    if (space === -1 || space - pos > 20) throw invalid('invalid PAX record: missing length')
    const lenText = data.subarray(pos, space).toString('latin1')
    if (!/^[0-9]+$/.test(lenText)) throw invalid('invalid PAX record: bad length')
    const len = Number(lenText)
    const end = pos + len
    if (len <= lenText.length + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw invalid('invalid PAX record: length does not match')
    }
    const eq = data.indexOf(0x3d, space + 1)
    if (eq === -1 || eq >= end - 1) throw invalid('invalid PAX record: missing "="')
    const key = data.subarray(space + 1, eq).toString('utf8')
    if (key === '') throw invalid('invalid PAX record: empty key')
    out.set(key, Buffer.from(data.subarray(eq + 1, end - 1)))
    pos = end
  }
  return out
}

const XATTR_PREFIX = 'SCHILY.xattr.'

/** Parses a PAX time value ("1700000000.123456789", "-1.5") into floor seconds + nanoseconds. */
export function parsePaxTime(value: string): { sec: number; nsec: number } {
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(value)
  if (!m) throw invalid(`invalid PAX time value: ${JSON.stringify(value)}`)
  const whole = Number(m[2])
  if (!Number.isSafeInteger(whole)) throw invalid(`PAX time value out of range: ${value}`)
  const frac = Number(((m[3] ?? '') + '000000000').slice(0, 9))
  if (m[1] === '-') {
    return frac === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1_000_000_000 - frac }
  }
  return { sec: whole, nsec: frac }
}

/** Formats seconds + nanoseconds as a PAX time value (shortest exact decimal). */
export function formatPaxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec)
  if (sec >= 0) return `${sec}.${String(nsec).padStart(9, '0').replace(/0+$/, '')}`
  // Negative with a fraction: sec + nsec/1e9 = -(|sec + 1| + (1e9 - nsec)/1e9)
  const whole = -(sec + 1)
  return `-${whole}.${String(1_000_000_000 - nsec).padStart(9, '0').replace(/0+$/, '')}`
}

function paxInteger(value: Buffer, key: string): number {
  const text = value.toString('latin1')
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw invalid(`invalid PAX ${key} value: ${JSON.stringify(text)}`)
  }
  return Number(text)
}

function entryType(raw: RawHeader, name: string): TarEntryType {
  switch (raw.typeflag) {
    case '\0':
      return name.endsWith('/') ? 'directory' : 'file'
    case '0':
    case '7':
      return 'file'
    case '1':
      return 'hardlink'
    case '2':
      return 'symlink'
    case '3':
      return 'char'
    case '4':
      return 'block'
    case '5':
      return 'directory'
    case '6':
      return 'fifo'
    case 'S':
      throw new CairnError('NOT_SUPPORTED', `tar entry ${JSON.stringify(name)}: GNU sparse files are not supported`)
    default:
      throw invalid(`tar entry ${JSON.stringify(name)} has unsupported type flag ${JSON.stringify(raw.typeflag)}`)
  }
}

/**
 * Builds the final header of an entry from its raw block, the PAX records that
 * precede it (global records first, then local) and any GNU long name/link.
 */
export function buildHeader(
  raw: RawHeader,
  pax: ReadonlyMap<string, Buffer>,
  longName: string | undefined,
  longLink: string | undefined,
): TarHeader {
  let path = raw.name
  let linkname = raw.linkname
  let size = raw.size
  let uid = raw.uid
  let gid = raw.gid
  let uname = raw.uname
  let gname = raw.gname
  let mtime = raw.mtime
  let mtimeNsec = 0
  const xattrs = new Map<string, Buffer>()
  const rest = new Map<string, string>()
  for (const [key, value] of pax) {
    if (key.startsWith(XATTR_PREFIX)) {
      const name = key.slice(XATTR_PREFIX.length)
      if (name === '' || name.includes('\0')) throw invalid(`tar entry ${JSON.stringify(raw.name)} has an invalid xattr name`)
      xattrs.set(name, value)
      continue
    }
    if (key.startsWith('GNU.sparse.')) {
      throw new CairnError('NOT_SUPPORTED', `tar entry ${JSON.stringify(raw.name)}: PAX sparse files are not supported`)
    }
    switch (key) {
      case 'path':
        path = value.toString('utf8')
        break
      case 'linkpath':
        linkname = value.toString('utf8')
        break
      case 'size':
        size = paxInteger(value, key)
        break
      case 'uid':
        uid = paxInteger(value, key)
        break
      case 'gid':
        gid = paxInteger(value, key)
        break
      case 'uname':
        uname = value.toString('utf8')
        break
      case 'gname':
        gname = value.toString('utf8')
        break
      case 'mtime': {
        const t = parsePaxTime(value.toString('latin1'))
        mtime = t.sec
        mtimeNsec = t.nsec
        break
      }
      default:
        rest.set(key, value.toString('utf8'))
    }
  }
  if (longName !== undefined) path = longName
  if (longLink !== undefined) linkname = longLink
  const type = entryType(raw, path)
  if (size < 0) throw invalid(`tar entry ${JSON.stringify(path)} has a negative size`)
  return {
    path,
    type,
    mode: raw.mode & 0o7777,
    uid,
    gid,
    uname,
    gname,
    size: type === 'file' ? size : 0,
    mtime,
    mtimeNsec,
    linkname,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    xattrs,
    pax: rest,
  }
}

// ---------------------------------------------------------------------------
// Encoding.

const OCTAL_MAX = { 8: 0o7777777, 12: 0o77777777777 } as const

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s)
}

/** Keeps the ASCII characters of `s`, cut to `max` bytes (the fallback name of a PAX-described entry). */
function asciiFallback(s: string, max: number): string {
  return s.replace(/[^\x00-\x7f]/g, '').slice(0, max)
}

function writeString(block: Buffer, name: FieldName, s: string): void {
  const [off, len] = F[name]
  Buffer.from(s, 'utf8').copy(block, off, 0, len)
}

function writeOctal(block: Buffer, name: FieldName, value: number): void {
  const [off, len] = F[name]
  const text = value.toString(8).padStart(len - 1, '0')
  block.write(text, off, len - 1, 'latin1')
  block[off + len - 1] = 0
}

function writeBase256(block: Buffer, name: FieldName, value: number): void {
  const [off, len] = F[name]
  let x = BigInt(value)
  for (let i = len - 1; i >= 0; i--) {
    block[off + i] = Number(x & 0xffn)
    x >>= 8n
  }
  block[off] = (block[off] ?? 0) | 0x80
}

function fitsOctal(value: number, len: 8 | 12): boolean {
  return Number.isInteger(value) && value >= 0 && value <= OCTAL_MAX[len]
}

/** Splits a long ASCII path into ustar prefix (≤155) and name (≤100), as Go's writer does. */
function splitUstarPath(p: string): { prefix: string; name: string } | undefined {
  if (p.length <= 100 || !isAscii(p)) return undefined
  let length = p.length
  if (length > 156) length = 156
  else if (p[length - 1] === '/') length--
  const i = p.lastIndexOf('/', length - 1)
  const nameLen = p.length - i - 1
  if (i <= 0 || nameLen > 100 || nameLen === 0 || i > 155) return undefined
  return { prefix: p.slice(0, i), name: p.slice(i + 1) }
}

function encodeBlock(fields: {
  name: string
  prefix: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
  uname: string
  gname: string
  devmajor: number
  devminor: number
}): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE)
  writeString(block, 'name', fields.name)
  writeOctal(block, 'mode', fields.mode)
  writeOctal(block, 'uid', fields.uid)
  writeOctal(block, 'gid', fields.gid)
  writeOctal(block, 'size', fields.size)
  writeOctal(block, 'mtime', fields.mtime)
  block.write(fields.typeflag, 156, 1, 'latin1')
  writeString(block, 'linkname', fields.linkname)
  block.write('ustar\0', 257, 6, 'latin1')
  block.write('00', 263, 2, 'latin1')
  writeString(block, 'uname', fields.uname)
  writeString(block, 'gname', fields.gname)
  for (const dev of ['devmajor', 'devminor'] as const) {
    if (fitsOctal(fields[dev], 8)) writeOctal(block, dev, fields[dev])
    else writeBase256(block, dev, fields[dev])
  }
  writeString(block, 'prefix', fields.prefix)
  const sum = checksums(block).unsigned
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1')
  block[154] = 0
  block[155] = 0x20
  return block
}

/** Encodes PAX records (sorted by key for determinism) as the data of an 'x' entry. */
function encodePaxRecords(records: ReadonlyMap<string, Buffer>): Buffer {
  const keys = sortByUtf8([...records.keys()], (k) => k)
  const parts: Buffer[] = []
  for (const key of keys) {
    const value = records.get(key) as Buffer
    const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')])
    // The length prefix counts its own digits: iterate to the fixed point.
    let len = body.length + 1
    while (String(len).length + body.length !== len) len = String(len).length + body.length
    parts.push(Buffer.from(String(len), 'latin1'), body)
  }
  return Buffer.concat(parts)
}

/** Bytes of padding after `size` bytes of data to reach the next block boundary. */
export function padding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE
}

function checkInteger(value: number, what: string, path: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CairnError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(path)}: ${what} must be a non-negative integer`)
  }
}

/**
 * Encodes a header as the blocks that precede its data: an optional PAX 'x'
 * header (only when a value does not fit ustar) and the ustar block. Same input,
 * same bytes.
 */
export function encodeHeader(h: TarHeader): Buffer {
  if (h.path === '' || h.path.includes('\0')) {
    throw new CairnError('INVALID_ARGUMENT', `invalid tar entry path ${JSON.stringify(h.path)}`)
  }
  if (h.linkname.includes('\0')) throw new CairnError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(h.path)}: NUL in link name`)
  for (const [what, v] of [['uid', h.uid], ['gid', h.gid], ['size', h.size], ['devmajor', h.devmajor], ['devminor', h.devminor]] as const) {
    checkInteger(v, what, h.path)
  }
  if (!Number.isSafeInteger(h.mtime)) throw new CairnError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(h.path)}: mtime must be an integer`)
  if (!Number.isInteger(h.mtimeNsec) || h.mtimeNsec < 0 || h.mtimeNsec > 999_999_999) {
    throw new CairnError('INVALID_ARGUMENT', `tar entry ${JSON.stringify(h.path)}: mtimeNsec out of range`)
  }
  const size = h.type === 'file' ? h.size : 0
  const pax = new Map<string, Buffer>()
  for (const [key, value] of h.pax) {
    if (key === '' || key.includes('=')) throw new CairnError('INVALID_ARGUMENT', `invalid PAX key ${JSON.stringify(key)}`)
    pax.set(key, Buffer.from(value, 'utf8'))
  }
  for (const [name, value] of h.xattrs) {
    if (name === '' || name.includes('=') || name.includes('\0')) {
      throw new CairnError('INVALID_ARGUMENT', `invalid xattr name ${JSON.stringify(name)}`)
    }
    pax.set(XATTR_PREFIX + name, value)
  }

  let name = h.path
  let prefix = ''
  if (Buffer.byteLength(h.path) > 100 || !isAscii(h.path)) {
    const split = splitUstarPath(h.path)
    if (split) ({ prefix, name } = split)
    else {
      pax.set('path', Buffer.from(h.path, 'utf8'))
      name = asciiFallback(h.path, 100)
    }
  } else pax.delete('path')
  let linkname = h.linkname
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    pax.set('linkpath', Buffer.from(linkname, 'utf8'))
    linkname = asciiFallback(linkname, 100)
  } else pax.delete('linkpath')
  const strField = (key: 'uname' | 'gname', value: string): string => {
    if (Buffer.byteLength(value) > 32 || !isAscii(value)) {
      pax.set(key, Buffer.from(value, 'utf8'))
      return asciiFallback(value, 32)
    }
    pax.delete(key)
    return value
  }
  const uname = strField('uname', h.uname)
  const gname = strField('gname', h.gname)
  const numField = (key: 'uid' | 'gid' | 'size', value: number, len: 8 | 12): number => {
    if (fitsOctal(value, len)) {
      pax.delete(key)
      return value
    }
    pax.set(key, Buffer.from(String(value), 'latin1'))
    return 0
  }
  const uid = numField('uid', h.uid, 8)
  const gid = numField('gid', h.gid, 8)
  const sizeField = numField('size', size, 12)
  let mtime = h.mtime
  if (h.mtimeNsec !== 0 || !fitsOctal(h.mtime, 12)) {
    pax.set('mtime', Buffer.from(formatPaxTime(h.mtime, h.mtimeNsec), 'latin1'))
    if (!fitsOctal(mtime, 12)) mtime = 0
  } else pax.delete('mtime')

  const main = encodeBlock({
    name,
    prefix,
    mode: h.mode & 0o7777,
    uid,
    gid,
    size: sizeField,
    mtime,
    typeflag: TYPEFLAG_OF[h.type],
    linkname,
    uname,
    gname,
    devmajor: h.devmajor,
    devminor: h.devminor,
  })
  if (pax.size === 0) return main

  const data = encodePaxRecords(pax)
  const { dir, base } = posix.parse(h.path.replace(/\/+$/, ''))
  const paxName = asciiFallback(posix.join(dir, 'PaxHeaders.0', base), 100)
  const paxBlock = encodeBlock({
    name: paxName,
    prefix: '',
    mode: 0,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 0,
    typeflag: 'x',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  })
  return Buffer.concat([paxBlock, data, Buffer.alloc(padding(data.length)), main])
}
