/**
 * Benchmark: the client's peak memory (maximum resident set, GNU time) with a ~1 GB layer, for
 * every verb that streams one: `commit` of a container that wrote ~1 GB (four 200 MB files and
 * 2,000 files of 100 KB, random bytes, on busybox), `push` of the image (gzip, then zstd) to a
 * CNCF distribution registry (Debian's docker-registry) on loopback, and `pull` of each into a
 * fresh store. The target is absolute (≤ 150 MB, 143 MiB): Docker's work runs in its daemon,
 * whose memory cannot be told apart from its other work, so there is no ratio.
 *
 *   npm run build && node build/bench/memory.js [--iterations 3] [--out FILE]
 *
 * Needs root, docker-registry, runc or crun; about 2 minutes per iteration here.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { BIG_CHANGE, exec, measured, median, everyRunAndMachine, runMain, type Cmd, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/memory.md')
const TARGET_MIB = 150e6 / 2 ** 20

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '3' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the memory benchmark needs root')
  const busybox = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-memory-'))
  const roots: string[] = []
  let registry: Distribution | undefined
  const rss: Record<string, number[]> = {}
  const wall: Record<string, number[]> = {}
  const add = (k: string, r: { wallS: number; maxRssMiB: number }): void => {
    ;(rss[k] ??= []).push(r.maxRssMiB)
    ;(wall[k] ??= []).push(r.wallS)
  }
  try {
    registry = await startDistribution({ parentDir: work })
    const reg = registry.host
    for (let i = 0; i < n; i++) {
      process.stderr.write(`iteration ${i + 1}/${n}\n`)
      const src = join(work, `src-${i}`)
      // a store per pull: the zstd image has the gzip one's config, and a store that has the
      // image pulls nothing
      const dstGzip = join(work, `dst-gzip-${i}`)
      const dstZstd = join(work, `dst-zstd-${i}`)
      roots.push(src, dstGzip, dstZstd)
      const cairn = (root: string, args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
      await exec(cairn(src, ['import', '-c', 'CMD ["sh"]', busybox, 'busybox:latest']))
      await exec(cairn(src, ['run', '--name', 'big', '--network', 'none', 'busybox:latest', 'sh', '-c', BIG_CHANGE]))
      const gz = `${reg}/mem-gzip/big:${i}`
      const zs = `${reg}/mem-zstd/big:${i}`
      add('commit', await measured(cairn(src, ['commit', 'big', gz])))
      await exec(cairn(src, ['rm', 'big']))
      await exec(cairn(src, ['tag', gz, zs]))
      await exec({ cmd: 'sync', args: [] })
      add('push gzip', await measured(cairn(src, ['push', gz])))
      await exec({ cmd: 'sync', args: [] })
      add('push zstd', await measured(cairn(src, ['push', '--compression', 'zstd', zs])))
      await exec({ cmd: 'sync', args: [] })
      add('pull gzip', await measured(cairn(dstGzip, ['pull', gz])))
      await exec({ cmd: 'sync', args: [] })
      add('pull zstd', await measured(cairn(dstZstd, ['pull', zs])))
      for (const r of [src, dstGzip, dstZstd]) await rm(r, { recursive: true, force: true })
    }
  } finally {
    await registry?.stop().catch(() => undefined)
    for (const r of roots) await removeAllContainers(r).catch(() => undefined)
    unmountUnder(work)
    await rm(work, { recursive: true, force: true })
  }
  const row = (k: string): string => {
    const peak = Math.max(...(rss[k] ?? [NaN]))
    return `| \`${k}\` | ${median(rss[k] ?? [NaN]).toFixed(0)} | ${peak.toFixed(0)} | ${median(wall[k] ?? [NaN]).toFixed(2)} | ${peak <= TARGET_MIB ? 'yes' : 'no'} |`
  }
  const samples: Record<string, number[]> = {}
  for (const [k, v] of Object.entries(rss)) samples[`${k} peak RSS (MiB)`] = v.map((x) => Math.round(x))
  for (const [k, v] of Object.entries(wall)) samples[`${k} wall (s)`] = v
  const report = [
    '## client memory with a ~1 GB layer',
    '',
    `A container on busybox writes ~1 GB (four 200 MB files and 2,000 files of 100 KB, random bytes); its commit is pushed (gzip, then zstd) to a CNCF distribution registry (2.8) on loopback and pulled back into a fresh store. Peak resident set of each command (GNU time), ${n} runs. Target: ≤ 150 MB (${TARGET_MIB.toFixed(0)} MiB) for every one.`,
    '',
    '| command | median peak RSS (MiB) | highest (MiB) | median wall (s) | within 150 MB |',
    '|---|---:|---:|---:|---|',
    ...['commit', 'push gzip', 'push zstd', 'pull gzip', 'pull zstd'].map(row),
    '',
    ...everyRunAndMachine(samples),
  ].join('\n')
  publishReport(report, values.out)
}

runMain(main)
