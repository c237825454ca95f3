/**
 * Confinement and limits with real runc, beside a real Docker (a private dockerd 20.10) in the
 * same run, on the same image (busybox plus a static probe, test/container/escape-probe.c):
 *
 * - the escape battery under Cairn's defaults: every case refused, with the layer that stopped
 *   it (seccomp when the same case gets through with `seccomp=unconfined`; then capabilities,
 *   read-only and masked paths, namespaces, the device cgroup); Cairn refuses at least what
 *   Docker refuses; with --privileged only harmless checks;
 * - the options' effects inside a container, compared line by line with Docker's;
 * - a fork bomb under --pids-limit 64, an OOM kill under --memory 32m (exit 137, OOMKilled),
 *   --cpus 0.5 measured from the cgroup's CPU time, `update` of a running container, `stats`
 *   and `top` with Docker's columns;
 * - `rm` removes the cgroup folders a container's runtime left behind.
 */
import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { busyboxRootfsTar, testCacheDir } from '../helpers/rootfs.js'
import { requireTools } from '../helpers/tools.js'
import { runOk, type RunResult } from '../helpers/exec.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'
import { Cairn } from '../../src/index.js'
import { cgroupPathsOf, containerCgroupsPath, sampleCgroups } from '../../src/runtime/cgroups.js'
import { kernelLoggedOomKill, monotonicUs, oomKillLogged } from '../../src/container/oom.js'
import { capabilitiesOfMask, DEFAULT_CAPABILITIES, hostCapabilities } from '../../src/runtime/capabilities.js'
import { defaultSeccompProfile, seccompForSpec, type LinuxSeccomp } from '../../src/runtime/seccomp.js'

const PROBE_SOURCE = fileURLToPath(new URL('../../../test/container/escape-probe.c', import.meta.url))
const IMAGE = 'probe:1'

/** The static probe, built once per source (cached beside the busybox tarball). */
async function probeBinary(): Promise<string> {
  const src = readFileSync(PROBE_SOURCE)
  const out = join(testCacheDir(), `escape-probe-${createHash('sha256').update(src).digest('hex').slice(0, 16)}`)
  if (existsSync(out)) return out
  mkdirSync(testCacheDir(), { recursive: true })
  const tmp = `${out}.${process.pid}`
  await runOk('gcc', ['-static', '-O1', '-Wall', '-o', tmp, PROBE_SOURCE])
  renameSync(tmp, out)
  return out
}

/** busybox's rootfs tarball with /probe added. */
async function probeImageTar(dir: string): Promise<string> {
  const tar = join(dir, 'probe.tar')
  copyFileSync(await busyboxRootfsTar(), tar)
  copyFileSync(await probeBinary(), join(dir, 'probe'))
  await runOk('tar', ['--append', '-f', tar, '-C', dir, '--owner=0', '--group=0', '--mode=0755', 'probe'])
  return tar
}

/** A host block device, `MAJOR:MINOR` (any will do: the device cgroup refuses it before its driver is asked). */
function hostBlockDevice(): string {
  try {
    for (const name of readdirSync('/sys/block')) {
      const dev = readFileSync(`/sys/block/${name}/dev`, 'utf8').trim()
      if (/^\d+:\d+$/.test(dev)) return dev
    }
  } catch {
    // no sysfs block devices
  }
  return '7:0'
}

interface Case {
  name: string
  args: string[]
  /** The syscall the seccomp filter is asked about (undefined: the case needs no forbidden syscall). */
  syscall?: string
  /** The layer behind seccomp, named from the errno the probe gets with seccomp=unconfined. */
  behind: (outcome: string) => string
  /** Extra create options (e.g. --cap-drop NET_RAW). */
  opts?: string[]
}

const byErrno = (table: Record<string, string>, fallback: string) => (outcome: string): string => {
  const errno = /^refused (\S+)/.exec(outcome)?.[1] ?? ''
  return table[errno] ?? `${fallback} (${outcome})`
}

