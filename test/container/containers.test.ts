/**
 * Containers under a real OCI runtime, on real root filesystems (busybox-static; one run of a
 * debootstrap Debian minbase), for both snapshotters: the same suite for overlay and native.
 * Everything through the `cairn` command line, as a user would.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Readable } from 'node:stream'
import Database from 'better-sqlite3'
import { readTar } from '../../src/layer/tar.js'
import { readXattrTree } from '../../src/layer/sys.js'
import { overlaySupported } from '../../src/mount/index.js'
import { CLI, tempDir } from '../helpers/cairn.js'
import { debianRootfs } from '../helpers/rootfs.js'
import { isAlive } from '../helpers/system.js'
import { containerDirs, containerStore, mountsOf, requireContainers, type ContainerStore } from './helpers.js'
import { addImage, busyboxLayer, layerTar } from './images.js'

/** Rows, folders, container snapshots and mounts of a store: what "nothing left behind" means. */
function inventory(root: string): { rows: string[]; dirs: string[]; snapshots: string[]; mounts: string[] } {
  const db = new Database(`${root}/cairn.db`, { readonly: true })
  try {
    const rows = (db.prepare('SELECT id FROM containers').all() as { id: string }[]).map((r) => r.id).sort()
    // containers' own snapshots (an image's shared init layer stays, as its unpacked layers do)
    const snapshots = (db.prepare("SELECT key FROM snapshots WHERE key LIKE 'ctr-%' AND (key NOT LIKE 'ctr-init-%' OR key LIKE '%-tmp-%')").all() as { key: string }[]).map((r) => r.key).sort()
    return { rows, dirs: containerDirs(root).sort(), snapshots, mounts: mountsOf(root) }
  } finally {
    db.close()
  }
}

function row(root: string, id: string): { state: string; shim_pid: number | null; pid: number; exit_code: number } | undefined {
  const db = new Database(`${root}/cairn.db`, { readonly: true })
  try {
    return db.prepare('SELECT state, shim_pid, pid, exit_code FROM containers WHERE id = ? OR name = ?').get(id, id) as never
  } finally {
    db.close()
  }
}

interface PsJson { ID: string; Names: string; Status: string; State: string; Command: string; Image: string }

async function psAll(s: ContainerStore): Promise<PsJson[]> {
  const out = (await s.cliOk(['ps', '-a', '--no-trunc', '--format', 'json'])).stdout
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as PsJson)
}

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const drivers = ['overlay', 'native'] as const

async function idOf(c: ContainerStore, name: string): Promise<string> {
  return (JSON.parse((await c.cliOk(['inspect', name])).stdout) as { Id: string }[])[0]?.Id ?? ''
}

function mountedRootfs(c: ContainerStore, id: string): boolean {
  return mountsOf(c.root).some((m) => m.includes(id))
}

/** A suite on its own store; `driver` undefined: overlay where the kernel allows, else native. */
function suite(title: string, driver: 'overlay' | 'native' | undefined, concurrent: boolean, body: (store: (t: TestContext) => Promise<ContainerStore | undefined>) => void): void {
  describe(title, { concurrency: concurrent }, () => {
    let s: ContainerStore | undefined
    let usable = false
    let chosen: 'overlay' | 'native' = driver ?? 'overlay'
    before(async () => {
      if (process.getuid?.() !== 0) return
      const overlay = await overlaySupported()
      if (driver === 'overlay' && !overlay) return
      if (driver === undefined) chosen = overlay ? 'overlay' : 'native'
      s = await containerStore(chosen)
      usable = true
    })
    after(async () => {
      await s?.cleanup()
    })
    body(async (t) => {
      if (!(await requireContainers(t))) return undefined
      if (!usable || !s) {
        if (process.env['CI']) throw new Error(`the ${chosen} driver is not usable here`)
        t.skip(`the ${chosen} storage driver is not usable here`)
        return undefined
      }
      return s
    })
  })
}

