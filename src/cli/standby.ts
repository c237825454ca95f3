/**
 * `cairn run` starts a container monitor first thing (see container/standby.ts), before it
 * loads the rest of the command, when the command line shows the container will run attached
 * without a terminal or stdin (the only case a standby monitor serves).
 */
import { MonitorStandby } from '../container/standby.js'

let standby: MonitorStandby | undefined

/**
 * Whether `run`'s arguments may ask for -i, -t or -d. Conservative: any short-option cluster
 * holding one of those letters counts (also in the container's own command); a standby that
 * is not needed is dismissed, one that is missing only costs time.
 */
function mayNeedOtherMonitor(args: readonly string[]): boolean {
  return args.some((a) => /^-[A-Za-z]*[itd]/.test(a) || /^--(interactive|tty|detach)(=|$)/.test(a))
}

/** Starts a standby monitor when `argv` (after `cairn`) is a `run` that it can serve. */
export function startStandbyFor(argv: readonly string[], word: string | undefined): void {
  if (word !== 'run' || mayNeedOtherMonitor(argv) || process.env['CAIRN_NO_STANDBY'] === '1') return
  standby = MonitorStandby.start()
}

/** The standby monitor, if one was started and not yet taken (once). */
export function takeStandby(): MonitorStandby | undefined {
  const s = standby
  standby = undefined
  return s
}
