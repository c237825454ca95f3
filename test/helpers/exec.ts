import { spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** What a finished command left behind. `code` is null when a signal ended it. */
export interface RunResult {
  stdout: string
  stderr: string
  code: number | null
  signal: NodeJS.Signals | null
}

export interface RunOptions {
  /** Fed to the command's stdin, which is closed afterwards (stdin is /dev/null without it). */
  input?: Buffer | string | Readable
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** SIGKILL the command after this many milliseconds (it then resolves with signal 'SIGKILL'). */
  timeoutMs?: number
  signal?: AbortSignal
}

/** A command that exited non-zero, or was killed; carries everything it printed. */
export class CommandFailedError extends Error {
  readonly command: string
  readonly result: RunResult
  constructor(command: string, result: RunResult) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${String(result.code)}`
    super(`${command} ${how}\n${tail(result.stderr || result.stdout, 2000)}`)
    this.name = 'CommandFailedError'
    this.command = command
    this.result = result
  }
}

/** Runs a command to completion and collects its output; never throws for a non-zero exit. */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = spawn(cmd, args, {
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const }),
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout?.on('data', (b: Buffer) => out.push(b))
  child.stderr?.on('data', (b: Buffer) => err.push(b))

  const feeding =
    opts.input === undefined || child.stdin === null
      ? Promise.resolve()
      : pipeline(
          opts.input instanceof Readable ? opts.input : Readable.from([Buffer.from(opts.input)]),
          child.stdin,
        ).catch((e: NodeJS.ErrnoException) => {
          // A command may exit without reading all of its input; that is its answer, not ours.
          if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e
        })

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  const [{ code, signal }] = await Promise.all([exited, feeding])
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    code,
    signal,
  }
}

/** Like `run`, but a non-zero exit or a signal throws a CommandFailedError. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await run(cmd, args, opts)
  if (result.code !== 0) throw new CommandFailedError([cmd, ...args].join(' '), result)
  return result
}

/** The last `max` characters of a text, cut at a line start where possible. */
export function tail(text: string, max: number): string {
  if (text.length <= max) return text
  const cut = text.slice(-max)
  const nl = cut.indexOf('\n')
  return nl >= 0 && nl < cut.length - 1 ? cut.slice(nl + 1) : cut
}
