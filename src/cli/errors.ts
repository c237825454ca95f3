/** The CLI's one error printer: `Error: <one line>` on stderr, a stack only with CAIRN_DEBUG. */
import { hasCode, userMessage } from '../errors/index.js'

export function printError(err: unknown): void {
  process.stderr.write(`Error: ${userMessage(err).replace(/\n+$/, '')}\n`)
  if (process.env['CAIRN_DEBUG'] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
}

/**
 * Prints an error and returns Docker's exit code for it: a container command that was not found
 * 127, not executable 126 (`notRunnable` overrides both: `exec` uses 126 for any command that
 * cannot start), anything else `fallback` (125 when the engine failed a `run`).
 */
export function reportError(err: unknown, fallback: number, notRunnable?: number): number {
  printError(err)
  if (hasCode(err, 'COMMAND_NOT_FOUND')) return notRunnable ?? 127
  if (hasCode(err, 'COMMAND_NOT_EXECUTABLE')) return notRunnable ?? 126
  return fallback
}
