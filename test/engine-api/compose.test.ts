/**
 * Debian's docker-compose against `cairn system service`: a web server and a client that reaches
 * it by service name on the project's user network; `down` removes containers and network.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { run, type RunResult } from '../helpers/exec.js'
import { cairn, tempDir } from '../helpers/cairn.js'
import { requireTools } from '../helpers/tools.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'
import { startService, type Served } from './helpers.js'

const COMPOSE = `version: "3.7"
services:
  web:
    image: busybox:latest
    command: sh -c 'echo hi-from-web > /tmp/index.html; exec busybox httpd -f -p 80 -h /tmp'
  client:
    image: busybox:latest
    command: sh -c 'for i in $$(seq 1 100); do wget -q -O - http://web/index.html && exit 0; sleep 0.2; done; exit 1'
    depends_on: [web]
`

let s: ContainerStore | undefined
let service: Served | undefined
let work: { dir: string; cleanup: () => Promise<void> } | undefined
const project = `cairnapi${randomBytes(3).toString('hex')}`

before(async () => {
  work = await tempDir('cairn-api-compose-')
  s = await containerStore('overlay')
  service = await startService(s.root, `${work.dir}/docker.sock`)
})

after(async () => {
  // the network is host-wide: never leave it behind, whatever the test did
  if (s) await cairn(s.root, ['network', 'rm', `${project}_default`])
  await service?.stop()
  await s?.cleanup()
  await work?.cleanup()
})

test('docker-compose: two services reach each other by name on a user network', { timeout: 60_000 }, async (t) => {
  if (!(await requireContainers(t)) || !requireTools(t, ['docker-compose'])) return
  const dir = `${work?.dir ?? ''}/project`
  await mkdir(dir)
  await writeFile(`${dir}/docker-compose.yml`, COMPOSE)
  const env = { ...process.env, DOCKER_HOST: service?.address ?? '', DOCKER_CONFIG: dir }
  const compose = (args: string[]): Promise<RunResult> => run('docker-compose', ['-p', project, ...args], { cwd: dir, env, timeoutMs: 40_000 })
  const up = await compose(['up', '-d'])
  assert.equal(up.code, 0, up.stderr)
  assert.match(up.stderr, new RegExp(`Creating network "${project}_default"`))
  // the client exits 0 once it fetched the page from "web"
  let ps = ''
  for (let i = 0; i < 150; i++) {
    ps = (await cairn(s?.root ?? '', ['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout
    if (/_client_1 Exited/.test(ps)) break
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.match(ps, new RegExp(`${project}_client_1 Exited \\(0\\)`))
  assert.match(ps, new RegExp(`${project}_web_1 Up`))
  const logs = await compose(['logs', '--no-color', 'client'])
  assert.match(logs.stdout, /hi-from-web/)
  const down = await compose(['down', '-t', '1'])
  assert.equal(down.code, 0, down.stderr)
  assert.equal((await cairn(s?.root ?? '', ['ps', '-aq'])).stdout, '')
  assert.doesNotMatch((await cairn(s?.root ?? '', ['network', 'ls'])).stdout, new RegExp(project))
})
