/**
 * Bundles the `cairn` command and the container monitor into `build/cli/main.cjs` and
 * `build/cli/shim.cjs` (run by `npm run build` after tsc): one CommonJS file each instead of
 * some sixty ES modules, which Node.js resolves, links and compiles one by one at every start;
 * and CommonJS because a V8 code cache can be given to it on Node.js 20 (see src/cli/launch.cts).
 * A command's start-up time is paid at every invocation, and the monitor's at every container
 * start. The library (`build/src/`) is not bundled.
 *
 * better-sqlite3's JavaScript is bundled (its addon file is loaded by path, see src/util/sqlite.ts);
 * `bindings` (its fallback addon finder), zstd-napi and @lydell/node-pty (which loads its own
 * prebuilt binary) stay external and are resolved from `node_modules` as usual.
 */
import { build, type Plugin } from 'esbuild'
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const OUT = `${PROJECT}build/cli`

/**
 * commander loads node:child_process when it is loaded, for executable subcommands Cairn never
 * uses; child_process (and node:net with it) is then compiled at every start of every command. Here
 * it is loaded when commander first spawns, which is never. Should commander's source change, the
 * file is bundled as it is.
 */
const lazyChildProcess: Plugin = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const eager = "const childProcess = require('node:child_process');"
      const lazy = "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"
      return { contents: source.replace(eager, lazy), loader: 'js' }
    })
  },
}

await rm(OUT, { recursive: true, force: true })
await build({
  absWorkingDir: PROJECT,
  entryPoints: { main: 'build/src/cli/main.js', shim: 'build/src/container/shim.js' },
  outdir: OUT,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['bindings', 'zstd-napi', '@lydell/node-pty'],
  plugins: [lazyChildProcess],
  // import.meta.url of the modules is the bundle's own URL
  define: { 'import.meta.url': 'cairnBundleUrl' },
  banner: { js: "const cairnBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  // less to read and to scan at every start (names are kept: errors and profiles read as the source)
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
})
// the code-cache launcher (src/cli/launch.cts, compiled by tsc) goes beside the bundles it starts
await copyFile(`${PROJECT}build/src/cli/launch.cjs`, `${OUT}/launch.cjs`)
// Docker's default seccomp profile is read at run time from beside the module that loads it:
// the library's (build/src/runtime/) and the bundles' (build/cli/)
for (const dir of [`${PROJECT}build/src/runtime/seccomp`, `${OUT}/seccomp`]) {
  await mkdir(dir, { recursive: true })
  await copyFile(`${PROJECT}src/runtime/seccomp/default.json`, `${dir}/default.json`)
}
