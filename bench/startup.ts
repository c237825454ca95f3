/**
 * Benchmark: the commands that only read the store (`images`, `ps -a`, `inspect`), Cairn and the
 * Docker CLI side by side in the same run, against a running private dockerd 20.10
 * (test/helpers/dockerd.ts) that holds the same images and containers.
 *
 *   npm run build && node build/bench/startup.js [--iterations 20] [--out FILE]
 *
 * Each command is run as a user runs it (`bin/cairn …` through its code-cache launcher, `docker -H …`)
 * and timed from spawn to exit; the two tools alternate. Both stores hold the busybox test image
 * under 5 tags and 3 created containers. Cairn's target: under 80 ms for each, whatever Docker takes.
 *
 * Needs root (dockerd), docker.io, busybox-static.
 */
import { writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { exec, median, machineLine, cleanUpContainerBench, type Cmd } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/startup.md')
const IMAGE = 'bench-busybox:1'
const TARGET_S = 0.08

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', short: 'n', default: '20' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the startup benchmark needs root (dockerd)')
  const tar = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-startup-'))
  const root = join(work, 'store')
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  let dockerd: Dockerd | undefined
  const samples: Record<string, { cairn: number[]; docker: number[] }> = {}
  try {
    process.stderr.write('starting dockerd…\n')
    dockerd = await startDockerd()
    const d = dockerd
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: d.clientEnv })
    for (const run of [cairn, docker]) {
      await exec(run(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
      for (let i = 2; i <= 5; i++) await exec(run(['tag', IMAGE, `bench-busybox:${i}`]))
      for (let i = 1; i <= 3; i++) await exec(run(['create', '--name', `c${i}`, '--network', 'none', IMAGE, 'true']))
    }
    const steps: { name: string; args: string[] }[] = [
      { name: 'images', args: ['images'] },
      { name: 'ps -a', args: ['ps', '-a'] },
      { name: 'inspect IMAGE', args: ['inspect', IMAGE] },
      { name: 'inspect CONTAINER', args: ['inspect', 'c1'] },
    ]
    // one untimed round: caches (Cairn's V8 code cache per command word, the page cache) as a user has them
    for (const s of steps) {
      await exec(cairn(s.args))
      await exec(docker(s.args))
    }
    for (let i = 0; i < n; i++) {
      for (const s of steps) {
        const row = (samples[s.name] ??= { cairn: [], docker: [] })
        const order = i % 2 === 0 ? (['cairn', 'docker'] as const) : (['docker', 'cairn'] as const)
        for (const tool of order) row[tool].push((await exec(tool === 'cairn' ? cairn(s.args) : docker(s.args))).wallS)
      }
    }
    const ms = (x: number): string => (x * 1000).toFixed(1)
    const dockerVersion = (await exec(docker(['version', '--format', '{{.Server.Version}}']), true)).stdout.trim()
    let md = '# Start-up of store commands: Cairn and the Docker CLI side by side\n\n'
    md += `${machineLine()}, Node ${process.version}; `
    md += `docker ${dockerVersion} (a private dockerd, running); both stores: 1 image under 5 tags, 3 created containers. `
    md += `${n} runs of each, alternating, after one untimed round; wall time from spawn to exit.\n\n`
    md += `| command | cairn median (ms) | cairn p90 | docker median (ms) | docker p90 | cairn/docker | cairn < ${TARGET_S * 1000} ms |\n|---|---:|---:|---:|---:|---:|---|\n`
    for (const s of steps) {
      const r = samples[s.name] as { cairn: number[]; docker: number[] }
      const c = median(r.cairn)
      md += `| \`${s.name}\` | ${ms(c)} | ${ms(quantile(r.cairn, 0.9))} | ${ms(median(r.docker))} | ${ms(quantile(r.docker, 0.9))} | ${(c / median(r.docker)).toFixed(2)}× | ${c < TARGET_S ? 'yes' : 'no'} |\n`
    }
    md += '\nEvery sample (ms):\n\n'
    for (const s of steps) {
      const r = samples[s.name] as { cairn: number[]; docker: number[] }
      md += `- ${s.name}, cairn: ${r.cairn.map(ms).join(' ')}\n- ${s.name}, docker: ${r.docker.map(ms).join(' ')}\n`
    }
    process.stdout.write(md)
    writeFileSync(values.out, md)
  } finally {
    await cleanUpContainerBench([root], work, dockerd, { runcState: false })
  }
}

await main()
