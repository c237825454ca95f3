/**
 * A store with the busybox test image for container tests, and a cleanup that leaves nothing
 * behind: every container removed (with its monitor and process), every mount under the store
 * unmounted, the store deleted.
 */
import { existsSync, readdirSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { TestContext } from 'node:test'
import { Cairn } from '../../src/index.js'
import { containerCgroupsPath, removeCgroupFolders } from '../../src/runtime/cgroups.js'
import { findRuntimeBinary, probeRuntime, runtimeStateRoot } from '../../src/runtime/runtime.js'
import type { StorageDriver } from '../../src/snapshot/types.js'
import { cairn, tempDir } from '../helpers/cairn.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { requireRoot } from '../helpers/root.js'
import { requireTools } from '../helpers/tools.js'
import { killTrees, mountsUnder, procsMentioning, unmountUnder } from '../helpers/system.js'
import type { RunOptions, RunResult } from '../helpers/exec.js'

export interface ContainerStore {
  root: string
  driver: StorageDriver
  /** `cairn --root ROOT --storage-driver…`-less CLI call (the driver is recorded in the store). */
  cli(args: readonly string[], opts?: RunOptions): Promise<RunResult>
  cliOk(args: readonly string[], opts?: RunOptions): Promise<RunResult>
  cleanup(): Promise<void>
}

/** Skips (or in CI fails) unless root, busybox-static and a working OCI runtime are here. */
export async function requireContainers(t: TestContext): Promise<boolean> {
  if (!requireRoot(t, 'containers need mounts and an OCI runtime')) return false
  if (!requireTools(t, ['busybox', 'tar', 'runc'])) return false
  const runc = findRuntimeBinary('runc')
  const crun = findRuntimeBinary('crun')
  const ok = (runc && (await probeRuntime(runc)).ok) || (crun && (await probeRuntime(crun)).ok)
  if (!ok) {
    if (process.env['CI']) throw new Error('no OCI runtime works on this machine')
    t.skip('no OCI runtime works here')
    return false
  }
  return true
}

/** A fresh store holding `busybox:latest` (CMD sh), its storage driver recorded. */
export async function containerStore(driver: StorageDriver): Promise<ContainerStore> {
  const { dir, cleanup: rmDir } = await tempDir(`cairn-ctr-${driver}-`)
  const root = `${dir}/root`
  const tar = await busyboxRootfsTar()
  const c = await Cairn.open({ root })
  try {
    c.store.setSetting('storage-driver', driver)
    await c.import(tar, { reference: 'busybox:latest', changes: ['CMD ["sh"]'] })
  } finally {
    c.close()
  }
  const cli = (args: readonly string[], opts?: RunOptions): Promise<RunResult> => cairn(root, args, { timeoutMs: 60_000, ...opts })
  const cliOk = async (args: readonly string[], opts?: RunOptions): Promise<RunResult> => {
    const r = await cli(args, opts)
    if (r.code !== 0) throw new Error(`cairn ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`)
    return r
  }
  return {
    root, driver, cli, cliOk,
    cleanup: async () => {
      if (process.env['CAIRN_TEST_KEEP']) return
      await removeAllContainers(root)
      // the runtimes' state folder for this store
      await rm(dirname(runtimeStateRoot(root, 'runc')), { recursive: true, force: true })
      const left = unmountUnder(dir)
      await rmDir()
      if (left.length > 0) throw new Error(`still mounted: ${left.join(', ')}`)
    },
  }
}

/** rm -f of every container of the store, then a kill of any process still naming the store. */
export async function removeAllContainers(root: string): Promise<void> {
  let ids: string[] = []
  if (existsSync(`${root}/cairn.db`)) {
    ids = (await cairn(root, ['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean)
    if (ids.length > 0) {
      const r = await cairn(root, ['rm', '-f', ...ids])
      // what follows cleans up anyway; the log says why it had to
      if (r.code !== 0) process.stderr.write(`test cleanup: cairn rm -f exited ${String(r.code)}: ${r.stderr}\n`)
    }
  }
  // monitors of containers whose rows are gone (a test that broke something on purpose)
  for (let i = 0; i < 3; i++) {
    const procs = procsMentioning(root)
    if (procs.length === 0) break
    killTrees(procs.map((p) => p.pid))
    await sleep(100)
  }
  // the cgroups of containers whose processes were killed here (runc delete removes them otherwise)
  for (const id of ids) await removeCgroupFolders(containerCgroupsPath(id))
  unmountUnder(root)
}

/** Mount points below the store (containers' root filesystems while they run). */
export function mountsOf(root: string): string[] {
  return mountsUnder(root)
}

/** Container folders under the store. */
export function containerDirs(root: string): string[] {
  try {
    return readdirSync(`${root}/containers`)
  } catch {
    return []
  }
}
