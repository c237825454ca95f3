/**
 * AppArmor, where the host has it: containers run under `cairn-default`, a profile with the
 * rules of Docker's `docker-default` (no mounts; no writes to /proc outside a process's own
 * folders and /proc/sys/kernel/shm*; nothing of /proc/sysrq-trigger, /proc/kcore, /sys/firmware,
 * /sys/kernel/security; /sys read-only but for cgroups; signals and ptrace only among the
 * container's own processes and from the host), loaded with `apparmor_parser` when it is missing
 * (as Docker does, since other services may unload it). `--privileged` runs `unconfined`.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { CairnError } from '../errors/index.js'

/** The profile containers get by default. */
export const DEFAULT_APPARMOR_PROFILE = 'cairn-default'

/** Whether the kernel has AppArmor enabled (the module's parameter says `Y`). */
export function appArmorEnabled(): boolean {
  try {
    return readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y'
  } catch {
    return false
  }
}

/**
 * The text of the default profile. `macroExists` tells whether the host's /etc/apparmor.d has
 * an include (tunables/global, abstractions/base, abi/3.0); `hostProfile` is the profile the
 * process that starts containers runs under (it may signal them).
 */
export function appArmorProfileText(name: string, opts: { hostProfile?: string; macroExists?: (m: string) => boolean } = {}): string {
  const exists = opts.macroExists ?? ((m: string) => existsSync(`/etc/apparmor.d/${m}`))
  const host = opts.hostProfile !== undefined && opts.hostProfile !== '' ? opts.hostProfile : 'unconfined'
  const lines: string[] = [`# AppArmor profile of Cairn's containers`]
  if (exists('abi/3.0')) lines.push('abi <abi/3.0>,')
  lines.push(exists('tunables/global') ? '#include <tunables/global>' : '@{PROC}=/proc/', '')
  lines.push(`profile ${JSON.stringify(name)} flags=(attach_disconnected,mediate_deleted) {`)
  if (exists('abstractions/base')) lines.push('  #include <abstractions/base>', '')
  lines.push(
    '  network,',
    '  deny network alg,',
    '  capability,',
    '  file,',
    '  umount,',
    '  signal (receive) peer=unconfined,',
    '  signal (receive) peer=runc,',
    '  signal (receive) peer=crun,',
    `  signal (receive) peer=${JSON.stringify(host)},`,
    `  signal (send,receive) peer=${JSON.stringify(name)},`,
    '',
    '  deny @{PROC}/* w,',
    '  deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,',
    '  deny @{PROC}/sys/[^k]** w,',
    '  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,',
    '  deny @{PROC}/sysrq-trigger rwklx,',
    '  deny @{PROC}/kcore rwklx,',
    '',
    '  deny mount,',
    '',
    '  deny /sys/[^f]*/** wklx,',
    '  deny /sys/f[^s]*/** wklx,',
    '  deny /sys/fs/[^c]*/** wklx,',
    '  deny /sys/fs/c[^g]*/** wklx,',
    '  deny /sys/fs/cg[^r]*/** wklx,',
    '  deny /sys/firmware/** rwklx,',
    '  deny /sys/devices/virtual/powercap/** rwklx,',
    '  deny /sys/kernel/security/** rwklx,',
    '',
    `  ptrace (trace,tracedby,read,readby) peer=${JSON.stringify(name)},`,
    '}',
    '',
  )
  return lines.join('\n')
}

/** Whether the kernel has a profile of that name loaded. */
function appArmorProfileLoaded(name: string): boolean {
  try {
    return readFileSync('/sys/kernel/security/apparmor/profiles', 'utf8').split('\n').some((l) => l.split(' (')[0] === name)
  } catch {
    return false
  }
}

/** Loads the default profile unless the kernel has it (apparmor_parser -Kr, the text on stdin). */
export async function ensureDefaultAppArmorProfile(): Promise<void> {
  if (appArmorProfileLoaded(DEFAULT_APPARMOR_PROFILE)) return
  let hostProfile = ''
  try {
    hostProfile = readFileSync('/proc/self/attr/current', 'utf8').trim().split(' (')[0] ?? ''
  } catch {
    // unconfined
  }
  const text = appArmorProfileText(DEFAULT_APPARMOR_PROFILE, { hostProfile })
  await new Promise<void>((resolve, reject) => {
    const child = execFile('apparmor_parser', ['-Kr'], (err, _stdout, stderr) => {
      if (err) reject(new CairnError('NOT_SUPPORTED', `loading the AppArmor profile ${DEFAULT_APPARMOR_PROFILE} failed: ${stderr.trim() || err.message}`))
      else resolve()
    })
    child.stdin?.end(text)
  })
}
