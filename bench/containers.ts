/**
 * Benchmark: containers, side by side with Docker in the same run (a private dockerd 20.10 with
 * overlay2, test/helpers/dockerd.ts), on the busybox test image imported into both:
 *
 *   - start-to-exit: `run --rm --network none IMAGE true`, wall time of the command;
 *   - diff: `diff CONTAINER` of a container that changed ~100 MB (one 80 MB file and 4000 files
 *     of 5 KB), on overlay (both) and, for the record, on Cairn's native driver, whose diff
 *     compares the whole tree with the image (its cost follows the image, not the change).
 *
 *   npm run build && node build/bench/containers.js [--iterations 10] [--out FILE]
 *
 * Needs root, dockerd (docker.io), runc or crun, busybox-static.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { exec, median, machineLine, cleanUpContainerBench, type Cmd, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/containers.md')
const IMAGE = 'bench-busybox:1'
/** ~100 MB of change: one 80 MB file, and 4000 files of 5 KB. */
const CHANGE_SCRIPT = 'dd if=/dev/zero of=/big bs=1M count=80 2>/dev/null && mkdir /many && cd /many && seq 1 4000 | xargs -n 200 sh -c \'for f; do head -c 5120 /dev/zero > "$f"; done\' sh && sync'

interface Row {
  step: string
  samples: Record<string, number[]>
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '10' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the container benchmark needs root')
  const tar = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-ctr-'))
  const roots = { overlay: join(work, 'overlay'), native: join(work, 'native') }
  const cairn = (root: string, args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  let dockerd: Dockerd | undefined
  const rows: Row[] = []
  try {
    process.stderr.write('starting dockerd…\n')
    dockerd = await startDockerd()
    const d = dockerd
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: d.clientEnv })
    await exec(docker(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    for (const [driver, root] of Object.entries(roots)) {
      await exec(cairn(root, ['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
      // record the driver before the first container (the store remembers it)
      await exec(cairn(root, ['run', '--rm', '--network', 'none', '--storage-driver', driver, IMAGE, 'true']))
    }
    await exec(cairn(roots.overlay, ['run', '--name', 'probe', IMAGE, 'true']))
    const rt = (JSON.parse((await exec(cairn(roots.overlay, ['inspect', 'probe']))).stdout) as { HostConfig: { Runtime: string } }[])[0]?.HostConfig.Runtime ?? '?'
    await exec(cairn(roots.overlay, ['rm', 'probe']))

    // start-to-exit
    process.stderr.write(`run --rm true × ${n}…\n`)
    const run: Row = { step: 'run --rm IMAGE true', samples: { cairn: [], docker: [] } }
    await exec(docker(['run', '--rm', '--network', 'none', IMAGE, 'true'])) // warm-up
    for (let i = 0; i < n; i++) {
      run.samples['docker']?.push((await exec(docker(['run', '--rm', '--network', 'none', IMAGE, 'true']))).wallS)
      run.samples['cairn']?.push((await exec(cairn(roots.overlay, ['run', '--rm', '--network', 'none', IMAGE, 'true']))).wallS)
    }
    rows.push(run)

    // diff of a ~100 MB change
    process.stderr.write('diff of a ~100 MB change…\n')
    await exec(docker(['run', '--name', 'changed', '--network', 'none', IMAGE, 'sh', '-c', CHANGE_SCRIPT]))
    for (const root of Object.values(roots)) await exec(cairn(root, ['run', '--name', 'changed', '--network', 'none', IMAGE, 'sh', '-c', CHANGE_SCRIPT]))
    const diff: Row = { step: 'diff (~100 MB change)', samples: { cairn: [], docker: [], 'cairn native': [] } }
    const lines = { cairn: 0, docker: 0, native: 0 }
    for (let i = 0; i < n; i++) {
      const dk = await exec(docker(['diff', 'changed']))
      diff.samples['docker']?.push(dk.wallS)
      lines.docker = dk.stdout.split('\n').filter(Boolean).length
      const ck = await exec(cairn(roots.overlay, ['diff', 'changed']))
      diff.samples['cairn']?.push(ck.wallS)
      lines.cairn = ck.stdout.split('\n').filter(Boolean).length
      const nk = await exec(cairn(roots.native, ['diff', 'changed']))
      diff.samples['cairn native']?.push(nk.wallS)
      lines.native = nk.stdout.split('\n').filter(Boolean).length
    }
    rows.push(diff)
    await exec(docker(['rm', '-f', 'changed']))

    const fmt = (x: number): string => x.toFixed(3)
    const dockerVersion = (await exec(docker(['version', '--format', '{{.Server.Version}}']), true)).stdout.trim()
    let md = `# Containers: Cairn and Docker side by side\n\n`
    md += `${machineLine()}; `
    md += `docker ${dockerVersion} (overlay2, private dockerd), Cairn with ${rt} on overlay; ${n} runs each, medians (wall seconds).\n\n`
    md += `| step | cairn (s) | docker (s) | cairn/docker | cairn min | docker min |\n|---|---:|---:|---:|---:|---:|\n`
    for (const r of rows) {
      const c = r.samples['cairn'] ?? []
      const dk = r.samples['docker'] ?? []
      md += `| ${r.step} | ${fmt(median(c))} | ${fmt(median(dk))} | ${(median(c) / median(dk)).toFixed(2)}× | ${fmt(Math.min(...c))} | ${fmt(Math.min(...dk))} |\n`
    }
    const nat = diff.samples['cairn native'] ?? []
    md += `\nCairn's native driver, same diff: median ${fmt(median(nat))} s (it compares the container's full copy with the image's, so its cost follows the image size, not the change).\n`
    md += `Lines of diff output: cairn ${lines.cairn}, docker ${lines.docker}, cairn native ${lines.native}.\n\n`
    md += `Every sample (s):\n\n`
    for (const r of rows) for (const [tool, xs] of Object.entries(r.samples)) md += `- ${r.step}, ${tool}: ${xs.map(fmt).join(' ')}\n`
    publishReport(md, values.out)
  } finally {
    await cleanUpContainerBench(Object.values(roots), work, dockerd)
  }
}

await main()