for (const driver of drivers) {
  suite(`container storage on ${driver}`, driver, true, (store) => {
    test('run: the process is pid 1 with its own hostname; output split by stream; the exit code passes through', async (t) => {
      const c = await store(t)
      if (!c) return
      const r = await c.cli(['run', '--name', 'first', 'busybox', 'sh', '-c', 'echo pid=$$; hostname; echo oops >&2; exit 3'])
      assert.equal(r.code, 3, r.stderr)
      const [pidLine, host] = r.stdout.split('\n')
      assert.equal(pidLine, 'pid=1')
      assert.equal(r.stderr, 'oops\n')
      const inspect = JSON.parse((await c.cliOk(['inspect', 'first'])).stdout) as { Id: string; State: { ExitCode: number; Status: string }; Config: { Hostname: string }; Name: string }[]
      assert.equal(inspect[0]?.Name, '/first')
      assert.equal(host, inspect[0]?.Id.slice(0, 12), 'hostname is the short ID, as Docker sets it')
      assert.notEqual(host, spawnSync('hostname').stdout.toString().trim())
      assert.equal(inspect[0]?.State.ExitCode, 3)
      // logs keep the streams apart
      const logs = await c.cliOk(['logs', 'first'])
      assert.equal(logs.stdout, `pid=1\n${host}\n`)
      assert.equal(logs.stderr, 'oops\n')
      const ps = (await psAll(c)).find((p) => p.Names === 'first')
      assert.match(ps?.Status ?? '', /^Exited \(3\) (Less than a second|\d+ seconds?) ago$/)
      assert.equal(ps?.Command, JSON.stringify("sh -c 'echo pid=$$; hostname; echo oops >&2; exit 3'"))
      await c.cliOk(['rm', 'first'])
    })
    test('writes land in the writable layer only: the image is unchanged, another container does not see them', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '--name', 'writer', 'busybox', 'sh', '-c', 'echo changed > /usr/share/cairn/hello.txt; echo new > /added; mkdir -p /opt/deep/er'])
      const other = await c.cli(['run', '--rm', 'busybox', 'sh', '-c', 'cat /usr/share/cairn/hello.txt; ls /added /opt 2>&1 | head -2'])
      assert.equal(other.stdout.split('\n')[0], 'hello from the cairn test rootfs')
      assert.match(other.stdout, /No such file or directory/)
      const diff = (await c.cliOk(['diff', 'writer'])).stdout.split('\n').filter(Boolean)
      for (const line of ['A /added', 'C /usr/share/cairn/hello.txt', 'A /opt', 'A /opt/deep', 'A /opt/deep/er']) assert.ok(diff.includes(line), `${line} in ${diff.join(', ')}`)
      assert.ok(!diff.some((l) => /\/etc\/(hosts|hostname|resolv\.conf)|^A \/(proc|sys|dev)/.test(l)), `no mount points in the diff: ${diff.join(', ')}`)
      // a fresh container that did nothing has no changes at all (mount points live in its init layer)
      await c.cliOk(['run', '--name', 'idle', 'busybox', 'true'])
      assert.equal((await c.cliOk(['diff', 'idle'])).stdout, '')
      await c.cliOk(['rm', 'writer', 'idle'])
    })
    test('deleting a file of a lower layer shows D in diff and the file is gone inside; an opaque directory hides the layer below', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '-d', '--name', 'deleter', 'busybox', 'sleep', '60'])
      await c.cliOk(['exec', 'deleter', 'rm', '/usr/share/cairn/secret'])
      const gone = await c.cli(['exec', 'deleter', 'test', '-e', '/usr/share/cairn/secret'])
      assert.equal(gone.code, 1)
      assert.ok((await c.cliOk(['diff', 'deleter'])).stdout.split('\n').includes('D /usr/share/cairn/secret'))
      // replace a directory: remove it and make it again; only the new content shows
      await c.cliOk(['exec', 'deleter', 'sh', '-c', 'rm -rf /usr/share/cairn && mkdir /usr/share/cairn && echo fresh > /usr/share/cairn/only'])
      assert.equal((await c.cliOk(['exec', 'deleter', 'ls', '/usr/share/cairn'])).stdout, 'only\n')
      const other = await c.cliOk(['run', '--rm', 'busybox', 'ls', '/usr/share/cairn'])
      assert.ok(other.stdout.includes('hello.txt') && other.stdout.includes('secret'), other.stdout)
      await c.cliOk(['rm', '-f', 'deleter'])
    })
    test('hard links and extended attributes of the image survive in the container', async (t) => {
      const c = await store(t)
      if (!c) return
      await addImage(c.root, 'links:latest', [await busyboxLayer(), await layerTar([
        { path: 'data/', type: 'directory' },
        { path: 'data/a', content: 'shared content\n', xattrs: { 'user.cairn.test': 'xattr-value' } },
        { path: 'data/b', type: 'hardlink', target: 'data/a' },
      ])])
      await c.cliOk(['run', '-d', '--name', 'links', 'links', 'sleep', '60'])
      const st = (await c.cliOk(['exec', 'links', 'stat', '-c', '%i %h', '/data/a', '/data/b'])).stdout.split('\n')
      assert.equal(st[0], st[1], 'same inode')
      assert.match(st[0] ?? '', / 2$/, 'two links')
      const id = (JSON.parse((await c.cliOk(['inspect', 'links'])).stdout) as [{ Id: string }])[0].Id
      const rootfs = `${c.root}/containers/${id}/rootfs`
      const before = await readXattrTree(`${rootfs}/data`)
      assert.equal(before.get(`${rootfs}/data/a`)?.get('user.cairn.test')?.toString(), 'xattr-value')
      // a write copies the file up into the writable layer, xattr included
      await c.cliOk(['exec', 'links', 'sh', '-c', 'echo more >> /data/a'])
      const afterWrite = await readXattrTree(`${rootfs}/data`)
      assert.equal(afterWrite.get(`${rootfs}/data/a`)?.get('user.cairn.test')?.toString(), 'xattr-value')
      await c.cliOk(['rm', '-f', 'links'])
    })
    test('a 125-layer image runs', async (t) => {
      const c = await store(t)
      if (!c) return
      const layers = [await busyboxLayer()]
      for (let i = 1; i < 125; i++) layers.push(await layerTar([{ path: 'layers/', type: 'directory' }, { path: `layers/${i}`, content: `${i}\n` }, { path: 'top', content: `${i}\n` }]))
      await addImage(c.root, 'deep:latest', layers)
      const r = await c.cli(['run', '--rm', 'deep', 'sh', '-c', 'ls /layers | wc -l; cat /top /layers/1 /layers/124'], { timeoutMs: 120_000 })
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout.replace(/ +/g, ''), '124\n124\n1\n124\n')
    })
    test('export writes the whole merged file system as a tar', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '--name', 'exp', 'busybox', 'sh', '-c', 'echo exported > /exported; rm /etc/motd'])
      const { dir, cleanup } = await tempDir('cairn-export-')
      try {
        await c.cliOk(['export', '-o', `${dir}/fs.tar`, 'exp'])
        const names = new Map<string, string>()
        const { createReadStream } = await import('node:fs')
        for await (const e of readTar(createReadStream(`${dir}/fs.tar`))) {
          const chunks: Buffer[] = []
          for await (const b of e.body) chunks.push(b as Buffer)
          names.set(e.header.path.replace(/^\.\//, ''), Buffer.concat(chunks).toString())
        }
        assert.equal(names.get('exported'), 'exported\n')
        assert.ok(names.has('bin/busybox'))
        assert.ok(!names.has('etc/motd'), 'deleted files are not exported')
        assert.ok(!mountedRootfs(c, await idOf(c, 'exp')))
      } finally {
        await cleanup()
      }
      await c.cliOk(['rm', 'exp'])
    })
  })
}

