/**
 * Container networking with real parts: netavark's bridge, NAT and port forwarding, aardvark-dns,
 * network namespaces, runc. Traffic goes only between the host and namespaces this file makes: a
 * fake "internet" host in a namespace of its own (for outbound NAT), and the containers.
 * Everything a container's network needs must be gone once it stops, also after a kill -9 of the
 * CLI or of the container's monitor.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { CLI } from '../helpers/cairn.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { loadNetworkConfig } from '../../src/network/config.js'
import { contains, parseSubnet } from '../../src/network/cidr.js'
import { netnsName, NetworkManager } from '../../src/network/index.js'
import { bridgeHeld, bridgeHoldName, linkExists } from '../../src/network/host.js'
import { requireTools } from '../helpers/tools.js'
import { freePort } from '../helpers/distribution.js'

const cfg = loadNetworkConfig()
const tag = randomBytes(3).toString('hex')

function iptablesDump(): string {
  return ['filter', 'nat'].map((t) => execFileSync('iptables', ['-w', '-t', t, '-S'], { encoding: 'utf8' })).join('\n')
}

/** Leases still held (by live holders) for a container, from the host's lease database. */
function liveLeases(containerId: string): string[] {
  const path = `${cfg.runDir}/leases.db`
  if (!existsSync(path)) return []
  const db = new Database(path, { readonly: true })
  try {
    const rows = db.prepare('SELECT ip, holder_pid FROM leases WHERE container_id = ?').all(containerId) as { ip: string; holder_pid: number }[]
    return rows.filter((r) => existsSync(`/proc/${r.holder_pid}`)).map((r) => r.ip)
  } finally {
    db.close()
  }
}

/** What a container's network leaves on the host: its namespace, firewall rules naming it or its port, leases. */
function leftovers(id: string, port?: number): string[] {
  const out: string[] = []
  if (existsSync(`/run/netns/${netnsName(id)}`)) out.push(`netns ${netnsName(id)}`)
  const rules = iptablesDump().split('\n').filter((l) => l.includes(id) || (port !== undefined && l.includes(`--dport ${port} `)))
  out.push(...rules.map((r) => `rule ${r}`))
  out.push(...liveLeases(id).map((ip) => `lease ${ip}`))
  return out
}


async function httpGet(url: string, timeoutMs = 5000): Promise<string> {
  const ctl = new AbortController()
  const t = setTimeout(() => ctl.abort(), timeoutMs)
  try {
    const r = await fetch(url, { signal: ctl.signal })
    return await r.text()
  } finally {
    clearTimeout(t)
  }
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

async function idOf(s: ContainerStore, name: string): Promise<string> {
  return (await s.cliOk(['inspect', '-f', '{{.Id}}', name])).stdout.trim()
}

async function ipOf(s: ContainerStore, name: string, network = 'bridge'): Promise<string> {
  return (await s.cliOk(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name])).stdout.trim()
}

async function monitorPid(s: ContainerStore, id: string): Promise<number> {
  const db = new Database(`${s.root}/cairn.db`, { readonly: true })
  try {
    return (db.prepare('SELECT shim_pid FROM containers WHERE id = ?').get(id) as { shim_pid: number }).shim_pid
  } finally {
    db.close()
  }
}

