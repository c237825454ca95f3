/**
 * Exercises the interop harness alone (a private dockerd, the busybox rootfs, skopeo), so that a
 * failing interop test later points at Cairn, not at the harness.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startDockerd, skopeo, type Dockerd } from '../helpers/dockerd.js'
import { requireRoot } from '../helpers/root.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { isAlive, mountsUnder, procsMentioning } from '../helpers/system.js'
import { requireTools } from '../helpers/tools.js'

test('private dockerd imports, runs and saves the busybox rootfs; skopeo reads the archive; stop leaves nothing', async (t) => {
  if (!requireRoot(t, 'dockerd needs root')) return
  if (!requireTools(t, ['dockerd', 'docker', 'containerd', 'runc', 'skopeo', 'busybox', 'tar', 'setpriv'])) return

  const rootfs = await busyboxRootfsTar()
  const work = await mkdtemp(join(tmpdir(), 'cairn-harness-'))
  let docker: Dockerd | undefined
  t.after(async () => {
    await docker?.stop()
    await rm(work, { recursive: true, force: true })
  })

  docker = await startDockerd()
  const { dir, dataRoot, pid, containerdPid } = docker
  assert.ok(docker.host.startsWith('unix:///'), docker.host)

  await t.test('the daemon is ours: our data root, our containerd', async () => {
    const info = JSON.parse((await docker.runOk(['info', '--format', '{{json .}}'])).stdout) as Record<string, unknown>
    assert.equal(info['DockerRootDir'], dataRoot)
    assert.equal(info['Driver'], 'overlay2')
    const comms = docker.processes().map((p) => p.comm)
    assert.ok(comms.includes('dockerd'), comms.join(' '))
    assert.ok(comms.includes('containerd'), comms.join(' '))
  })

  await t.test('docker import + run of the busybox rootfs prints hi', async () => {
    const id = (await docker.runOk(['import', rootfs, 'cairn-harness/busybox:1'])).stdout.trim()
    assert.match(id, /^sha256:[0-9a-f]{64}$/)
    const r = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn-harness/busybox:1', '/bin/sh', '-c', 'echo hi'])
    assert.equal(r.stdout, 'hi\n')
    const cat = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn-harness/busybox:1', 'cat', '/usr/share/cairn/hello-symlink.txt'])
    assert.equal(cat.stdout, 'hello from the cairn test rootfs\n')
  })

  await t.test('stdin input reaches the client (docker load -)', async () => {
    const r = await docker.run(['load'], { input: 'not an archive' })
    assert.notEqual(r.code, 0)
  })

  const archive = join(work, 'busybox.tar')
  await t.test('docker save writes an archive that skopeo inspects', async () => {
    await docker.runOk(['save', '-o', archive, 'cairn-harness/busybox:1'])
    assert.ok((await stat(archive)).size > 1_000_000)
    const inspected = JSON.parse(await skopeo(['inspect', `docker-archive:${archive}`])) as {
      Layers: string[]
      Architecture: string
      Os: string
    }
    assert.equal(inspected.Layers.length, 1)
    assert.equal(inspected.Os, 'linux')
    const raw = JSON.parse(await skopeo(['inspect', '--config', `docker-archive:${archive}`])) as { rootfs: { diff_ids: string[] } }
    assert.equal(raw.rootfs.diff_ids.length, 1)
  })

  await t.test('stop ends every process it started and removes its dirs', async () => {
    // A container still running at stop time must not survive it.
    const cid = (await docker.runOk(['run', '-d', '--network', 'none', 'cairn-harness/busybox:1', 'sleep', '300'])).stdout.trim()
    const sleeper = Number((await docker.runOk(['inspect', '--format', '{{.State.Pid}}', cid])).stdout.trim())
    assert.ok(isAlive(sleeper), `container process ${sleeper} runs`)
    await docker.stop()
    await docker.stop() // twice is fine
    assert.deepEqual(
      procsMentioning(dir).map((p) => `${p.pid} ${p.argv.join(' ')}`),
      [],
      'no process mentions the private dir',
    )
    for (const p of [pid, containerdPid, sleeper]) assert.equal(isAlive(p), false, `pid ${p} is gone`)
    assert.deepEqual(mountsUnder(dir), [])
    assert.equal(existsSync(dataRoot), false)
    assert.equal(existsSync(dir), false)
  })
})