suite('container engine', undefined, true, (store) => {
    test('-e -w -u --entrypoint --hostname -v and --network host', async (t) => {
      const c = await store(t)
      if (!c) return
      const { dir, cleanup } = await tempDir('cairn-bind-')
      try {
        chmodSync(dir, 0o777) // the container's user is nobody
        writeFileSync(`${dir}/from-host`, 'hello from the host\n', { mode: 0o644 })
        const r = await c.cli(['run', '--rm', '-e', 'GREETING=hi there', '-w', '/work/dir', '-u', 'nobody', '--hostname', 'box',
          '-v', `${dir}:/data`, '-v', `${dir}:/ro:ro`, 'busybox', 'sh', '-c',
          'echo "$GREETING"; pwd; id -u; hostname; cat /data/from-host; echo w > /data/written; (echo x > /ro/nope) 2>/dev/null || echo read-only; echo $HOME'])
        assert.equal(r.code, 0, r.stderr)
        assert.equal(r.stdout, 'hi there\n/work/dir\n65534\nbox\nhello from the host\nread-only\n/nonexistent\n')
        assert.equal(readFileSync(`${dir}/written`, 'utf8'), 'w\n')
        const ep = await c.cli(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'via', 'entrypoint'])
        assert.equal(ep.stdout, 'via entrypoint\n')
        const hostNet = await c.cli(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'hostname; ls /sys/class/net | sort | tr "\\n" " "'])
        assert.equal(hostNet.code, 0, hostNet.stderr)
        assert.equal(hostNet.stdout.split('\n')[0], spawnSync('hostname').stdout.toString().trim())
        const none = await c.cli(['run', '--rm', '--network', 'none', 'busybox', 'ls', '/sys/class/net'])
        assert.equal(none.stdout, 'lo\n', 'a private network namespace has only loopback')
        const etc = await c.cli(['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/hostname; grep -c localhost /etc/hosts; grep -c nameserver /etc/resolv.conf'])
        assert.match(etc.stdout, /^[0-9a-f]{12}\n[1-9]\n[1-9]\n$/)
      } finally {
        await cleanup()
      }
    })
    test('exec into a running container: env, workdir, user, exit codes; not into a stopped one', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '-d', '--name', 'execd', '-e', 'FROM_RUN=1', 'busybox', 'sleep', '60'])
      const r = await c.cli(['exec', '-e', 'EXTRA=2', '-w', '/tmp', '-u', 'nobody', 'execd', 'sh', '-c', 'echo $FROM_RUN $EXTRA; pwd; id -u; exit 9'])
      assert.equal(r.code, 9)
      assert.equal(r.stdout, '1 2\n/tmp\n65534\n')
      const piped = await c.cli(['exec', '-i', 'execd', 'cat'], { input: 'through stdin\n' })
      assert.equal(piped.stdout, 'through stdin\n')
      const missing = await c.cli(['exec', 'execd', 'no-such-command'])
      assert.equal(missing.code, 126, 'Docker 20.10 exits 126 for an exec that cannot start')
      assert.match(missing.stderr, /exec: "no-such-command": executable file not found in \$PATH/)
      await c.cliOk(['stop', '-t', '0', 'execd'])
      const stopped = await c.cli(['exec', 'execd', 'true'])
      assert.notEqual(stopped.code, 0)
      assert.match(stopped.stderr, /is not running/)
      await c.cliOk(['rm', 'execd'])
    })
    test('stop, kill, pause/unpause, restart with start, rename, logs -f, and rmi refused while a container uses the image', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '-d', '--name', 'life', 'busybox', 'sh', '-c', 'trap "echo got TERM; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done'])
      const running = (await psAll(c)).find((p) => p.Names === 'life')
      assert.match(running?.Status ?? '', /^Up /)
      const rmi = await c.cli(['rmi', 'busybox'])
      assert.notEqual(rmi.code, 0)
      assert.match(rmi.stderr, /container [0-9a-f]{12} is using its referenced image/)
      assert.equal((await c.cliOk(['pause', 'life'])).stdout, 'life\n')
      assert.match((await psAll(c)).find((p) => p.Names === 'life')?.Status ?? '', /\(Paused\)$/)
      const frozenLog = (await c.cliOk(['logs', 'life'])).stdout
      await sleep(300)
      assert.equal((await c.cliOk(['logs', 'life'])).stdout, frozenLog, 'a paused container writes nothing')
      await c.cliOk(['unpause', 'life'])
      await c.cliOk(['rename', 'life', 'life2'])
      const renamedConflict = await c.cli(['run', '--name', 'life2', 'busybox', 'true'])
      assert.equal(renamedConflict.code, 125)
      assert.match(renamedConflict.stderr, /The container name "\/life2" is already in use by container "[0-9a-f]{64}"/)
      // logs -f follows until the container stops
      const follow = spawn(CLI, ['--root', c.root, 'logs', '-f', 'life2'], { stdio: ['ignore', 'pipe', 'pipe'] })
      let followed = ''
      follow.stdout.on('data', (b: Buffer) => (followed += b.toString()))
      const followDone = new Promise<number | null>((resolve) => follow.on('close', (code) => resolve(code)))
      await waitFor('logs -f to show output', () => followed.includes('tick'))
      assert.equal((await c.cliOk(['stop', 'life2'])).stdout, 'life2\n')
      assert.equal(await followDone, 0)
      assert.match(followed, /got TERM\n$/)
      assert.match((await psAll(c)).find((p) => p.Names === 'life2')?.Status ?? '', /^Exited \(0\)/)
      // start again (same command), then kill with a signal
      assert.equal((await c.cliOk(['start', 'life2'])).stdout, 'life2\n')
      assert.equal((await c.cliOk(['kill', '-s', 'KILL', 'life2'])).stdout, 'life2\n')
      assert.match((await psAll(c)).find((p) => p.Names === 'life2')?.Status ?? '', /^Exited \(137\)/)
      const notRunning = await c.cli(['kill', 'life2'])
      assert.equal(notRunning.code, 1)
      assert.match(notRunning.stderr, /is not running/)
      // start -a: attached, with the exit code
      const attached = await c.cli(['create', '--name', 'att', 'busybox', 'sh', '-c', 'echo attached; exit 2'])
      assert.match(attached.stdout, /^[0-9a-f]{64}\n$/)
      assert.equal((await psAll(c)).find((p) => p.Names === 'att')?.Status, 'Created')
      const a = await c.cli(['start', '-a', 'att'])
      assert.equal(a.code, 2)
      assert.equal(a.stdout, 'attached\n')
      const running2 = await c.cli(['rm', 'life2', 'att'])
      assert.equal(running2.code, 0, running2.stderr)
      assert.equal((await c.cli(['rm', 'nothing-here'])).stderr, 'Error: No such container: nothing-here\n')
    })
    test('rm refuses a running container without -f', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '-d', '--name', 'busy', 'busybox', 'sleep', '60'])
      const r = await c.cli(['rm', 'busy'])
      assert.equal(r.code, 1)
      assert.match(r.stderr, /You cannot remove a running container [0-9a-f]{64}\. Stop the container before attempting removal or force remove/)
      await c.cliOk(['rm', '-f', 'busy'])
      assert.equal(row(c.root, 'busy'), undefined)
    })
    test('cp both ways follows links inside the container only (CVE-2018-15664 class), with Docker\'s copy rules', async (t) => {
      const c = await store(t)
      if (!c) return
      const { dir, cleanup } = await tempDir('cairn-cp-')
      try {
        await c.cliOk(['run', '-d', '--name', 'cp', 'busybox', 'sleep', '60'])
        // links that point at the host if followed on the host
        await c.cliOk(['exec', 'cp', 'sh', '-c', 'ln -s / /escape; ln -s /etc /etclink; mkdir -p /srv/tree/sub && echo leaf > /srv/tree/sub/leaf && echo top > /srv/tree/top'])
        writeFileSync(`${dir}/payload`, 'payload\n')
        const marker = `/tmp/cairn-cp-escape-${process.pid}`
        await c.cliOk(['cp', `${dir}/payload`, `cp:/escape${marker}`])
        assert.ok(!existsSync(marker), 'nothing written on the host through the container\'s symlink')
        assert.equal((await c.cliOk(['exec', 'cp', 'cat', marker])).stdout, 'payload\n')
        // out through a link: the container's /etc, not the host's
        await c.cliOk(['cp', 'cp:/etclink/passwd', `${dir}/passwd`])
        assert.equal(readFileSync(`${dir}/passwd`, 'utf8'), readFileSync(`${dir}/passwd`, 'utf8'))
        assert.match(readFileSync(`${dir}/passwd`, 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh\nnobody/)
        await c.cliOk(['cp', 'cp:/../../../etc/hostname', `${dir}/hostname`])
        // directories: into an existing dir, as a new dir, and contents only with /.
        await c.cliOk(['cp', 'cp:/srv/tree', `${dir}`])
        assert.equal(readFileSync(`${dir}/tree/sub/leaf`, 'utf8'), 'leaf\n')
        await c.cliOk(['cp', 'cp:/srv/tree', `${dir}/renamed`])
        assert.equal(readFileSync(`${dir}/renamed/top`, 'utf8'), 'top\n')
        mkdirSync(`${dir}/contents`)
        await c.cliOk(['cp', 'cp:/srv/tree/.', `${dir}/contents`])
        assert.equal(readFileSync(`${dir}/contents/top`, 'utf8'), 'top\n')
        const toFile = await c.cli(['cp', 'cp:/srv/tree', `${dir}/payload`])
        assert.notEqual(toFile.code, 0)
        assert.match(toFile.stderr, /cannot copy a directory to a file/)
        const nothing = await c.cli(['cp', 'cp:/no/such/file', dir])
        assert.notEqual(nothing.code, 0)
        assert.match(nothing.stderr, /Could not find the file \/no\/such\/file in container cp/)
        // into the container: a directory, owned by root
        await c.cliOk(['cp', `${dir}/contents`, 'cp:/srv/copied'])
        assert.equal((await c.cliOk(['exec', 'cp', 'sh', '-c', 'cat /srv/copied/sub/leaf; stat -c %u:%g /srv/copied/top'])).stdout, 'leaf\n0:0\n')
        // a tar stream out
        const tar = spawnSync(CLI, ['--root', c.root, 'cp', 'cp:/srv/tree', '-'])
        const names: string[] = []
        for await (const e of readTar(Readable.from([tar.stdout]))) {
          names.push(e.header.path)
          e.body.resume()
        }
        assert.ok(names.includes('tree/sub/leaf') && names.includes('tree/top'), names.join(','))
        // a stopped container too (mounted for the copy)
        await c.cliOk(['stop', '-t', '0', 'cp'])
        await c.cliOk(['cp', 'cp:/srv/tree/top', `${dir}/top-stopped`])
        assert.equal(readFileSync(`${dir}/top-stopped`, 'utf8'), 'top\n')
        assert.ok(!mountedRootfs(c, await idOf(c, 'cp')), 'unmounted after copying from a stopped container')
        await c.cliOk(['rm', 'cp'])
      } finally {
        await cleanup()
      }
    })
    test('after the CLI is gone, ps shows the truth: exit codes, a killed process, a lost monitor', async (t) => {
      const c = await store(t)
      if (!c) return
      await c.cliOk(['run', '-d', '--name', 'later', 'busybox', 'sh', '-c', 'sleep 0.3; exit 5'])
      await c.cliOk(['run', '-d', '--name', 'victim', 'busybox', 'sleep', '60'])
      await c.cliOk(['run', '-d', '--name', 'orphan', 'busybox', 'sleep', '60'])
      await sleep(800)
      assert.match((await psAll(c)).find((p) => p.Names === 'later')?.Status ?? '', /^Exited \(5\)/)
      // the container's process killed from outside: its monitor records 137
      const victim = row(c.root, 'victim')
      assert.ok(victim && victim.pid > 0)
      process.kill(victim.pid, 'SIGKILL')
      await waitFor('the victim to be recorded as exited', () => row(c.root, 'victim')?.state === 'exited')
      assert.match((await psAll(c)).find((p) => p.Names === 'victim')?.Status ?? '', /^Exited \(137\)/)
      // the monitor killed: the next command notices, stops the process, records 255
      const orphan = row(c.root, 'orphan')
      assert.ok(orphan?.shim_pid)
      const containerPid = orphan.pid
      process.kill(orphan.shim_pid, 'SIGKILL')
      await waitFor('the monitor to die', () => !isAlive(orphan.shim_pid as number))
      assert.match((await psAll(c)).find((p) => p.Names === 'orphan')?.Status ?? '', /^Exited \(255\)/)
      await waitFor('the orphaned process to be stopped', () => !isAlive(containerPid))
      for (const n of ['later', 'victim', 'orphan']) assert.ok(!mountedRootfs(c, await idOf(c, n)), `${n} is unmounted`)
      await c.cliOk(['rm', 'later', 'victim', 'orphan'])
    })
    test('a lost monitor seen by several commands at once: each shows the end the one that records it records', async (t) => {
      const c = await store(t)
      if (!c) return
      for (let round = 0; round < 3; round++) {
        const name = `lost${round}`
        await c.cliOk(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '60'])
        const r = row(c.root, name)
        assert.ok(r?.shim_pid)
        process.kill(r.shim_pid, 'SIGKILL')
        await waitFor('the monitor to die', () => !isAlive(r.shim_pid as number))
        // one of them claims the row and records the end; the others wait for it, not show it running
        const seen = await Promise.all([1, 2, 3].map(async () => (await psAll(c)).find((p) => p.Names === name)?.Status ?? ''))
        for (const status of seen) assert.match(status, /^Exited \(255\)/, seen.join(' | '))
        await c.cliOk(['rm', name])
      }
    })
})

