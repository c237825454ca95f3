/**
 * A private CNCF distribution registry (Debian's `docker-registry`, 2.8) for the registry client's
 * tests and benchmarks: on 127.0.0.1 with a random port, its own temp root, optionally an htpasswd
 * user (bcrypt, made with apache2-utils' htpasswd). Stopped by stop(), or when this process exits
 * (and, through setpriv --pdeathsig, when it is killed).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'node:http'
import { runOk, tail } from './exec.js'
import { isAlive, signal, waitGone } from './system.js'

const DistributionTools = {
  registry: '/usr/bin/docker-registry',
  htpasswd: '/usr/bin/htpasswd',
  setpriv: '/usr/bin/setpriv',
} as const

export interface DistributionOptions {
  /** An htpasswd user; without it the registry needs no login. */
  user?: { username: string; password: string }
  /** Where its temp dir is made (default /tmp). */
  parentDir?: string
}

export interface Distribution {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  readonly host: string
  readonly port: number
  readonly dir: string
  /** Where the registry keeps blobs and repositories. */
  readonly dataDir: string
  readonly logFile: string
  readonly pid: number
  logTail(): string
  stop(): Promise<void>
}

const live = new Set<Running>()
let handlersInstalled = false

export function missingDistributionTools(): string[] {
  return Object.values(DistributionTools).filter((p) => {
    try {
      accessSync(p, constants.X_OK)
      return false
    } catch {
      return true
    }
  })
}

/** A free TCP port on 127.0.0.1 (bound and released; the registry takes it right after). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  const missing = missingDistributionTools()
  if (missing.length > 0) throw new Error(`cannot start the registry: missing ${missing.join(', ')} (run scripts/ensure-deps.sh)`)
  const dir = mkdtempSync(join(opts.parentDir ?? '/tmp', 'cairn-registry-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const r = new Running(dir, port)
    live.add(r)
    installHandlers()
    try {
      await r.start(opts)
      return r
    } catch (err) {
      await r.stop().catch(() => undefined)
      if (attempt >= 2 || !r.portTaken()) {
        await rm(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
}

class Running implements Distribution {
  readonly host: string
  readonly dataDir: string
  readonly logFile: string
  pid = 0
  private child: ChildProcess | undefined
  private stopping: Promise<void> | undefined

  constructor(readonly dir: string, readonly port: number) {
    this.host = `127.0.0.1:${port}`
    this.dataDir = join(dir, `data-${port}`)
    this.logFile = join(dir, `registry-${port}.log`)
  }

  async start(opts: DistributionOptions): Promise<void> {
    let auth = ''
    if (opts.user) {
      const line = (await runOk(DistributionTools.htpasswd, ['-Bbn', opts.user.username, opts.user.password])).stdout.trim()
      writeFileSync(join(this.dir, 'htpasswd'), `${line}\n`)
      auth = `auth:\n  htpasswd:\n    realm: cairn-test\n    path: ${join(this.dir, 'htpasswd')}\n`
    }
    const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${this.dataDir}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${this.port}
  secret: ${randomBytes(16).toString('hex')}
  headers:
    X-Content-Type-Options: [nosniff]
${auth}`
    const cfgPath = join(this.dir, `config-${this.port}.yml`)
    writeFileSync(cfgPath, config)
    const log = openSync(this.logFile, 'a')
    try {
      this.child = spawn(DistributionTools.setpriv, ['--pdeathsig', 'TERM', '--', DistributionTools.registry, 'serve', cfgPath], {
        stdio: ['ignore', log, log],
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', OTEL_TRACES_EXPORTER: 'none' },
      })
    } finally {
      closeSync(log)
    }
    this.child.on('error', () => undefined)
    this.child.unref()
    this.pid = this.child.pid ?? 0
    const deadline = Date.now() + 15_000
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`docker-registry exited while starting:\n${this.logTail()}`)
      const status = await probe(this.port)
      if (status === 200 || status === 401) return
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${this.host} within 15 s:\n${this.logTail()}`)
      await sleep(50)
    }
  }

  portTaken(): boolean {
    return /address already in use/.test(this.logTail())
  }

  logTail(): string {
    try {
      return tail(readFileSync(this.logFile, 'utf8'), 3000)
    } catch {
      return ''
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        if (this.pid > 0 && isAlive(this.pid)) {
          signal(this.pid, 'SIGTERM')
          if (!(await waitGone(this.pid, 5000))) signal(this.pid, 'SIGKILL')
          await waitGone(this.pid, 2000)
        }
        await rm(this.dir, { recursive: true, force: true })
      } finally {
        live.delete(this)
      }
    })()
    return this.stopping
  }

  stopSync(): void {
    if (this.pid > 0 && isAlive(this.pid)) signal(this.pid, 'SIGKILL')
    try {
      rmSync(this.dir, { recursive: true, force: true })
    } catch {
      // best effort in an exit handler
    }
    live.delete(this)
  }
}

function probe(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/v2/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve(0))
    req.on('timeout', () => req.destroy())
    req.end()
  })
}

function cleanupAll(): void {
  for (const r of [...live]) r.stopSync()
}

function installHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  process.on('exit', cleanupAll)
}
