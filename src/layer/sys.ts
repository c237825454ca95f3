/**
 * The few filesystem operations Node.js has no API for — extended attributes,
 * device nodes and FIFOs — done with Cairn's system-call addon where it has
 * them (reading xattrs: native/sys/), else with standard system tools:
 *
 * - xattrs: `setfattr` / `getfattr` from the `attr` package (Debian: `apt-get
 *   install attr`). Values travel hex-encoded in getfattr's dump format, so
 *   binary values are safe; paths are octal-escaped the way the tools expect.
 *   Both sides are batched (one `setfattr --restore` per batch of files, one
 *   recursive `getfattr` per tree), never followed through symlinks (`-h`).
 * - device nodes: `mknod` from coreutils; FIFOs: `mkfifo`.
 *
 * Only this module spawns processes, so a native implementation can replace it.
 * Reading xattrs through the addon saves a getfattr process per read: starting a
 * process forks the whole Node.js process, 10 to 20 ms of the event loop, at
 * every commit of a container or a build step. `CAIRN_XATTR=getfattr` in the
 * environment always runs the tools.
 */
import { spawn } from 'node:child_process'
import { CairnError } from '../errors/index.js'
import { sysAddonWith } from '../util/addon.js'

type XattrPairs = [name: string, value: Buffer][]

/** What native/sys/sys.c exports for xattrs (an addon built before them has not). */
interface XattrAddon {
  xattrs(path: string): XattrPairs
  xattrTree(root: string): [path: string, pairs: XattrPairs][]
}

function nativeXattrs(): XattrAddon | undefined {
  return process.env['CAIRN_XATTR'] === 'getfattr' ? undefined : sysAddonWith<XattrAddon>('xattrs', 'xattrTree')
}

/** Whether xattrs are read through the addon (else with getfattr). */
export function xattrsNative(): boolean {
  return nativeXattrs() !== undefined
}

/** The addon's error as getfattr's would read: the call's target and the system's words. */
function xattrFailure(err: unknown, where: string): CairnError {
  const message = err instanceof Error ? err.message : String(err)
  return new CairnError('INVALID_ARGUMENT', `getfattr failed on ${where}: ${message}`, { cause: err })
}

interface RunResult {
  code: number
  stdout: Buffer
  stderr: string
}

const TOOL_PACKAGE: Record<string, string> = {
  setfattr: 'attr',
  getfattr: 'attr',
  mknod: 'coreutils',
  mkfifo: 'coreutils',
}

function run(cmd: string, args: readonly string[], input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout?.on('data', (c: Buffer) => out.push(c))
    child.stderr?.on('data', (c: Buffer) => err.push(c))
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        reject(new CairnError('NOT_SUPPORTED', `${cmd} not found: install the '${TOOL_PACKAGE[cmd] ?? cmd}' package`, { cause: e }))
      } else reject(e)
    })
    child.on('close', (code) => {
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') })
    })
    if (input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}) // the child may exit early; its status tells
      child.stdin.end(input)
    }
  })
}

// ---------------------------------------------------------------------------
// attr's quoting: `\ooo` octal escapes for bytes the dump format cannot hold.

function quote(value: string, extra: string): string {
  const bytes = Buffer.from(value, 'utf8')
  let out = ''
  for (const b of bytes) {
    const ch = String.fromCharCode(b)
    if (b <= 0x20 || b >= 0x7f || ch === '\\' || extra.includes(ch)) out += `\\${b.toString(8).padStart(3, '0')}`
    else out += ch
  }
  return out
}

function unquote(raw: Buffer): Buffer {
  const out: number[] = []
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number
    if (b === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8))
      i += 3
    } else out.push(b)
  }
  return Buffer.from(out)
}

/** One file's extended attributes to set. */
export interface XattrTarget {
  path: string
  xattrs: ReadonlyMap<string, Buffer>
}

/** An xattr the kernel refused. `errno` is `EPERM`, `ENOTSUP`, … (or `EIO` when unknown). */
export interface XattrFailure {
  path: string
  name: string
  errno: string
  message: string
}

function dump(targets: readonly XattrTarget[]): Buffer {
  let text = ''
  for (const t of targets) {
    if (t.xattrs.size === 0) continue
    text += `# file: ${quote(t.path, '')}\n`
    for (const [name, value] of t.xattrs) text += `${quote(name, '=')}=0x${value.toString('hex')}\n`
    text += '\n'
  }
  return Buffer.from(text, 'latin1')
}

const ERRNO_OF: Record<string, string> = {
  'Operation not permitted': 'EPERM',
  'Operation not supported': 'ENOTSUP',
  'No such file or directory': 'ENOENT',
  'Permission denied': 'EACCES',
  'No space left on device': 'ENOSPC',
  'Argument list too long': 'E2BIG',
  'Numerical result out of range': 'ERANGE',
  'Invalid argument': 'EINVAL',
  'Disk quota exceeded': 'EDQUOT',
}

function errnoOf(stderr: string): { errno: string; message: string } {
  const line = stderr.trim().split('\n').at(-1) ?? ''
  const message = line.slice(line.lastIndexOf(': ') + 2)
  return { errno: ERRNO_OF[message] ?? 'EIO', message: message || 'setfattr failed' }
}

/**
 * The files a failed `setfattr --restore` complained about ("setfattr: PATH:
 * MESSAGE" lines), or undefined when a line names none of `targets`.
 */
function failedPaths(stderr: string, targets: readonly XattrTarget[]): Map<string, string> | undefined {
  const known = new Set(targets.map((t) => t.path))
  const out = new Map<string, string>()
  for (const line of stderr.split('\n')) {
    if (line.trim() === '') continue
    const sep = line.lastIndexOf(': ')
    const path = line.startsWith('setfattr: ') && sep > 10 ? line.slice(10, sep) : undefined
    if (path === undefined || !known.has(path)) return undefined
    out.set(path, line.slice(sep + 2))
  }
  return out
}

