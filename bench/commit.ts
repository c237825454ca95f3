/**
 * Benchmark: `commit` and `commit` + `push`, side by side with Docker in the same run (a private
 * dockerd 20.10 with overlay2, test/helpers/dockerd.ts), on the Debian minbase image imported
 * into both, with the same ~115 MB change made by a container in each:
 * `cp -a /usr/share /usr/lib` (about 4,900 small files, 95 MB) plus one 20 MB random file.
 *
 *   - commit: `cairn commit C` vs `docker commit C`, wall time;
 *   - commit + push: that plus pushing the new image (base layer included) to a fresh CNCF
 *     distribution registry (Debian's docker-registry) on loopback, gzip (both) and zstd (Cairn);
 *   - a ~1 GB change (four 200 MB files and 2,000 files of 100 KB, random bytes): the time of
 *     each tool's commit, and the peak memory (maximum resident set, GNU time) of `cairn commit`
 *     and of `cairn push --compression zstd` of the result. Docker's commit runs in its daemon,
 *     whose memory cannot be told apart from its other work, so there is no ratio for memory:
 *     the target is absolute (≤ 150 MB).
 *
 *   npm run build && node build/bench/commit.js [--iterations 3] [--out FILE]
 *
 * Needs root, docker.io, docker-registry, debootstrap (for the input), runc or crun.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { startDistribution, type Distribution } from '../test/helpers/distribution.js'
import { debianRootfs } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { BIG_CHANGE, exec, measured, median, everyRunAndMachine, runMain, type Cmd, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/commit.md')
const IMAGE = 'bench-debian:1'
const CHANGE = 'mkdir /data && cp -a /usr/share /data/share && cp -a /usr/lib /data/lib && head -c 20000000 /dev/urandom > /data/big && sync'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '3' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the commit benchmark needs root')
  const input = await debianRootfs({ log: (m: string) => process.stderr.write(`${m}\n`) })
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-commit-'))
  const root = join(work, 'store')
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  let dockerd: Dockerd | undefined
  let registry: Distribution | undefined
  const samples: Record<string, number[]> = {}
  const big = { commitRss: NaN, pushRss: NaN }
  const add = (k: string, v: number): void => {
    ;(samples[k] ??= []).push(v)
  }
  try {
    process.stderr.write('starting dockerd…\n')
    dockerd = await startDockerd()
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', (dockerd as Dockerd).host, ...args] })
    await exec(cairn(['import', input.tar, IMAGE]))
    await exec(docker(['import', input.tar, IMAGE]))
    for (let i = 0; i < n; i++) {
      process.stderr.write(`iteration ${i + 1}/${n}\n`)
      registry = await startDistribution()
      const reg = registry.host
      for (const tool of i % 2 === 0 ? ['cairn', 'docker'] : ['docker', 'cairn']) {
        const run = tool === 'cairn' ? cairn : docker
        const name = `c${i}`
        await exec(run(['run', '--name', name, '--network', 'none', IMAGE, 'sh', '-c', CHANGE]))
        await exec({ cmd: 'sync', args: [] })
        const tag = `${reg}/${tool}/commit:${i}`
        const commit = await exec(run(['commit', name, tag]))
        add(`${tool} commit`, commit.wallS)
        const push = await exec(run(['push', tag]))
        add(`${tool} commit+push gzip`, commit.wallS + push.wallS)
        if (tool === 'cairn') {
          // the same image pushed again with zstd, to a repository where nothing exists yet
          const ztag = `${reg}/cairn-zstd/commit:${i}`
          await exec(run(['tag', tag, ztag]))
          // as before every timed step: the gzip push's writeback is not this measurement's
          await exec({ cmd: 'sync', args: [] })
          const zpush = await exec(run(['push', '--compression', 'zstd', ztag]))
          add('cairn commit+push zstd', commit.wallS + zpush.wallS)
        }
        await exec(run(['rm', name]))
      }
      await registry.stop()
      registry = undefined
    }

    // a ~1 GB change: commit time side by side, and Cairn's peak memory for commit and push
    process.stderr.write('a ~1 GB change…\n')
    registry = await startDistribution()
    for (const tool of ['cairn', 'docker']) {
      const run = tool === 'cairn' ? cairn : docker
      await exec(run(['run', '--name', 'big', '--network', 'none', IMAGE, 'sh', '-c', BIG_CHANGE]))
      await exec({ cmd: 'sync', args: [] })
      const tag = `${registry.host}/${tool}/big:1`
      if (tool === 'cairn') {
        const c = await measured(run(['commit', 'big', tag]))
        add('cairn commit 1 GB', c.wallS)
        big.commitRss = c.maxRssMiB
        const p = await measured(run(['push', '--compression', 'zstd', tag]))
        big.pushRss = p.maxRssMiB
        add('cairn push zstd 1 GB', p.wallS)
      } else {
        add('docker commit 1 GB', (await exec(run(['commit', 'big', tag]))).wallS)
      }
      await exec(run(['rm', 'big']))
    }
    await registry.stop()
    registry = undefined
  } finally {
    await registry?.stop().catch(() => undefined)
    await removeAllContainers(root).catch(() => undefined)
    await dockerd?.stop().catch(() => undefined)
    unmountUnder(work)
    await rm(work, { recursive: true, force: true })
  }
  const m = (k: string): number => median(samples[k] ?? [NaN])
  const row = (label: string, c: string, d: string, target: string): string =>
    `| ${label} | ${m(c).toFixed(2)} | ${m(d).toFixed(2)} | ${(m(c) / m(d)).toFixed(2)}× | ${target} |`
  const report = [
    '## commit and commit + push: cairn vs docker',
    '',
    `Input: Debian bookworm minbase (${input.tar}); change: ${CHANGE}. Median of ${n} runs, wall seconds; push to a fresh CNCF distribution registry (2.8) on loopback.`,
    '',
    '| step | cairn (s) | docker (s) | cairn/docker | target |',
    '|---|---:|---:|---:|---|',
    row('commit', 'cairn commit', 'docker commit', '≤ 1×'),
    row('commit + push (gzip)', 'cairn commit+push gzip', 'docker commit+push gzip', '≤ 0.5×'),
    row('commit + push (cairn zstd, docker gzip)', 'cairn commit+push zstd', 'docker commit+push gzip', '≤ 0.2×'),
    row('commit of a ~1 GB change', 'cairn commit 1 GB', 'docker commit 1 GB', '≤ 1×'),
    '',
    `Peak memory (maximum resident set) for the ~1 GB change: \`cairn commit\` ${big.commitRss.toFixed(0)} MiB (target ≤ 150 MB), \`cairn push --compression zstd\` of it ${big.pushRss.toFixed(0)} MiB; that push took ${m('cairn push zstd 1 GB').toFixed(2)} s.`,
    '',
    ...everyRunAndMachine(samples),
  ].join('\n')
  publishReport(report, values.out)

}

runMain(main)
