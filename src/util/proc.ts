/** Processes by identity: a PID and its start time, so that a reused PID is never mistaken for the process it was. */
import { readFileSync } from 'node:fs'

/** A process as (pid, start time): the start time guards against a reused PID. */
export interface ProcessIdentity {
  pid: number
  start: string
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined when gone or a zombie. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined
    return rest[19]
  } catch {
    return undefined
  }
}

export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, start: processStart(process.pid) ?? '' }
}

export function isAlive(pid: number | null, start: string | null): boolean {
  if (pid === null || pid <= 0) return false
  const s = processStart(pid)
  return s !== undefined && (start === null || start === '' || s === start)
}
