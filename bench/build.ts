/**
 * Benchmark: `cairn build` side by side with `docker build` (Debian's dockerd 20.10 with its
 * bridge, BuildKit on with DOCKER_BUILDKIT=1 through Debian's 20.10 client) and Debian's
 * `buildah bud` (1.28, runc, cgroupfs, its own storage), in the same run, on a three-stage
 * Dockerfile with ~50 MB of context (deps/: 2,000 files of 20 KB; src/: 500 files of 20 KB):
 *
 *   - cold: `--no-cache` (the base image is there, nothing of the build is);
 *   - no change: the same build again (every step from the cache);
 *   - one file changed: one file of src/ rewritten, then the build again (the stage that copies
 *     src/ and what follows it run again).
 *
 * Every build runs its RUN steps on the host's network (`--network host` for all three).
 *
 *   npm run build && node build/bench/build.js [--iterations 3] [--out FILE]
 *
 * Needs root, docker.io, buildah, busybox-static, runc.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { exec, median, everyRunAndMachine, runMain, type Cmd, publishReport } from './lib.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/build.md')

const DOCKERFILE = `FROM busybox AS deps
WORKDIR /deps
COPY deps/ ./
RUN find . -type f | wc -l > /deps.count && tar -cf /deps.tar .

FROM busybox AS build
WORKDIR /src
COPY src/ ./
RUN find . -type f | sort | xargs cat | sha256sum > /build.sum

FROM busybox
COPY --from=deps /deps.tar /deps.count /opt/
COPY --from=build /build.sum /opt/build.sum
ENV APP=bench
CMD ["cat", "/opt/build.sum"]
`

function makeContext(dir: string): void {
  for (const [sub, files] of [['deps', 2000], ['src', 500]] as const) {
    for (let i = 0; i < files; i++) {
      const d = join(dir, sub, `d${i % 20}`)
      mkdirSync(d, { recursive: true })
      writeFileSync(join(d, `f${i}.txt`), randomBytes(20_000))
    }
  }
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE)
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '3' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the build benchmark needs root')
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-build-'))
  // Each tool's storage in a block group of its own (ext4's Orlov allocator spreads the folders
  // made in a folder marked +T, as it does those made in the file system's root): ext4 without a
  // journal, as here, skips inodes freed in the last one to six minutes when it makes a file, so a
  // tool that has just deleted thousands of files (buildah's working containers) made the next
  // tool's file creations in the same block group 10 to 25 times slower.
  const spread = await exec({ cmd: 'chattr', args: ['+T', work] }).then(() => true, () => false)
  if (!spread) process.stderr.write('chattr +T failed: the tools share block groups\n')
  const root = join(work, 'cairn')
  const ctx = join(work, 'ctx')
  makeContext(ctx)
  const busybox = await busyboxRootfsTar()
  // buildah: its own storage, runc, cgroupfs, and ulimits within this machine's hard limits
  const bh = join(work, 'buildah')
  mkdirSync(bh, { recursive: true })
  writeFileSync(join(bh, 'containers.conf'), '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n')
  writeFileSync(join(bh, 'policy.json'), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
  const bhEnv = { ...process.env, CONTAINERS_CONF: join(bh, 'containers.conf') }
  const buildah = (args: string[]): Cmd => ({ cmd: '/usr/bin/buildah', args: ['--root', join(bh, 'root'), '--runroot', join(bh, 'run'), '--storage-driver', 'overlay', ...args], env: bhEnv })
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  let dockerd: Dockerd | undefined
  const samples: Record<string, number[]> = {}
  const add = (k: string, v: number): void => {
    ;(samples[k] ??= []).push(v)
  }
  try {
    process.stderr.write('starting dockerd (with its bridge)…\n')
    dockerd = await startDockerd({ bridge: true, parentDir: work })
    const d = dockerd
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: { ...d.clientEnv, DOCKER_BUILDKIT: '1' } })
    await exec(cairn(['import', '-c', 'CMD ["sh"]', busybox, 'busybox:latest']))
    await exec(docker(['import', '-c', 'CMD ["sh"]', busybox, 'busybox:latest']))
    await exec(cairn(['save', '-o', join(bh, 'busybox.tar'), 'busybox:latest']))
    await exec(buildah(['pull', '--signature-policy', join(bh, 'policy.json'), `docker-archive:${join(bh, 'busybox.tar')}`]))
    const builds: Record<string, (extra: string[]) => Cmd> = {
      cairn: (extra) => cairn(['build', '--progress', 'plain', '--network', 'host', '-t', 'bench:1', ...extra, ctx]),
      docker: (extra) => docker(['build', '--progress', 'plain', '--network', 'host', '-t', 'bench:1', ...extra, ctx]),
      buildah: (extra) => buildah(['bud', '--signature-policy', join(bh, 'policy.json'), '--layers', '--network', 'host', '-t', 'bench:1', ...extra, ctx]),
    }
    // one build of each first: the base image unpacked, nothing else reused later (--no-cache)
    for (const b of Object.values(builds)) await exec(b(['--no-cache']))
    const tools = Object.keys(builds)
    for (let i = 0; i < n; i++) {
      process.stderr.write(`iteration ${i + 1}/${n}\n`)
      const order = i % 2 === 0 ? tools : [...tools].reverse()
      for (const tool of order) {
        const b = builds[tool] as (extra: string[]) => Cmd
        await exec({ cmd: 'sync', args: [] })
        add(`${tool} cold`, (await exec(b(['--no-cache']))).wallS)
        await exec({ cmd: 'sync', args: [] })
        add(`${tool} no change`, (await exec(b([]))).wallS)
        writeFileSync(join(ctx, 'src', 'd3', 'f3.txt'), randomBytes(20_000))
        await exec({ cmd: 'sync', args: [] })
        add(`${tool} one file changed`, (await exec(b([]))).wallS)
      }
    }
  } finally {
    await removeAllContainers(root).catch(() => undefined)
    await dockerd?.stop().catch(() => undefined)
    await exec(buildah(['rm', '--all']), true).catch(() => undefined)
    await exec(buildah(['rmi', '--all', '--force']), true).catch(() => undefined)
    unmountUnder(work)
    await rm(work, { recursive: true, force: true })
  }
  const m = (k: string): number => median(samples[k] ?? [NaN])
  const row = (label: string, k: string, target: string): string =>
    `| ${label} | ${m(`cairn ${k}`).toFixed(2)} | ${m(`docker ${k}`).toFixed(2)} | ${m(`buildah ${k}`).toFixed(2)} | ${(m(`cairn ${k}`) / m(`docker ${k}`)).toFixed(2)}× | ${(m(`cairn ${k}`) / m(`buildah ${k}`)).toFixed(2)}× | ${target} |`
  const report = [
    '## build: cairn vs docker build (BuildKit) and buildah bud',
    '',
    'A three-stage Dockerfile (two stages that COPY and RUN, a third that copies from both) with ~50 MB of context (2,500 files of 20 KB).',
    `Median of ${n} runs, wall seconds of the client command; every build with \`--network host\`.`,
    '',
    '```Dockerfile',
    DOCKERFILE.trimEnd(),
    '```',
    '',
    '| build | cairn (s) | docker (s) | buildah (s) | cairn/docker | cairn/buildah | target (vs docker) |',
    '|---|---:|---:|---:|---:|---:|---|',
    row('cold (`--no-cache`)', 'cold', '≤ 1×'),
    row('no change', 'no change', '≤ 0.5×'),
    row('one file changed', 'one file changed', '≤ 1×'),
    '',
    ...everyRunAndMachine(samples),
  ].join('\n')
  publishReport(report, values.out)
}

runMain(main)
