/**
 * The pure parts of confinement and limits, without root: Docker's seccomp profile and its
 * conditional rules, capabilities (privileged on a host whose bounding set lacks some), the
 * runtime spec of each option, Docker's flag syntaxes and their errors, Docker's checks of
 * limits, ps output for `top`, and the AppArmor profile's text.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_SHM_SIZE, INIT_PATH, generateSpec, mergeTmpfsOptions, specJson, type HostFacts, type SpecInput } from '../../src/runtime/spec.js'
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, capabilitiesOfMask, tweakCapabilities } from '../../src/runtime/capabilities.js'
import { defaultSeccompProfile, kernelAtLeast, parseSeccompProfile, seccompForSpec, type LinuxSeccomp } from '../../src/runtime/seccomp.js'
import { appArmorProfileText } from '../../src/runtime/apparmor.js'
import {
  parseBytes, parseCpus, parseDeviceFlag, parseIntFlag, parseMemorySwap, parseSecurityOpts, parseSysctlFlag, parseTmpfsFlag, parseUlimit,
} from '../../src/api/flags.js'
import { checkResources, parseCpuList, securityOptStrings, securityOptionsOf } from '../../src/container/confine.js'
import { parsePsOutput } from '../../src/api/resources.js'
import { resolveGroups } from '../../src/runtime/user.js'
import { hasCode } from '../../src/errors/index.js'

/** This VM's bounding set: everything but CAP_SYS_RESOURCE. */
const VM_MASK = '000001fffeffffff'
const host: HostFacts = { capabilities: capabilitiesOfMask(VM_MASK), arch: 'amd64', kernel: '6.1.0-18-amd64', seccompDefault: defaultSeccompProfile() }
const base: SpecInput = {
  process: { args: ['sh'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 }, terminal: false },
  rootfs: '/var/lib/cairn/containers/x/rootfs',
  hostname: 'abc',
  network: 'private',
  host,
  security: {},
}

/** The action a filter takes for a syscall with no argument rules (the first rule naming it, else the default). */
function actionFor(f: LinuxSeccomp, name: string): string {
  const rule = f.syscalls.find((r) => r.names.includes(name) && (r.args ?? []).length === 0)
  return rule ? `${rule.action}${rule.errnoRet !== undefined ? `(${rule.errnoRet})` : ''}` : `${f.defaultAction}(${f.defaultErrnoRet ?? ''})`
}

const allowed = (f: LinuxSeccomp, name: string): boolean => actionFor(f, name) === 'SCMP_ACT_ALLOW'

