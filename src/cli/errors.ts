/** The CLI's one error printer: `Error: <one line>` on stderr, a stack only with CAIRN_DEBUG. */
import { isCairnError, userMessage } from '../errors/index.js'

export function printError(err: unknown): void {
  process.stderr.write(`Error: ${userMessage(err).replace(/\n+$/, '')}\n`)
  if (process.env['CAIRN_DEBUG'] && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
}

/** Prints an error and returns the exit code it carries (Docker's 125/126/127 for containers), else `fallback`. */
export function reportError(err: unknown, fallback: number): number {
  printError(err)
  const d = isCairnError(err) ? (err.detail as { exitCode?: unknown } | undefined) : undefined
  return d && typeof d.exitCode === 'number' ? d.exitCode : fallback
}