describe('confinement and limits, beside Docker', { concurrency: false }, () => {
  let dockerd: Dockerd | undefined
  let s: ContainerStore | undefined
  let work = ''
  let marker = ''
  let ready = false
  let dockerReady = false

  before(async () => {
    if (process.getuid?.() !== 0) return
    work = join(testCacheDir(), `confine-${process.pid}-${randomBytes(3).toString('hex')}`)
    mkdirSync(work, { recursive: true })
    // a file on the host, by a name no container has: a chroot breakout would see it
    marker = `/tmp/cairn-escape-marker-${randomBytes(6).toString('hex')}`
    writeFileSync(marker, 'host\n')
    let tar: string
    try {
      tar = await probeImageTar(work)
    } catch (err) {
      if (process.env['CI']) throw err
      return
    }
    s = await containerStore('overlay')
    const c = await Cairn.open({ root: s.root })
    try {
      await c.import(tar, { reference: IMAGE, changes: ['CMD ["sh"]'] })
    } finally {
      c.close()
    }
    ready = true
    try {
      dockerd = await startDockerd()
      await dockerd.runOk(['import', '-c', 'CMD ["sh"]', tar, IMAGE])
      dockerReady = true
    } catch (err) {
      if (process.env['CI']) throw err
    }
  })
  after(async () => {
    await s?.cleanup()
    await dockerd?.stop()
    if (marker !== '') rmSync(marker, { force: true })
    if (work !== '') rmSync(work, { recursive: true, force: true })
  })

  const needs = async (t: TestContext, docker: boolean): Promise<boolean> => {
    if (!(await requireContainers(t))) return false
    if (!requireTools(t, ['tar'])) return false
    if (!ready) {
      t.skip('the probe image could not be built (gcc with static libc needed)')
      return false
    }
    if (docker) {
      if (!requireTools(t, ['dockerd', 'docker', 'containerd', 'setpriv'])) return false
      if (!dockerReady) {
        t.skip('no private dockerd could be started')
        return false
      }
    }
    return true
  }
  const cli = (args: readonly string[]): Promise<RunResult> => (s as ContainerStore).cli(args, { timeoutMs: 120_000 })
  const cliOk = (args: readonly string[]): Promise<RunResult> => (s as ContainerStore).cliOk(args, { timeoutMs: 120_000 })
  const docker = (args: readonly string[]): Promise<RunResult> => (dockerd as Dockerd).run(args, { timeoutMs: 120_000 })
  /** Every case of `group` in one container: the probe runs each in a child process of its own and prints `CASE: outcome` lines. */
  const probeEach = async (runner: (a: readonly string[]) => Promise<RunResult>, opts: readonly string[], group: readonly Case[]): Promise<string[]> => {
    const r = await runner(['run', '--rm', '--network', 'none', ...opts, IMAGE, '/probe', '--each', ...group.map((c) => c.args.join('='))])
    const lines = r.stdout.split('\n')
    return group.map((c) => {
      const out = lines.find((l) => l.startsWith(`${c.args[0] ?? ''}: `))?.slice((c.args[0] ?? '').length + 2).trim() ?? ''
      if (!/^(allowed|refused)/.test(out)) throw new Error(`probe ${c.args.join(' ')}: exit ${String(r.code)}: ${out} ${r.stdout} ${r.stderr}`)
      return out
    })
  }

  test('the escape battery: refused under the defaults, each by a named layer; at least everything Docker refuses', async (t) => {
    if (!(await needs(t, true))) return
    const cases: Case[] = [
      { name: 'mount -t proc', args: ['mount-proc'], syscall: 'mount', behind: byErrno({ EPERM: 'capability (no CAP_SYS_ADMIN)' }, 'kernel') },
      { name: 'unshare --user --map-root-user, then mount', args: ['userns-mount'], syscall: 'unshare', behind: byErrno({}, 'user namespace rules') },
      { name: 'keyctl', args: ['keyctl'], syscall: 'keyctl', behind: byErrno({}, 'kernel') },
      { name: 'reboot', args: ['reboot'], syscall: 'reboot', behind: byErrno({ EPERM: 'capability (no CAP_SYS_BOOT)' }, 'kernel') },
      { name: 'swapon', args: ['swapon'], syscall: 'swapon', behind: byErrno({ EPERM: 'capability (no CAP_SYS_ADMIN)' }, 'kernel') },
      { name: 'init_module', args: ['init_module'], syscall: 'init_module', behind: byErrno({ EPERM: 'capability (no CAP_SYS_MODULE)', ENOSYS: 'kernel (built without modules)' }, 'kernel') },
      { name: 'finit_module', args: ['finit_module'], syscall: 'finit_module', behind: byErrno({ EPERM: 'capability (no CAP_SYS_MODULE)', ENOSYS: 'kernel (built without modules)' }, 'kernel') },
      { name: 'ptrace of a host process', args: ['ptrace-host', String(process.pid)], behind: byErrno({ ESRCH: 'PID namespace (the host process does not exist here)' }, 'kernel') },
      { name: 'open_by_handle_at (shocker)', args: ['open_by_handle_at'], syscall: 'open_by_handle_at', behind: byErrno({ EPERM: 'capability (no CAP_DAC_READ_SEARCH)' }, 'kernel') },
      { name: 'write /proc/sysrq-trigger', args: ['write-sysrq'], behind: byErrno({ EROFS: 'read-only path', EACCES: 'read-only path', ENOENT: 'kernel (built without sysrq)' }, 'kernel') },
      { name: 'write /proc/sys/kernel/*', args: ['write-proc-sys-kernel'], behind: byErrno({ EROFS: 'read-only path', EACCES: 'read-only path' }, 'kernel') },
      { name: 'read /sys/firmware', args: ['read-sys-firmware'], behind: byErrno({ empty: 'masked path (an empty tmpfs)', ENOENT: 'masked path' }, 'kernel') },
      { name: 'mknod of a block device, then read', args: ['mknod-block', hostBlockDevice()], behind: byErrno({ EPERM: 'device cgroup' }, 'kernel') },
      { name: 'chroot breakout', args: ['chroot-escape', marker], behind: byErrno({ ENOENT: "mount namespace (pivot_root: the breakout reaches the container's root)" }, 'kernel') },
      { name: 'raw socket with --cap-drop NET_RAW', args: ['raw-socket'], opts: ['--cap-drop', 'NET_RAW'], behind: byErrno({ EPERM: 'capability (no CAP_NET_RAW)' }, 'kernel') },
    ]
    // the seccomp filter a default container gets, asked about each case's syscall
    const filter = seccompForSpec(defaultSeccompProfile(), { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    const seccompAllows = (name: string): boolean => filter.syscalls.some((r) => r.names.includes(name) && r.action === 'SCMP_ACT_ALLOW')
    // one container per set of options and runner, every case in a child process of the probe
    const groups = new Map<string, Case[]>()
    for (const c of cases) {
      const key = (c.opts ?? []).join(' ')
      groups.set(key, [...(groups.get(key) ?? []), c])
    }
    const outcomes = new Map<Case, { cairn: string; unconfined: string; docker: string }>()
    for (const group of groups.values()) {
      const opts = group[0]?.opts ?? []
      const [cairnOut, unconfinedOut, dockerOut] = await Promise.all([
        probeEach(cli, opts, group),
        probeEach(cli, [...opts, '--security-opt', 'seccomp=unconfined'], group),
        probeEach(docker, opts, group),
      ])
      group.forEach((c, i) => outcomes.set(c, { cairn: cairnOut[i] ?? '', unconfined: unconfinedOut[i] ?? '', docker: dockerOut[i] ?? '' }))
    }
    const rows: string[] = []
    for (const c of cases) {
      const { cairn: cairnOutcome, unconfined, docker: dockerOutcome } = outcomes.get(c) ?? { cairn: '', unconfined: '', docker: '' }
      const layers: string[] = []
      if (unconfined.startsWith('allowed')) layers.push('seccomp')
      else {
        if (c.syscall !== undefined && !seccompAllows(c.syscall)) layers.push('seccomp')
        layers.push(c.behind(unconfined))
      }
      rows.push(`${c.name}: cairn ${cairnOutcome} — stopped by ${layers.join(', then ')}; docker ${dockerOutcome}`)
      assert.match(cairnOutcome, /^refused/, `${c.name}: Cairn must refuse it (${cairnOutcome})`)
      if (dockerOutcome.startsWith('refused')) assert.match(cairnOutcome, /^refused/, `${c.name}: Docker refuses it, so must Cairn`)
      // a case that only seccomp stops must be one the filter refuses
      if (unconfined.startsWith('allowed')) assert.ok(c.syscall !== undefined && !seccompAllows(c.syscall), `${c.name}: stopped by seccomp alone, yet the filter allows ${c.syscall ?? '?'}`)
    }
    for (const r of rows) t.diagnostic(r)
    // the defaults really are on: mode 2 (filter) and Docker's capabilities
    const status = (await cliOk(['run', '--rm', '--network', 'none', IMAGE, 'cat', '/proc/self/status'])).stdout
    assert.match(status, /^Seccomp:\s+2$/m)
    assert.deepEqual(capabilitiesOfMask(/^CapBnd:\s+(\S+)/m.exec(status)?.[1] ?? '0').sort(), [...DEFAULT_CAPABILITIES].sort())
  })

  test('--privileged: every capability of the host (not those it lacks), its devices, no seccomp, no masked paths; only harmless checks', async (t) => {
    if (!(await needs(t, false))) return
    const out = (await cliOk(['run', '--rm', '--network', 'none', '--privileged', IMAGE, 'sh', '-c',
      'grep -E "^(CapEff|Seccomp):" /proc/self/status; /probe tmpfs-mount; /probe read-sys-firmware; ls /dev | wc -l; grep " /sys " /proc/mounts'])).stdout
    const capEff = /^CapEff:\s+(\S+)/m.exec(out)?.[1] ?? ''
    assert.deepEqual(capabilitiesOfMask(capEff), hostCapabilities())
    assert.match(out, /^Seccomp:\s+0$/m)
    assert.match(out, /^allowed$/m, 'a tmpfs mount is allowed')
    const hostHasFirmware = readdirSync('/sys/firmware').length > 0
    if (hostHasFirmware) assert.match(out, /^allowed \(\d+ entries\)$/m, '/sys/firmware is not masked')
    const devCount = Number(out.split('\n').find((l) => /^\d+$/.test(l.trim())))
    assert.ok(devCount > 10, `the host's devices are there (${devCount} entries in /dev)`)
    assert.match(out, /sysfs \/sys sysfs rw,/)
    // the same checks fail unprivileged
    const plain = await cli(['run', '--rm', '--network', 'none', IMAGE, '/probe', 'tmpfs-mount'])
    assert.equal(plain.code, 1)
    assert.match(plain.stdout, /refused EPERM/)
    const inspect = JSON.parse((await cliOk(['create', '--privileged', '--name', 'priv', IMAGE, 'true']).then(() => cliOk(['inspect', 'priv']))).stdout) as { HostConfig: { Privileged: boolean; MaskedPaths: unknown } }[]
    assert.equal(inspect[0]?.HostConfig.Privileged, true)
    assert.equal(inspect[0]?.HostConfig.MaskedPaths, null)
    await cliOk(['rm', 'priv'])
    if (dockerReady) {
      const d = await docker(['run', '--rm', '--network', 'none', '--privileged', IMAGE, 'true'])
      t.diagnostic(`docker run --privileged on this host: exit ${String(d.code)} ${d.stderr.trim().split('\n').at(-1) ?? ''}`)
    }
  })

  test("the options' effects inside a container are Docker's", async (t) => {
    if (!(await needs(t, true))) return
    const opts = [
      '--network', 'none', '--read-only', '--tmpfs', '/run:size=1m', '--ulimit', 'nofile=1024:2048', '--shm-size', '8m', '--group-add', '10',
      '--sysctl', 'kernel.shmmax=1048576', '--init', '--device', '/dev/null:/dev/xnull:rw', '--security-opt', 'no-new-privileges',
      '--cap-drop', 'ALL', '--cap-add', 'CHOWN', '--cap-add', 'SETUID',
    ]
    const script = [
      'grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status', 'ulimit -n', 'ulimit -Hn', 'id -G', 'cat /proc/sys/kernel/shmmax',
      'df -k /dev/shm /run | tail -n 2 | tr -s " " | cut -d " " -f 2', 'cat /proc/1/comm', 'touch /x 2>&1 || true', 'ls -l /dev/xnull | cut -c 1',
      'cat /proc/sys/net/ipv4/ping_group_range', 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start',
    ].join('; ')
    const mine = await cli(['run', '--rm', ...opts, IMAGE, 'sh', '-c', script])
    const theirs = await docker(['run', '--rm', ...opts, IMAGE, 'sh', '-c', script])
    assert.equal(mine.code, 0, mine.stderr)
    assert.equal(theirs.code, 0, theirs.stderr)
    assert.equal(mine.stdout, theirs.stdout)
    assert.match(mine.stdout, /^CapEff:\s+0000000000000081$/m)
    assert.match(mine.stdout, /^NoNewPrivs:\s+1$/m)
    assert.match(mine.stdout, /Read-only file system/)
    assert.match(mine.stdout, /^tini$|^docker-init$/m)
    // inspect: Docker's HostConfig fields
    await cliOk(['create', '--name', 'opts', ...opts, '--memory', '32m', '--cpus', '0.5', '--pids-limit', '64', IMAGE, 'true'])
    await docker(['create', '--name', 'opts', ...opts, '--memory', '32m', '--cpus', '0.5', '--pids-limit', '64', IMAGE, 'true'])
    const fields = '{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}} {{json .HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.Tmpfs}} {{json .HostConfig.Ulimits}} {{.HostConfig.ShmSize}} {{json .HostConfig.GroupAdd}} {{json .HostConfig.Sysctls}} {{json .HostConfig.Init}} {{json .HostConfig.Devices}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.Privileged}} {{json .HostConfig.MaskedPaths}}'
    const ci = (await cliOk(['inspect', '-f', fields, 'opts'])).stdout
    const di = (await docker(['inspect', '-f', fields, 'opts'])).stdout
    assert.equal(ci, di)
    await cliOk(['rm', 'opts'])
    await docker(['rm', 'opts'])
  })

  test('a fork bomb under --pids-limit 64 stays in its 64 processes; the host still forks; rm -f ends it all', async (t) => {
    if (!(await needs(t, false))) return
    await cliOk(['run', '-d', '--name', 'bomb', '--network', 'none', '--pids-limit', '64', IMAGE, 'sh', '-c', 'b() { b | b & }; b; sleep 60'])
    const info = JSON.parse((await cliOk(['inspect', 'bomb'])).stdout) as { Id: string; State: { Pid: number } }[]
    const pid = info[0]?.State.Pid ?? 0
    const pidsDir = cgroupPathsOf(pid)?.v1.get('pids') ?? cgroupPathsOf(pid)?.v2
    assert.ok(pidsDir !== undefined, 'the container has a pids cgroup')
    let most = 0
    for (let i = 0; i < 20; i++) {
      most = Math.max(most, Number(readFileSync(`${pidsDir}/pids.current`, 'utf8')))
      await sleep(100)
    }
    assert.equal(readFileSync(`${pidsDir}/pids.max`, 'utf8').trim(), '64')
    // the kernel counts the forks the limit refused: the bomb reached it even when it collapsed
    // between two samples (on a busy machine it can grow and fall back before the first one)
    const refused = Number(/^max (\d+)$/m.exec(readFileSync(`${pidsDir}/pids.events`, 'utf8'))?.[1] ?? 0)
    assert.ok(most <= 64 && (most > 10 || refused > 0), `the bomb filled its 64 processes and no more (at most ${most} seen, ${refused} forks refused)`)
    // the host is not harmed: it starts processes as usual
    assert.equal((await runOk('/bin/sh', ['-c', 'echo forked'])).stdout.trim(), 'forked')
    assert.match((await cliOk(['stats', '--no-stream', '--format', '{{.PIDs}}', 'bomb'])).stdout.trim(), /^(6[0-4]|[1-5]\d)$/)
    const started = Date.now()
    await cliOk(['rm', '-f', 'bomb'])
    assert.ok(Date.now() - started < 30_000)
    assert.ok(!existsSync(pidsDir), 'its cgroup is gone, with every process of it')
  })

  test('rm removes the cgroup folders a container\'s runtime left behind (a start killed midway, a delete that found them busy)', async (t) => {
    if (!(await needs(t, false))) return
    const id = (await cliOk(['create', '--name', 'leftover', '--network', 'none', IMAGE, 'true'])).stdout.trim()
    // every mounted cgroup hierarchy (v1 controllers, name=systemd, the v2 tree)
    const hierarchies = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2').map((f) => f[1] ?? '')
    assert.ok(hierarchies.length > 0)
    const folders = hierarchies.map((h) => `${h}/cairn/${id}`)
    for (const f of folders) mkdirSync(f, { recursive: true })
    try {
      await cliOk(['rm', 'leftover'])
      assert.deepEqual(folders.filter((f) => existsSync(f)), [])
    } finally {
      for (const f of folders.filter((x) => existsSync(x))) rmdirSync(f)
    }
  })

  test('--memory 32m with a process allocating 200 MB: OOM-killed, exit 137, OOMKilled true (as with Docker), each run of a restart policy too', async (t) => {
    if (!(await needs(t, false))) return
    const hog = ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived']
    const beforeHog = monotonicUs()
    const r = await cli(['run', '--name', 'hog', '--network', 'none', '--memory', '32m', IMAGE, ...hog])
    assert.equal(r.code, 137, r.stderr)
    assert.doesNotMatch(r.stdout, /survived/)
    assert.equal((await cliOk(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}} {{.HostConfig.Memory}}', 'hog'])).stdout.trim(), 'true 137 33554432')
    // the kernel's log, which the monitor reads when its own watch missed a kill, names this one
    const hogCgroup = containerCgroupsPath((await cliOk(['inspect', '-f', '{{.Id}}', 'hog'])).stdout.trim())
    assert.ok(kernelLoggedOomKill(hogCgroup, beforeHog), `no oom-kill of ${hogCgroup} in /dev/kmsg`)
    assert.ok(!kernelLoggedOomKill(hogCgroup, monotonicUs()), 'a kill before the given time is not counted')
    // a container that was not OOM-killed says false
    await cliOk(['run', '--name', 'fine', '--network', 'none', '--memory', '32m', IMAGE, 'true'])
    assert.equal((await cliOk(['inspect', '-f', '{{.State.OOMKilled}}', 'fine'])).stdout.trim(), 'false')
    // one that reached its limit (page cache, reclaimed) and was then killed by its user: not OOM-killed
    await cliOk(['run', '-d', '--name', 'full', '--network', 'none', '--memory', '32m', IMAGE, 'sh', '-c', 'dd if=/dev/zero of=/big bs=1M count=100 2>/dev/null; echo done; sleep 600'])
    for (let i = 0; i < 300 && !(await cliOk(['logs', 'full'])).stdout.includes('done'); i++) await new Promise((r) => setTimeout(r, 100))
    await cliOk(['kill', 'full'])
    assert.equal((await cliOk(['wait', 'full'])).stdout.trim(), '137')
    assert.equal((await cliOk(['inspect', '-f', '{{.State.OOMKilled}}', 'full'])).stdout.trim(), 'false')
    await cliOk(['rm', 'hog', 'fine', 'full'])
    // under a restart policy each run is watched: two OOM kills, each an `oom` event, OOMKilled at the end
    const since = Math.floor(Date.now() / 1000)
    await cliOk(['run', '-d', '--name', 'hogs', '--network', 'none', '--memory', '32m', '--restart', 'on-failure:1', IMAGE, ...hog])
    let state = ''
    for (let i = 0; i < 600 && state !== 'exited 1'; i++) {
      await new Promise((r) => setTimeout(r, 100))
      state = (await cliOk(['inspect', '-f', '{{.State.Status}} {{.RestartCount}}', 'hogs'])).stdout.trim()
    }
    assert.equal(state, 'exited 1')
    assert.equal((await cliOk(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', 'hogs'])).stdout.trim(), 'true 137')
    const ooms = (await cliOk(['events', '--since', String(since), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', 'container=hogs', '--filter', 'event=oom', '--format', '{{.Action}}'])).stdout
    assert.deepEqual(ooms.trim().split('\n'), ['oom', 'oom'])
    await cliOk(['rm', 'hogs'])
    if (dockerReady) {
      const d = await docker(['run', '--name', 'hog', '--network', 'none', '--memory', '32m', IMAGE, ...hog])
      assert.equal(d.code, 137)
      // Docker learns of the kill from containerd's event, which can come after the exit on a busy
      // machine: its OOMKilled then says false (seen here under load); Cairn's is asserted above
      const dockerSays = (await docker(['inspect', '-f', '{{.State.OOMKilled}}', 'hog'])).stdout.trim()
      assert.match(dockerSays, /^(true|false)$/)
      if (dockerSays !== 'true') t.diagnostic(`Docker's OOMKilled: ${dockerSays} (its OOM event missed, as on a busy machine)`)
      await docker(['rm', 'hog'])
    }
  })

  test('--cpus 0.5: a busy loop gets half a CPU (from the cgroup\'s CPU time over 3 s)', async (t) => {
    if (!(await needs(t, false))) return
    await cliOk(['run', '-d', '--name', 'busy', '--network', 'none', '--cpus', '0.5', IMAGE, 'sh', '-c', 'while :; do :; done'])
    try {
      const pid = Number((await cliOk(['inspect', '-f', '{{.State.Pid}}', 'busy'])).stdout.trim())
      const cpuDir = cgroupPathsOf(pid)?.v1.get('cpu') ?? cgroupPathsOf(pid)?.v2
      if (cpuDir !== undefined && existsSync(`${cpuDir}/cpu.cfs_quota_us`)) {
        assert.equal(readFileSync(`${cpuDir}/cpu.cfs_quota_us`, 'utf8').trim(), '50000')
        assert.equal(readFileSync(`${cpuDir}/cpu.cfs_period_us`, 'utf8').trim(), '100000')
      } else if (cpuDir !== undefined) {
        assert.equal(readFileSync(`${cpuDir}/cpu.max`, 'utf8').trim(), '50000 100000')
      }
      await sleep(500)
      const idle = (): number => {
        const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/)
        return (Number(f[4]) + Number(f[5])) * 10 // ms (clock ticks of 10 ms)
      }
      const a = sampleCgroups(pid)
      const idleA = idle()
      const t0 = process.hrtime.bigint()
      await sleep(3000)
      const b = sampleCgroups(pid)
      const idleB = idle()
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
      assert.ok(a && b)
      const cores = (b.cpuUsageNs - a.cpuUsageNs) / 1e6 / wallMs
      const idleCores = (idleB - idleA) / wallMs
      t.diagnostic(`--cpus 0.5: ${cores.toFixed(3)} core over ${(wallMs / 1000).toFixed(1)} s; the host had ${idleCores.toFixed(2)} idle cores meanwhile`)
      assert.ok(cores <= 0.6, `the quota holds it to half a CPU: ${cores.toFixed(3)}`)
      // below 0.4 only when the machine had no CPU to spare (other work on a loaded 2-core machine)
      assert.ok(cores >= 0.4 || idleCores < 0.3, `it gets its half CPU when the machine has one to give: ${cores.toFixed(3)} with ${idleCores.toFixed(2)} idle`)
    } finally {
      await cli(['rm', '-f', 'busy'])
    }
  })

  test('update changes the limits of a running container at once, and keeps them; a stopped one keeps them for its start', async (t) => {
    if (!(await needs(t, false))) return
    await cliOk(['run', '-d', '--name', 'upd', '--network', 'none', '--memory', '64m', '--pids-limit', '100', IMAGE, 'sleep', '300'])
    const pid = Number((await cliOk(['inspect', '-f', '{{.State.Pid}}', 'upd'])).stdout.trim())
    const paths = cgroupPathsOf(pid)
    const read = (ctrl: string, file: string): string => readFileSync(`${paths?.v1.get(ctrl) ?? paths?.v2 ?? ''}/${file}`, 'utf8').trim()
    const v1 = paths?.v1.has('memory') ?? false
    assert.equal(v1 ? read('memory', 'memory.limit_in_bytes') : read('memory', 'memory.max'), String(64 << 20))
    assert.equal((await cliOk(['update', '--memory', '96m', '--memory-swap', '192m', '--pids-limit', '50', '--cpus', '1.5', '--cpu-shares', '256', 'upd'])).stdout, 'upd\n')
    assert.equal(v1 ? read('memory', 'memory.limit_in_bytes') : read('memory', 'memory.max'), String(96 << 20))
    assert.equal(read('pids', 'pids.max'), '50')
    if (v1) {
      assert.equal(read('memory', 'memory.memsw.limit_in_bytes'), String(192 << 20))
      assert.equal(read('cpu', 'cpu.cfs_quota_us'), '150000')
      assert.equal(read('cpu', 'cpu.shares'), '256')
    }
    assert.equal((await cliOk(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}}', 'upd'])).stdout.trim(),
      `${96 << 20} ${192 << 20} 50 1500000000 256`)
    // Docker's checks apply to updates too
    const bad = await cli(['update', '--memory', '512m', 'upd'])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time/)
    const none = await cli(['update', 'upd'])
    assert.match(none.stderr, /You must provide one or more flags when using this command\./)
    // stopped: kept for the next start
    await cliOk(['stop', '-t', '0', 'upd'])
    await cliOk(['update', '--pids-limit', '40', 'upd'])
    await cliOk(['start', 'upd'])
    const pid2 = Number((await cliOk(['inspect', '-f', '{{.State.Pid}}', 'upd'])).stdout.trim())
    const p2 = cgroupPathsOf(pid2)
    assert.equal(readFileSync(`${p2?.v1.get('pids') ?? p2?.v2 ?? ''}/pids.max`, 'utf8').trim(), '40')
    // the library does the same
    const c = await Cairn.open({ root: (s as ContainerStore).root })
    try {
      const r = await c.update('upd', { pidsLimit: 30 })
      assert.deepEqual(r.done, ['upd'])
      assert.equal(readFileSync(`${p2?.v1.get('pids') ?? p2?.v2 ?? ''}/pids.max`, 'utf8').trim(), '30')
    } finally {
      c.close()
    }
    await cliOk(['rm', '-f', 'upd'])
  })

  test("stats --no-stream and top: Docker's columns, the container's figures and processes", async (t) => {
    if (!(await needs(t, true))) return
    await cliOk(['run', '-d', '--name', 'watched', '--memory', '64m', IMAGE, 'sleep', '300'])
    await docker(['run', '-d', '--name', 'watched', '--network', 'none', '--memory', '64m', IMAGE, 'sleep', '300'])
    try {
      const mine = (await cliOk(['stats', '--no-stream', 'watched'])).stdout.split('\n')
      const theirs = (await docker(['stats', '--no-stream', 'watched'])).stdout.split('\n')
      assert.equal(mine[0]?.replace(/\s+/g, ' '), theirs[0]?.replace(/\s+/g, ' '))
      assert.equal(mine[0]?.replace(/\s+/g, ' ').trim(), 'CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS')
      assert.match(mine[1] ?? '', /^[0-9a-f]{12}\s+watched\s+\d+\.\d\d%\s+\d+(\.\d+)?[KM]iB \/ 64MiB\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+1\s*$/)
      assert.equal((await cliOk(['stats', '--no-stream', '--format', '{{.Name}}|{{.PIDs}}|{{.Container}}', 'watched'])).stdout, 'watched|1|watched\n')
      // the library: figures as numbers
      const c = await Cairn.open({ root: (s as ContainerStore).root })
      try {
        const [st] = await c.stats(['watched'], { intervalMs: 200 })
        assert.equal(st?.memoryLimit, 64 << 20)
        assert.equal(st?.pids, 1)
        assert.ok((st?.memoryUsage ?? 0) > 0)
        const top = await c.top('watched')
        assert.ok(top.titles.includes('PID') && top.processes.some((p) => p.at(-1) === 'sleep 300'))
      } finally {
        c.close()
      }
      const top = (await cliOk(['top', 'watched'])).stdout.split('\n')
      const dtop = (await docker(['top', 'watched'])).stdout.split('\n')
      assert.equal(top[0]?.replace(/\s+/g, ' '), dtop[0]?.replace(/\s+/g, ' '))
      assert.equal(top.filter(Boolean).length, 2)
      assert.match(top[1] ?? '', /sleep 300\s*$/)
      assert.deepEqual((await cliOk(['top', 'watched', '-o', 'pid,comm'])).stdout.split('\n')[1]?.trim().split(/\s+/).slice(1), ['sleep'])
      await cliOk(['stop', '-t', '0', 'watched'])
      const stopped = await cli(['top', 'watched'])
      assert.equal(stopped.code, 1)
      assert.match(stopped.stderr, /^Error: Container [0-9a-f]{64} is not running$/m)
    } finally {
      await cli(['rm', '-f', 'watched'])
      await docker(['rm', '-f', 'watched'])
    }
  })
})

test('the kernel log\'s OOM records are read by memory cgroup and time', () => {
  const id = 'a'.repeat(64)
  const path = `/cairn/${id}`
  const kill = (us: number, memcg: string): string =>
    `3,1234,${us},-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=${id},mems_allowed=0,oom_memcg=${memcg},task_memcg=${memcg},task=sh,pid=42,uid=0\n`
  assert.ok(oomKillLogged([kill(5_000_000, path)], path, 4_000_000))
  assert.ok(!oomKillLogged([kill(3_000_000, path)], path, 4_000_000), 'an earlier kill (an earlier run) does not count')
  assert.ok(!oomKillLogged([kill(5_000_000, `${path}0`), kill(5_000_000, `/other${path}`)], path, 4_000_000), 'another cgroup')
  assert.ok(!oomKillLogged([`6,1,5000000,-;Memory cgroup out of memory: oom_memcg=${path},\n`, 'garbage', '6,x,y;'], path, 0), 'only oom-kill records')
})
