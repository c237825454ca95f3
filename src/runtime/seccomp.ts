/**
 * Seccomp profiles in Docker's format (what `--security-opt seccomp=FILE` takes, and what
 * `seccomp/default.json` holds: Docker's default allow-list) turned into the OCI spec's
 * `linux.seccomp`. A rule may apply only to some architectures, to kernels from some version on,
 * or only when the container has (or lacks) some capabilities: `mount` is allowed only with
 * CAP_SYS_ADMIN, `reboot` only with CAP_SYS_BOOT, so that `--cap-add` widens the filter with the
 * capability, as Docker's does. The conversion is pure: the capabilities, the architecture and the
 * kernel release are its arguments.
 *
 * The profile is validated by hand: the format is small (a few fields), and the errors must be
 * Docker's words, which a schema library would not give.
 */
import { readFileSync } from 'node:fs'
import { release } from 'node:os'
import { gunzipSync } from 'node:zlib'
import { CairnError } from '../errors/index.js'
import { writeFileAtomic } from '../util/fs.js'

export interface SeccompArg {
  index: number
  value: number
  valueTwo?: number
  op: string
}

export interface SeccompFilter {
  arches?: string[]
  caps?: string[]
  minKernel?: string
}

/** A rule of a profile in Docker's format. */
export interface SeccompRule {
  name?: string
  names?: string[]
  action: string
  errnoRet?: number
  args?: SeccompArg[] | null
  includes?: SeccompFilter
  excludes?: SeccompFilter
  comment?: string
}

/** A profile in Docker's format (moby `profiles/seccomp`). */
export interface SeccompProfile {
  /** Missing (or empty) with no rules: the profile disables seccomp, as Docker reads it. */
  defaultAction?: string
  defaultErrnoRet?: number
  architectures?: string[]
  archMap?: { architecture: string; subArchitectures: string[] | null }[]
  syscalls?: SeccompRule[]
  flags?: string[]
  listenerPath?: string
  listenerMetadata?: string
}

/** The OCI runtime spec's `linux.seccomp`. */
export interface LinuxSeccomp {
  defaultAction: string
  defaultErrnoRet?: number
  architectures?: string[]
  flags?: string[]
  listenerPath?: string
  listenerMetadata?: string
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[]
}

/** libseccomp's architecture names, as profiles write them in `arches`, by Node.js's `process.arch`. */
const NODE_TO_NATIVE: Record<string, string> = {
  x64: 'amd64', ia32: 'x86', arm: 'arm', arm64: 'arm64', ppc: 'ppc', ppc64: 'ppc64le', s390: 's390', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle', mips64el: 'mipsel64',
}

/** The OCI architecture constant of a native architecture name. */
const NATIVE_TO_SCMP: Record<string, string> = {
  x86: 'SCMP_ARCH_X86', amd64: 'SCMP_ARCH_X86_64', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64', loong64: 'SCMP_ARCH_LOONGARCH64',
  mips64: 'SCMP_ARCH_MIPS64', mips64n32: 'SCMP_ARCH_MIPS64N32', mipsel64: 'SCMP_ARCH_MIPSEL64', mipsel64n32: 'SCMP_ARCH_MIPSEL64N32',
  mipsle: 'SCMP_ARCH_MIPSEL', ppc: 'SCMP_ARCH_PPC', ppc64: 'SCMP_ARCH_PPC64', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64',
  s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X',
}

/** This machine's architecture as seccomp profiles name it (`amd64`, `arm64`, …). */
export function nativeArch(nodeArch: string = process.arch): string {
  return NODE_TO_NATIVE[nodeArch] ?? nodeArch
}

function invalid(message: string): CairnError {
  return new CairnError('INVALID_ARGUMENT', message)
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string')
}

