/**
 * The CLI's own terminal as the engine's `Stdio` (container/stdio.ts), for `run`, `start -a`,
 * `attach` and `exec`: the one place that reads this process's stdin, sets its terminal raw and
 * follows its size. Detach keys (Docker's ctrl-p,ctrl-q) are seen here, on the client's side.
 */
import { parseDetachKeys, DEFAULT_DETACH_KEYS, type Stdio, type TerminalSize } from '../container/stdio.js'

export interface TerminalStdio {
  stdio: Stdio
  /** Gives the terminal back as it was, and stops reading stdin. */
  restore(): void
}

function size(): TerminalSize | undefined {
  const { columns, rows } = process.stdout
  return process.stdout.isTTY && columns > 0 && rows > 0 ? { cols: columns, rows } : undefined
}

/**
 * `interactive`: the container reads our stdin. `tty`: the container has a terminal (our own, if
 * we are on one, is put in raw mode and its size followed). Detach keys apply with a terminal.
 */
export function terminalStdio(opts: { interactive: boolean; tty: boolean; detachKeys?: string }): TerminalStdio {
  const stdio: Stdio = { stdout: process.stdout, stderr: process.stderr }
  const raw = opts.tty && opts.interactive && process.stdin.isTTY === true
  if (opts.interactive) stdio.stdin = process.stdin
  if (opts.tty) {
    const s = size()
    if (s) stdio.size = s
    stdio.onResize = (listener) => {
      const on = (): void => {
        const now = size()
        if (now) listener(now)
      }
      process.stdout.on('resize', on)
      return () => process.stdout.off('resize', on)
    }
    if (opts.interactive) stdio.detachKeys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS)
  }
  if (raw) process.stdin.setRawMode(true)
  let restored = false
  return {
    stdio,
    restore: () => {
      if (restored) return
      restored = true
      if (raw) process.stdin.setRawMode(false)
      if (opts.interactive) {
        process.stdin.pause()
        // a file as stdin is an fs.ReadStream, which has no unref (whatever the types say)
        const input: { unref?: () => void } = process.stdin
        input.unref?.()
      }
    },
  }
}
