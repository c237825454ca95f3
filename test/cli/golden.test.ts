/**
 * Golden tests: Cairn's output side by side with Docker's on the same store contents. The same
 * images (Cairn's `save` loaded into a private dockerd, so IDs, sizes and creation times are
 * equal), equivalent containers, then each command and flag with templates, filters and errors:
 * the same columns, the same words, the same exit codes. Only what must differ is normalised
 * (container IDs, times that move, Docker's "Error response from daemon" wording).
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { accessSync, constants } from 'node:fs'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { requireTools, Tools } from '../helpers/tools.js'
import { run, type RunResult } from '../helpers/exec.js'
import { containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'

/** A Docker client new enough for `--format json` (Docker 23+), else Debian's 20.10. */
function modernDocker(): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = `${dir}/docker`
    if (p === Tools.docker || dir === '') continue
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return Tools.docker
}

const AGO = /\b(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?)) ago\b/g
const UP = /\bUp (Less than a second|About a minute|\d+ (seconds?|minutes?))\b/g
const NOW = /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000 UTC/g

describe('the same output as Docker, on the same images and containers', { concurrency: false }, () => {
  let dockerd: Dockerd | undefined
  let s: ContainerStore | undefined
  let docker: string = Tools.docker
  let jsonFormat = false
  let ready = false
  const ids = new Map<string, string>()

  before(async () => {
    if (process.getuid?.() !== 0) return
    try {
      dockerd = await startDockerd()
    } catch (err) {
      if (process.env['CI']) throw err
      return
    }
    docker = modernDocker()
    const client = await dockerRun(['version', '--format', '{{.Client.Version}}'])
    jsonFormat = Number(client.stdout.split('.')[0]) >= 23
    s = await containerStore('overlay')
    const tar = await busyboxRootfsTar()
    await s.cliOk(['rmi', 'busybox:latest'])
    // the same images in both stores: imported by Cairn, loaded into Docker from Cairn's save
    const images: [string, number, string[]][] = [
      ['busybox:latest', 1_700_000_000, ['CMD ["sh"]', 'LABEL a=b']],
      ['second:1', 1_700_000_100, ['CMD ["sh"]', 'LABEL tier=web']],
      ['dang:1', 1_700_000_200, ['CMD ["sh"]']],
      ['dang:1', 1_700_000_300, ['CMD ["sh"]', 'ENV X=1']],
    ]
    for (const [name, ts, changes] of images) {
      await s.cliOk(['import', '--timestamp', String(ts), ...changes.flatMap((c) => ['-c', c]), tar, name])
      const archive = `${s.root}/../${name.replace(/[:/]/g, '_')}-${ts}.tar`
      await s.cliOk(['save', '-o', archive, name])
      await dockerd.runOk(['load', '-i', archive])
    }
    for (const [a, b] of [['busybox', 'other/bb:1'], ['busybox', 'bb:2']] as const) {
      await s.cliOk(['tag', a, b])
      await dockerd.runOk(['tag', a, b])
    }
    // equivalent containers, made in the same order
    for (const args of [
      ['create', '--name', 'c1', '--network', 'none', 'busybox', 'true'],
      ['run', '--name', 'e3', '--network', 'none', 'second:1', 'sh', '-c', 'exit 3'],
      ['run', '-d', '--name', 'r1', '--network', 'none', 'busybox', 'sleep', '300'],
    ]) {
      const d = await dockerd.run(args)
      const c: RunResult = await s.cli(args)
      assert.equal(c.code, d.code, `${args.join(' ')}: ${c.stderr}`)
    }
    for (const n of ['c1', 'e3', 'r1']) {
      ids.set((await dockerRun(['inspect', '-f', '{{.Id}}', n])).stdout.trim(), n)
      ids.set((await s.cliOk(['inspect', '-f', '{{.Id}}', n])).stdout.trim(), n)
    }
    ready = true
  })
  after(async () => {
    await s?.cleanup()
    await dockerd?.stop()
  })

  function dockerRun(args: readonly string[]): Promise<RunResult> {
    const d = dockerd as Dockerd
    return run(docker, ['-H', d.host, ...args], { env: d.clientEnv, timeoutMs: 60_000 })
  }

  /** Container IDs by name, moving times as placeholders. */
  function norm(text: string): string {
    let out = text.replace(AGO, '<ago>').replace(UP, 'Up <t>').replace(NOW, '<time>')
    for (const [id, name] of ids) out = out.replaceAll(id, `<${name}>`).replaceAll(id.slice(0, 12), `<${name}>`)
    return out
  }

  /** A table as rows of cells (columns end at three or more spaces), normalised. */
  function cells(text: string): string[] {
    return text.split('\n').map((l) => norm(l).split(/ {3,}/).map((c) => c.trim()).join(' | '))
  }

  /** Docker's daemon errors in Cairn's form: `Error: invalid filter 'foo'`. */
  function normErr(text: string): string {
    return norm(text).replace(/^Error response from daemon: /gm, 'Error: ').replace(/^Error: (\w)/gm, (_m, c: string) => `Error: ${c.toLowerCase()}`).trim()
  }

  async function both(t: TestContext, args: string[]): Promise<{ docker: RunResult; cairn: RunResult } | undefined> {
    if (!ready) {
      if (process.env['CI']) throw new Error('no private dockerd could be started')
      t.skip('no private dockerd could be started')
      return undefined
    }
    return { docker: await dockerRun(args), cairn: await (s as ContainerStore).cli(args) }
  }

  /** Same exit code; same stdout (as table cells or byte for byte); same error words. */
  async function same(t: TestContext, args: string[], how: 'exact' | 'cells' | 'sorted' | 'rows' = 'cells'): Promise<void> {
    const r = await both(t, args)
    if (!r) return
    const what = `${args.join(' ')}\n--- docker:\n${r.docker.stdout}${r.docker.stderr}--- cairn:\n${r.cairn.stdout}${r.cairn.stderr}`
    assert.equal(r.cairn.code, r.docker.code, `exit code of ${what}`)
    if (how === 'exact') assert.equal(norm(r.cairn.stdout), norm(r.docker.stdout), what)
    else if (how === 'sorted') assert.deepEqual(cells(r.cairn.stdout).sort(), cells(r.docker.stdout).sort(), what)
    else if (how === 'rows') {
      // byte for byte, but the tags of one image come in Docker's map order: rows compared as a set
      const rows = (o: string): string[] => [o.split('\n')[0] ?? '', ...o.split('\n').slice(1).sort()]
      assert.deepEqual(rows(norm(r.cairn.stdout)), rows(norm(r.docker.stdout)), what)
    }
    else assert.deepEqual(cells(r.cairn.stdout), cells(r.docker.stdout), what)
    if (r.docker.code !== 0) assert.equal(normErr(r.cairn.stderr), normErr(r.docker.stderr), what)
  }

  const setup = async (t: TestContext): Promise<boolean> => {
    if (!(await requireContainers(t))) return false
    return requireTools(t, ['dockerd', 'docker', 'containerd', 'setpriv'])
  }

  test('images: the table, templates, json, filters and their errors', async (t) => {
    if (!(await setup(t))) return
    await same(t, ['images'], 'rows')
    await same(t, ['images', '--digests'], 'rows')
    await same(t, ['images', '-q'], 'rows')
    await same(t, ['images', '--format', 'table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.CreatedSince}}\\t{{.CreatedAt}}\\t{{.Size}}\\t{{.Containers}}\\t{{.SharedSize}}\\t{{.UniqueSize}}\\t{{.VirtualSize}}'], 'rows')
    await same(t, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{upper .Repository}} {{printf "%-8s|" .Tag}}{{if eq .Tag "<none>"}} dangling{{end}}'], 'sorted')
    if (jsonFormat) await same(t, ['images', '--format', 'json'], 'sorted')
    for (const f of ['dangling=true', 'dangling=false', 'label=a', 'label=a=b', 'label=a=c', 'label=tier', 'before=second:1', 'since=busybox', 'reference=*/bb', 'reference=bb*', 'reference=busybox:lat*', 'reference=second']) {
      await same(t, ['images', '--filter', f, '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], 'sorted')
    }
    await same(t, ['images', '--filter', 'label=a', '--filter', 'reference=bb'], 'rows')
    await same(t, ['images', '--filter', 'foo=bar'])
    await same(t, ['images', '--filter', 'dangling=maybe'])
    await same(t, ['images', '--format', '{{.Nope}}'])
    await same(t, ['images', '--format', '{{.ID'])
  })

  test('ps: the table, -a, -n, -l, -s, templates, json, filters and their errors', async (t) => {
    if (!(await setup(t))) return
    await same(t, ['ps'])
    await same(t, ['ps', '-a'])
    await same(t, ['ps', '-a', '--format', 'table {{.ID}}\\t{{.Names}}\\t{{.Image}}\\t{{.Command}}\\t{{.State}}\\t{{.Labels}}\\t{{.Networks}}\\t{{.Mounts}}\\t{{.LocalVolumes}}\\t{{.Label "a"}}\\t{{.Ports}}\\t{{.RunningFor}}\\t{{.CreatedAt}}'])
    await same(t, ['ps', '-a', '--format', '{{.Names}}: {{.Status}} {{json .Names}} {{.Label "tier"}}'], 'exact')
    await same(t, ['ps', '-a', '--format', 'table'])
    await same(t, ['ps', '-n', '2', '--format', '{{.Names}}'], 'exact')
    await same(t, ['ps', '-l', '--format', '{{.Names}}'], 'exact')
    await same(t, ['ps', '-s'])
    await same(t, ['ps', '-a', '--format', '{{.Names}} {{.Size}}'], 'exact')
    if (jsonFormat) await same(t, ['ps', '-a', '--format', 'json'], 'exact')
    for (const f of ['status=exited', 'status=created', 'name=r', 'name=^c', 'exited=3', 'exited=0', 'label=a', 'label=tier=web', 'ancestor=busybox', 'ancestor=second:1', 'ancestor=nosuch', 'before=r1', 'since=c1', 'volume=/nope', 'network=none', 'network=host']) {
      await same(t, ['ps', '-a', '--filter', f, '--format', '{{.Names}}'], 'exact')
    }
    await same(t, ['ps', '--filter', 'status=created', '--filter', 'status=running', '--format', '{{.Names}}'], 'exact')
    await same(t, ['ps', '-a', '--filter', 'name=1', '--filter', 'status=running', '--format', '{{.Names}}'], 'exact')
    for (const f of ['status=bogus', 'foo=bar', 'exited=abc']) await same(t, ['ps', '-a', '--filter', f])
    await same(t, ['ps', '-a', '--format', '{{.Nope}}'])
    await same(t, ['ps', '-a', '--format', '{{.ID'])
    await same(t, ['ps', '-a', '--format', '{{.ID }'])
    await same(t, ['ps', '-a', '--format', '{{.Names 1}}'])
  })

  test('inspect -f and --type on images and containers, with Docker\'s template errors and exit codes', async (t) => {
    if (!(await setup(t))) return
    const imageTemplate = '{{.Id}} {{.Size}} {{.Config.Cmd}} {{.Config.Labels}} {{json .Config.Labels}} {{index .Config.Labels "a"}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}} {{.RootFS}} {{range $i, $l := .RootFS.Layers}}{{$i}}={{$l}}{{end}}'
    await same(t, ['inspect', '-f', imageTemplate, 'busybox'], 'exact')
    await same(t, ['image', 'inspect', '--format', imageTemplate, 'second:1', 'bb:2'], 'exact')
    await same(t, ['inspect', '--type', 'image', '-f', '{{.RepoTags}}', 'busybox'], 'exact')
    await same(t, ['inspect', '-f', '{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.Config.Cmd}} {{.Config.Labels.a}} {{.HostConfig.NetworkMode}} {{.Path}} {{.Args}} {{with .State}}{{.Paused}}{{end}}', 'c1', 'e3', 'r1'], 'exact')
    await same(t, ['container', 'inspect', '-f', '{{.State.Status}}', 'e3'], 'exact')
    if (jsonFormat) await same(t, ['inspect', '-f', '{{json .Config.Labels}} {{json .RepoTags}}', 'busybox'], 'exact')
    for (const f of ['{{.Nope}}', '{{json .Nope}}', '{{.State.Nope}}', '{{.ID', '{{.ID }', '{{.ID}', '{{nope .}}', '{{if .Id}}x', '{{range .}}']) {
      await same(t, ['inspect', '-f', f, 'c1'], 'exact')
    }
    // the wrong kind: the same exit code and output; Docker 20.10's daemon words its message its own way
    for (const [type, name] of [['image', 'c1'], ['container', 'busybox']] as const) {
      const r = await both(t, ['inspect', '--type', type, '-f', '{{.Id}}', name])
      assert.equal(r?.cairn.code, r?.docker.code)
      assert.equal(r?.cairn.stdout, r?.docker.stdout)
      assert.match(r?.cairn.stderr ?? '', new RegExp(`^Error: No such ${type}: ${name}\n$`))
      assert.match(r?.docker.stderr ?? '', new RegExp(`[Nn]o such ${type}: ${name}`))
    }
    await same(t, ['inspect', '-f', '{{.Id}}', 'busybox', 'nosuch'], 'exact')
  })

  test('history: the table, --no-trunc, --human=false, templates and json', async (t) => {
    if (!(await setup(t))) return
    await same(t, ['history', 'busybox'], 'exact')
    await same(t, ['history', '--no-trunc', 'busybox'], 'exact')
    await same(t, ['history', '--human=false', 'busybox'], 'exact')
    await same(t, ['history', '--format', 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedAt}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}', 'busybox'], 'exact')
    if (jsonFormat) await same(t, ['history', '--format', 'json', 'busybox'], 'exact')
    await same(t, ['history', '--format', '{{.Nope}}', 'busybox'])
  })

  test('system df: Docker\'s rows and columns, -v sections, templates', async (t) => {
    if (!(await setup(t))) return
    await same(t, ['system', 'df'], 'exact')
    await same(t, ['system', 'df', '--format', 'table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}'], 'exact')
    await same(t, ['system', 'df', '--format', '{{.Type}}={{.Active}}/{{.TotalCount}}'], 'exact')
    if (jsonFormat) await same(t, ['system', 'df', '--format', 'json'], 'exact')
    await same(t, ['system', 'df', '--format', '{{.Nope}}'])
    const v = await both(t, ['system', 'df', '-v'])
    if (!v) return
    const sections = (o: string): string[] => o.split('\n').filter((l) => /space usage:$|^Build cache usage/.test(l))
    assert.deepEqual(sections(v.cairn.stdout), sections(v.docker.stdout))
    const headers = (o: string): string[] => o.split('\n').filter((l) => /^(REPOSITORY|CONTAINER ID|VOLUME NAME|CACHE ID)/.test(l)).map((l) => l.split(/ {3,}/).join('|'))
    assert.deepEqual(headers(v.cairn.stdout), headers(v.docker.stdout))
  })

  test('version and info: the same template keys, Docker\'s errors and exit codes', async (t) => {
    if (!(await setup(t))) return
    const keys = '{{.Client.Os}} {{.Client.Arch}} {{.Server.Os}} {{.Server.Arch}} {{.Server.KernelVersion}} {{len .Server.Components}}'
    const v = await both(t, ['version', '-f', keys])
    if (!v) return
    assert.equal(v.cairn.code, 0, v.cairn.stderr)
    assert.equal(v.cairn.stdout.split(' ').slice(0, 5).join(' '), v.docker.stdout.split(' ').slice(0, 5).join(' '))
    const info = '{{.CgroupVersion}} {{.CgroupDriver}} {{.OSType}} {{.Architecture}} {{.NCPU}} {{.MemTotal}} {{.KernelVersion}} {{.OperatingSystem}} {{.LoggingDriver}} {{.Images}} {{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{len .RegistryConfig.InsecureRegistryCIDRs}}'
    await same(t, ['info', '-f', info], 'exact')
    const driver = await both(t, ['info', '-f', '{{.Driver}} {{.DockerRootDir}} {{.DefaultRuntime}}'])
    assert.match(driver?.cairn.stdout ?? '', new RegExp(`^overlay ${(s as ContainerStore).root} (runc|crun)\\n$`))
    for (const [cmd, f] of [['version', '{{.ID'], ['info', '{{.ID'], ['version', '{{.Nope}}'], ['info', '{{.Nope}}']] as const) {
      const r = await both(t, [cmd, '-f', f])
      if (!r) return
      assert.equal(r.cairn.code, r.docker.code, `${cmd} -f ${f}: ${r.cairn.stderr}`)
      assert.equal(r.cairn.stdout, r.docker.stdout)
      // the type names are Docker's own; the rest of the message is the same
      const msg = (e: string): string => e.replace(/ in type [\w.*]+$/m, ' in type T')
      assert.equal(msg(r.cairn.stderr), msg(r.docker.stderr))
    }
    if (jsonFormat) {
      const j = await both(t, ['info', '-f', 'json'])
      const cairnKeys = Object.keys(JSON.parse(j?.cairn.stdout ?? '{}') as object)
      const dockerKeys = Object.keys(JSON.parse(j?.docker.stdout ?? '{}') as object)
      assert.deepEqual(cairnKeys.filter((k) => !dockerKeys.includes(k)), [], 'every key of Cairn\'s info is one of Docker\'s')
    }
  })

  test('image prune --filter: until and label, and Docker\'s errors', async (t) => {
    if (!(await setup(t))) return
    await same(t, ['image', 'prune', '-f', '--filter', 'foo=bar'])
    await same(t, ['image', 'prune', '-f', '--filter', 'until=abc'])
    await same(t, ['image', 'prune', '-f', '--filter', 'until=2000-01-01T00:00:00Z'], 'exact')
    await same(t, ['image', 'prune', '-f', '--filter', 'label=nope'], 'exact')
    await same(t, ['image', 'prune', '-f', '--filter', 'until=1h'], 'exact')
    await same(t, ['images', '--filter', 'dangling=true', '-q'], 'exact')
  })
})