suite('container engine: nothing left behind', undefined, false, (store) => {
    test('--rm cleans up: no row, no folder, no snapshot, no mount (attached and detached)', async (t) => {
      const c = await store(t)
      if (!c) return
      const before = inventory(c.root)
      const r = await c.cli(['run', '--rm', 'busybox', 'sh', '-c', 'echo bye; exit 4'])
      assert.equal(r.code, 4)
      assert.equal(r.stdout, 'bye\n')
      assert.deepEqual(inventory(c.root), before)
      const id = (await c.cliOk(['run', '-d', '--rm', 'busybox', 'sh', '-c', 'sleep 0.3'])).stdout.trim()
      assert.match(id, /^[0-9a-f]{64}$/)
      await waitFor('the --rm container to go', () => row(c.root, id) === undefined)
      assert.deepEqual(inventory(c.root), before)
    })
    test('killing the CLI during run -d leaves a consistent state', async (t) => {
      const c = await store(t)
      if (!c) return
      const before = inventory(c.root)
      for (const delay of [40, 90, 140, 200, 280, 400, 700]) {
        const child = spawn(CLI, ['--root', c.root, 'run', '-d', 'busybox', 'sleep', '60'], { stdio: 'ignore' })
        const closed = new Promise((resolve) => child.on('close', resolve))
        await sleep(delay)
        try {
          process.kill(child.pid as number, 'SIGKILL')
        } catch {
          // it had finished already
        }
        await closed
      }
      await sleep(300)
      // every container ps shows is whole: a row, a folder, its snapshots; running ones are mounted
      const ps = await psAll(c)
      const inv = inventory(c.root)
      for (const p of ps) {
        assert.ok(inv.dirs.includes(p.ID), `folder of ${p.ID}`)
        assert.ok(inv.snapshots.includes(`ctr-${p.ID}`), `snapshot of ${p.ID}`)
        assert.ok(/^(Created|Up |Exited)/.test(p.Status), p.Status)
      }
      // half-made containers were undone by that ps
      const after = inventory(c.root)
      assert.deepEqual(after.rows.sort(), ps.map((p) => p.ID).sort().concat(before.rows).sort())
      if (ps.length > 0) await c.cliOk(['rm', '-f', ...ps.map((p) => p.ID)])
      assert.deepEqual(inventory(c.root), before)
    })
    test("bad input: a clear error, Docker's exit code, and nothing left behind", async (t) => {
      const c = await store(t)
      if (!c) return
      const before = inventory(c.root)
      const cases: [string[], number, RegExp][] = [
        [['run', '--pull', 'never', 'no-such-image'], 125, /No such image: no-such-image/],
        // a missing image is pulled first (as Docker does); a registry that is not there is the error
        [['run', '127.0.0.1:1/no/such:1'], 125, /^Unable to find image '127\.0\.0\.1:1\/no\/such:1' locally\nError: Get "http:\/\/127\.0\.0\.1:1\/v2\/": dial tcp 127\.0\.0\.1:1: connect: connection refused\n$/],
        [['run', 'busybox', 'no-such-command'], 127, /exec: "no-such-command": executable file not found in \$PATH/],
        [['run', 'busybox', '/usr/share/cairn/hello.txt'], 126, /permission denied/],
        [['run', 'busybox', '/nope/x'], 127, /stat \/nope\/x: no such file or directory/],
        [['run', '--mount', 'type=bind,source=/no/such/host/dir,target=/data', 'busybox', 'true'], 125, /bind source path does not exist: \/no\/such\/host\/dir/],
        [['run', '--runtime', '/no/such/runtime/crun', 'busybox', 'true'], 125, /no usable OCI runtime: .*apt-get install crun/],
        [['run', '-u', 'ghost', 'busybox', 'true'], 125, /unable to find user ghost/],
        [['run', '-w', 'relative', 'busybox', 'true'], 125, /needs to be an absolute path/],
        [['run', '--name', 'bad name!', 'busybox', 'true'], 125, /Invalid container name/],
        [['run', '--network', 'no-such-network', 'busybox', 'true'], 125, /^Error: network no-such-network not found\n$/],
        [['run', '--network', 'none', '-p', '80', 'busybox', 'true'], 125, /conflicting options: port publishing and the container type network mode/],
        [['run', '-p', '80:99999', 'busybox', 'true'], 125, /invalid containerPort: 99999/],
        [['create', 'busybox', 'no-such-command-at-create'], 0, /^$/],
      ]
      for (const [args, code, re] of cases) {
        const r = await c.cli(args)
        assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
        assert.match(r.stderr, re, args.join(' '))
        if (code === 0) await c.cliOk(['rm', r.stdout.trim()])
      }
      await c.cliOk(['run', '--name', 'taken', 'busybox', 'true'])
      const dup = await c.cli(['run', '--name', 'taken', 'busybox', 'true'])
      assert.equal(dup.code, 125)
      assert.match(dup.stderr, /Conflict\. The container name "\/taken" is already in use by container "[0-9a-f]{64}"\. You have to remove \(or rename\) that container to be able to reuse that name\./)
      await c.cliOk(['rm', 'taken'])
      assert.deepEqual(inventory(c.root), before)
    })
})