/** Reads a profile in Docker's format; what Docker refuses, refused with its words. */
export function parseSeccompProfile(text: string): SeccompProfile {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw invalid(`Decoding seccomp profile failed: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('Decoding seccomp profile failed: not a JSON object')
  const p = raw as Record<string, unknown>
  const bad = (what: string): CairnError => invalid(`Decoding seccomp profile failed: ${what}`)
  if (p['defaultAction'] !== undefined && typeof p['defaultAction'] !== 'string') throw bad('defaultAction must be a string')
  if (p['architectures'] !== undefined && p['architectures'] !== null && !isStringArray(p['architectures'])) throw bad('architectures must be a list of strings')
  if (p['syscalls'] !== undefined && p['syscalls'] !== null && !Array.isArray(p['syscalls'])) throw bad('syscalls must be a list')
  if ((p['architectures'] as unknown[] | undefined ?? []).length > 0 && (p['archMap'] as unknown[] | undefined ?? []).length > 0) {
    throw invalid("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'")
  }
  for (const s of (p['syscalls'] as unknown[] | null | undefined) ?? []) {
    if (typeof s !== 'object' || s === null) throw bad('a syscall rule must be an object')
    const r = s as Record<string, unknown>
    if (typeof r['action'] !== 'string') throw bad('a syscall rule needs an action')
    if (r['name'] !== undefined && r['name'] !== '' && isStringArray(r['names']) && r['names'].length > 0) {
      throw invalid("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'")
    }
    if (r['names'] !== undefined && r['names'] !== null && !isStringArray(r['names'])) throw bad('names must be a list of strings')
    for (const a of (r['args'] as unknown[] | null | undefined) ?? []) {
      const arg = a as Record<string, unknown>
      if (typeof arg['index'] !== 'number' || typeof arg['value'] !== 'number' || typeof arg['op'] !== 'string') throw bad('an argument rule needs index, value and op')
    }
  }
  return p
}

let defaultProfile: SeccompProfile | undefined

/** Docker's default profile, as kept in `seccomp/default.json` beside this module. */
export function defaultSeccompProfile(): SeccompProfile {
  defaultProfile ??= parseSeccompProfile(readFileSync(new URL('./seccomp/default.json', import.meta.url), 'utf8'))
  return defaultProfile
}

/** `4.8` ≤ `6.18.44-fc`? (major, minor; as moby compares kernel versions) */
export function kernelAtLeast(release: string, min: string): boolean {
  const nums = (s: string): [number, number] => {
    const m = /^(\d+)(?:\.(\d+))?/.exec(s.trim())
    return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)]
  }
  const [a, b] = nums(release)
  const [x, y] = nums(min)
  return a > x || (a === x && b >= y)
}

export interface SeccompContext {
  /** The container's bounding capabilities. */
  capabilities: readonly string[]
  /** `amd64`, `arm64`, … (nativeArch()). */
  arch: string
  /** The kernel release (`uname -r`). */
  kernel: string
  /**
   * Secondary ABIs this kernel cannot run (`SCMP_ARCH_X32` without CONFIG_X86_X32_ABI): left out
   * of the filter, since no process can make their system calls, and each ABI costs the runtime
   * a third of the filter's compile time at every start.
   */
  missingArchitectures?: readonly string[]
}

/** Kernel options that provide the secondary ABIs a profile's archMap may name. */
const ABI_OPTIONS: Record<string, string> = { SCMP_ARCH_X32: 'CONFIG_X86_X32_ABI', SCMP_ARCH_X86: 'CONFIG_IA32_EMULATION' }

/**
 * The secondary ABIs the running kernel was built without, from its configuration
 * (/proc/config.gz, else /boot/config-RELEASE); none when the configuration cannot be read.
 * The verdict is kept for the boot in `cacheFile` (reading the configuration takes a while).
 */
export async function missingKernelArchitectures(cacheFile?: string): Promise<string[]> {
  let bootId = ''
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    // no boot id: no cache
  }
  if (cacheFile !== undefined && bootId !== '') {
    try {
      const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as { bootId?: string; missing?: string[] }
      if (c.bootId === bootId && Array.isArray(c.missing)) return c.missing
    } catch {
      // not cached yet
    }
  }
  let config: string | undefined
  try {
    config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8')
  } catch {
    try {
      config = readFileSync(`/boot/config-${release()}`, 'utf8')
    } catch {
      config = undefined
    }
  }
  const missing = config === undefined ? [] : Object.entries(ABI_OPTIONS).filter(([, opt]) => !new RegExp(`^${opt}=y$`, 'm').test(config)).map(([arch]) => arch)
  if (cacheFile !== undefined && bootId !== '') await writeFileAtomic(cacheFile, `${JSON.stringify({ bootId, missing })}\n`).catch(() => undefined)
  return missing
}

/**
 * The OCI `linux.seccomp` of a profile for a container: the rules that apply to its
 * capabilities, this architecture and this kernel. Undefined when the profile disables seccomp
 * (no default action and no rules), as Docker reads it.
 */
export function seccompForSpec(profile: SeccompProfile, ctx: SeccompContext): LinuxSeccomp | undefined {
  const rules = profile.syscalls ?? []
  const defaultAction = profile.defaultAction ?? ''
  if (defaultAction === '' && rules.length === 0) return undefined
  const out: LinuxSeccomp = { defaultAction, syscalls: [] }
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet
  const scmp = NATIVE_TO_SCMP[ctx.arch]
  if (profile.architectures && profile.architectures.length > 0) out.architectures = [...profile.architectures]
  else if (scmp !== undefined) {
    const m = (profile.archMap ?? []).find((a) => a.architecture === scmp)
    const missing = ctx.missingArchitectures ?? []
    if (m) out.architectures = [m.architecture, ...(m.subArchitectures ?? []).filter((a) => !missing.includes(a))]
  }
  if (profile.flags && profile.flags.length > 0) out.flags = [...profile.flags]
  if (profile.listenerPath !== undefined && profile.listenerPath !== '') out.listenerPath = profile.listenerPath
  if (profile.listenerMetadata !== undefined && profile.listenerMetadata !== '') out.listenerMetadata = profile.listenerMetadata
  const has = (c: string): boolean => ctx.capabilities.includes(c)
  for (const r of rules) {
    const ex = r.excludes
    if (ex) {
      if ((ex.arches ?? []).includes(ctx.arch)) continue
      if ((ex.caps ?? []).some(has)) continue
      if (ex.minKernel !== undefined && ex.minKernel !== '' && kernelAtLeast(ctx.kernel, ex.minKernel)) continue
    }
    const inc = r.includes
    if (inc) {
      if ((inc.arches ?? []).length > 0 && !(inc.arches ?? []).includes(ctx.arch)) continue
      if (!(inc.caps ?? []).every(has)) continue
      if (inc.minKernel !== undefined && inc.minKernel !== '' && !kernelAtLeast(ctx.kernel, inc.minKernel)) continue
    }
    const names = r.name !== undefined && r.name !== '' ? [r.name] : [...(r.names ?? [])]
    const s: LinuxSeccomp['syscalls'][number] = { names, action: r.action }
    if (r.errnoRet !== undefined) s.errnoRet = r.errnoRet
    if (r.args && r.args.length > 0) s.args = r.args.map((a) => ({ ...a }))
    out.syscalls.push(s)
  }
  return out
}
