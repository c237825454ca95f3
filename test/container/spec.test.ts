/**
 * The pure parts of containers, without root: the OCI bundle Cairn generates (Docker's defaults),
 * user resolution from passwd/group, environment merging, /etc files, ps status words, signals.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DEFAULT_CAPABILITIES, DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS, envValue, generateSpec, processEnv, replaceOrAppendEnv,
} from '../../src/runtime/spec.js'
import { resolveUser } from '../../src/runtime/user.js'
import { hostsFile, resolvConfFile } from '../../src/runtime/etc.js'
import { runtimeMessage } from '../../src/runtime/runtime.js'
import { commandString, normalizeSignal } from '../../src/container/engine.js'
import { parseAddHost, parsePublish, parseVolumeFlag, parseMountFlag } from '../../src/api/flags.js'
import { startExitCode } from '../../src/container/monitor.js'
import { statusText } from '../../src/api/containers.js'
import { goQuote, psRows } from '../../src/cli/containers.js'
import { hasCode } from '../../src/errors/index.js'
import type { ImageId } from '../../src/oci/digest.js'

const base = {
  process: { args: ['sh'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 }, terminal: false },
  rootfs: '/var/lib/cairn/containers/x/rootfs',
  hostname: 'abc',
}

describe('OCI bundle (config.json)', () => {
  test("Docker's namespaces, with a network namespace unless the host's network", () => {
    const priv = generateSpec({ ...base, network: 'private' })
    assert.deepEqual(priv.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts'])
    const host = generateSpec({ ...base, network: 'host' })
    assert.deepEqual(host.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'pid', 'uts'])
  })

  test("Docker's mounts, masked and read-only paths, capabilities, devices, rlimits", () => {
    const s = generateSpec({ ...base, network: 'private', cgroupsPath: '/cairn/x' })
    const byDest = new Map(s.mounts.map((m) => [m.destination, m]))
    assert.equal(byDest.get('/proc')?.type, 'proc')
    assert.equal(byDest.get('/dev')?.type, 'tmpfs')
    assert.equal(byDest.get('/dev/pts')?.type, 'devpts')
    assert.equal(byDest.get('/dev/shm')?.type, 'tmpfs')
    assert.equal(byDest.get('/dev/mqueue')?.type, 'mqueue')
    assert.ok(byDest.get('/sys')?.options.includes('ro'))
    assert.equal(byDest.get('/sys/fs/cgroup')?.type, 'cgroup')
    assert.deepEqual(s.linux.maskedPaths, [...MASKED_PATHS])
    assert.ok(s.linux.maskedPaths.includes('/proc/kcore'))
    assert.deepEqual(s.linux.readonlyPaths, [...READONLY_PATHS])
    assert.ok(s.linux.readonlyPaths.includes('/proc/sys'))
    assert.equal(DEFAULT_CAPABILITIES.length, 14)
    assert.deepEqual(s.process.capabilities.bounding, [...DEFAULT_CAPABILITIES])
    assert.ok(!s.process.capabilities.bounding.includes('CAP_SYS_ADMIN'))
    assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }])
    assert.equal(s.linux.resources.devices[0]?.allow, false)
    assert.ok(s.linux.resources.devices.some((d) => d.allow && d.major === 1 && d.minor === 3)) // /dev/null
    assert.deepEqual(s.linux.devices.map((d) => d.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'])
    assert.equal(s.linux.cgroupsPath, '/cairn/x')
    assert.equal(s.hostname, 'abc')
    assert.equal(s.root.readonly, false)
  })

  test('bind mounts and the /etc files come after the defaults, parents first, read-only when asked', () => {
    const s = generateSpec({
      ...base,
      network: 'private',
      binds: [{ source: '/srv/data', destination: '/data/deep', readonly: true }, { source: '/srv/x', destination: '/x', readonly: false }],
      etc: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' },
    })
    const dests = s.mounts.map((m) => m.destination)
    assert.ok(dests.indexOf('/x') < dests.indexOf('/data/deep'), 'shallower first')
    const deep = s.mounts.find((m) => m.destination === '/data/deep')
    assert.deepEqual(deep?.options, ['rbind', 'rprivate', 'ro'])
    assert.deepEqual(s.mounts.find((m) => m.destination === '/x')?.options, ['rbind', 'rprivate'])
    assert.equal(s.mounts.find((m) => m.destination === '/etc/hosts')?.source, '/c/hosts')
    assert.equal(s.mounts.find((m) => m.destination === '/etc/resolv.conf')?.source, '/c/resolv.conf')
    assert.equal(s.mounts.find((m) => m.destination === '/etc/hostname')?.source, '/c/hostname')
  })

  test('a bind mount on a default destination replaces the default', () => {
    const s = generateSpec({ ...base, network: 'private', binds: [{ source: '/srv/shm', destination: '/dev/shm', readonly: false }] })
    const shm = s.mounts.filter((m) => m.destination === '/dev/shm')
    assert.equal(shm.length, 1)
    assert.equal(shm[0]?.type, 'bind')
  })

  test('is pure: the same input gives the same document', () => {
    assert.deepEqual(generateSpec({ ...base, network: 'private' }), generateSpec({ ...base, network: 'private' }))
    assert.throws(() => generateSpec({ ...base, rootfs: 'relative', network: 'private' }), TypeError)
  })
})

describe('environment', () => {
  test("Docker's CreateDaemonEnvironment: PATH and HOSTNAME first, TERM with a tty, the container's own override", () => {
    assert.deepEqual(processEnv([], 'h', false), [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h'])
    assert.deepEqual(processEnv(['PATH=/x', 'A=1'], 'h', true), ['PATH=/x', 'HOSTNAME=h', 'TERM=xterm', 'A=1'])
    assert.deepEqual(processEnv(['A=1'], 'h', false, ['A=2', 'B=3']), [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h', 'A=2', 'B=3'])
  })

  test('a bare name unsets; the last value wins', () => {
    assert.deepEqual(replaceOrAppendEnv(['A=1', 'B=2'], ['A']), ['B=2'])
    assert.deepEqual(replaceOrAppendEnv(['A=1'], ['A=2', 'A=3']), ['A=3'])
    assert.equal(envValue(['A=1', 'A=2'], 'A'), '2')
    assert.equal(envValue(['A=1'], 'B'), undefined)
  })
})

describe('user resolution (as runc/Docker read /etc/passwd and /etc/group)', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534::/nonexistent:/bin/false\n'
  const group = 'root:x:0:\nwww:x:33:\nstaff:x:50:www,other\nnogroup:x:65534:\n'

  test('names and numbers, groups and supplementary groups', () => {
    assert.deepEqual(resolveUser('', passwd, group), { uid: 0, gid: 0, additionalGids: [], home: '/root' })
    assert.deepEqual(resolveUser('www', passwd, group), { uid: 33, gid: 33, additionalGids: [50], home: '/var/www' })
    assert.deepEqual(resolveUser('33', passwd, group), { uid: 33, gid: 33, additionalGids: [50], home: '/var/www' })
    assert.deepEqual(resolveUser('www:staff', passwd, group), { uid: 33, gid: 50, additionalGids: [], home: '/var/www' })
    assert.deepEqual(resolveUser('1234:5678', passwd, group), { uid: 1234, gid: 5678, additionalGids: [], home: '/' })
    assert.deepEqual(resolveUser('1234', undefined, undefined), { uid: 1234, gid: 0, additionalGids: [], home: '/' })
  })

  test("unknown names fail with Docker's words", () => {
    assert.throws(() => resolveUser('ghost', passwd, group), /unable to find user ghost: no matching entries in passwd file/)
    assert.throws(() => resolveUser('www:ghosts', passwd, group), /unable to find group ghosts: no matching entries in group file/)
    assert.throws(() => resolveUser('ghost', undefined, undefined), /unable to find user ghost/)
  })
})

describe('/etc files', () => {
  test("hosts: Docker's lines for a private network, the host's own with --network host", () => {
    const h = hostsFile({ hostname: 'abc', network: 'private' })
    assert.match(h, /^127\.0\.0\.1\tlocalhost$/m)
    assert.match(h, /^::1\tlocalhost ip6-localhost ip6-loopback$/m)
    assert.equal(hostsFile({ hostname: 'abc', network: 'host', hostHosts: 'HOST\n' }), 'HOST\n')
  })

  test('resolv.conf: loopback nameservers dropped in a private network, defaults when none is left', () => {
    assert.equal(resolvConfFile('nameserver 127.0.0.53\noptions edns0\n', 'private'), 'options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n')
    assert.equal(resolvConfFile('nameserver 10.0.0.2\nsearch x\n', 'private'), 'nameserver 10.0.0.2\nsearch x\n')
    assert.equal(resolvConfFile('nameserver 127.0.0.53\n', 'host'), 'nameserver 127.0.0.53\n')
  })
})

describe("ps, as Docker's CLI prints it", () => {
  const now = Date.parse('2024-01-01T12:00:00Z')
  test('status words', () => {
    assert.equal(statusText({ state: 'running', started_at: now - 3000, finished_at: null, exit_code: 0 }, now), 'Up 3 seconds')
    assert.equal(statusText({ state: 'running', started_at: now - 200, finished_at: null, exit_code: 0 }, now), 'Up Less than a second')
    assert.equal(statusText({ state: 'paused', started_at: now - 65_000, finished_at: null, exit_code: 0 }, now), 'Up About a minute (Paused)')
    assert.equal(statusText({ state: 'exited', started_at: now - 9000, finished_at: now - 5000, exit_code: 0 }, now), 'Exited (0) 5 seconds ago')
    assert.equal(statusText({ state: 'exited', started_at: now - 9000, finished_at: now - 1000, exit_code: 137 }, now), 'Exited (137) 1 second ago')
    assert.equal(statusText({ state: 'created', started_at: null, finished_at: null, exit_code: 0 }, now), 'Created')
  })

  test('COMMAND: quoted args with spaces, Go-quoted, truncated to 20 columns', () => {
    assert.equal(commandString('sh', ['-c', 'exit 3']), "sh -c 'exit 3'")
    assert.equal(goQuote('say "hi"\n'), '"say \\"hi\\"\\n"')
    const [row] = psRows([{
      id: 'a'.repeat(64), name: 'n', image: 'busybox', imageId: 'sha256:x' as ImageId, command: "sh -c 'echo hello; sleep 1'", created: new Date(now),
      state: 'running', status: 'Up 1 second', exitCode: 0, labels: {}, mounts: [], mountDestinations: [], networkMode: 'default', networks: ['none'], ports: [], exposedPorts: [],
    }], true)
    assert.equal(row?.['Command'], '"sh -c \'echo hello; …"')
    assert.equal(row?.['ID'], 'aaaaaaaaaaaa')
    assert.equal(row?.['CreatedAt'], '2024-01-01 12:00:00 +0000 UTC')
  })
})

describe('signals, volumes, runtime messages, exit codes', () => {
  test('signals by name, with or without SIG, or number', () => {
    assert.equal(normalizeSignal('SIGTERM'), 'TERM')
    assert.equal(normalizeSignal('kill'), 'KILL')
    assert.equal(normalizeSignal('9'), 'KILL')
    assert.throws(() => normalizeSignal('NOPE'), (e) => hasCode(e, 'INVALID_ARGUMENT'))
  })

  test('-v HOST:CTR[:ro]: absolute paths, an existing source', () => {
    assert.deepEqual(parseVolumeFlag('/tmp:/data:ro'), { type: 'bind', source: '/tmp', target: '/data', readonly: true, createSource: true })
    assert.deepEqual(parseVolumeFlag('/tmp:/data/'), { type: 'bind', source: '/tmp', target: '/data', readonly: false, createSource: true })
    // a source that is not a path is a volume's name; a path alone an anonymous volume
    assert.deepEqual(parseVolumeFlag('named:/data'), { type: 'volume', source: 'named', target: '/data', readonly: false })
    assert.deepEqual(parseVolumeFlag('named:/data:ro,nocopy'), { type: 'volume', source: 'named', target: '/data', readonly: true, noCopy: true })
    assert.deepEqual(parseVolumeFlag('/data/'), { type: 'volume', target: '/data', readonly: false })
    assert.throws(() => parseVolumeFlag('/data:ro'), /invalid volume specification: '\/data:ro'/)
    assert.throws(() => parseVolumeFlag('relative'), /mount path must be absolute/)
    assert.throws(() => parseVolumeFlag('/tmp:relative'), /must be absolute/)
    assert.throws(() => parseVolumeFlag('/tmp:/data:rx'), /^Error: invalid mode: rx$|invalid mode: rx/)
    assert.throws(() => parseVolumeFlag('/tmp:/'), /destination can't be '\/'/)
    // --mount refuses a missing source (the engine checks); -v makes it
    assert.deepEqual(parseMountFlag('type=bind,source=/tmp,target=/data,readonly'), { type: 'bind', source: '/tmp', target: '/data', readonly: true })
    assert.throws(() => parseMountFlag('type=bind,target=/data'), /field Source must not be empty/)
    assert.throws(() => parseMountFlag('type=bind,src=/a,dst=/b,bogus=1'), /unexpected key 'bogus'/)
    // -p, as docker's nat.ParsePortSpec
    assert.deepEqual(parsePublish('8080:80'), [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 8080 }])
    assert.deepEqual(parsePublish('127.0.0.1:8080:80/udp'), [{ containerPort: 80, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 8080 }])
    assert.deepEqual(parsePublish('80'), [{ containerPort: 80, protocol: 'tcp', hostIp: '', hostPort: 0 }])
    assert.deepEqual(parsePublish('127.0.0.1::80'), [{ containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 0 }])
    assert.deepEqual(parsePublish('8000-8001:80-81').map((p) => [p.hostPort, p.containerPort]), [[8000, 80], [8001, 81]])
    assert.deepEqual(parsePublish('[::1]:8080:80'), [{ containerPort: 80, protocol: 'tcp', hostIp: '::1', hostPort: 8080 }])
    assert.throws(() => parsePublish('8080:80/xyz'), /invalid proto: xyz/)
    assert.throws(() => parsePublish('x:80'), /invalid hostPort: x/)
    assert.throws(() => parsePublish('80:0'), /invalid containerPort: 0/)
    assert.throws(() => parsePublish('8000-8002:80-81'), /invalid ranges specified/)
    assert.throws(() => parsePublish('1.2.3:80:80'), /invalid IP address: 1\.2\.3/)
    // --add-host
    assert.deepEqual(parseAddHost('db:10.0.0.5'), { name: 'db', ip: '10.0.0.5' })
    assert.deepEqual(parseAddHost('gw:host-gateway'), { name: 'gw', ip: 'host-gateway' })
    assert.throws(() => parseAddHost('db:nope'), /invalid IP address in add-host: "nope"/)
  })

  test("the runtime's own words, without its log decoration", () => {
    assert.equal(runtimeMessage('{"level":"error","msg":"runc run failed: unable to start container process: exec: \\"x\\": executable file not found in $PATH","time":"t"}'),
      'exec: "x": executable file not found in $PATH')
    assert.equal(runtimeMessage('time="t" level=error msg="cgroups in hybrid mode not supported"\n'), 'cgroups in hybrid mode not supported')
    assert.equal(runtimeMessage('cgroups in hybrid mode not supported, drop all controllers from cgroupv2\n'), 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2')
  })

  test("start errors map to Docker's exit codes", () => {
    assert.equal(startExitCode('exec: "x": executable file not found in $PATH'), 127)
    assert.equal(startExitCode('exec: "/x": stat /x: no such file or directory'), 127)
    assert.equal(startExitCode('exec: "/etc": is a directory'), 126)
    assert.equal(startExitCode('exec: "/etc/passwd": permission denied'), 126)
    assert.equal(startExitCode('something else'), 125)
  })
})
