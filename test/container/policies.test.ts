/**
 * Volumes, restart policies, health checks and events. First the pure parts, without root: Docker's
 * flag syntaxes, the restart manager's decisions and back-off, the mount plan, HEALTHCHECK in
 * image changes, the event filters, and the journal's reading (past, live, rotation, torn lines).
 * Then, with root, the same through the command line under the real runtime.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseHealthFlags, parseMountFlag, parseRamBytes, parseRestartPolicy, parseVolumesFrom } from '../../src/api/flags.js'
import { restartDecision, parseRestartPolicyString, restartPolicyString } from '../../src/container/engine.js'
import { planMounts, tmpfsOf } from '../../src/container/mounts.js'
import { probeCommand } from '../../src/container/health.js'
import { formatDurationMs as goDuration } from '../../src/util/duration.js'
import { statusText } from '../../src/api/containers.js'
import { applyChanges } from '../../src/image/changes.js'
import { eventMatches, checkEventsOptions } from '../../src/api/system-events.js'
import { eventMessage, journalPath, MAX_JOURNAL_BYTES, readEvents, recordEvent, type EventMessage } from '../../src/events/journal.js'
import { eventJSON, eventLine } from '../../src/cli/events.js'
import { checkVolumeName } from '../../src/volume/store.js'
import { tempDir } from '../helpers/cairn.js'
import { Cairn, hasCode } from '../../src/index.js'
import { overlaySupported } from '../../src/mount/index.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'
import { addImage, busyboxLayer, layerTar } from './images.js'

describe('flags: --mount, -v, --volumes-from, --restart, --health-*', () => {
  test('--mount type=volume|tmpfs|bind with Docker\'s fields and errors', () => {
    assert.deepEqual(parseMountFlag('type=volume,source=data,target=/data,readonly,volume-nocopy'), { type: 'volume', source: 'data', target: '/data', readonly: true, noCopy: true })
    // the type defaults to volume; no source: anonymous
    assert.deepEqual(parseMountFlag('target=/cache'), { type: 'volume', target: '/cache', readonly: false })
    assert.deepEqual(parseMountFlag('type=volume,src=v,dst=/v,volume-label=a=b,volume-opt=type=tmpfs,volume-opt=device=tmpfs'), {
      type: 'volume', source: 'v', target: '/v', readonly: false, labels: { a: 'b' }, driverOptions: { type: 'tmpfs', device: 'tmpfs' },
    })
    // CSV: a quoted field keeps its commas
    assert.deepEqual(parseMountFlag('type=volume,src=v,dst=/v,"volume-opt=o=size=1m,uid=1000"').type === 'volume' ? (parseMountFlag('type=volume,src=v,dst=/v,"volume-opt=o=size=1m,uid=1000"') as { driverOptions?: Record<string, string> }).driverOptions : undefined, { o: 'size=1m,uid=1000' })
    assert.deepEqual(parseMountFlag('type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770'), { type: 'tmpfs', target: '/scratch', readonly: false, size: 64 << 20, mode: 0o1770 })
    assert.throws(() => parseMountFlag('type=tmpfs,source=x,target=/t'), /invalid mount config for type "tmpfs": field Source must not be specified/)
    assert.throws(() => parseMountFlag('type=bind,source=/x,target=/t,volume-nocopy'), /field VolumeOptions must not be specified/)
    assert.throws(() => parseMountFlag('type=volume,target=/t,tmpfs-size=1m'), /field TmpfsOptions must not be specified/)
    assert.throws(() => parseMountFlag('type=tmpfs,target=/t,tmpfs-size=lots'), /invalid value for tmpfs-size: lots/)
    assert.throws(() => parseMountFlag('type=nfs,target=/t'), /mount type unknown/)
    assert.throws(() => parseMountFlag('type=volume,source=v'), /field Target must not be empty/)
    assert.throws(() => parseMountFlag('type=volume,target=/'), /destination can't be '\/'/)
  })

  test('sizes as go-units reads them', () => {
    assert.equal(parseRamBytes('64m'), 64 * 2 ** 20)
    assert.equal(parseRamBytes('1g'), 2 ** 30)
    assert.equal(parseRamBytes('512KiB'), 512 * 1024)
    assert.equal(parseRamBytes('100'), 100)
    assert.equal(parseRamBytes('1.5k'), 1536)
    assert.equal(parseRamBytes('x'), undefined)
  })

  test('tmpfs options as Docker writes them (the largest unit that divides the size)', () => {
    assert.deepEqual(tmpfsOf({ type: 'tmpfs', target: '/t', readonly: false, size: 64 << 20, mode: 0o1777 }).options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=64m', 'mode=1777'])
    assert.deepEqual(tmpfsOf({ type: 'tmpfs', target: '/t', readonly: true, size: 1000 }).options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=1000', 'ro'])
  })

  test('--volumes-from NAME[:ro|rw]', () => {
    assert.equal(parseVolumesFrom('db:ro'), 'db:ro')
    assert.throws(() => parseVolumesFrom('db:rx'), /invalid mode: rx/)
    assert.throws(() => parseVolumesFrom(':ro'), /invalid volumes-from/)
  })

  test('--restart, with Docker\'s messages', () => {
    assert.deepEqual(parseRestartPolicy('no'), { name: 'no' })
    assert.deepEqual(parseRestartPolicy('always'), { name: 'always' })
    assert.deepEqual(parseRestartPolicy('on-failure:3'), { name: 'on-failure', maximumRetryCount: 3 })
    assert.deepEqual(parseRestartPolicy('on-failure'), { name: 'on-failure' })
    assert.throws(() => parseRestartPolicy('sometimes'), /invalid restart policy 'sometimes'/)
    assert.throws(() => parseRestartPolicy('always:2'), /maximum retry count cannot be used with restart policy 'always'/)
    assert.throws(() => parseRestartPolicy('on-failure:x'), /maximum retry count must be an integer/)
    assert.throws(() => parseRestartPolicy('on-failure:-1'), /maximum retry count cannot be negative/)
    assert.throws(() => parseRestartPolicy('a:1:2'), /invalid restart policy format/)
    assert.equal(restartPolicyString({ Name: 'on-failure', MaximumRetryCount: 3 }), 'on-failure:3')
    assert.deepEqual(parseRestartPolicyString('on-failure:3'), { Name: 'on-failure', MaximumRetryCount: 3 })
    assert.deepEqual(parseRestartPolicyString(''), { Name: 'no', MaximumRetryCount: 0 })
  })

  test('--health-* and --no-healthcheck, as Docker\'s CLI checks them', () => {
    assert.equal(parseHealthFlags({}), undefined)
    assert.deepEqual(parseHealthFlags({ healthCmd: 'curl -f localhost', healthInterval: '1m30s', healthRetries: '5' }), { test: ['CMD-SHELL', 'curl -f localhost'], interval: 90_000, retries: 5 })
    assert.deepEqual(parseHealthFlags({ healthTimeout: '500ms' }), { timeout: 500 })
    assert.deepEqual(parseHealthFlags({ noHealthcheck: true }), { test: ['NONE'] })
    assert.throws(() => parseHealthFlags({ noHealthcheck: true, healthCmd: 'true' }), /--no-healthcheck conflicts with --health-\* options/)
    assert.throws(() => parseHealthFlags({ healthInterval: '-1s' }), /--health-interval cannot be negative/)
    assert.throws(() => parseHealthFlags({ healthInterval: 'soon' }), /invalid duration "soon"/)
  })
})

describe('the restart manager', () => {
  const run = (over: Partial<Parameters<typeof restartDecision>[1]> = {}): Parameters<typeof restartDecision>[1] => ({ exitCode: 1, manualStop: false, restartCount: 0, ranMs: 50, backoff: 0, ...over })

  test('which policy restarts what', () => {
    assert.equal(restartDecision({ Name: 'no', MaximumRetryCount: 0 }, run()).restart, false)
    assert.equal(restartDecision({ Name: 'always', MaximumRetryCount: 0 }, run({ exitCode: 0 })).restart, true)
    assert.equal(restartDecision({ Name: 'unless-stopped', MaximumRetryCount: 0 }, run({ exitCode: 0 })).restart, true)
    assert.equal(restartDecision({ Name: 'on-failure', MaximumRetryCount: 0 }, run({ exitCode: 0 })).restart, false)
    assert.equal(restartDecision({ Name: 'on-failure', MaximumRetryCount: 0 }, run({ restartCount: 99 })).restart, true)
    assert.equal(restartDecision({ Name: 'on-failure', MaximumRetryCount: 3 }, run({ restartCount: 2 })).restart, true)
    assert.equal(restartDecision({ Name: 'on-failure', MaximumRetryCount: 3 }, run({ restartCount: 3 })).restart, false)
    // a stop or kill by the user: no policy restarts
    for (const Name of ['always', 'unless-stopped', 'on-failure'] as const) assert.equal(restartDecision({ Name, MaximumRetryCount: 0 }, run({ manualStop: true })).restart, false)
  })

  test('back-off: 100 ms, doubled each time up to a minute, reset after 10 s of running', () => {
    const always = { Name: 'always', MaximumRetryCount: 0 } as const
    const delays: number[] = []
    let backoff = 0
    for (let i = 0; i < 12; i++) {
      backoff = restartDecision(always, run({ backoff })).delay
      delays.push(backoff)
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000])
    assert.equal(restartDecision(always, run({ backoff: 60000, ranMs: 10_000 })).delay, 100)
  })

  test('ps shows a restarting container as Docker does; a health check\'s status after Up', () => {
    const now = Date.parse('2024-01-01T12:00:00Z')
    assert.equal(statusText({ state: 'restarting', started_at: now - 5000, finished_at: now - 2000, exit_code: 1 }, now), 'Restarting (1) 2 seconds ago')
    assert.equal(statusText({ state: 'running', started_at: now - 5000, finished_at: null, exit_code: 0 }, now, { Status: 'healthy', FailingStreak: 0, Log: [] }), 'Up 5 seconds (healthy)')
    assert.equal(statusText({ state: 'running', started_at: now - 5000, finished_at: null, exit_code: 0 }, now, { Status: 'starting', FailingStreak: 0, Log: [] }), 'Up 5 seconds (health: starting)')
  })
})

describe('mount plans', () => {
  test('the user\'s mounts over --volumes-from, the image\'s VOLUMEs where nothing else is', () => {
    const plan = planMounts(
      [{ type: 'volume', source: 'data', target: '/data', readonly: false }, { type: 'tmpfs', target: '/tmp', readonly: false }],
      [{ source: '/v/x/_data', destination: '/data', readonly: true, volume: { name: 'x', anonymous: true, driver: 'local' } },
        { source: '/v/y/_data', destination: '/logs', readonly: true, volume: { name: 'y', anonymous: false, driver: 'local' } }],
      ['/data', '/tmp', '/var/lib/db'],
    )
    const shape = plan.mounts.map((m) => (m.kind === 'bind' ? `bind ${m.mount.destination}` : `volume ${m.request.name ?? '<anonymous>'} ${m.destination} ${m.readonly ? 'ro' : 'rw'} ${m.copyUp ? 'copy' : 'nocopy'}`))
    assert.deepEqual(shape, ['volume y /logs ro nocopy', 'volume data /data rw copy', 'volume <anonymous> /var/lib/db rw copy'])
    assert.deepEqual(plan.tmpfs.map((t) => t.destination), ['/tmp'])
    assert.deepEqual(plan.anonymousTargets, ['/var/lib/db'])
  })

  test('two mounts of the user\'s at one path: Docker\'s duplicate mount point', () => {
    assert.throws(() => planMounts([{ type: 'volume', source: 'a', target: '/d', readonly: false }, { type: 'tmpfs', target: '/d/', readonly: false }], [], []), /Duplicate mount point: \/d/)
  })

  test('--tmpfs takes its path: a --mount there is a duplicate, --volumes-from and image VOLUMEs yield to it', () => {
    assert.throws(() => planMounts([{ type: 'tmpfs', target: '/scratch', readonly: false }], [], [], ['/scratch/']), /Duplicate mount point: \/scratch/)
    assert.throws(() => planMounts([{ type: 'bind', source: '/', target: '/run', readonly: true }], [], [], ['/run']), /Duplicate mount point: \/run/)
    const plan = planMounts([], [{ source: '/v/x/_data', destination: '/run', readonly: false, volume: { name: 'x', anonymous: false, driver: 'local' } }], ['/run', '/data'], ['/run'])
    assert.deepEqual(plan.mounts.map((m) => (m.kind === 'volume' ? m.destination : m.mount.destination)), ['/data'])
  })

  test('volume names as the local driver takes them', () => {
    checkVolumeName('my_vol-1.0')
    assert.throws(() => checkVolumeName('a'), /includes invalid characters for a local volume name/)
    assert.throws(() => checkVolumeName('x/y'), /only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/)
  })
})

describe('HEALTHCHECK in image changes', () => {
  test('options, CMD (exec and shell forms) and NONE', () => {
    assert.deepEqual(applyChanges({}, ['HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 CMD curl -f http://localhost/']).Healthcheck, {
      Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9, Timeout: 2e9, StartPeriod: 60e9, Retries: 4,
    })
    assert.deepEqual(applyChanges({}, ['HEALTHCHECK CMD ["/bin/check", "-q"]']).Healthcheck, { Test: ['CMD', '/bin/check', '-q'] })
    assert.deepEqual(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] })
    assert.throws(() => applyChanges({}, ['HEALTHCHECK NONE --x']), /HEALTHCHECK NONE takes no arguments/)
    assert.throws(() => applyChanges({}, ['HEALTHCHECK RUN true']), /Unknown type "RUN" in HEALTHCHECK \(try CMD\)/)
    assert.throws(() => applyChanges({}, ['HEALTHCHECK --retries=-1 CMD true']), /--retries cannot be negative/)
  })

  test('the probe\'s command, and Go\'s durations in its timeout message', () => {
    assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'exit 1'] }, undefined), ['/bin/sh', '-c', 'exit 1'])
    assert.deepEqual(probeCommand({ Test: ['CMD', 'true'] }, undefined), ['true'])
    assert.deepEqual(probeCommand({ Test: ['CMD-SHELL', 'x'] }, ['/bin/bash', '-lc']), ['/bin/bash', '-lc', 'x'])
    assert.equal(probeCommand({ Test: ['NONE'] }, undefined), undefined)
    assert.equal(goDuration(30_000), '30s')
    assert.equal(goDuration(1500), '1.5s')
    assert.equal(goDuration(500), '500ms')
    assert.equal(goDuration(90_000), '1m30s')
    assert.equal(goDuration(3_600_000), '1h0m0s')
  })
})

describe('events', () => {
  const ctr = eventMessage('container', 'start', 'a'.repeat(64), { image: 'busybox:1', name: 'web', 'com.example': 'x' }, 1_700_000_000_123_456_000)
  const img = eventMessage('image', 'tag', 'sha256:abc', { name: 'busybox:2' }, 1_700_000_001_000_000_000)
  const vol = eventMessage('volume', 'create', 'data', { driver: 'local' }, 1_700_000_002_000_000_000)
  const health = eventMessage('container', 'health_status: healthy', 'b'.repeat(64), { image: 'busybox', name: 'db' })

  test('Docker\'s message: legacy fields for containers and images only', () => {
    assert.equal(ctr.status, 'start')
    assert.equal(ctr.id, ctr.Actor.ID)
    assert.equal(ctr.from, 'busybox:1')
    assert.equal(ctr.time, 1_700_000_000)
    assert.equal(vol.status, undefined)
    assert.deepEqual(Object.keys(ctr), ['status', 'id', 'from', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano'])
    assert.equal(eventJSON(vol), '{"Type":"volume","Action":"create","Actor":{"ID":"data","Attributes":{"driver":"local"}},"scope":"local","time":1700000002,"timeNano":1700000002000000000}')
    assert.match(eventLine(ctr), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456\d{3}(Z|[+-]\d\d:\d\d) container start a{64} \(com\.example=x, image=busybox:1, name=web\)\n$/)
  })

  test('Docker\'s filters', () => {
    const pass = (f: Record<string, string[]>, e: EventMessage): boolean => eventMatches(f, e)
    assert.ok(pass({ type: ['container'] }, ctr))
    assert.ok(!pass({ type: ['container'] }, img))
    assert.ok(pass({ event: ['start', 'die'] }, ctr))
    assert.ok(!pass({ event: ['die'] }, ctr))
    // health_status matches with its detail
    assert.ok(pass({ event: ['health_status'] }, health))
    assert.ok(pass({ container: ['web'] }, ctr))
    assert.ok(pass({ container: ['aaaa'] }, ctr), 'an ID prefix')
    assert.ok(!pass({ container: ['db'] }, ctr))
    // image: a container's image, with or without its tag; an image event's name
    assert.ok(pass({ image: ['busybox'] }, ctr))
    assert.ok(pass({ image: ['busybox:1'] }, ctr))
    assert.ok(pass({ image: ['busybox'] }, img))
    assert.ok(pass({ label: ['com.example=x'] }, ctr))
    assert.ok(!pass({ label: ['com.example=y'] }, ctr))
    assert.ok(pass({ volume: ['data'] }, vol))
    assert.ok(!pass({ volume: ['other'] }, vol))
    assert.throws(() => checkEventsOptions({ filters: { type: ['nope'] } }), /invalid filter 'type=nope'/)
    assert.throws(() => checkEventsOptions({ filters: { colour: ['red'] } }), /invalid filter 'colour'/)
    assert.throws(() => checkEventsOptions({ since: '1h', until: '2h' }), /`since` time cannot be after `until` time/)
  })

  test('the journal: the past by since/until, then live; torn lines skipped; rotation followed', async () => {
    const { dir, cleanup } = await tempDir('cairn-events-')
    try {
      mkdirSync(dir, { recursive: true })
      const t0 = Date.now()
      recordEvent(dir, 'container', 'create', 'c1', { name: 'one' })
      recordEvent(dir, 'container', 'start', 'c1', { name: 'one' })
      appendFileSync(journalPath(dir), '{"Type":"container","Act') // a writer killed mid-line
      appendFileSync(journalPath(dir), '\n')
      const past: string[] = []
      // (events carry microseconds: the millisecond after now covers the last one)
      for await (const e of readEvents(dir, { since: t0 - 1000, until: Date.now() + 1 })) past.push(e.Action)
      assert.deepEqual(past, ['create', 'start'])
      // live: only what comes after the reader started, across a rotation of the file
      const ac = new AbortController()
      const seen: string[] = []
      const reader = (async () => {
        for await (const e of readEvents(dir, { signal: ac.signal, pollMs: 20 })) {
          seen.push(e.Action)
          if (seen.length === 3) ac.abort()
        }
      })()
      await sleep(100)
      recordEvent(dir, 'container', 'die', 'c1')
      // past the bound: the next write moves the file aside
      writeFileSync(`${dir}/big`, '')
      appendFileSync(journalPath(dir), `${'x'.repeat(MAX_JOURNAL_BYTES)}\n`)
      recordEvent(dir, 'container', 'destroy', 'c1')
      await sleep(100)
      recordEvent(dir, 'image', 'pull', 'busybox:latest')
      await reader
      assert.deepEqual(seen, ['die', 'destroy', 'pull'])
    } finally {
      await cleanup()
    }
  })
})

describe('the library: volumes and events as typed calls', () => {
  test('createVolume, listVolumes, inspectVolume, removeVolumes, pruneVolumes; their events', async () => {
    const { dir, cleanup } = await tempDir('cairn-vol-lib-')
    const cairn = await Cairn.open({ root: `${dir}/root` })
    try {
      const t0 = Date.now() - 1000
      const v = cairn.createVolume({ name: 'lib', labels: { team: 'a' } })
      assert.equal(v.Name, 'lib')
      assert.equal(v.Mountpoint, `${dir}/root/volumes/lib/_data`)
      assert.deepEqual(v.Labels, { team: 'a' })
      const anon = cairn.createVolume({ anonymous: true })
      assert.match(anon.Name, /^[0-9a-f]{64}$/)
      assert.deepEqual(cairn.listVolumes({ filters: { label: ['team=a'] } }).map((x) => x.Name), ['lib'])
      assert.equal(cairn.inspectVolume('lib').Driver, 'local')
      assert.throws(() => cairn.inspectVolume('nope'), (err: unknown) => hasCode(err, 'NAME_UNKNOWN'))
      // prune: unused anonymous volumes only, unless all
      assert.deepEqual((await cairn.pruneVolumes()).removed, [anon.Name])
      await cairn.removeVolumes('lib')
      assert.deepEqual(cairn.listVolumes(), [])
      const seen: string[] = []
      for await (const e of cairn.events({ since: t0, until: Date.now() + 500, filters: { type: ['volume'] } })) seen.push(`${e.Action} ${e.Actor.ID.slice(0, 3)}`)
      assert.deepEqual(seen, ['create lib', `create ${anon.Name.slice(0, 3)}`, `destroy ${anon.Name.slice(0, 3)}`, 'destroy lib'])
    } finally {
      cairn.close()
      await cleanup()
    }
  })
})

/**
 * With root, under the real runtime, through the command line, on one store: volumes (data
 * kept across containers, copy-up, in-use refusal, rm -v), restart policies (on-failure:N,
 * always after kill -9, stop honoured) and health checks (healthy, then unhealthy after the
 * retries), with the events they leave.
 */
