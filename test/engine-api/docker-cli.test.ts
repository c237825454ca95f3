/**
 * The real docker CLI (the one on PATH) with DOCKER_HOST at `cairn system service`: the article
 * (images, run, commit -m -a, tag, push to Cairn's registry, rmi -f, pull, run) and ps, logs,
 * exec, cp both ways, diff, inspect, a published port, stop, rm; top, stats and update; then Docker's error statuses
 * and bodies, and the listeners' security (socket mode, TCP only on loopback without TLS).
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { run, type RunResult } from '../helpers/exec.js'
import { requireTools } from '../helpers/tools.js'
import { cairn, tempDir } from '../helpers/cairn.js'
import { freePort } from '../helpers/distribution.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { apiRequest, startRegistry, startService, type Served } from './helpers.js'

/** The docker CLI on PATH (Docker 28 here; Debian's 20.10 is at /usr/bin/docker), or a skip (a failure in CI). */
async function requireDockerCli(t: TestContext): Promise<boolean> {
  const v = await run('docker', ['--version']).catch(() => undefined)
  if (v?.code === 0) return true
  if (process.env['CI']) throw new Error('no docker CLI on PATH')
  t.skip('no docker CLI on PATH')
  return false
}

describe('the docker CLI against cairn system service', { timeout: 60_000 }, () => {
  let s: ContainerStore | undefined
  let service: Served | undefined
  let registry: (Served & { port: number }) | undefined
  let work: { dir: string; cleanup: () => Promise<void> } | undefined
  let sock = ''
  let docker: (args: string[], input?: string) => Promise<RunResult>
  let dockerOk: (args: string[], input?: string) => Promise<string>

  before(async () => {
    work = await tempDir('cairn-api-cli-')
    s = await containerStore('overlay')
    sock = `${work.dir}/docker.sock`
    service = await startService(s.root, sock)
    registry = await startRegistry(`${work.dir}/registry`)
    await mkdir(`${work.dir}/docker-config`)
    const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: `${work.dir}/docker-config`, DOCKER_CLI_HINTS: 'false' }
    docker = (args, input) => run('docker', args, { env, timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) })
    dockerOk = async (args, input) => {
      const r = await docker(args, input)
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}\n(service: ${service?.output() ?? ''})`)
      return r.stdout
    }
  })

  after(async () => {
    await service?.stop()
    await registry?.stop()
    await s?.cleanup()
    await work?.cleanup()
  })

  test('the article: run, commit, tag, push, rmi -f, pull, run', async (t) => {
    if (!(await requireContainers(t)) || !(await requireDockerCli(t))) return
    assert.match(await dockerOk(['version', '--format', '{{.Server.APIVersion}}']), /^1\.\d+\n$/)
    assert.match(await dockerOk(['images']), /busybox\s+latest/)
    const runRes = await docker(['run', '--name', 'art', 'busybox', 'sh', '-c', 'echo hello > /greeting; echo out; echo err >&2; exit 3'])
    assert.equal(runRes.code, 3, runRes.stderr)
    assert.equal(runRes.stdout, 'out\n')
    assert.equal(runRes.stderr, 'err\n')
    await dockerOk(['commit', '-m', 'a greeting', '-a', 'Ann <ann@example.com>', 'art', 'greet:v1'])
    assert.equal(await dockerOk(['inspect', '-f', '{{.Author}}|{{.Comment}}', 'greet:v1']), 'Ann <ann@example.com>|a greeting\n')
    const target = `127.0.0.1:${registry?.port ?? 0}/team/greet:v1`
    await dockerOk(['tag', 'greet:v1', target])
    const pushed = await dockerOk(['push', target])
    assert.match(pushed, /The push refers to repository/)
    assert.match(pushed, /v1: digest: sha256:[0-9a-f]{64} size: \d+/)
    await dockerOk(['rm', 'art'])
    const rmi = await dockerOk(['rmi', '-f', target, 'greet:v1'])
    assert.match(rmi, /Untagged: greet:v1/)
    assert.doesNotMatch(await dockerOk(['images']), /greet/)
    const pulled = await dockerOk(['pull', target])
    assert.match(pulled, /Pull complete|Already exists/)
    assert.match(pulled, /Status: Downloaded newer image for /)
    assert.equal(await dockerOk(['run', '--rm', target, 'cat', '/greeting']), 'hello\n')
    // --rm removed it
    assert.equal(await dockerOk(['ps', '-aq', '--filter', `ancestor=${target}`]), '')
  })

  test('ps, logs, exec, cp both ways, diff, inspect, a published port, stop, rm', async (t) => {
    if (!(await requireContainers(t)) || !(await requireDockerCli(t))) return
    const port = await freePort()
    const id = (await dockerOk(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, '-e', 'WHO=world', 'busybox', 'sh', '-c',
      'echo "hello $WHO" > /etc/page; echo started; exec busybox httpd -f -p 80 -h /etc'])).trim()
    assert.match(id, /^[0-9a-f]{64}$/)
    assert.match(await dockerOk(['ps', '--format', '{{.Names}} {{.Ports}}']), new RegExp(`web 127\\.0\\.0\\.1:${port}->80/tcp`))
    let page = ''
    for (let i = 0; i < 100 && page === ''; i++) {
      page = await fetch(`http://127.0.0.1:${port}/page`).then((r) => (r.ok ? r.text() : ''), () => '')
      if (page === '') await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal(page, 'hello world\n')
    assert.equal(await dockerOk(['logs', 'web']), 'started\n')
    assert.equal(await dockerOk(['exec', 'web', 'cat', '/etc/page']), 'hello world\n')
    assert.equal((await docker(['exec', 'web', 'sh', '-c', 'exit 4'])).code, 4)
    assert.equal(await dockerOk(['exec', '-i', 'web', 'sh', '-c', 'tr a-z A-Z'], 'piped in\n'), 'PIPED IN\n')
    // cp in and out
    await writeFile(`${work?.dir ?? ''}/in.txt`, 'from the host\n')
    await dockerOk(['cp', `${work?.dir ?? ''}/in.txt`, 'web:/tmp/in.txt'])
    assert.equal(await dockerOk(['exec', 'web', 'cat', '/tmp/in.txt']), 'from the host\n')
    await dockerOk(['cp', 'web:/etc/page', `${work?.dir ?? ''}/out.txt`])
    assert.equal(await readFile(`${work?.dir ?? ''}/out.txt`, 'utf8'), 'hello world\n')
    const diff = await dockerOk(['diff', 'web'])
    assert.match(diff, /^A \/etc\/page$/m)
    assert.match(diff, /^A \/tmp\/in\.txt$/m)
    assert.equal(await dockerOk(['inspect', '-f', '{{.State.Status}} {{.Config.Image}} {{index .Config.Env 0}}', 'web']), 'running busybox WHO=world\n')
    // docker import through fromSrc
    const exported = await run('sh', ['-c', `docker export -o ${work?.dir ?? ''}/web.tar web`], { env: { ...process.env, DOCKER_HOST: `unix://${sock}` }, timeoutMs: 30_000 })
    assert.equal(exported.code, 0, exported.stderr)
    assert.match(await dockerOk(['import', '-m', 'from a tar', '-c', 'CMD ["cat", "/etc/page"]', `${work?.dir ?? ''}/web.tar`, 'imported:v1']), /^sha256:[0-9a-f]{64}\n$/)
    assert.equal(await dockerOk(['run', '--rm', 'imported:v1']), 'hello world\n')
    // 409: a running container is not removed without force
    const rmRunning = await docker(['rm', 'web'])
    assert.notEqual(rmRunning.code, 0)
    assert.match(rmRunning.stderr, /Error response from daemon: .*(running|stop)/i)
    await dockerOk(['stop', '-t', '1', 'web'])
    assert.match(await dockerOk(['inspect', '-f', '{{.State.Status}}', 'web']), /^exited\n$/)
    await dockerOk(['rm', 'web'])
    const gone = await docker(['inspect', 'web'])
    assert.notEqual(gone.code, 0)
    assert.match(gone.stderr, /No such (object|container)/i)
    // the CLI and the service share one store
    assert.doesNotMatch((await cairn(s?.root ?? '', ['ps', '-a'])).stdout, /\bweb\b/)
  })

  test('volumes (create, ls, inspect, run -v, rm -v, rm, prune), a restart policy, and events from the store\'s journal', async (t) => {
    if (!(await requireContainers(t)) || !(await requireDockerCli(t))) return
    const since = String(Math.floor(Date.now() / 1000) - 1)
    assert.equal(await dockerOk(['volume', 'create', '--label', 'k=v', 'data1']), 'data1\n')
    assert.match(await dockerOk(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']), /^local data1$/m)
    assert.equal(await dockerOk(['volume', 'inspect', '-f', '{{.Name}} {{.Labels.k}}', 'data1']), 'data1 v\n')
    await dockerOk(['run', '--rm', '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f'])
    // a container with an anonymous volume beside the named one: rm -v takes the anonymous one only
    await dockerOk(['create', '--name', 'vols', '-v', 'data1:/data', '-v', '/scratch', 'busybox', 'cat', '/data/f'])
    const anon = (await dockerOk(['inspect', '-f', '{{range .Mounts}}{{if eq .Destination "/scratch"}}{{.Name}}{{end}}{{end}}', 'vols'])).trim()
    assert.match(anon, /^[0-9a-f]{64}$/)
    assert.equal(await dockerOk(['start', '-a', 'vols']), 'kept\n')
    const inUse = await docker(['volume', 'rm', 'data1'])
    assert.notEqual(inUse.code, 0)
    assert.match(inUse.stderr, /in use/)
    await dockerOk(['rm', '-v', 'vols'])
    const names = await dockerOk(['volume', 'ls', '-q'])
    assert.match(names, /^data1$/m)
    assert.doesNotMatch(names, new RegExp(anon))
    // a restart policy through HostConfig.RestartPolicy
    await dockerOk(['run', '-d', '--name', 'again', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 3'])
    let count = ''
    for (let i = 0; i < 150 && count !== '2 exited'; i++) {
      count = (await dockerOk(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'again'])).trim()
      if (count !== '2 exited') await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal(count, '2 exited')
    await dockerOk(['rm', 'again'])
    await dockerOk(['volume', 'rm', 'data1'])
    assert.doesNotMatch(await dockerOk(['volume', 'ls', '-q']), /^data1$/m)
    await dockerOk(['volume', 'create', 'unused'])
    assert.match(await dockerOk(['volume', 'prune', '-a', '-f']), /unused/)
    // the store's journal: what the library did, recorded once
    const until = String(Math.floor(Date.now() / 1000) + 1)
    const events = (await dockerOk(['events', '--since', since, '--until', until, '--format', '{{.Type}} {{.Action}} {{.Actor.ID}}|{{.Actor.Attributes.name}}'])).split('\n')
    assert.equal(events.filter((e) => e.startsWith('volume create data1|')).length, 1, events.join('\n'))
    assert.ok(events.some((e) => e.startsWith('volume destroy data1|')), events.join('\n'))
    assert.equal(events.filter((e) => e.startsWith('container die ') && e.endsWith('|again')).length, 3, events.join('\n'))
    assert.equal(events.filter((e) => e.startsWith('container destroy ') && e.endsWith('|vols')).length, 1, events.join('\n'))
  })

  test('run --memory, top, stats (one reading, and a stream), update: a running container\'s figures and limits', async (t) => {
    if (!(await requireContainers(t)) || !(await requireDockerCli(t))) return
    await dockerOk(['run', '-d', '--name', 'res', '--memory', '64m', 'busybox', 'sh', '-c', 'sleep 600'])
    try {
      assert.equal(await dockerOk(['inspect', '-f', '{{.HostConfig.Memory}}', 'res']), '67108864\n')
      const top = (await dockerOk(['top', 'res'])).split('\n')
      assert.match(top[0] ?? '', /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/)
      assert.ok(top.some((l) => /sleep 600$/.test(l)), top.join('\n'))
      assert.match(await dockerOk(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'res']), /^res [\d.]+[KMG]?i?B \/ 64MiB [12]\n$/)
      await dockerOk(['update', '--memory', '48m', 'res'])
      assert.equal(await dockerOk(['inspect', '-f', '{{.HostConfig.Memory}}', 'res']), '50331648\n')
      assert.match(await dockerOk(['stats', '--no-stream', '--format', '{{.MemUsage}}', 'res']), / \/ 48MiB\n$/)
      // the stream: a reading a second, each with the one before it as its precpu
      const readings = await new Promise<Record<string, unknown>[]>((resolve, reject) => {
        const got: Record<string, unknown>[] = []
        const req = httpRequest({ socketPath: sock, path: '/v1.47/containers/res/stats' }, (res) => {
          let buf = ''
          res.on('data', (c: Buffer) => {
            buf += c.toString()
            for (let nl = buf.indexOf('\n'); nl >= 0 && got.length < 2; nl = buf.indexOf('\n')) {
              got.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>)
              buf = buf.slice(nl + 1)
            }
            if (got.length === 2) {
              req.destroy()
              resolve(got)
            }
          })
          res.on('error', () => undefined)
        })
        req.on('error', reject)
        req.end()
      })
      const [first, second] = readings as [Record<string, { cpu_usage: { total_usage: number } }>, Record<string, { cpu_usage: { total_usage: number } }>]
      assert.equal(second['precpu_stats']?.cpu_usage.total_usage, first['cpu_stats']?.cpu_usage.total_usage)
      assert.equal((second as unknown as { memory_stats: { limit: number } }).memory_stats.limit, 48 << 20)
      // bad input is Docker's 400, a field Cairn cannot honour its 501
      assert.equal((await apiRequest(sock, 'POST', '/v1.47/containers/res/update', { Memory: 'lots' })).status, 400)
      assert.equal((await apiRequest(sock, 'POST', '/v1.47/containers/res/update', { BlkioWeight: 300 })).status, 501)
      assert.equal((await apiRequest(sock, 'GET', '/v1.47/containers/nope/top')).status, 404)
    } finally {
      await docker(['rm', '-f', 'res'])
    }
  })

  test("Docker's statuses and error bodies; bad input is a 4xx, never a crash", async (t) => {
    if (!(await requireContainers(t))) return
    const missing = await apiRequest(sock, 'GET', '/v1.47/containers/nope/json')
    assert.equal(missing.status, 404)
    assert.match((JSON.parse(missing.body.toString()) as { message: string }).message, /No such container: nope/)
    assert.equal((await apiRequest(sock, 'GET', '/images/nope:1/json')).status, 404)
    assert.equal((await apiRequest(sock, 'POST', '/containers/create', '{"Image": "busybox",')).status, 400)
    assert.equal((await apiRequest(sock, 'POST', '/containers/create', { Image: 'busybox', Bogus: 1 })).status, 400)
    assert.equal((await apiRequest(sock, 'GET', '/v9.99/info')).status, 400)
    const huge = await apiRequest(sock, 'POST', '/containers/create', `{"Image": "busybox", "Env": ["${'x'.repeat(5 << 20)}"]}`)
    assert.equal(huge.status, 413)
    assert.equal((await apiRequest(sock, 'GET', '/nothing/here')).status, 404)
    const created = await apiRequest(sock, 'POST', '/containers/create?name=dup', { Image: 'busybox', Cmd: ['true'] })
    assert.equal(created.status, 201)
    assert.equal((await apiRequest(sock, 'POST', '/containers/create?name=dup', { Image: 'busybox', Cmd: ['true'] })).status, 409)
    const trick = await apiRequest(sock, 'PUT', '/containers/dup/archive?path=/../../../../tmp', 'not a tar')
    assert.ok(trick.status >= 400 && trick.status < 500, `archive path trick: ${trick.status}`)
    assert.equal((await apiRequest(sock, 'DELETE', '/containers/dup')).status, 204)
    assert.equal((await apiRequest(sock, 'GET', '/_ping')).status, 200, 'the service still answers')
  })

  test('the socket is root-only; TCP is refused off loopback without TLS', async (t) => {
    if (!(await requireContainers(t))) return
    assert.equal(statSync(sock).mode & 0o777, 0o660)
    const open = await cairn(s?.root ?? '', ['system', 'service', '--socket', `unix://${work?.dir ?? ''}/other.sock`, '--tcp', '0.0.0.0:0'], { timeoutMs: 20_000 })
    assert.notEqual(open.code, 0)
    assert.match(open.stderr, /^Error: refusing to listen on 0\.0\.0\.0:0 without TLS/m)
    const half = await cairn(s?.root ?? '', ['system', 'service', '--tcp', '127.0.0.1:0', '--tlsverify'], { timeoutMs: 20_000 })
    assert.notEqual(half.code, 0)
    assert.match(half.stderr, /--tlsverify needs --tlscacert, --tlscert and --tlskey/)
  })

  test('TCP with TLS client certificates: a client with a certificate is served, one without is refused', async (t) => {
    if (!(await requireContainers(t)) || !requireTools(t, ['openssl'])) return
    const d = `${work?.dir ?? ''}/tls`
    await mkdir(d)
    const ssl = (args: string[]): Promise<RunResult> => run('openssl', args, { cwd: d, timeoutMs: 20_000 })
    await ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=test ca', '-days', '1'])
    for (const who of ['server', 'client']) {
      await ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`])
      await writeFile(`${d}/${who}.ext`, who === 'server' ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n')
      const r = await ssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '1', '-extfile', `${who}.ext`])
      assert.equal(r.code, 0, r.stderr)
    }
    const port = await freePort()
    const tls = await startService(s?.root ?? '', `${d}/tls.sock`, ['--tcp', `0.0.0.0:${port}`, '--tlsverify', '--tlscacert', `${d}/ca.pem`, '--tlscert', `${d}/server.pem`, '--tlskey', `${d}/server.key`])
    try {
      const [ca, cert, key] = await Promise.all(['ca.pem', 'client.pem', 'client.key'].map((f) => readFile(`${d}/${f}`)))
      const ping = (withCert: boolean): Promise<number> => new Promise((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/_ping', ca, ...(withCert ? { cert, key } : {}) }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        req.on('error', reject)
        req.end()
      })
      // the TCP listener comes up just after the socket the helper waited for
      let status = 0
      for (let i = 0; i < 100 && status === 0; i++) {
        status = await ping(true).catch(async () => {
          await new Promise((r) => setTimeout(r, 100))
          return 0
        })
      }
      assert.equal(status, 200)
      await assert.rejects(ping(false))
    } finally {
      await tls.stop()
    }
  })
})
