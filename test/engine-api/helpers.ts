/**
 * `cairn system service` and `cairn registry serve` started for a test, each as the user would run
 * them (the real command, its own socket or port), and stopped with SIGTERM at the end.
 *
 * The service runs the command from the library's build (build/src/cli/main.js, the code the bundle
 * is made of) rather than through bin/cairn's bundle, so that the coverage run counts the lines of
 * the server and of the container monitors it starts; every other CLI test runs the bundle.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { CLI } from '../helpers/cairn.js'
import { freePort } from '../helpers/distribution.js'

export interface Served {
  /** `unix:///…` or `http://127.0.0.1:port`. */
  address: string
  child: ChildProcess
  output(): string
  stop(): Promise<void>
}

/** The command unbundled: build/src/cli/main.js. */
const LIBRARY_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))

async function startCairn(args: string[], ready: () => Promise<boolean>, unbundled = false): Promise<Served> {
  const child = unbundled
    ? spawn(process.execPath, [LIBRARY_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()))
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + 20_000
  while (!(await ready())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`cairn ${args.join(' ')} did not come up: ${out}`)
    }
    await sleep(50)
  }
  return {
    address: '',
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(t)
      }
    },
  }
}

export interface ApiResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** One request to the API over its unix socket. */
export function apiRequest(socketPath: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
    const req = request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(data)
  })
}

export async function startService(root: string, socketPath: string, extra: string[] = []): Promise<Served> {
  const s = await startCairn(['--root', root, 'system', 'service', '--socket', `unix://${socketPath}`, ...extra], async () => {
    if (!existsSync(socketPath)) return false
    return apiRequest(socketPath, 'GET', '/_ping').then((r) => r.status === 200, () => false)
  }, true)
  s.address = `unix://${socketPath}`
  return s
}

export async function startRegistry(root: string, extra: string[] = []): Promise<Served & { port: number }> {
  const port = await freePort()
  const s = await startCairn(['--root', root, 'registry', 'serve', '--listen', `127.0.0.1:${port}`, '--access-log', 'none', ...extra], async () => {
    return fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false)
  })
  s.address = `http://127.0.0.1:${port}`
  return { ...s, port }
}