describe('containers: runtime and terminal', { concurrency: false }, () => {
  let s: ContainerStore | undefined
  after(async () => {
    await s?.cleanup()
  })

  test('crun is the default where it works, runc otherwise; --runtime picks one', async (t) => {
    if (!(await requireContainers(t))) return
    s ??= await containerStore('overlay')
    const { findRuntimeBinary, probeRuntime } = await import('../../src/runtime/runtime.js')
    const crun = findRuntimeBinary('crun')
    const crunWorks = crun !== undefined && (await probeRuntime(crun)).ok
    const r = await s.cliOk(['run', '--name', 'rt-default', 'busybox', 'true'])
    void r
    const inspect = (JSON.parse((await s.cliOk(['inspect', 'rt-default'])).stdout) as [{ HostConfig: { Runtime: string } }])[0]
    assert.equal(inspect.HostConfig.Runtime, crunWorks ? 'crun' : 'runc')
    await s.cliOk(['run', '--rm', '--runtime', 'runc', 'busybox', 'true'])
    if (crun !== undefined && !crunWorks) {
      const refused = await s.cli(['run', '--runtime', 'crun', 'busybox', 'true'])
      assert.equal(refused.code, 125)
      assert.match(refused.stderr, /crun \(.*\) does not work here: .*; try --runtime runc/)
    }
    await s.cliOk(['rm', 'rt-default'])
  })

  test('-it gives an interactive terminal (driven through tmux)', async (t) => {
    if (!(await requireContainers(t))) return
    if (spawnSync('tmux', ['-V']).status !== 0) {
      if (process.env['CI']) throw new Error('tmux is missing')
      t.skip('tmux is not installed')
      return
    }
    s ??= await containerStore('overlay')
    const session = `cairn-it-${process.pid}`
    const exitFile = `${s.root}/../it-exit`
    const cmd = `${CLI} --root ${s.root} run -it --name tty busybox sh; echo EXIT=$? > ${exitFile}; sleep 30`
    assert.equal(spawnSync('tmux', ['new-session', '-d', '-s', session, '-x', '100', '-y', '30', cmd]).status, 0)
    try {
      await waitFor('the shell prompt', () => spawnSync('tmux', ['capture-pane', '-p', '-t', session]).stdout.toString().includes('/ #'), 20_000)
      spawnSync('tmux', ['send-keys', '-t', session, 'tty; stty size; echo $TERM; exit 6', 'Enter'])
      await waitFor('the exit code', () => existsSync(exitFile), 20_000)
      assert.equal(readFileSync(exitFile, 'utf8'), 'EXIT=6\n')
      const screen = spawnSync('tmux', ['capture-pane', '-p', '-t', session]).stdout.toString()
      assert.match(screen, /\/dev\/pts\/0/)
      assert.match(screen, /^30 100$/m)
      assert.match(screen, /^xterm$/m)
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session])
    }
    // the terminal session is in the log, as Docker keeps it
    const logs = (await s.cliOk(['logs', 'tty'])).stdout
    assert.match(logs, /\/dev\/pts\/0\r?\n/)
    assert.match(logs, /^30 100\r?$/m)
    assert.match(logs, /^xterm\r?$/m)
    // -dit keeps the shell alive for later exec
    await s.cliOk(['run', '-dit', '--name', 'bg-tty', 'busybox', 'sh'])
    await sleep(300)
    assert.equal((await s.cliOk(['exec', 'bg-tty', 'sh', '-c', 'tty < /proc/1/fd/0'])).stdout, '/dev/pts/0\n')
    const piped = await s.cli(['run', '-it', 'busybox', 'true'], { input: '' })
    assert.equal(piped.code, 1)
    assert.match(piped.stderr, /the input device is not a TTY/)
    await s.cliOk(['rm', '-f', 'tty', 'bg-tty'])
  })

  test('a debootstrap Debian minbase runs: apt, users, the shell', async (t) => {
    if (!(await requireContainers(t))) return
    let deb
    try {
      deb = await debianRootfs()
    } catch (err) {
      if (process.env['CI']) throw err
      t.skip(`no Debian minbase: ${(err as Error).message}`)
      return
    }
    s ??= await containerStore('overlay')
    await s.cliOk(['import', '-c', 'CMD ["bash"]', deb.tar, 'debian:minbase'], { timeoutMs: 120_000 })
    const r = await s.cli(['run', '--rm', '-u', 'nobody', 'debian:minbase', 'bash', '-c', 'cat /etc/debian_version >/dev/null && echo debian; id -un; apt-get --version | head -1 | cut -d" " -f1'], { timeoutMs: 120_000 })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'debian\nnobody\napt\n')
  })
})
