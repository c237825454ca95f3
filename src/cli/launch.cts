/**
 * Starts a bundled entry point of Cairn (`build/cli/main.cjs`, or the monitor `shim.cjs`) with a
 * V8 code cache, so that a command does not compile the same JavaScript again at every start
 * (the bundle step copies this file beside the bundles):
 *
 *   node build/cli/launch.cjs build/cli/main.cjs ARGS…
 *
 * On Node.js ≥ 22.1 this is `module.enableCompileCache()`. On older versions the bundle is
 * compiled through `vm.Script` with the cached data of an earlier run of the same command word
 * (`run`, `diff`, …: each uses other functions) and of the same bundle file, and a command whose
 * cache was missing or rejected (another Node.js version) writes a new one as it exits. The cache
 * lives in `.v8cache/` beside the bundle; where that cannot be written, commands just run
 * without one.
 */
import fs = require('node:fs')
import os = require('node:os')
import path = require('node:path')
import vm = require('node:vm')
import v8 = require('node:v8')
import nodeModule = require('node:module')

// libuv's pool (4 threads unless told) runs file I/O and gzip blocks: a thread per core and one
// more for compression (at most 8, MAX_COMPRESSION_SLOTS in src/layer/pgzip.ts), and two for I/O.
// Read once, at the pool's first use, which is later than this.
if (process.env['UV_THREADPOOL_SIZE'] === undefined) process.env['UV_THREADPOOL_SIZE'] = String(Math.max(4, Math.min(os.availableParallelism() + 1, 8) + 2))

const bundle = fs.realpathSync(path.resolve(process.argv[2] ?? ''))
// the bundle sees itself as the script that runs, and its own arguments after it
process.argv.splice(1, 2, bundle)
const cacheDir = path.join(path.dirname(bundle), '.v8cache')

type WithCompileCache = typeof nodeModule & { enableCompileCache?: (dir?: string) => unknown }

/** The command word (the first argument that is not an option or the value of --root). */
function commandWord(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === '--root') i++
    else if (!a.startsWith('-')) return a.replace(/[^a-z0-9-]/gi, '_')
  }
  return '_'
}

function writeAtomic(file: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`
  const fd = fs.openSync(tmp, 'w', 0o644)
  try {
    fs.writeSync(fd, data)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
}

function runWithCache(): void {
  // V8 checks cached data against the source's length only: the name holds the bundle's size
  // and modification time, so that a rebuilt bundle never meets the code of the old one
  const st = fs.statSync(bundle)
  // the command's functions differ by command word; another bundle (the monitor) has one cache
  const word = path.basename(bundle) === 'main.cjs' ? commandWord(process.argv.slice(2)) : '_'
  const cacheFile = path.join(cacheDir, `${path.basename(bundle)}.${word}.${st.size}-${Math.floor(st.mtimeMs)}`)
  let cachedData: Buffer | undefined
  try {
    cachedData = fs.readFileSync(cacheFile)
  } catch {
    cachedData = undefined
  }
  const source = fs.readFileSync(bundle, 'utf8').replace(/^#!.*/, '')
  const script = new vm.Script(nodeModule.wrap(source), cachedData ? { filename: bundle, cachedData } : { filename: bundle })
  // CAIRN_DEBUG: says what became of the cache (the test of this file asks)
  if (process.env['CAIRN_DEBUG'] !== undefined && process.env['CAIRN_DEBUG'] !== '') {
    process.stderr.write(`cairn: code cache ${path.basename(cacheFile)}: ${cachedData === undefined ? 'none' : script.cachedDataRejected === true ? 'rejected' : 'accepted'}\n`)
  }
  if (cachedData === undefined || script.cachedDataRejected === true) {
    // the cache is made as this command exits, from the code it ran: V8 would by then have dropped
    // the bytecode of functions that ran only at the start (the bundle's module bodies) in its
    // collections, and every later start would compile them again (a no-change build's start:
    // 17 ms more with a cache written by a long first build). Kept in this one process.
    v8.setFlagsFromString('--no-flush-bytecode')
    process.once('exit', () => {
      // back to V8's default first: the cache carries a hash of the flags and is refused where
      // they differ
      v8.setFlagsFromString('--flush-bytecode')
      try {
        // a read-only install: no cache (and no time spent serializing one)
        fs.mkdirSync(cacheDir, { recursive: true })
        fs.accessSync(cacheDir, fs.constants.W_OK)
        writeAtomic(cacheFile, script.createCachedData())
      } catch {
        // no cache this time
      }
    })
  }
  const mod = new nodeModule.Module(bundle, module)
  mod.filename = bundle
  const fn = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void
  fn.call(mod.exports, mod.exports, nodeModule.createRequire(bundle), mod, bundle, path.dirname(bundle))
}

const withCache = nodeModule as WithCompileCache
if (typeof withCache.enableCompileCache === 'function') {
  withCache.enableCompileCache(cacheDir)
  require(bundle)
} else {
  runWithCache()
}
