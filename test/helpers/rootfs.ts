/**
 * Root filesystems for interop tests and benchmarks, built from Debian's own packages and cached:
 * - busyboxRootfsTar(): a tiny, byte-for-byte reproducible rootfs tarball (busybox-static);
 * - debianRootfs(): a `debootstrap --variant=minbase` tree and its tarball (~200 MB), for benchmarks.
 */
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { runOk, tail } from './exec.js'
import { isAlive, unmountUnder } from './system.js'
import { missingTools, Tools } from './tools.js'

/**
 * Where built artifacts are kept between runs: $CAIRN_TEST_CACHE, else /var/cache/cairn-test as root,
 * else a per-user dir under the system temp dir.
 */
export function testCacheDir(): string {
  const env = process.env['CAIRN_TEST_CACHE']
  if (env) return env
  const uid = process.getuid?.() ?? 0
  return uid === 0 ? '/var/cache/cairn-test' : join(tmpdir(), `cairn-test-cache-${uid}`)
}

// --- busybox ----------------------------------------------------------------------------------

/** Bump when the recipe below changes, so cached tarballs are rebuilt. */
const BUSYBOX_RECIPE = 1

/** Applets linked in /bin (those the installed busybox lacks are left out). */
const APPLETS = [
  '[', 'ash', 'basename', 'cat', 'chmod', 'chown', 'cp', 'cut', 'date', 'dd', 'df', 'dirname', 'du', 'echo', 'env',
  'false', 'find', 'grep', 'gunzip', 'gzip', 'head', 'hostname', 'id', 'kill', 'ln', 'ls', 'mkdir', 'mount', 'mv',
  'printf', 'ps', 'pwd', 'readlink', 'rm', 'rmdir', 'sed', 'sh', 'sha256sum', 'sleep', 'sort', 'stat', 'sync', 'tail',
  'tar', 'test', 'touch', 'tr', 'true', 'umount', 'uname', 'uniq', 'vi', 'wc', 'which', 'whoami', 'xargs',
] as const

/** A fixed mtime (2024-01-01T00:00:00Z) for every entry, so the tarball's bytes depend on nothing else. */
const EPOCH = 1_704_067_200

/**
 * A minimal root filesystem tarball: /bin/busybox from busybox-static with applet symlinks (sh, ls, cat,
 * echo, ...), /etc/passwd and /etc/group (root, nobody), /tmp (1777), /root (0700), and a few test files
 * under /usr/share/cairn: `hello.txt`, a symlink and a hard link to it, and a 0600 `secret`.
 * `docker import` of it followed by `docker run IMAGE /bin/sh -c 'echo hi'` prints `hi`.
 *
 * Reproducible: same busybox binary, same bytes (sorted names, uid/gid 0, fixed mtime, GNU format).
 * Cached as `busybox-rootfs-<key>.tar` in `dir` (default testCacheDir()); returns its path.
 */
