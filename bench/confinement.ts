/**
 * Benchmark: what confinement costs a container's start, side by side with Docker in the same
 * run (a private dockerd 20.10 with overlay2, test/helpers/dockerd.ts), on the busybox test image
 * imported into both: `run --rm --network none IMAGE true`, wall time of the command, with
 *
 *   - Cairn's defaults (Docker's seccomp profile, capabilities, masked paths),
 *   - Cairn with `--security-opt seccomp=unconfined`,
 *   - Docker's defaults (its own seccomp profile), and Docker unconfined for the record;
 *
 * the four interleaved, their order turned each iteration, so that the machine's load falls on all
 * of them alike.
 *
 *   npm run build && node build/bench/confinement.js [--iterations 15] [--out FILE]
 *
 * Needs root, dockerd (docker.io), runc, busybox-static.
 */
import { mkdtemp } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { exec, median, machineLine, cleanUpContainerBench, type Cmd, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/confinement.md')
const IMAGE = 'bench-busybox:1'

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '15' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the confinement benchmark needs root')
  const tar = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-conf-'))
  const root = join(work, 'root')
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  let dockerd: Dockerd | undefined
  try {
    process.stderr.write('starting dockerd…\n')
    dockerd = await startDockerd()
    const d = dockerd
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: d.clientEnv })
    await exec(docker(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    await exec(cairn(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    const run = ['run', '--rm', '--network', 'none']
    const unconfined = ['--security-opt', 'seccomp=unconfined']
    const variants: [string, Cmd][] = [
      ['cairn', cairn([...run, IMAGE, 'true'])],
      ['cairn unconfined', cairn([...run, ...unconfined, IMAGE, 'true'])],
      ['docker', docker([...run, IMAGE, 'true'])],
      ['docker unconfined', docker([...run, ...unconfined, IMAGE, 'true'])],
    ]
    // both really are confined, or not
    const mode = async (c: Cmd): Promise<string> => /Seccomp:\s+(\d)/.exec((await exec({ ...c, args: [...c.args.slice(0, -1), 'grep', 'Seccomp:', '/proc/self/status'] })).stdout)?.[1] ?? '?'
    const modes = await Promise.all(variants.map(async ([name, c]) => `${name}: Seccomp ${await mode(c)}`))
    await exec(cairn(['run', '--name', 'probe', '--network', 'none', IMAGE, 'true']))
    const rt = (JSON.parse((await exec(cairn(['inspect', 'probe']))).stdout) as { HostConfig: { Runtime: string } }[])[0]?.HostConfig.Runtime ?? '?'
    await exec(cairn(['rm', 'probe']))
    for (const [, c] of variants) await exec(c) // warm-up
    const samples: Record<string, number[]> = Object.fromEntries(variants.map(([name]) => [name, []]))
    process.stderr.write(`run --rm true × ${n} × ${variants.length}…\n`)
    const loadBefore = loadavg()[0] ?? 0
    for (let i = 0; i < n; i++) {
      // the order turns each iteration, so that no variant always follows the same one (and its clean-up)
      for (let j = 0; j < variants.length; j++) {
        const [name, c] = variants[(i + j) % variants.length] as [string, Cmd]
        samples[name]?.push((await exec(c)).wallS)
      }
    }
    const loadAfter = loadavg()[0] ?? 0
    const med = (k: string): number => median(samples[k] ?? [])
    const ms = (x: number): string => (x * 1000).toFixed(1)
    const fmt = (x: number): string => x.toFixed(3)
    const dockerVersion = (await exec(docker(['version', '--format', '{{.Server.Version}}']), true)).stdout.trim()
    let md = `# Confinement: what the seccomp filter costs a container's start, Cairn and Docker side by side\n\n`
    md += `${machineLine()}; `
    md += `docker ${dockerVersion} (overlay2, private dockerd), Cairn with ${rt} on overlay; \`run --rm --network none IMAGE true\`, `
    md += `${n} runs of each, interleaved (the order turned each iteration); medians (wall seconds). Load average (1 min) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after `
    md += `(above the number of CPUs: other work shared the machine, and every variant ran slower for it).\n\n`
    md += `| variant | median (s) | min (s) |\n|---|---:|---:|\n`
    for (const [name] of variants) md += `| ${name} | ${fmt(med(name))} | ${fmt(Math.min(...(samples[name] ?? [])))} |\n`
    md += `\n| figure | value |\n|---|---:|\n`
    md += `| Cairn: confinement adds (default − unconfined) | ${ms(med('cairn') - med('cairn unconfined'))} ms |\n`
    md += `| Docker: confinement adds (default − unconfined) | ${ms(med('docker') - med('docker unconfined'))} ms |\n`
    // each iteration runs the four back to back: the difference within an iteration is less moved by the machine's load than that of the medians
    const paired = (a: string, b: string): number => median((samples[a] ?? []).map((x, i) => x - (samples[b]?.[i] ?? x)))
    md += `| Cairn: median of the differences within an iteration | ${ms(paired('cairn', 'cairn unconfined'))} ms |\n`
    md += `| Docker: median of the differences within an iteration | ${ms(paired('docker', 'docker unconfined'))} ms |\n`
    md += `| Cairn default / Cairn unconfined | ${(med('cairn') / med('cairn unconfined')).toFixed(2)}× |\n`
    md += `| Cairn default / Docker default | ${(med('cairn') / med('docker')).toFixed(2)}× |\n`
    md += `\nSeccomp mode in each (2: filtered, 0: none): ${modes.join('; ')}.\n\nEvery sample (s):\n\n`
    for (const [name] of variants) md += `- ${name}: ${(samples[name] ?? []).map(fmt).join(' ')}\n`
    publishReport(md, values.out)
  } finally {
    await cleanUpContainerBench([root], work, dockerd)
  }
}

await main()
