/**
 * Benchmark: container networking, side by side with Docker in the same run (a private dockerd
 * 20.10 with its default bridge, iptables NAT and userland proxy, test/helpers/dockerd.ts), on the
 * busybox test image imported into both:
 *
 *   - start-to-exit: `run --rm -p PORT:80 IMAGE true` (a namespace, an address, NAT and a
 *     published port made and taken back);
 *   - time to first answer: from `run -d -p PORT:80 IMAGE httpd` to the first HTTP answer
 *     through the published port on 127.0.0.1;
 *   - requests/s through the published port (wrk, 16 connections) to a busybox httpd;
 *   - for the record, the plumbing alone: one container's namespace set up and torn down by
 *     netavark (Cairn's choice) and by the CNI plugins (bridge + portmap + firewall), with the
 *     same subnet and port.
 *
 *   npm run build && node build/bench/network.js [--iterations 10] [--out FILE]
 *
 * Needs root, dockerd (docker.io), runc, busybox-static, netavark, containernetworking-plugins, wrk.
 * Docker's firewall chains are removed after its daemon stops, and the FORWARD policy put back.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDockerd, type Dockerd } from '../test/helpers/dockerd.js'
import { busyboxRootfsTar } from '../test/helpers/rootfs.js'
import { unmountUnder } from '../test/helpers/system.js'
import { removeAllContainers } from '../test/container/helpers.js'
import { runtimeStateRoot } from '../src/runtime/runtime.js'
import { NetworkManager } from '../src/network/index.js'
import { exec, median, machineLine, type Cmd } from './lib.js'
import { freePort } from '../test/helpers/distribution.js'

const PROJECT = fileURLToPath(new URL('../../', import.meta.url))
const CAIRN_CLI = process.env['CAIRN_CLI'] ?? join(PROJECT, 'bin/cairn')
const DEFAULT_OUT = join(PROJECT, 'bench/results/network.md')
const IMAGE = 'bench-busybox:1'
const HTTPD = ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www']


/** Seconds until `url` answers 200 (polled every 5 ms). */
async function firstAnswer(url: string, since: number, timeoutMs = 30_000): Promise<number> {
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (r.status === 200) {
        await r.text()
        return (performance.now() - since) / 1000
      }
    } catch {
      // not yet
    }
    if (performance.now() - since > timeoutMs) throw new Error(`no answer from ${url}`)
    await sleep(5)
  }
}

/** wrk's requests per second against `url` (16 connections, 2 threads). */
function wrk(url: string, seconds: number): number {
  const out = execFileSync('wrk', ['-t2', '-c16', `-d${seconds}s`, url], { encoding: 'utf8' })
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out)
  if (!m) throw new Error(`wrk: ${out}`)
  return Number(m[1])
}

function iptablesSave(): string {
  return execFileSync('iptables-save', { encoding: 'utf8' })
}

/** Removes what a dockerd with iptables left (its chains and jumps), and puts back the FORWARD policy. */
function removeDockerChains(policyBefore: string): void {
  for (const table of ['filter', 'nat']) {
    const lines = execFileSync('iptables-save', ['-t', table], { encoding: 'utf8' }).split('\n')
    const ops: string[] = []
    for (const l of lines) {
      if (/^-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING|INPUT) .*(DOCKER|docker0)/.test(l)) ops.push(l.replace(/^-A/, '-D'))
    }
    for (const l of lines) {
      const m = /^:(DOCKER[A-Z0-9-]*) /.exec(l)
      if (m) ops.push(`-F ${m[1] ?? ''}`)
    }
    for (const l of lines) {
      const m = /^:(DOCKER[A-Z0-9-]*) /.exec(l)
      if (m) ops.push(`-X ${m[1] ?? ''}`)
    }
    if (table === 'filter') ops.push(`-P FORWARD ${policyBefore}`)
    if (ops.length > 0) spawnSync('iptables-restore', ['-w', '--noflush'], { input: `*${table}\n${ops.join('\n')}\nCOMMIT\n` })
  }
  spawnSync('ip', ['link', 'del', 'docker0'])
}