export async function busyboxRootfsTar(dir: string = testCacheDir()): Promise<string> {
  const missing = missingTools(['busybox', 'tar'])
  if (missing.length > 0) throw new Error(`missing ${missing.map((m) => Tools[m]).join(', ')} (run scripts/ensure-deps.sh)`)
  const busybox = await readFile(Tools.busybox)
  if (!isStaticElf(busybox)) {
    throw new Error(`${Tools.busybox} is dynamically linked: install busybox-static (not busybox) for a self-contained rootfs`)
  }
  const key = createHash('sha256').update(`recipe ${BUSYBOX_RECIPE}\n`).update(busybox).digest('hex').slice(0, 16)
  const out = join(dir, `busybox-rootfs-${key}.tar`)
  if (existsSync(out)) return out

  mkdirSync(dir, { recursive: true })
  const stage = mkdtempSync(join(dir, '.busybox-stage-'))
  try {
    const root = join(stage, 'rootfs')
    const applets = new Set((await runOk(Tools.busybox, ['--list'])).stdout.split('\n'))
    layOutBusybox(root, busybox, APPLETS.filter((a) => applets.has(a)))
    const tmp = join(stage, 'rootfs.tar')
    await runOk(Tools.tar, [
      '--create', '--file', tmp, '--directory', root,
      '--format=gnu', '--sort=name', '--numeric-owner', '--owner=0', '--group=0', `--mtime=@${EPOCH}`,
      '.',
    ])
    renameSync(tmp, out) // atomic: a concurrent builder produces the same bytes
    return out
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

function layOutBusybox(root: string, busybox: Buffer, applets: readonly string[]): void {
  const dirs: Array<[string, number]> = [
    ['', 0o755], ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o555], ['root', 0o700],
    ['sys', 0o555], ['tmp', 0o1777], ['usr', 0o755], ['usr/share', 0o755], ['usr/share/cairn', 0o755],
    ['var', 0o755], ['var/tmp', 0o1777],
  ]
  for (const [d] of dirs) mkdirSync(join(root, d), { recursive: true })
  const file = (path: string, content: string | Buffer, mode: number): void => {
    writeFileSync(join(root, path), content)
    chmodSync(join(root, path), mode)
  }
  file('bin/busybox', busybox, 0o755)
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a))
  file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 0o644)
  file('etc/group', 'root:x:0:\nnogroup:x:65534:\n', 0o644)
  file('etc/motd', 'cairn busybox test rootfs\n', 0o644)
  file('usr/share/cairn/hello.txt', 'hello from the cairn test rootfs\n', 0o644)
  file('usr/share/cairn/secret', 'only root reads this\n', 0o600)
  symlinkSync('hello.txt', join(root, 'usr/share/cairn/hello-symlink.txt'))
  linkSync(join(root, 'usr/share/cairn/hello.txt'), join(root, 'usr/share/cairn/hello-hardlink.txt'))
  // After the files: chmod of a dir last, so 0555/0700 modes don't stop the writes above.
  for (const [d, mode] of [...dirs].reverse()) chmodSync(join(root, d), mode)
}

/** True for an ELF file without a PT_INTERP program header (no dynamic loader needed). */
function isStaticElf(bin: Buffer): boolean {
  if (bin.length < 64 || bin.readUInt32BE(0) !== 0x7f454c46) return false
  const is64 = bin[4] === 2
  const le = bin[5] === 1
  const u16 = (o: number): number => (le ? bin.readUInt16LE(o) : bin.readUInt16BE(o))
  const u32 = (o: number): number => (le ? bin.readUInt32LE(o) : bin.readUInt32BE(o))
  const phoff = is64 ? Number(le ? bin.readBigUInt64LE(0x20) : bin.readBigUInt64BE(0x20)) : u32(0x1c)
  const phentsize = u16(is64 ? 0x36 : 0x2a)
  const phnum = u16(is64 ? 0x38 : 0x2c)
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize
    if (off + 4 > bin.length) return false
    if (u32(off) === 3 /* PT_INTERP */) return false
  }
  return true
}

// --- Debian minbase ---------------------------------------------------------------------------

export interface DebianRootfs {
  /** The debootstrapped tree. Don't modify it: it is shared by every run that uses the cache. */
  dir: string
  /** `tar --numeric-owner --xattrs --sort=name -C dir -cf tar .` of it. */
  tar: string
  suite: string
  mirror: string
  /** Seconds the build took now, or undefined when both came from the cache. */
  builtInSeconds?: { debootstrap?: number; tar?: number }
}

export interface DebianRootfsOptions {
  /** Default 'bookworm'. */
  suite?: string
  /** Default: $CAIRN_DEBIAN_MIRROR, else the mirror apt itself uses for the suite. */
  mirror?: string
  /** Default testCacheDir(). */
  cacheDir?: string
  /** Progress lines (debootstrap takes minutes); default silent. */
  log?: (line: string) => void
}

/**
 * `debootstrap --variant=minbase SUITE DIR MIRROR`, built once (as root) and cached as
 * `<cache>/debian-minbase` (plus `-SUITE` for a suite other than bookworm), with its tarball beside it.
 * Concurrent callers (test files run in parallel) wait for one build through a lock file.
 */
