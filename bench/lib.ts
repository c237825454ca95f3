/** What every benchmark needs: timing a command, and the median of samples. */
import { spawn } from 'node:child_process'

export interface Cmd {
  cmd: string
  args: string[]
  env?: NodeJS.ProcessEnv
}

/** Runs a command to completion and times it (wall seconds); a non-zero exit throws unless allowed. */
export async function exec(c: Cmd, allowFail = false): Promise<{ code: number | null; stdout: string; stderr: string; wallS: number }> {
  const t0 = performance.now()
  const child = spawn(c.cmd, c.args, { stdio: ['ignore', 'pipe', 'pipe'], env: c.env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  const wallS = (performance.now() - t0) / 1000
  if (code !== 0 && !allowFail) throw new Error(`${c.cmd} ${c.args.join(' ')} exited ${String(code)}: ${stderr.slice(-2000)}`)
  return { code, stdout, stderr, wallS }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}