/** One namespace set up and torn down by netavark and by the CNI plugins: wall seconds each. */
async function plumbing(n: number): Promise<{ netavark: number[]; cni: number[] }> {
  const out = { netavark: [] as number[], cni: [] as number[] }
  const ns = 'cairn-bench-plumb'
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-plumb-'))
  const netavark = ['/usr/lib/podman/netavark', '/usr/libexec/podman/netavark'].find(existsSync)
  const cniDir = ['/usr/lib/cni', '/opt/cni/bin'].find((d) => existsSync(`${d}/bridge`))
  try {
    for (let i = 0; i < n; i++) {
      spawnSync('ip', ['netns', 'add', ns])
      const port = await freePort()
      if (netavark) {
        const opts = JSON.stringify({
          container_id: 'b'.repeat(64), container_name: 'plumb',
          networks: { benchnet: { static_ips: ['10.199.0.2'], aliases: [], interface_name: 'eth0' } },
          network_info: { benchnet: { name: 'benchnet', id: 'c'.repeat(64), driver: 'bridge', network_interface: 'cbench0', subnets: [{ subnet: '10.199.0.0/24', gateway: '10.199.0.1' }], ipv6_enabled: false, internal: false, dns_enabled: false } },
          port_mappings: [{ host_ip: '', container_port: 80, host_port: port, range: 1, protocol: 'tcp' }],
        })
        const t0 = performance.now()
        spawnSync(netavark, ['--config', dir, 'setup', `/run/netns/${ns}`], { input: opts })
        spawnSync(netavark, ['--config', dir, 'teardown', `/run/netns/${ns}`], { input: opts })
        out.netavark.push((performance.now() - t0) / 1000)
      }
      if (cniDir) {
        const env = { ...process.env, CNI_CONTAINERID: 'benchplumb', CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: cniDir }
        const bridge = { cniVersion: '1.0.0', name: 'benchcni', type: 'bridge', bridge: 'cbench1', isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.199.1.0/24' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: `${dir}/ipam` } }
        const t0 = performance.now()
        const add = spawnSync(`${cniDir}/bridge`, { input: JSON.stringify(bridge), env: { ...env, CNI_COMMAND: 'ADD' } })
        const prev = JSON.parse(add.stdout.toString() || '{}') as unknown
        const portmap = { cniVersion: '1.0.0', name: 'benchcni', type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, protocol: 'tcp' }] }, snat: true, prevResult: prev }
        const firewall = { cniVersion: '1.0.0', name: 'benchcni', type: 'firewall', backend: 'iptables', prevResult: prev }
        spawnSync(`${cniDir}/portmap`, { input: JSON.stringify(portmap), env: { ...env, CNI_COMMAND: 'ADD' } })
        spawnSync(`${cniDir}/firewall`, { input: JSON.stringify(firewall), env: { ...env, CNI_COMMAND: 'ADD' } })
        spawnSync(`${cniDir}/firewall`, { input: JSON.stringify(firewall), env: { ...env, CNI_COMMAND: 'DEL' } })
        spawnSync(`${cniDir}/portmap`, { input: JSON.stringify(portmap), env: { ...env, CNI_COMMAND: 'DEL' } })
        spawnSync(`${cniDir}/bridge`, { input: JSON.stringify(bridge), env: { ...env, CNI_COMMAND: 'DEL' } })
        out.cni.push((performance.now() - t0) / 1000)
      }
      spawnSync('ip', ['netns', 'del', ns])
    }
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
    spawnSync('ip', ['link', 'del', 'cbench0'])
    spawnSync('ip', ['link', 'del', 'cbench1'])
    // the CNI plugins leave their shared chains: removed here; netavark's go as Cairn removes them (only when idle)
    await new NetworkManager().removeIdleChains().catch(() => undefined)
    const ops: string[] = []
    for (const table of ['filter', 'nat']) {
      const lines = execFileSync('iptables-save', ['-t', table], { encoding: 'utf8' }).split('\n')
      const t: string[] = []
      for (const l of lines) if (/^-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-/.test(l)) t.push(l.replace(/^-A/, '-D'))
      for (const l of lines) {
        const m = /^:(CNI-[A-Za-z0-9_-]*) /.exec(l)
        if (m) t.push(`-F ${m[1] ?? ''}`)
      }
      for (const l of lines) {
        const m = /^:(CNI-[A-Za-z0-9_-]*) /.exec(l)
        if (m) t.push(`-X ${m[1] ?? ''}`)
      }
      if (t.length > 0) ops.push(`*${table}\n${t.join('\n')}\nCOMMIT\n`)
    }
    for (const o of ops) spawnSync('iptables-restore', ['-w', '--noflush'], { input: o })
    await rm(dir, { recursive: true, force: true })
  }
  return out
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '10' }, out: { type: 'string', default: DEFAULT_OUT } } })
  const n = Number(values.iterations)
  if (process.getuid?.() !== 0) throw new Error('the network benchmark needs root')
  const tar = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-net-'))
  const root = join(work, 'store')
  const cairn = (args: string[]): Cmd => ({ cmd: CAIRN_CLI, args: ['--root', root, ...args] })
  const forwardPolicy = /^:FORWARD (\w+)/m.exec(iptablesSave())?.[1] ?? 'ACCEPT'
  let dockerd: Dockerd | undefined
  const samples: Record<string, Record<string, number[]>> = {}
  const add = (step: string, tool: string, x: number): void => {
    ;((samples[step] ??= {})[tool] ??= []).push(x)
  }
  try {
    process.stderr.write('plumbing: netavark against the CNI plugins…\n')
    const plumb = await plumbing(n)
    for (const x of plumb.netavark) add('plumbing: setup + teardown of one namespace with a published port', 'netavark', x)
    for (const x of plumb.cni) add('plumbing: setup + teardown of one namespace with a published port', 'CNI plugins', x)

    process.stderr.write('starting dockerd (with its bridge, iptables and userland proxy)…\n')
    dockerd = await startDockerd({ extraArgs: ['--bridge', '', '--iptables=true', '--ip-masq=true', '--userland-proxy=true'] })
    const d = dockerd
    const docker = (args: string[]): Cmd => ({ cmd: '/usr/bin/docker', args: ['-H', d.host, ...args], env: d.clientEnv })
    await exec(docker(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    await exec(cairn(['import', '-c', 'CMD ["sh"]', tar, IMAGE]))
    // warm-up: the first container makes the bridge and the shared chains
    await exec(docker(['run', '--rm', '-p', `${await freePort()}:80`, IMAGE, 'true']))
    await exec(cairn(['run', '--rm', '-p', `${await freePort()}:80`, IMAGE, 'true']))

    process.stderr.write(`run --rm -p PORT:80 true × ${n}…\n`)
    for (let i = 0; i < n; i++) {
      add('`run --rm -p PORT:80 IMAGE true`', 'docker', (await exec(docker(['run', '--rm', '-p', `${await freePort()}:80`, IMAGE, 'true']))).wallS)
      add('`run --rm -p PORT:80 IMAGE true`', 'cairn', (await exec(cairn(['run', '--rm', '-p', `${await freePort()}:80`, IMAGE, 'true']))).wallS)
    }

    process.stderr.write(`run -d … httpd until the first answer × ${n}…\n`)
    for (let i = 0; i < n; i++) {
      for (const [tool, cmd] of [['docker', docker], ['cairn', cairn]] as const) {
        const port = await freePort()
        const t0 = performance.now()
        await exec(cmd(['run', '-d', '--name', `first${i}`, '-p', `${port}:80`, IMAGE, ...HTTPD]))
        add('`run -d -p PORT:80` to the first HTTP answer on 127.0.0.1', tool, await firstAnswer(`http://127.0.0.1:${port}/`, t0))
        await exec(cmd(['rm', '-f', `first${i}`]))
      }
    }

    process.stderr.write('requests/s through a published port…\n')
    const ports = { docker: await freePort(), cairn: await freePort() }
    await exec(docker(['run', '-d', '--name', 'served', '-p', `${ports.docker}:80`, IMAGE, ...HTTPD]))
    await exec(cairn(['run', '-d', '--name', 'served', '-p', `${ports.cairn}:80`, IMAGE, ...HTTPD]))
    await firstAnswer(`http://127.0.0.1:${ports.docker}/`, performance.now())
    await firstAnswer(`http://127.0.0.1:${ports.cairn}/`, performance.now())
    for (let i = 0; i < 3; i++) {
      add('requests/s through `-p` on 127.0.0.1 (wrk, 16 connections)', 'docker', wrk(`http://127.0.0.1:${ports.docker}/`, 5))
      add('requests/s through `-p` on 127.0.0.1 (wrk, 16 connections)', 'cairn', wrk(`http://127.0.0.1:${ports.cairn}/`, 5))
    }
    await exec(docker(['rm', '-f', 'served']))
    await exec(cairn(['rm', '-f', 'served']))

    const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(3))
    const dockerVersion = (await exec(docker(['version', '--format', '{{.Server.Version}}']), true)).stdout.trim()
    let md = `# Container networking: Cairn and Docker side by side\n\n`
    md += `${machineLine()}; `
    md += `docker ${dockerVersion} (private dockerd: default bridge, iptables, userland proxy), Cairn on its default bridge (netavark); ${n} runs each, medians.\n\n`
    md += `| step | cairn | docker | cairn/docker |\n|---|---:|---:|---:|\n`
    for (const [step, bytool] of Object.entries(samples)) {
      const c = bytool['cairn']
      const dk = bytool['docker']
      if (!c || !dk) continue
      const unit = step.startsWith('requests') ? '' : ' s'
      md += `| ${step} | ${fmt(median(c))}${unit} | ${fmt(median(dk))}${unit} | ${(median(c) / median(dk)).toFixed(2)}× |\n`
    }
    const p = samples['plumbing: setup + teardown of one namespace with a published port'] ?? {}
    if (p['netavark'] && p['CNI plugins']) {
      md += `\nThe plumbing alone (why netavark): one namespace with a published port set up and torn down, netavark ${fmt(median(p['netavark']))} s, `
      md += `the CNI plugins (bridge + portmap + firewall, ADD and DEL) ${fmt(median(p['CNI plugins']))} s (${(median(p['netavark']) / median(p['CNI plugins'])).toFixed(2)}×).\n`
    }
    md += `\nEvery sample:\n\n`
    for (const [step, bytool] of Object.entries(samples)) for (const [tool, xs] of Object.entries(bytool)) md += `- ${step}, ${tool}: ${xs.map(fmt).join(' ')}\n`
    process.stdout.write(md)
    mkdirSync(dirname(values.out), { recursive: true })
    writeFileSync(values.out, md)
  } finally {
    await removeAllContainers(root).catch(() => undefined)
    // the default bridge and its rules stay between containers: gone once idle, as they came
    await new NetworkManager().removeIdleChains().catch(() => undefined)
    await rm(dirname(runtimeStateRoot(root, 'runc')), { recursive: true, force: true })
    await dockerd?.stop().catch((err: unknown) => process.stderr.write(`${String(err)}\n`))
    removeDockerChains(forwardPolicy)
    unmountUnder(work)
    await rm(work, { recursive: true, force: true })
  }
}

await main()