describe("Docker's default seccomp profile", () => {
  const profile = defaultSeccompProfile()
  const filter = seccompForSpec(profile, { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64', kernel: '6.1.0' }) as LinuxSeccomp

  test('denies by default with EPERM, for x86-64 and its 32-bit ABIs', () => {
    assert.equal(filter.defaultAction, 'SCMP_ACT_ERRNO')
    assert.equal(filter.defaultErrnoRet, 1)
    assert.deepEqual(filter.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'])
    assert.deepEqual(seccompForSpec(profile, { capabilities: [], arch: 'arm64', kernel: '6.1' })?.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'])
    // an ABI the kernel cannot run (no CONFIG_X86_X32_ABI) is left out; the native one never is
    assert.deepEqual(seccompForSpec(profile, { capabilities: [], arch: 'amd64', kernel: '6.1', missingArchitectures: ['SCMP_ARCH_X32', 'SCMP_ARCH_X86_64'] })?.architectures,
      ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'])
    assert.deepEqual(generateSpec({ ...base, host: { ...host, missingArchitectures: ['SCMP_ARCH_X32'] } }).linux.seccomp?.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'])
  })

  test('allows the ordinary calls, refuses the dangerous ones under the default capabilities', () => {
    for (const n of ['read', 'write', 'openat', 'execve', 'clone', 'chroot', 'mknod', 'setuid', 'socket', 'arch_prctl', 'ptrace']) {
      assert.ok(allowed(filter, n) || filter.syscalls.some((r) => r.names.includes(n)), `${n} has a rule`)
    }
    for (const n of ['read', 'openat', 'execve', 'chroot', 'arch_prctl', 'ptrace']) assert.ok(allowed(filter, n), n)
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'keyctl', 'add_key', 'request_key', 'reboot', 'swapon', 'swapoff', 'init_module',
      'finit_module', 'delete_module', 'open_by_handle_at', 'kexec_load', 'bpf', 'perf_event_open', 'acct', 'settimeofday', 'iopl', 'userfaultfd', 'pivot_root']) {
      assert.equal(actionFor(filter, n), 'SCMP_ACT_ERRNO(1)', n)
    }
    // clone3 says ENOSYS (so that libc falls back to clone, whose namespace flags are checked)
    assert.equal(actionFor(filter, 'clone3'), 'SCMP_ACT_ERRNO(38)')
    // clone only without namespace flags
    const clone = filter.syscalls.find((r) => r.names.includes('clone'))
    assert.deepEqual(clone?.args, [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }])
    // a 32-bit-only ABI call of another architecture is not there
    assert.ok(!filter.syscalls.some((r) => r.names.includes('s390_runtime_instr')))
  })

  test('a capability widens the filter with what it allows, as Docker does', () => {
    const admin = seccompForSpec(profile, { capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    for (const n of ['mount', 'umount2', 'unshare', 'setns', 'clone3']) assert.ok(allowed(admin, n), n)
    assert.ok(!admin.syscalls.some((r) => r.names.includes('clone') && (r.args ?? []).length > 0), 'clone unrestricted with CAP_SYS_ADMIN')
    assert.ok(!allowed(admin, 'reboot'))
    const boot = seccompForSpec(profile, { capabilities: ['CAP_SYS_BOOT'], arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    assert.ok(allowed(boot, 'reboot'))
    const module = seccompForSpec(profile, { capabilities: ['CAP_SYS_MODULE'], arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    assert.ok(allowed(module, 'init_module') && allowed(module, 'finit_module'))
    const dac = seccompForSpec(profile, { capabilities: ['CAP_DAC_READ_SEARCH'], arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    assert.ok(allowed(dac, 'open_by_handle_at'))
  })

  test('rules from a kernel version on (ptrace from 4.8)', () => {
    const old = seccompForSpec(profile, { capabilities: DEFAULT_CAPABILITIES, arch: 'amd64', kernel: '4.4.0-210-generic' }) as LinuxSeccomp
    assert.ok(!allowed(old, 'ptrace'))
    assert.ok(kernelAtLeast('6.18.44-fc-v1147', '4.8'))
    assert.ok(!kernelAtLeast('4.7.10', '4.8'))
    assert.ok(kernelAtLeast('4.8', '4.8'))
  })

  test("a profile of one's own, in Docker's format; Docker's errors for bad ones", () => {
    const mine = parseSeccompProfile(JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'mkdir', action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }))
    const f = seccompForSpec(mine, { capabilities: [], arch: 'amd64', kernel: '6.1' }) as LinuxSeccomp
    assert.equal(f.defaultAction, 'SCMP_ACT_ALLOW')
    assert.deepEqual(f.syscalls, [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }])
    assert.equal(seccompForSpec(parseSeccompProfile('{}'), { capabilities: [], arch: 'amd64', kernel: '6.1' }), undefined)
    assert.throws(() => parseSeccompProfile('{nope'), (e: unknown) => hasCode(e, 'INVALID_ARGUMENT') && /^Decoding seccomp profile failed: /.test((e as Error).message))
    assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86","subArchitectures":[]}]}'),
      /both 'architectures' and 'archMap' are specified/)
    assert.throws(() => parseSeccompProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}'),
      /both 'name' and 'names' are specified/)
  })
})

describe('capabilities', () => {
  const hostCaps = capabilitiesOfMask(VM_MASK)

  test("the host's bounding set from CapBnd", () => {
    assert.equal(ALL_CAPABILITIES.length, 41)
    assert.equal(hostCaps.length, 40)
    assert.ok(!hostCaps.includes('CAP_SYS_RESOURCE'))
    assert.deepEqual(capabilitiesOfMask('00000000a80425fb'), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
      'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP'])
  })

  test("Docker's TweakCapabilities: defaults, add, drop, ALL, any case, with or without CAP_", () => {
    assert.deepEqual(tweakCapabilities({ host: hostCaps }), [...DEFAULT_CAPABILITIES])
    const t = tweakCapabilities({ adds: ['net_admin', 'CAP_SYS_PTRACE'], drops: ['CHOWN', 'cap_net_raw'], host: hostCaps })
    assert.ok(t.includes('CAP_NET_ADMIN') && t.includes('CAP_SYS_PTRACE'))
    assert.ok(!t.includes('CAP_CHOWN') && !t.includes('CAP_NET_RAW'))
    assert.deepEqual(tweakCapabilities({ drops: ['ALL'], adds: ['CHOWN'], host: hostCaps }), ['CAP_CHOWN'])
    const all = tweakCapabilities({ adds: ['ALL'], drops: ['SYS_ADMIN'], host: hostCaps })
    assert.equal(all.length, 39)
    assert.ok(!all.includes('CAP_SYS_ADMIN'))
  })

  test('privileged: every capability the host has (none it lacks)', () => {
    const p = tweakCapabilities({ privileged: true, host: hostCaps })
    assert.deepEqual(p, hostCaps)
    assert.ok(!p.includes('CAP_SYS_RESOURCE'))
  })

  test("unknown names and ones the host lacks are refused in Docker's words", () => {
    assert.throws(() => tweakCapabilities({ adds: ['NOPE'], host: hostCaps }), /^Error: unknown capability: "CAP_NOPE"$|unknown capability: "CAP_NOPE"/)
    assert.throws(() => tweakCapabilities({ adds: ['SYS_RESOURCE'], host: hostCaps }),
      (e: unknown) => hasCode(e, 'INVALID_ARGUMENT') && (e as Error).message === 'capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"')
  })
})

describe('the runtime spec of the confinement options', () => {
  test("defaults: Docker's capabilities, seccomp filter, masked and read-only paths, no no-new-privileges", () => {
    const s = generateSpec(base)
    assert.deepEqual(s.process.capabilities.bounding, [...DEFAULT_CAPABILITIES])
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO')
    assert.ok(s.linux.maskedPaths.includes('/proc/kcore'))
    assert.ok(s.linux.readonlyPaths.includes('/proc/sysrq-trigger'))
    assert.equal(s.process.noNewPrivileges, false)
    assert.equal(s.process.apparmorProfile, undefined)
    assert.equal(s.linux.resources.devices[0]?.allow, false)
    assert.ok(s.mounts.find((m) => m.destination === '/dev/shm')?.options.includes(`size=${DEFAULT_SHM_SIZE}`))
    // no security input: the spec of old callers, without seccomp
    assert.equal(generateSpec({ ...base, security: undefined as never }).linux.seccomp, undefined)
  })

  test('seccomp=unconfined, a custom profile, no-new-privileges, AppArmor, cap-add widening the filter', () => {
    assert.equal(generateSpec({ ...base, security: { seccomp: 'unconfined' } }).linux.seccomp, undefined)
    const own = generateSpec({ ...base, security: { seccomp: { defaultAction: 'SCMP_ACT_LOG' } , noNewPrivileges: true, apparmorProfile: 'cairn-default' } })
    assert.equal(own.linux.seccomp?.defaultAction, 'SCMP_ACT_LOG')
    assert.equal(own.process.noNewPrivileges, true)
    assert.equal(own.process.apparmorProfile, 'cairn-default')
    const admin = generateSpec({ ...base, security: { capAdd: ['SYS_ADMIN'] } })
    assert.ok(admin.process.capabilities.effective.includes('CAP_SYS_ADMIN'))
    assert.ok(admin.linux.seccomp?.syscalls.some((r) => r.names.includes('mount') && r.action === 'SCMP_ACT_ALLOW'))
    assert.ok(!generateSpec(base).linux.seccomp?.syscalls.some((r) => r.names.includes('mount')))
  })

  test("privileged: the host's capabilities and devices, no seccomp, no masked paths, /sys and cgroups writable", () => {
    const devices = [{ path: '/dev/sda', type: 'b' as const, major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }]
    const s = generateSpec({ ...base, host: { ...host, devices }, security: { privileged: true } })
    assert.deepEqual(s.process.capabilities.bounding, capabilitiesOfMask(VM_MASK))
    assert.equal(s.linux.seccomp, undefined)
    assert.deepEqual(s.linux.maskedPaths, [])
    assert.deepEqual(s.linux.readonlyPaths, [])
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }])
    assert.ok(s.linux.devices.some((d) => d.path === '/dev/sda' && d.type === 'b'))
    assert.ok(!s.mounts.find((m) => m.destination === '/sys')?.options.includes('ro'))
    assert.ok(!s.mounts.find((m) => m.destination === '/sys/fs/cgroup')?.options.includes('ro'))
    // privileged with a profile of its own keeps it
    assert.equal(generateSpec({ ...base, security: { privileged: true, seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] } } }).linux.seccomp?.defaultAction, 'SCMP_ACT_ALLOW')
  })

  test('read-only root: every mount read-only but the kernel file systems and the tmpfs asked for', () => {
    const s = generateSpec({ ...base, readonlyRootfs: true, tmpfs: { '/run': 'size=1m' }, etc: { hosts: '/h', hostname: '/n', resolvConf: '/r' } })
    assert.equal(s.root.readonly, true)
    const opts = (d: string): string[] => s.mounts.find((m) => m.destination === d)?.options ?? []
    for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/run']) assert.ok(!opts(d).includes('ro'), d)
    for (const d of ['/sys', '/etc/hosts', '/etc/resolv.conf']) assert.ok(opts(d).includes('ro'), d)
  })

  test('--tmpfs and --mount type=tmpfs: one list of tmpfs mounts; two at one path refused', () => {
    const s = generateSpec({ ...base, tmpfs: { '/run': 'size=1m' }, tmpfsMounts: [{ destination: '/scratch', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=64m'] }] })
    const tmpfs = s.mounts.filter((m) => m.source === 'tmpfs' && m.destination !== '/dev').map((m) => `${m.destination} ${m.options.join(',')}`)
    assert.deepEqual(tmpfs, ['/run noexec,nosuid,nodev,rprivate,size=1m', '/scratch noexec,nosuid,nodev,rprivate,size=64m'])
    assert.throws(() => generateSpec({ ...base, tmpfs: { '/run': '' }, tmpfsMounts: [{ destination: '/run/', options: [] }] }),
      (err: unknown) => hasCode(err, 'INVALID_ARGUMENT') && /^Duplicate mount point: \/run$/.test((err as Error).message))
  })

  test("tmpfs mounts over Docker's noexec,nosuid,nodev; /dev/shm's size; sysctls; devices; ulimits; init", () => {
    const s = generateSpec({
      ...base,
      process: { ...base.process, ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }, { name: 'core', soft: -1, hard: -1 }] },
      tmpfs: { '/run': 'exec,size=64m', '/tmp': '' },
      shmSize: 8 << 20,
      sysctls: { 'net.ipv4.ip_forward': '1' },
      devices: [{ path: '/dev/xnull', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, access: 'rw' }],
      init: { path: '/usr/bin/tini-static' },
    })
    assert.deepEqual(s.mounts.find((m) => m.destination === '/run')?.options, ['nosuid', 'nodev', 'rprivate', 'exec', 'size=64m'])
    assert.deepEqual(s.mounts.find((m) => m.destination === '/tmp')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate'])
    assert.ok(s.mounts.find((m) => m.destination === '/dev/shm')?.options.includes('size=8388608'))
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ip_forward': '1' })
    assert.ok(s.linux.devices.some((d) => d.path === '/dev/xnull' && d.major === 1 && d.minor === 3))
    assert.deepEqual(s.linux.resources.devices.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' })
    assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 2048, soft: 1024 }, { type: 'RLIMIT_CORE', hard: -1, soft: -1 }])
    assert.match(specJson(s), /"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615/)
    // read back (a float above 2^64-1) and written again: still RLIM_INFINITY
    assert.match(specJson(JSON.parse(specJson(s)) as typeof s), /"hard":18446744073709551615/)
    assert.deepEqual(s.process.args, [INIT_PATH, '--', 'sh'])
    assert.deepEqual(s.mounts.find((m) => m.destination === INIT_PATH), { destination: INIT_PATH, type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro'] })
  })

  test("cgroup limits: Docker's fields as the OCI spec's resources", () => {
    const s = generateSpec({ ...base, resources: { memory: 32 << 20, memorySwap: 64 << 20, memoryReservation: 16 << 20, oomKillDisable: true, nanoCpus: 5e8, cpuShares: 512, cpusetCpus: '0', pidsLimit: 64 } })
    assert.deepEqual(s.linux.resources.memory, { limit: 33554432, reservation: 16777216, swap: 67108864, disableOOMKiller: true })
    assert.deepEqual(s.linux.resources.cpu, { shares: 512, quota: 50000, period: 100000, cpus: '0' })
    assert.deepEqual(s.linux.resources.pids, { limit: 64 })
    assert.deepEqual(generateSpec({ ...base, resources: { pidsLimit: 0 } }).linux.resources.pids, { limit: -1 })
    assert.equal(generateSpec(base).linux.resources.memory, undefined)
  })

  test("mergeTmpfsOptions: a later flag replaces its opposite, a later size the earlier", () => {
    assert.deepEqual(mergeTmpfsOptions(['noexec', 'nosuid', 'size=1m', 'exec', 'size=2m', 'mode=1777']), ['nosuid', 'exec', 'size=2m', 'mode=1777'])
  })
})

describe("Docker's flag syntaxes", () => {
  test('sizes: RAMInBytes (powers of 1024, any case, optional i and b)', () => {
    assert.equal(parseBytes('32m', '-m, --memory'), 32 << 20)
    assert.equal(parseBytes('32MiB', '-m, --memory'), 32 << 20)
    assert.equal(parseBytes('1.5g', '-m, --memory'), 1.5 * 2 ** 30)
    assert.equal(parseBytes('512', '-m, --memory'), 512)
    assert.equal(parseBytes('64 k', '--shm-size'), 65536)
    assert.throws(() => parseBytes('32x', '-m, --memory'), (e: unknown) => (e as Error).message === `invalid argument "32x" for "-m, --memory" flag: invalid suffix: 'x'`)
    assert.throws(() => parseBytes('-1', '-m, --memory'), /invalid size/)
    assert.equal(parseMemorySwap('-1'), -1)
    assert.equal(parseMemorySwap('1g'), 2 ** 30)
  })

  test('--cpus: decimals and fractions as NanoCPUs', () => {
    assert.equal(parseCpus('0.5'), 5e8)
    assert.equal(parseCpus('1.25'), 1.25e9)
    assert.equal(parseCpus('2'), 2e9)
    assert.equal(parseCpus('.5'), 5e8)
    assert.equal(parseCpus('3/2'), 1.5e9)
    assert.throws(() => parseCpus('abc'), (e: unknown) => (e as Error).message === 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number')
    assert.throws(() => parseCpus('0.0000000001'), /value is too precise/)
    assert.throws(() => parseIntFlag('x', '--pids-limit'), (e: unknown) => (e as Error).message === 'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax')
  })

  test('--ulimit name=soft[:hard]', () => {
    assert.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 })
    assert.deepEqual(parseUlimit('nproc=64'), { name: 'nproc', soft: 64, hard: 64 })
    assert.deepEqual(parseUlimit('core=-1'), { name: 'core', soft: -1, hard: -1 })
    assert.throws(() => parseUlimit('nofile'), /invalid ulimit argument: nofile$/)
    assert.throws(() => parseUlimit('bogus=1'), /invalid ulimit type: bogus$/)
    assert.throws(() => parseUlimit('nofile=2:1'), /ulimit soft limit must be less than or equal to hard limit: 2 > 1$/)
    assert.throws(() => parseUlimit('nofile=x'), /strconv.ParseInt: parsing "x": invalid syntax/)
  })

  test('--device HOST[:CTR][:PERMS]', () => {
    assert.deepEqual(parseDeviceFlag('/dev/fuse'), { pathOnHost: '/dev/fuse', pathInContainer: '/dev/fuse', cgroupPermissions: 'rwm' })
    assert.deepEqual(parseDeviceFlag('/dev/null:/dev/xnull'), { pathOnHost: '/dev/null', pathInContainer: '/dev/xnull', cgroupPermissions: 'rwm' })
    assert.deepEqual(parseDeviceFlag('/dev/null:r'), { pathOnHost: '/dev/null', pathInContainer: '/dev/null', cgroupPermissions: 'r' })
    assert.deepEqual(parseDeviceFlag('/dev/null:/dev/x:rw'), { pathOnHost: '/dev/null', pathInContainer: '/dev/x', cgroupPermissions: 'rw' })
    assert.throws(() => parseDeviceFlag('/dev/null:/dev/x:rwx'), /bad mode specified: rwx$/)
    assert.throws(() => parseDeviceFlag('/a:/b:r:w'), /bad format for path: \/a:\/b:r:w$/)
    assert.throws(() => parseDeviceFlag('/dev/null:dev/x'), /dev\/x is not an absolute path$/)
  })

  test('--tmpfs PATH[:OPTS], --sysctl (namespaced ones only)', () => {
    assert.deepEqual(parseTmpfsFlag('/run:rw,size=64m,mode=1777'), { path: '/run', options: 'rw,size=64m,mode=1777' })
    assert.deepEqual(parseTmpfsFlag('/tmp/'), { path: '/tmp', options: '' })
    assert.throws(() => parseTmpfsFlag('run'), /invalid mount path: 'run' mount path must be absolute/)
    assert.throws(() => parseTmpfsFlag('/run:bogus'), /Invalid tmpfs option "bogus"/)
    assert.deepEqual(parseSysctlFlag('net.ipv4.ip_forward=1'), ['net.ipv4.ip_forward', '1'])
    assert.deepEqual(parseSysctlFlag('kernel.shmmax=1=2'), ['kernel.shmmax', '1=2'])
    assert.deepEqual(parseSysctlFlag('fs.mqueue.msg_max=20'), ['fs.mqueue.msg_max', '20'])
    for (const bad of ['kernel.hostname=x', 'vm.swappiness=1', 'net.ipv4.ip_forward']) {
      assert.throws(() => parseSysctlFlag(bad), (e: unknown) => (e as Error).message === `invalid argument "${bad}" for "--sysctl" flag: sysctl '${bad}' is not whitelisted`)
    }
  })

  test('--security-opt: seccomp files read and compacted, unconfined, no-new-privileges, apparmor; Docker\'s errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-secopt-'))
    try {
      await writeFile(join(dir, 'p.json'), '{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
      await writeFile(join(dir, 'bad.json'), '{ nope')
      assert.deepEqual(await parseSecurityOpts([`seccomp=${join(dir, 'p.json')}`, 'no-new-privileges', 'apparmor=unconfined', 'label=disable']),
        { seccompProfile: '{"defaultAction":"SCMP_ACT_ALLOW"}', noNewPrivileges: true, apparmorProfile: 'unconfined' })
      assert.deepEqual(await parseSecurityOpts(['seccomp=unconfined', 'no-new-privileges=false']), { seccompProfile: 'unconfined', noNewPrivileges: false })
      assert.deepEqual(await parseSecurityOpts(['seccomp:unconfined']), { seccompProfile: 'unconfined' })
      await assert.rejects(parseSecurityOpts([`seccomp=${join(dir, 'nope.json')}`]), new RegExp(`^CairnError: opening seccomp profile \\(${dir}/nope.json\\) failed: open ${dir}/nope.json: no such file or directory$`))
      await assert.rejects(parseSecurityOpts([`seccomp=${join(dir, 'bad.json')}`]), /compacting json for seccomp profile/)
      await assert.rejects(parseSecurityOpts(['bogus']), (e: unknown) => (e as Error).message === 'invalid --security-opt 1: "bogus"')
      await assert.rejects(parseSecurityOpts(['bogus=1']), (e: unknown) => (e as Error).message === 'invalid --security-opt 2: "bogus=1"')
      await assert.rejects(parseSecurityOpts(['no-new-privileges=maybe']), (e: unknown) => (e as Error).message === 'invalid --security-opt 2: "no-new-privileges=maybe"')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  test("SecurityOpt entries kept as Docker shows them, and read back", () => {
    const o = securityOptStrings({ seccompProfile: 'unconfined', noNewPrivileges: true, apparmorProfile: 'x' })
    assert.deepEqual(o, ['seccomp=unconfined', 'apparmor=x', 'no-new-privileges'])
    assert.deepEqual(securityOptionsOf(o), { noNewPrivileges: true, seccompProfile: 'unconfined', apparmorProfile: 'x' })
  })
})

describe("Docker's checks of limits", () => {
  const err = (f: () => unknown, message: string): void => assert.throws(f, (e: unknown) => hasCode(e, 'INVALID_ARGUMENT') && (e as Error).message === message)

  test('memory, swap and reservation', () => {
    const r = checkResources({ memory: 32 << 20 })
    assert.equal(r.memory, 32 << 20)
    assert.ok(r.memorySwap === 64 << 20 || r.memorySwap === -1, `swap defaults to twice the memory (or unlimited without swap accounting): ${r.memorySwap}`)
    assert.equal(checkResources({ memory: 32 << 20, memorySwap: -1 }).memorySwap, -1)
    err(() => checkResources({ memory: 1 << 20 }), 'Minimum memory limit allowed is 6MB')
    err(() => checkResources({ memory: 32 << 20, memorySwap: 16 << 20 }), 'Minimum memoryswap limit should be larger than memory limit, see usage')
    err(() => checkResources({ memorySwap: 16 << 20 }), 'You should always set the Memory limit when using Memoryswap limit, see usage')
    err(() => checkResources({ memoryReservation: 1 << 20 }), 'Minimum memory reservation allowed is 6MB')
    err(() => checkResources({ memory: 16 << 20, memoryReservation: 32 << 20 }), 'Minimum memory limit can not be less than memory reservation limit, see usage')
  })

  test('CPUs and cpusets against this machine', () => {
    assert.throws(() => checkResources({ nanoCpus: 1000e9 }), (e: unknown) => /^Range of CPUs is from 0\.01 to (\d+)\.00, as there are only \1 CPUs available$/.test((e as Error).message))
    err(() => checkResources({ cpusetCpus: '0-x' }), 'Invalid value 0-x for cpuset cpus: invalid format: 0-x')
    assert.throws(() => checkResources({ cpusetCpus: '0-4095' }), /^CairnError: Requested CPUs are not available - requested 0-4095, available: /)
    assert.equal(checkResources({ cpusetCpus: '0' }).cpusetCpus, '0')
    assert.deepEqual(parseCpuList('0-2,5'), [0, 1, 2, 5])
    assert.equal(parseCpuList('2-1'), undefined)
  })

  test('update: merged over the current limits; 0 leaves one as it is; the swap limit is checked', () => {
    const current = { memory: 32 << 20, memorySwap: 64 << 20, nanoCpus: 5e8 }
    assert.deepEqual(checkResources({ memory: 48 << 20, nanoCpus: 0 }, { update: true, current }), { memory: 48 << 20, memorySwap: 64 << 20, nanoCpus: 5e8 })
    err(() => checkResources({ memory: 128 << 20 }, { update: true, current }), 'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time')
    assert.deepEqual(checkResources({ memory: 128 << 20, memorySwap: 256 << 20 }, { update: true, current }), { memory: 128 << 20, memorySwap: 256 << 20, nanoCpus: 5e8 })
  })
})

describe('top, group-add, AppArmor', () => {
  test("ps output as Docker reads it: the container's PIDs, the last column with its spaces, thread lines", () => {
    const out = [
      'UID          PID    PPID  C STIME TTY          TIME CMD',
      'root           1       0  0 10:00 ?        00:00:01 /sbin/init',
      'root         100       1  0 10:01 ?        00:00:00 sh -c sleep 100',
      'root           -       -  0 10:01 ?        00:00:00 -',
      'root         101     100  0 10:01 ?        00:00:00 sleep 100',
      '',
    ].join('\n')
    const r = parsePsOutput(out, new Set([100, 101]))
    assert.deepEqual(r.titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'])
    assert.deepEqual(r.processes.map((p) => p[1]), ['100', '-', '101'])
    assert.equal(r.processes[0]?.[7], 'sh -c sleep 100')
    assert.throws(() => parsePsOutput('USER COMMAND\nroot x\n', new Set()), /Couldn't find PID field in ps output/)
  })

  test('--group-add: names from the container\'s /etc/group, IDs as they are', () => {
    assert.deepEqual(resolveGroups(['wheel', '123', 'wheel'], 'root:x:0:\nwheel:x:10:\n'), [10, 123])
    assert.throws(() => resolveGroups(['nope'], 'root:x:0:\n'), /unable to find group nope: no matching entries in group file/)
  })

  test("the AppArmor profile: docker-default's rules, the host's includes when it has them", () => {
    const bare = appArmorProfileText('cairn-default', { macroExists: () => false })
    assert.match(bare, /^profile "cairn-default" flags=\(attach_disconnected,mediate_deleted\) \{$/m)
    assert.match(bare, /^@\{PROC\}=\/proc\/$/m)
    for (const rule of ['deny mount,', 'deny @{PROC}/sysrq-trigger rwklx,', 'deny /sys/firmware/** rwklx,', 'ptrace (trace,tracedby,read,readby) peer="cairn-default",']) {
      assert.ok(bare.includes(rule), rule)
    }
    const full = appArmorProfileText('cairn-default', { macroExists: () => true, hostProfile: 'cairnd' })
    assert.match(full, /^abi <abi\/3\.0>,$/m)
    assert.match(full, /^#include <tunables\/global>$/m)
    assert.match(full, /^ {2}#include <abstractions\/base>$/m)
    assert.match(full, /signal \(receive\) peer="cairnd",/)
  })
})