export async function debianRootfs(opts: DebianRootfsOptions = {}): Promise<DebianRootfs> {
  const suite = opts.suite ?? 'bookworm'
  const cache = opts.cacheDir ?? testCacheDir()
  const name = suite === 'bookworm' ? 'debian-minbase' : `debian-${suite}-minbase`
  const dir = join(cache, name)
  const tar = `${dir}.tar`
  const log = opts.log ?? ((): void => {})
  const mirror = opts.mirror ?? process.env['CAIRN_DEBIAN_MIRROR'] ?? aptMirror(suite)
  if (existsSync(dir) && existsSync(tar)) return { dir, tar, suite, mirror }

  if (process.getuid?.() !== 0) throw new Error('debianRootfs builds with debootstrap, which needs root')
  const missing = missingTools(['debootstrap', 'tar'])
  if (missing.length > 0) throw new Error(`missing ${missing.map((m) => Tools[m]).join(', ')} (run scripts/ensure-deps.sh)`)

  mkdirSync(cache, { recursive: true })
  return withLock(join(cache, `${name}.lock`), async () => {
    const built: { debootstrap?: number; tar?: number } = {}
    if (!existsSync(dir)) {
      const work = mkdtempSync(join(cache, `.${name}-`))
      const target = join(work, 'rootfs')
      log(`debootstrap --variant=minbase ${suite} ${dir} ${mirror} (a few minutes)`)
      const t0 = performance.now()
      try {
        await runOk(Tools.debootstrap, ['--variant=minbase', suite, target, mirror], {
          env: { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env['PATH'] ?? ''}`, DEBIAN_FRONTEND: 'noninteractive' },
        })
      } catch (err) {
        const dlog = join(target, 'debootstrap', 'debootstrap.log')
        const detail = existsSync(dlog) ? `\ndebootstrap.log:\n${tail(readFileSync(dlog, 'utf8'), 3000)}` : ''
        unmountUnder(work) // debootstrap mounts /proc and /sys in the target and may die with them mounted
        rmSync(work, { recursive: true, force: true })
        throw new Error(`${err instanceof Error ? err.message : String(err)}${detail}`)
      }
      if (unmountUnder(work).length > 0) throw new Error(`debootstrap left mounts under ${work}`)
      built.debootstrap = (performance.now() - t0) / 1000
      renameSync(target, dir)
      rmSync(work, { recursive: true, force: true })
    }
    if (!existsSync(tar)) {
      log(`tar of ${dir}`)
      const t0 = performance.now()
      const tmp = `${tar}.tmp-${process.pid}`
      await runOk(Tools.tar, ['--numeric-owner', '--xattrs', '--sort=name', '-C', dir, '-cf', tmp, '.'])
      await rename(tmp, tar)
      built.tar = (performance.now() - t0) / 1000
    }
    log(`debian minbase: ${dir} (${((await stat(tar)).size / 2 ** 20).toFixed(0)} MiB tarball)`)
    return { dir, tar, suite, mirror, builtInSeconds: built }
  })
}

/** The first http(s)/file URI apt's sources list for `suite` (deb822 .sources or one-line .list). */
function aptMirror(suite: string, etc = '/etc/apt'): string {
  const files: string[] = []
  if (existsSync(join(etc, 'sources.list'))) files.push(join(etc, 'sources.list'))
  try {
    for (const f of readdirSync(join(etc, 'sources.list.d')).sort()) files.push(join(etc, 'sources.list.d', f))
  } catch {
    // no sources.list.d
  }
  const usable = (uri: string): boolean => /^(https?|file):\/\//.test(uri)
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = parseDeb822(stanza)
        if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue
        if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue
        if (!(fields.get('suites') ?? '').split(/\s+/).includes(suite)) continue
        const uri = (fields.get('uris') ?? '').split(/\s+/).find(usable)
        if (uri) return uri
      }
    } else if (file.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const words = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/)
        if (words[0] === 'deb' && words[2] === suite && words[1] && usable(words[1])) return words[1]
      }
    }
  }
  return 'http://deb.debian.org/debian'
}

function parseDeb822(stanza: string): Map<string, string> {
  const fields = new Map<string, string>()
  let last: string | undefined
  for (const line of stanza.split('\n')) {
    if (line.startsWith('#')) continue
    if (/^\s/.test(line) && last) {
      fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`)
      continue
    }
    const m = /^([^:\s]+):\s*(.*)$/.exec(line)
    if (m?.[1]) {
      last = m[1].toLowerCase()
      fields.set(last, (m[2] ?? '').trim())
    }
  }
  return fields
}

/** Runs fn holding an exclusive lock file (with the holder's pid; a dead holder's lock is taken over). */
async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const fh = await open(lock, 'wx')
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = Number((await readFile(lock, 'utf8').catch(() => '')).trim())
      if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
        await unlink(lock).catch(() => {})
        continue
      }
      await sleep(1000)
    }
  }
  try {
    return await fn()
  } finally {
    await unlink(lock).catch(() => {})
  }
}