/** A web server in a container: busybox httpd serving `text` on port 80. */
function httpdArgs(text: string): string[] {
  return ['sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`]
}

/**
 * A fake "internet" host in a namespace of its own, joined to the host by a veth pair: the host
 * is 198.51.100.1, the fake host 198.51.100.2, where a TCP server answers each connection with the
 * address it came from (so a test sees whether NAT rewrote it).
 */
class FakeInternet {
  readonly ns = `cairn-test-inet-${tag}`
  readonly hostIf = `cti${tag}`
  readonly peerIf = `ctp${tag}`
  readonly address = '198.51.100.2'
  readonly port = 8080
  private server: ReturnType<typeof spawn> | undefined

  async start(): Promise<void> {
    const ip = (...args: string[]): void => {
      execFileSync('ip', args, { stdio: 'pipe' })
    }
    ip('netns', 'add', this.ns)
    ip('link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.peerIf)
    ip('link', 'set', this.peerIf, 'netns', this.ns)
    ip('addr', 'add', '198.51.100.1/30', 'dev', this.hostIf)
    ip('link', 'set', this.hostIf, 'up')
    ip('-n', this.ns, 'addr', 'add', `${this.address}/30`, 'dev', this.peerIf)
    ip('-n', this.ns, 'link', 'set', this.peerIf, 'up')
    ip('-n', this.ns, 'link', 'set', 'lo', 'up')
    ip('-n', this.ns, 'route', 'add', 'default', 'via', '198.51.100.1')
    const js = `require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(${this.port}, '${this.address}', () => console.log('ready'))`
    this.server = spawn('ip', ['netns', 'exec', this.ns, process.execPath, '-e', js], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      this.server?.stdout?.once('data', () => resolve())
      this.server?.once('exit', (c) => reject(new Error(`fake internet server exited ${String(c)}`)))
    })
  }

  async stop(): Promise<void> {
    this.server?.kill('SIGKILL')
    spawnSync('ip', ['link', 'del', this.hostIf])
    spawnSync('ip', ['netns', 'del', this.ns])
  }
}

describe('container networking', { concurrency: false }, () => {
  let s: ContainerStore | undefined
  const inet = new FakeInternet()
  const networks: string[] = []
  before(async () => {
    if (process.getuid?.() !== 0) return
    s = await containerStore('overlay')
    // an image that exposes ports (for -P)
    const id = (await s.cliOk(['create', '--network', 'none', 'busybox', 'true'])).stdout.trim()
    await s.cliOk(['commit', '-c', 'EXPOSE 80', '-c', 'EXPOSE 53/udp', id, 'web:exposed'])
    await s.cliOk(['rm', id])
    await inet.start()
  })
  after(async () => {
    await s?.cleanup()
    for (const n of networks) spawnSync(CLI, ['network', 'rm', n])
    await inet.stop()
  })
  const ready = async (t: TestContext): Promise<ContainerStore | undefined> => {
    if (!(await requireContainers(t))) return undefined
    if (!requireTools(t, ['netavark', 'aardvark'])) return undefined
    return s
  }
  const network = async (c: ContainerStore, args: string[] = []): Promise<string> => {
    const name = `cairntest-${tag}-${networks.length}`
    await c.cliOk(['network', 'create', ...args, name])
    networks.push(name)
    return name
  }

  test('default bridge: an address from the bridge subnet, a default route, its name in /etc/hosts, the host\'s resolvers', async (t) => {
    const c = await ready(t)
    if (!c) return
    const r = await c.cliOk(['run', '--name', 'plain', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; ip route; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf; hostname'])
    const [addrs = '', hosts = '', resolv = ''] = r.stdout.split('---\n')
    const ip = /inet (\d+\.\d+\.\d+\.\d+)\/16/.exec(addrs)?.[1] ?? ''
    assert.ok(contains(cfg.bip.subnet, ip), `address ${ip} in ${addrs}`)
    assert.match(addrs, new RegExp(`default via ${cfg.bip.gateway.replace(/\./g, '\\.')} dev eth0`))
    const hostname = resolv.trim().split('\n').at(-1) ?? ''
    assert.match(hosts, new RegExp(`^${ip.replace(/\./g, '\\.')}\\t${hostname}$`, 'm'))
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m)
    assert.doesNotMatch(resolv, /nameserver 127\./)
    const id = await idOf(c, 'plain')
    const inspect = JSON.parse((await c.cliOk(['inspect', 'plain'])).stdout) as { HostConfig: { NetworkMode: string }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]
    assert.equal(inspect[0]?.HostConfig.NetworkMode, 'default')
    assert.deepEqual(Object.keys(inspect[0]?.NetworkSettings.Networks ?? {}), ['bridge'])
    assert.deepEqual(leftovers(id), [], 'an exited container holds nothing')
    await c.cliOk(['rm', 'plain'])
  })

  test('outbound NAT: the fake internet host sees the host\'s address, not the container\'s; an --internal network has no way out', async (t) => {
    const c = await ready(t)
    if (!c) return
    const r = await c.cliOk(['run', '--rm', 'busybox', 'sh', '-c', `nc -w 5 ${inet.address} ${inet.port} </dev/null`])
    assert.equal(r.stdout.trim(), '198.51.100.1', 'the source address was rewritten to the host\'s')
    const internal = await network(c, ['--internal'])
    const r2 = await c.cli(['run', '--rm', '--network', internal, 'busybox', 'sh', '-c', `nc -w 3 ${inet.address} ${inet.port} </dev/null; echo rc=$?`])
    assert.doesNotMatch(r2.stdout, /198\.51\.100\.1/)
    assert.match(r2.stdout, /rc=[1-9]/)
  })

  test('published ports: reached on 127.0.0.1, on the bridge\'s gateway and on the container\'s address; ps, port and inspect tell', async (t) => {
    const c = await ready(t)
    if (!c) return
    const port = await freePort()
    await c.cliOk(['run', '-d', '--name', 'web', '-p', `${port}:80`, 'busybox', ...httpdArgs('hello-web')])
    const id = await idOf(c, 'web')
    const ip = await ipOf(c, 'web')
    await waitFor('httpd', async () => (await httpGet(`http://${ip}:80/`).catch(() => '')).includes('hello-web'))
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).trim(), 'hello-web')
    assert.equal((await httpGet(`http://${cfg.bip.gateway}:${port}/`)).trim(), 'hello-web')
    assert.equal((await c.cliOk(['port', 'web'])).stdout, `80/tcp -> 0.0.0.0:${port}\n`)
    assert.equal((await c.cliOk(['port', 'web', '80'])).stdout, `0.0.0.0:${port}\n`)
    const none = await c.cli(['port', 'web', '81/tcp'])
    assert.equal(none.code, 1)
    assert.equal(none.stderr, "Error: No public port '81/tcp' published for web\n")
    assert.equal((await c.cliOk(['ps', '--filter', 'name=web', '--format', '{{.Ports}}'])).stdout, `0.0.0.0:${port}->80/tcp\n`)
    assert.equal((await c.cliOk(['ps', '-q', '--filter', `publish=${port}`])).stdout.trim(), id.slice(0, 12))
    const asked = JSON.parse((await c.cliOk(['inspect', '-f', '{{json .HostConfig.PortBindings}}', 'web'])).stdout) as unknown
    assert.deepEqual(asked, { '80/tcp': [{ HostIp: '', HostPort: String(port) }] })
    const bound = JSON.parse((await c.cliOk(['inspect', '-f', '{{json .NetworkSettings.Ports}}', 'web'])).stdout) as unknown
    assert.deepEqual(bound, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: String(port) }] })

    // a port already held (by the container above): a clear error, nothing left behind
    const clash = await c.cli(['run', '-d', '--name', 'clash', '-p', `${port}:80`, 'busybox', 'true'])
    assert.equal(clash.code, 125)
    assert.match(clash.stderr, new RegExp(`^Error: driver failed programming external connectivity on endpoint clash \\([0-9a-f]{12}\\): Bind for 0\\.0\\.0\\.0:${port} failed: port is already allocated\\n$`))
    assert.equal((await c.cli(['inspect', 'clash'])).code, 1, 'run removed the container it could not start')
    await c.cliOk(['rm', '-f', 'web'])
    assert.deepEqual(leftovers(id, port), [])

    // a port a host process holds
    const held = createServer()
    await new Promise<void>((r) => held.listen(port, '0.0.0.0', () => r()))
    try {
      const r = await c.cli(['run', '--rm', '-p', `${port}:80`, 'busybox', 'true'])
      assert.equal(r.code, 125)
      assert.match(r.stderr, /port is already allocated/)
    } finally {
      held.close()
    }
    assert.deepEqual(iptablesDump().split('\n').filter((l) => l.includes(`--dport ${port} `)), [])
  })

  test('-p CTR_PORT takes a free host port; -P publishes every EXPOSEd port', async (t) => {
    const c = await ready(t)
    if (!c) return
    await c.cliOk(['run', '-d', '--name', 'anyport', '-p', '80', 'busybox', ...httpdArgs('any')])
    const line = (await c.cliOk(['port', 'anyport'])).stdout
    const m = /^80\/tcp -> 0\.0\.0\.0:(\d+)\n$/.exec(line)
    assert.ok(m, line)
    await waitFor('httpd', async () => (await httpGet(`http://127.0.0.1:${m[1] ?? ''}/`).catch(() => '')).includes('any'))
    await c.cliOk(['run', '-d', '--name', 'all', '-P', 'web:exposed', ...httpdArgs('all')])
    const lines = (await c.cliOk(['port', 'all'])).stdout.split('\n').filter(Boolean)
    assert.equal(lines.length, 2, lines.join('|'))
    assert.match(lines[0] ?? '', /^53\/udp -> 0\.0\.0\.0:\d+$/)
    assert.match(lines[1] ?? '', /^80\/tcp -> 0\.0\.0\.0:\d+$/)
    const p80 = /:(\d+)$/.exec(lines[1] ?? '')?.[1] ?? ''
    await waitFor('httpd', async () => (await httpGet(`http://127.0.0.1:${p80}/`).catch(() => '')).includes('all'))
    await c.cliOk(['rm', '-f', 'anyport', 'all'])
  })

  test('a user network: containers reach each other by name and alias; network inspect lists them; rm waits for them', async (t) => {
    const c = await ready(t)
    if (!c) return
    const net = await network(c, ['--subnet', '10.123.45.0/24', '--label', 'purpose=test'])
    await c.cliOk(['run', '-d', '--name', 'db', '--network', net, '--network-alias', 'database', 'busybox', ...httpdArgs('db-here')])
    const dbIp = await ipOf(c, 'db', net)
    assert.ok(contains(parseSubnet('10.123.45.0/24'), dbIp), dbIp)
    const r = await c.cliOk(['run', '--rm', '--network', net, 'busybox', 'sh', '-c',
      'for i in 1 2 3 4 5 6 7 8 9 10; do nslookup db >/dev/null 2>&1 && break; sleep 0.3; done; nslookup db | tail -n +3; nslookup database | tail -n +3; printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc database 80 | tail -n 1'])
    assert.match(r.stdout, new RegExp(`Name:\\s+db\\nAddress: ${dbIp.replace(/\./g, '\\.')}`))
    assert.match(r.stdout, new RegExp(`Name:\\s+database\\nAddress: ${dbIp.replace(/\./g, '\\.')}`))
    assert.match(r.stdout, /db-here\n$/)
    const inspect = JSON.parse((await c.cliOk(['network', 'inspect', net])).stdout) as { Name: string; Internal: boolean; Labels: Record<string, string>; IPAM: { Config: { Subnet: string }[] }; Containers: Record<string, { Name: string; IPv4Address: string }> }[]
    assert.equal(inspect[0]?.Name, net)
    assert.deepEqual(inspect[0]?.Labels, { purpose: 'test' })
    assert.equal(inspect[0]?.IPAM.Config[0]?.Subnet, '10.123.45.0/24')
    assert.deepEqual(Object.values(inspect[0]?.Containers ?? {}).map((x) => x.Name), ['db'])
    assert.match((await c.cliOk(['network', 'ls', '--format', '{{.Name}} {{.Driver}}'])).stdout, new RegExp(`^${net} bridge$`, 'm'))
    // the second container shares db's namespace: same address
    const shared = await c.cliOk(['run', '--rm', '--network', 'container:db', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0'])
    assert.match(shared.stdout, new RegExp(`inet ${dbIp.replace(/\./g, '\\.')}/24`))
    const busy = await c.cli(['network', 'rm', net])
    assert.equal(busy.code, 1)
    assert.match(busy.stderr, /has active endpoints/)
    const id = await idOf(c, 'db')
    await c.cliOk(['rm', '-f', 'db'])
    assert.deepEqual(leftovers(id), [])
    assert.equal((await c.cliOk(['network', 'rm', net])).stdout, `${net}\n`)
    networks.splice(networks.indexOf(net), 1)
  })

  test('network connect and disconnect on a running container; none, host, --add-host, --dns, --dns-search, --hostname', async (t) => {
    const c = await ready(t)
    if (!c) return
    const net = await network(c)
    await c.cliOk(['run', '-d', '--name', 'multi', 'busybox', 'sleep', '1000'])
    await c.cliOk(['network', 'connect', '--alias', 'second', net, 'multi'])
    assert.match((await c.cliOk(['exec', 'multi', 'sh', '-c', 'ip -o link'])).stdout, /eth1/)
    const nets = (await c.cliOk(['inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'multi'])).stdout.trim().split(' ').sort()
    assert.deepEqual(nets, ['bridge', net].sort())
    await c.cliOk(['network', 'disconnect', net, 'multi'])
    assert.doesNotMatch((await c.cliOk(['exec', 'multi', 'sh', '-c', 'ip -o link'])).stdout, /eth1/)
    await c.cliOk(['rm', '-f', 'multi'])

    const none = await c.cliOk(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ip -o link | cut -d: -f2'])
    assert.deepEqual(none.stdout.split('\n').map((l) => l.trim()).filter(Boolean), ['lo'])
    const host = await c.cliOk(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'ip -o link | cut -d: -f2'])
    const hostLinks = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').filter(Boolean).length
    assert.equal(host.stdout.split('\n').filter(Boolean).length, hostLinks)
    const files = await c.cliOk(['run', '--rm', '--hostname', 'box', '--domainname', 'example.test', '--add-host', 'db.local:10.1.2.3', '--add-host', 'gw:host-gateway',
      '--dns', '10.9.9.9', '--dns-search', 'corp.test', '--dns-option', 'ndots:2', 'busybox', 'sh', '-c', 'hostname; cat /etc/hosts /etc/resolv.conf'])
    assert.match(files.stdout, /^box\n/)
    assert.match(files.stdout, /^10\.1\.2\.3\tdb\.local$/m)
    assert.match(files.stdout, new RegExp(`^${cfg.bip.gateway.replace(/\./g, '\\.')}\\tgw$`, 'm'))
    assert.match(files.stdout, /\tbox\.example\.test box$/m)
    assert.match(files.stdout, /^nameserver 10\.9\.9\.9\nsearch corp\.test\noptions ndots:2\n$/m)
  })

  test('a network\'s bridge stays, held, between its containers, with its rules; network rm takes them away', async (t) => {
    const c = await ready(t)
    if (!c) return
    const name = await network(c)
    const def = new NetworkManager(cfg).get(name)
    const subnetRules = (): string[] => iptablesDump().split('\n').filter((l) => l.includes(def.subnet))
    assert.ok(!linkExists(def.bridge), 'no bridge before its first container')
    await c.cliOk(['run', '--rm', '--network', name, 'busybox', 'true'])
    assert.ok(linkExists(def.bridge) && bridgeHeld(def.bridge), 'the bridge stays, held, after its last container')
    assert.notDeepEqual(subnetRules(), [], 'and so do its rules')
    const r = await c.cliOk(['run', '--rm', '--network', name, 'busybox', 'sh', '-c', `nc -w 5 ${inet.address} ${inet.port} </dev/null`])
    assert.equal(r.stdout.trim(), '198.51.100.1', 'the next container goes out through them')
    await c.cliOk(['network', 'rm', name])
    assert.ok(!linkExists(def.bridge), 'no bridge once the network is removed')
    assert.ok(!linkExists(bridgeHoldName(def.bridge)) && !linkExists(`${bridgeHoldName(def.bridge)}p`), 'no hold link')
    assert.deepEqual(subnetRules(), [], 'no rule of its subnet')
    assert.deepEqual(readdirSync('/run/netns').filter((n) => n.includes('retire')), [], 'no namespace of its own left')
    // the default bridge is held the same way (other test files use it too: it stays)
    await c.cliOk(['run', '--rm', 'busybox', 'true'])
    assert.ok(bridgeHeld(cfg.bridgeName))
  })

  test('containers started at once get distinct addresses', async (t) => {
    const c = await ready(t)
    if (!c) return
    const names = Array.from({ length: 6 }, (_, i) => `par${i}`)
    await Promise.all(names.map((n) => c.cliOk(['run', '-d', '--name', n, 'busybox', 'sleep', '1000'])))
    const ips = await Promise.all(names.map((n) => ipOf(c, n)))
    assert.equal(new Set(ips).size, names.length, ips.join(' '))
    await c.cliOk(['rm', '-f', ...names])
  })

  test('kill -9 of the monitor: the next command takes back the namespace, the rules and the lease', async (t) => {
    const c = await ready(t)
    if (!c) return
    const port = await freePort()
    await c.cliOk(['run', '-d', '--name', 'victim', '-p', `${port}:80`, 'busybox', ...httpdArgs('victim')])
    const id = await idOf(c, 'victim')
    assert.notDeepEqual(leftovers(id, port), [], 'while it runs, it holds its network')
    process.kill(await monitorPid(c, id), 'SIGKILL')
    await waitFor('the container to be seen as exited', async () => (await c.cliOk(['ps', '-a', '--filter', 'name=victim', '--format', '{{.State}}'])).stdout.trim() === 'exited')
    assert.deepEqual(leftovers(id, port), [])
    // the port is free again
    await c.cliOk(['run', '-d', '--name', 'after', '-p', `${port}:80`, 'busybox', ...httpdArgs('after')])
    await c.cliOk(['rm', '-f', 'victim', 'after'])
  })

  test('kill -9 of the CLI: the container runs on under its monitor and gives everything back when it stops', async (t) => {
    const c = await ready(t)
    if (!c) return
    const port = await freePort()
    const cli = spawn(CLI, ['--root', c.root, 'run', '--name', 'orphan', '-p', `${port}:80`, 'busybox', ...httpdArgs('orphan')], { stdio: 'ignore' })
    await waitFor('the container to run', async () => (await c.cli(['ps', '--filter', 'name=orphan', '-q'])).stdout.trim() !== '')
    await waitFor('httpd', async () => (await httpGet(`http://127.0.0.1:${port}/`).catch(() => '')).includes('orphan'))
    cli.kill('SIGKILL')
    await new Promise((r) => cli.once('exit', r))
    assert.equal((await httpGet(`http://127.0.0.1:${port}/`)).trim(), 'orphan', 'still served after the CLI is gone')
    const id = await idOf(c, 'orphan')
    await c.cliOk(['stop', '-t', '1', 'orphan'])
    assert.deepEqual(leftovers(id, port), [])
    await c.cliOk(['rm', 'orphan'])
  })

  test('bad input: Docker\'s messages, nothing made', async (t) => {
    const c = await ready(t)
    if (!c) return
    const cases: [string[], number, RegExp][] = [
      [['run', '--network', 'bridge', '--ip', '10.77.9.9', 'busybox', 'true'], 125, /user specified IP address is supported on user defined networks only/],
      [['run', '--network-alias', 'x', 'busybox', 'true'], 125, /network-scoped alias is supported only for containers in user defined networks/],
      [['run', '--network', 'host', '--network-alias', 'x', 'busybox', 'true'], 125, /network-scoped alias is supported only/],
      [['run', '--network', 'container:nosuch', 'busybox', 'true'], 125, /No such container: nosuch/],
      [['network', 'create', 'bridge'], 1, /bridge is a pre-defined network and cannot be created/],
      [['network', 'create', '--subnet', '10.0.0.1/8', `bad-${tag}`], 1, /invalid subnet 10\.0\.0\.1\/8/],
      [['network', 'create', '--subnet', `${cfg.bip.gateway.replace(/\.\d+$/, '.0')}/24`, `clash-${tag}`], 1, /overlaps/],
      [['network', 'rm', 'bridge'], 1, /bridge is a pre-defined network and cannot be removed/],
      [['network', 'inspect', 'nosuch'], 1, /No such network: nosuch/],
      [['run', '--add-host', 'x:notanip', 'busybox', 'true'], 125, /invalid IP address in add-host: "notanip"/],
    ]
    for (const [args, code, re] of cases) {
      const r = await c.cli(args)
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, re, args.join(' '))
    }
    assert.equal((await c.cliOk(['ps', '-aq'])).stdout, '')
  })
})

describe('container networking on the native driver', { concurrency: false }, () => {
  let s: ContainerStore | undefined
  before(async () => {
    if (process.getuid?.() !== 0) return
    s = await containerStore('native')
  })
  after(async () => {
    await s?.cleanup()
  })
  test('default bridge and a published port', async (t) => {
    if (!(await requireContainers(t)) || !s) return
    const port = await freePort()
    await s.cliOk(['run', '-d', '--name', 'nweb', '-p', `127.0.0.1:${port}:80`, 'busybox', ...httpdArgs('native-web')])
    await waitFor('httpd', async () => (await httpGet(`http://127.0.0.1:${port}/`).catch(() => '')).includes('native-web'))
    assert.equal((await s.cliOk(['port', 'nweb'])).stdout, `80/tcp -> 127.0.0.1:${port}\n`)
    const id = (await s.cliOk(['inspect', '-f', '{{.Id}}', 'nweb'])).stdout.trim()
    await s.cliOk(['rm', '-f', 'nweb'])
    assert.deepEqual(leftovers(id, port), [])
  })
})

