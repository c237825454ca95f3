/**
 * Bundles the `cairn` command and the container monitor into `build/cli/main.cjs` and
 * `build/cli/shim.cjs` (run by `npm run build` after tsc): one CommonJS file each instead of
 * some sixty ES modules, which Node.js resolves, links and compiles one by one at every start;
 * and CommonJS because a V8 code cache can be given to it on Node.js 20 (see src/cli/launch.cts).
 * A command's start-up time is paid at every invocation, and the monitor's at every container
 * start. The library (`build/src/`) is not bundled.
 *
 * Native modules stay external: better-sqlite3 and zstd-napi load their own binaries, and are
 * resolved from `node_modules` as usual.
 */
import { build } from 'esbuild'
import { copyFile, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const OUT = `${PROJECT}build/cli`

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
  external: ['better-sqlite3', 'zstd-napi', '@lydell/node-pty'],
  // import.meta.url of the modules is the bundle's own URL
  define: { 'import.meta.url': 'cairnBundleUrl' },
  banner: { js: "const cairnBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  logLevel: 'warning',
})
// the code-cache launcher (src/cli/launch.cts, compiled by tsc) goes beside the bundles it starts
await copyFile(`${PROJECT}build/src/cli/launch.cjs`, `${OUT}/launch.cjs`)