describe('volumes, restart policies and health under the runtime', { concurrency: true }, () => {
  let s: ContainerStore | undefined
  const started = Date.now()
  before(async () => {
    if (process.getuid?.() !== 0) return
    s = await containerStore(await overlaySupported() ? 'overlay' : 'native')
    // an image with content at a VOLUME path, for copy-up and anonymous volumes
    const seed = await layerTar([{ path: 'seed/', type: 'directory', mode: 0o750 }, { path: 'seed/hello', content: 'from the image\n', mode: 0o600 }])
    await addImage(s.root, 'seeded:latest', [await busyboxLayer(), seed], { Cmd: ['sh'], Volumes: { '/seed': {} } })
  })
  after(async () => {
    await s?.cleanup()
  })
  const ready = async (t: TestContext): Promise<ContainerStore | undefined> => ((await requireContainers(t)) && s ? s : undefined)

  interface Inspected { Id: string; RestartCount: number; State: { Status: string; Pid: number; ExitCode: number; Health?: { Status: string; FailingStreak: number; Log: { ExitCode: number }[] } }; Mounts: { Type: string; Name?: string; Destination: string; RW: boolean }[] }
  const inspect = async (c: ContainerStore, name: string): Promise<Inspected> => (JSON.parse((await c.cliOk(['inspect', '--type', 'container', name])).stdout) as Inspected[])[0] as Inspected
  const waitFor = async (what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> => {
    const deadline = Date.now() + ms
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(100)
    }
  }

  test('a named volume outlives its container; copy-up; in use: not removed; rm -v; system df; none left by a build', async (t) => {
    const c = await ready(t)
    if (!c) return
    // a build's RUN step on an image with a VOLUME leaves no volume behind (first: the other
    // tests make none, so the store has none yet)
    const ctx = `${c.root}/../ctx`
    mkdirSync(ctx, { recursive: true })
    writeFileSync(`${ctx}/Dockerfile`, 'FROM seeded\nRUN cat /seed/hello\n')
    await c.cliOk(['build', '-q', '-t', 'built', '--network', 'none', ctx])
    assert.equal((await c.cliOk(['volume', 'ls', '-q'])).stdout, '')

    await c.cliOk(['volume', 'create', 'data'])
    await c.cliOk(['run', '--name', 'writer', '-v', 'data:/data', 'busybox', 'sh', '-c', 'echo kept > /data/f'])
    await c.cliOk(['rm', 'writer'])
    assert.equal((await c.cliOk(['run', '--rm', '-v', 'data:/data:ro', 'busybox', 'cat', '/data/f'])).stdout, 'kept\n')
    // read-only: a write is refused inside
    const ro = await c.cli(['run', '--rm', '-v', 'data:/data:ro', 'busybox', 'touch', '/data/g'])
    assert.notEqual(ro.code, 0)
    assert.match(ro.stderr + ro.stdout, /Read-only file system/)

    // an empty named volume gets the image's content (mode and owner kept); a second use does not
    const copied = await c.cliOk(['run', '--name', 'seeder', '-v', 'fresh:/seed', 'seeded', 'sh', '-c', 'stat -c "%a %u" /seed /seed/hello; cat /seed/hello; echo mine > /seed/hello'])
    assert.equal(copied.stdout, '750 0\n600 0\nfrom the image\n')
    assert.equal((await c.cliOk(['run', '--rm', '-v', 'fresh:/seed', 'seeded', 'cat', '/seed/hello'])).stdout, 'mine\n')
    // nocopy: left empty
    assert.equal((await c.cliOk(['run', '--rm', '--mount', 'type=volume,src=bare,dst=/seed,volume-nocopy', 'seeded', 'ls', '-A', '/seed'])).stdout, '')

    // a volume a container uses (even a stopped one) is not removed, and its data stays
    const inUse = await c.cli(['volume', 'rm', 'fresh'])
    assert.equal(inUse.code, 1)
    assert.match(inUse.stderr, /^Error response from daemon: remove fresh: volume is in use - \[[0-9a-f]{64}\]\n$|^Error: remove fresh: volume is in use - \[[0-9a-f]{64}\]\n$/)
    assert.equal((await c.cli(['volume', 'prune', '-f'])).code, 0)
    assert.match((await c.cliOk(['volume', 'ls', '-q'])).stdout, /^fresh$/m)
    // the image's VOLUME without a name: an anonymous volume, removed with rm -v
    const seeder = await inspect(c, 'seeder')
    assert.deepEqual(seeder.Mounts.map((m) => [m.Type, m.Name, m.Destination, m.RW]), [['volume', 'fresh', '/seed', true]])
    await c.cliOk(['create', '--name', 'anon', 'seeded'])
    const anon = (await inspect(c, 'anon')).Mounts.find((m) => m.Destination === '/seed')
    assert.match(anon?.Name ?? '', /^[0-9a-f]{64}$/)
    // --volumes-from: the same volumes, read-only here
    assert.equal((await c.cliOk(['run', '--rm', '--volumes-from', 'anon:ro', 'busybox', 'cat', '/seed/hello'])).stdout, 'from the image\n')
    const df = JSON.parse((await c.cliOk(['system', 'df', '--format', 'json'])).stdout.split('\n').find((l) => l.includes('Local Volumes')) ?? '{}') as { TotalCount?: string; Active?: string }
    assert.equal(df.TotalCount, '4', 'data, fresh, bare and the anonymous one')
    assert.equal(df.Active, '2')
    await c.cliOk(['rm', '-v', 'anon', 'seeder'])
    const left = (await c.cliOk(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean).sort()
    assert.deepEqual(left, ['bare', 'data', 'fresh'], 'rm -v removed the anonymous volume, not the named one')
    await c.cliOk(['volume', 'rm', 'fresh', 'bare'])
    assert.equal((await c.cli(['volume', 'inspect', 'fresh'])).code, 1)
  })

  test('--restart on-failure:3 runs four times then stops, RestartCount 3; events tell it', async (t) => {
    const c = await ready(t)
    if (!c) return
    await c.cliOk(['run', '-d', '--name', 'flaky', '--restart', 'on-failure:3', 'busybox', 'sh', '-c', 'echo one-run >> /runs; exit 3'])
    let last: Inspected | undefined
    await waitFor('the last exit', async () => {
      last = await inspect(c, 'flaky')
      return last.State.Status === 'exited' && last.RestartCount === 3
    })
    assert.equal(last?.State.ExitCode, 3)
    await sleep(1000)
    assert.equal((await inspect(c, 'flaky')).RestartCount, 3, 'no fourth restart')
    // the writable layer is kept across the runs: four lines
    assert.equal((await c.cliOk(['cp', 'flaky:/runs', '-'])).stdout.match(/one-run\n/g)?.length, 4)
    const actions = (await c.cliOk(['events', '--since', String(Math.floor(started / 1000)), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'container=flaky', '--filter', 'event=die', '--format', '{{.Action}} {{.Actor.Attributes.exitCode}}'])).stdout
    assert.equal(actions, 'die 3\n'.repeat(4))
  })

  test('--restart always: back after kill -9 of its process; stop is honoured', async (t) => {
    const c = await ready(t)
    if (!c) return
    await c.cliOk(['run', '-d', '--name', 'keeper', '--restart', 'always', 'busybox', 'sleep', '1000'])
    const first = await inspect(c, 'keeper')
    assert.equal(first.State.Status, 'running')
    process.kill(first.State.Pid, 'SIGKILL')
    let again: Inspected | undefined
    await waitFor('the restart', async () => {
      again = await inspect(c, 'keeper')
      return again.State.Status === 'running' && again.RestartCount === 1
    })
    assert.notEqual(again?.State.Pid, first.State.Pid)
    await c.cliOk(['stop', '-t', '1', 'keeper'])
    await sleep(1500)
    const stopped = await inspect(c, 'keeper')
    assert.equal(stopped.State.Status, 'exited')
    assert.equal(stopped.RestartCount, 1)
    assert.match((await c.cliOk(['ps', '-a', '--filter', 'name=keeper', '--format', '{{.Status}}'])).stdout, /^Exited \(137\) /)
  })

  test('a health check: healthy in ps and inspect, unhealthy after the retries fail', async (t) => {
    const c = await ready(t)
    if (!c) return
    await c.cliOk(['run', '-d', '--name', 'doc', '--health-cmd', 'test ! -e /tmp/sick', '--health-interval', '300ms', '--health-retries', '2', '--health-timeout', '5s', 'busybox', 'sleep', '1000'])
    await waitFor('healthy', async () => (await inspect(c, 'doc')).State.Health?.Status === 'healthy')
    assert.match((await c.cliOk(['ps', '--filter', 'name=doc', '--format', '{{.Status}}'])).stdout, /^Up .* \(healthy\)\n$/)
    await c.cliOk(['exec', 'doc', 'touch', '/tmp/sick'])
    await waitFor('unhealthy', async () => (await inspect(c, 'doc')).State.Health?.Status === 'unhealthy')
    const h = (await inspect(c, 'doc')).State.Health
    assert.ok((h?.FailingStreak ?? 0) >= 2, `failing streak ${String(h?.FailingStreak)}`)
    assert.equal(h?.Log.at(-1)?.ExitCode, 1)
    assert.match((await c.cliOk(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}} {{.Status}}'])).stdout, /^doc Up .* \(unhealthy\)\n$/)
    const seen = (await c.cliOk(['events', '--since', String(Math.floor(started / 1000)), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'container=doc', '--filter', 'event=health_status', '--format', '{{.Action}}'])).stdout
    assert.deepEqual(seen.split('\n').filter(Boolean), ['health_status: healthy', 'health_status: unhealthy'])
    await c.cliOk(['rm', '-f', 'doc'])
  })
})