/**
 * Sets extended attributes on many files with one `setfattr --restore` (never
 * following a final symlink). When the batch fails, the files it names are
 * retried one attribute at a time so every refusal is reported precisely (all
 * files, if its complaints cannot be read). Returns the refusals.
 */
export async function setXattrs(targets: readonly XattrTarget[]): Promise<XattrFailure[]> {
  const batch = dump(targets)
  if (batch.length === 0) return []
  const first = await run('setfattr', ['-h', '--restore=-'], batch)
  if (first.code === 0) return []
  const failed = failedPaths(first.stderr, targets)
  const failures: XattrFailure[] = []
  for (const t of targets) {
    if (failed !== undefined && !failed.has(t.path)) continue
    const message = failed?.get(t.path)
    const [only] = t.xattrs
    if (message !== undefined && t.xattrs.size === 1 && only) {
      failures.push({ path: t.path, name: only[0], errno: ERRNO_OF[message] ?? 'EIO', message })
      continue
    }
    for (const [name, value] of t.xattrs) {
      const one = await run('setfattr', ['-h', '--restore=-'], dump([{ path: t.path, xattrs: new Map([[name, value]]) }]))
      if (one.code !== 0) failures.push({ path: t.path, name, ...errnoOf(one.stderr) })
    }
  }
  return failures
}

/**
 * Reads the extended attributes of every file below `root` (`root` included;
 * symlinks themselves, never their targets) with one recursive `getfattr`.
 * Returns only files that have attributes, keyed by absolute path (as `root` is
 * spelled, joined with `/`).
 */
export async function readXattrTree(root: string): Promise<Map<string, Map<string, Buffer>>> {
  const sys = nativeXattrs()
  if (sys) {
    try {
      return new Map(sys.xattrTree(root).map(([path, pairs]) => [path, new Map(pairs)]))
    } catch (err) {
      throw xattrFailure(err, root)
    }
  }
  const res = await run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root])
  failIfReal(res, root)
  return parseDump(res.stdout)
}

/**
 * Reads the attributes whose names match `match` (a getfattr pattern, default all) of the
 * given paths only, not recursing: for when only a few files of a large tree matter.
 */
export async function readXattrsOf(paths: readonly string[], match = '-'): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>()
  const sys = nativeXattrs()
  if (sys) {
    // getfattr's -m is a regular expression on the name, `-` matching every name
    const re = match === '-' ? undefined : new RegExp(match)
    for (const path of paths) {
      let pairs: XattrPairs
      try {
        pairs = sys.xattrs(path)
      } catch (err) {
        throw xattrFailure(err, path)
      }
      const kept = re ? pairs.filter(([name]) => re.test(name)) : pairs
      if (kept.length > 0) out.set(path, new Map(kept))
    }
    return out
  }
  for (let i = 0; i < paths.length; i += 500) {
    const batch = paths.slice(i, i + 500)
    const res = await run('getfattr', ['-P', '-h', '-d', '-m', match, '-e', 'hex', '--absolute-names', '--', ...batch])
    failIfReal(res, batch[0] ?? '')
    for (const [k, v] of parseDump(res.stdout)) out.set(k, v)
  }
  return out
}

function failIfReal(res: RunResult, where: string): void {
  if (res.code === 0) return
  const real = res.stderr.split('\n').filter((l) => l.trim() !== '' && !l.endsWith('Operation not supported'))
  if (real.length > 0) throw new CairnError('INVALID_ARGUMENT', `getfattr failed on ${where}: ${real.join('; ')}`)
}

/** Parses `getfattr -d -e hex` output: `# file: PATH` then `name=0xHEX` lines, blank between files. */
function parseDump(data: Buffer): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>()
  let current: Map<string, Buffer> | undefined
  let start = 0
  while (start < data.length) {
    let end = data.indexOf(0x0a, start)
    if (end === -1) end = data.length
    const line = data.subarray(start, end)
    start = end + 1
    if (line.length === 0) {
      current = undefined
      continue
    }
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      current = new Map()
      out.set(unquote(line.subarray(8)).toString('utf8'), current)
      continue
    }
    const eq = line.indexOf(0x3d)
    if (current === undefined || eq === -1) continue
    const name = unquote(line.subarray(0, eq)).toString('utf8')
    const text = line.subarray(eq + 1).toString('latin1')
    if (!text.startsWith('0x') || !/^[0-9a-fA-F]*$/.test(text.slice(2)) || text.length % 2 !== 0) {
      throw new CairnError('INVALID_ARGUMENT', `unexpected getfattr output for ${name}`)
    }
    current.set(name, Buffer.from(text.slice(2), 'hex'))
  }
  return out
}

async function check(cmd: string, args: readonly string[]): Promise<void> {
  const res = await run(cmd, args)
  if (res.code !== 0) {
    const { errno, message } = errnoOf(res.stderr)
    const err = new Error(`${cmd} ${args.at(-1) ?? ''}: ${message}`) as NodeJS.ErrnoException
    err.code = errno
    throw err
  }
}

/** Creates a character or block device node (default mode 0600; the caller sets the final mode). Needs CAP_MKNOD. */
export async function mknod(path: string, type: 'char' | 'block', major: number, minor: number, mode = 0o600): Promise<void> {
  await check('mknod', ['-m', mode.toString(8).padStart(4, '0'), '--', path, type === 'char' ? 'c' : 'b', String(major), String(minor)])
}

/** Creates a FIFO (mode 0600; the caller sets the final mode). */
export async function mkfifo(path: string): Promise<void> {
  await check('mkfifo', ['-m', '0600', '--', path])
}
