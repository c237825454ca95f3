import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { buffer } from 'node:stream/consumers'
import { run, type RunOptions, type RunResult } from './exec.js'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'

/** The `cairn` command as users run it (bin/cairn: the bundled CLI in build/cli/). */
export const CLI = fileURLToPath(new URL('../../../bin/cairn', import.meta.url))

/** Runs `cairn --root ROOT ARGS…`. */
export async function cairn(root: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(CLI, ['--root', root, ...args], opts)
}

/** Like `cairn`, but fails the test with the command's stderr on a non-zero exit. */
export async function cairnOk(root: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await cairn(root, args, opts)
  if (r.code !== 0) throw new Error(`cairn ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`)
  return r
}

/** A fresh temporary folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'cairn-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(`${tmpdir()}/${prefix}`)
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** A small root filesystem tarball built in memory: files as path → content. */
export async function tarOf(files: Record<string, string>, mtime = 1_700_000_000): Promise<Buffer> {
  const entries: TarEntryInput[] = []
  const dirs = new Set<string>()
  for (const path of Object.keys(files).sort()) {
    const parts = path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/')
      if (!dirs.has(d)) {
        dirs.add(d)
        entries.push({ header: { path: `${d}/`, type: 'directory', mode: 0o755, mtime } })
      }
    }
    const body = Buffer.from(files[path] ?? '')
    entries.push({ header: { path, type: 'file', mode: 0o644, size: body.length, mtime }, body })
  }
  return buffer(writeTar(entries))
}
