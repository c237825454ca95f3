/** `login`, `logout`, `push`, `pull`: printing only. */
import { createInterface } from 'node:readline'
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import type { ProgressEvent } from '../api/events.js'
import { login, logout, storedCredentials, checkCredentials, DEFAULT_LOGIN_SERVER } from '../api/login.js'
import { pushImage } from '../api/push.js'
import { pullImage } from '../api/pull.js'
import { normalizeServer } from '../remote/config.js'
import { humanSize } from '../util/format.js'
import { interruptSignal, withStore } from './context.js'
import { progressBar } from './progress.js'

const PAT_SUGGESTION = 'Logging in with your password grants your terminal complete access to your account. \n' +
  'For better security, log in with a limited-privilege personal access token. Learn more at https://docs.docker.com/go/access-tokens/'

export function registerRemoteCommands(program: Command): void {
  program
    .command('login')
    .description('Log in to a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password')
    .option('--password-stdin', 'take the password from stdin')
    .action(async (server: string | undefined, opts: { username?: string; password?: string; passwordStdin?: boolean }) => {
      if (opts.password !== undefined && opts.passwordStdin) throw new CairnError('INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive')
      if (opts.passwordStdin && opts.username === undefined) throw new CairnError('INVALID_ARGUMENT', 'Must provide --username with --password-stdin')
      if (opts.password !== undefined) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n')
      const signal = interruptSignal()
      const target = server ?? DEFAULT_LOGIN_SERVER
      if (opts.username === undefined && opts.password === undefined && !opts.passwordStdin) {
        // Docker: try what is stored first
        const existing = await storedCredentials(target).catch(() => undefined)
        if (existing) {
          process.stdout.write('Authenticating with existing credentials...\n')
          try {
            await checkCredentials(normalizeServer(target), existing, { signal })
            process.stdout.write('Login Succeeded\n')
            return
          } catch (err) {
            process.stderr.write(`Login did not succeed, error: ${(err as Error).message}\n`)
          }
        }
      }
      let username = opts.username
      let password = opts.password
      if (opts.passwordStdin) password = (await readAll(process.stdin)).replace(/\r?\n$/, '')
      if (username === undefined || password === undefined) {
        if (!process.stdin.isTTY) throw new CairnError('INVALID_ARGUMENT', 'Cannot perform an interactive login from a non TTY device')
        if (normalizeServer(target) === 'docker.io' && username === undefined) {
          process.stdout.write("Login with your Docker ID to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com to create one.\n")
        }
        if (username === undefined) username = (await prompt('Username: ', false)).trim()
        if (password === undefined) password = await prompt('Password: ', true)
      }
      const res = await login(target, { username, password }, { signal })
      if (!res.helper) {
        process.stderr.write(`WARNING! Your password will be stored unencrypted in ${res.configPath}.\n` +
          'Configure a credential helper to remove this warning. See\n' +
          'https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n\n')
      }
      process.stdout.write(`Login Succeeded\n\n${PAT_SUGGESTION}\n`)
    })

  program
    .command('logout')
    .description('Log out from a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .action(async (server: string | undefined) => {
      const res = await logout(server)
      if (res.removed) process.stdout.write(`Removing login credentials for ${res.serverKey}\n`)
      else process.stdout.write(`Not logged in to ${res.serverKey}\n`)
    })

  const image = program.commands.find((c) => c.name() === 'image')
  for (const parent of image ? [program, image] : [program]) {
    parent
      .command('push')
      .description('Push an image or a repository to a registry')
      .argument('<name>', 'NAME[:TAG]')
      .option('-a, --all-tags', 'push all tags of the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .option('--compression <type>', 'how uncompressed layers are compressed for the registry: gzip or zstd', 'gzip')
      .action(async (name: string, opts: { allTags?: boolean; quiet?: boolean; compression: string }, cmd: Command) => {
        if (opts.compression !== 'gzip' && opts.compression !== 'zstd') throw new CairnError('INVALID_ARGUMENT', `unknown compression ${JSON.stringify(opts.compression)} (gzip or zstd)`)
        const compression = opts.compression
        await withStore(cmd, async (store) => {
          const renderer = opts.quiet ? undefined : new TransferRenderer(process.stdout)
          try {
            const res = await pushImage(store, name, {
              allTags: opts.allTags ?? false, compression, signal: interruptSignal(),
              ...(renderer ? { onProgress: renderer.onProgress } : {}),
            })
            renderer?.finish()
            if (opts.quiet) for (const t of res.tags) process.stdout.write(`${res.repository}:${t.tag}\n`)
          } finally {
            renderer?.finish()
          }
        })
      })

    parent
      .command('pull')
      .description('Download an image from a registry')
      .argument('<name>', 'NAME[:TAG|@DIGEST]')
      .option('-a, --all-tags', 'download all tagged images in the repository')
      .option('-q, --quiet', 'suppress verbose output')
      .option('--platform <os/arch[/variant]>', 'set platform if server is multi-platform capable')
      .action(async (name: string, opts: { allTags?: boolean; quiet?: boolean; platform?: string }, cmd: Command) => {
        await withStore(cmd, async (store) => {
          const renderer = opts.quiet ? undefined : new TransferRenderer(process.stdout)
          try {
            const res = await pullImage(store, name, {
              allTags: opts.allTags ?? false, signal: interruptSignal(),
              ...(opts.platform !== undefined ? { platform: opts.platform } : {}),
              ...(renderer ? { onProgress: renderer.onProgress } : {}),
            })
            renderer?.finish()
            if (opts.allTags) {
              const first = res[0]
              if (first) process.stdout.write(`${first.reference.replace(/[:@][^/]*$/, '')}\n`)
            } else {
              for (const r of res) process.stdout.write(`${r.reference}\n`)
            }
          } finally {
            renderer?.finish()
          }
        })
      })
  }
}

/**
 * Docker's transfer display. On a terminal: one line per layer, updated in place with a bar, and
 * a last line with the overall total, rate and ETA. Elsewhere: a plain line each time a layer's
 * status changes (never per byte).
 */
export class TransferRenderer {
  private readonly keys: string[] = []
  private readonly drawn = new Map<string, { status: string; at: number }>()
  private readonly last = new Map<string, string>()
  private readonly bytes = new Map<string, { current: number; total: number }>()
  private footerShown = false
  private lastFooter = 0
  private readonly started = Date.now()
  private anonymous = 0
  private finished = false

  constructor(private readonly out: NodeJS.WriteStream, private readonly tty = out.isTTY === true) {}

  readonly onProgress = (e: ProgressEvent): void => {
    if (this.finished) return
    this.track(e)
    if (!this.tty) {
      if (e.id === '' || this.last.get(e.id) !== e.status) {
        if (e.id !== '') this.last.set(e.id, e.status)
        this.out.write(`${e.id ? `${e.id}: ` : ''}${e.status}\n`)
      }
      return
    }
    const key = e.id === '' ? `#${this.anonymous++}` : e.id
    // byte counts arrive per network chunk: redraw a line at most every 50 ms while its status holds
    const now = Date.now()
    const prev = this.drawn.get(key)
    if (prev && prev.status === e.status && e.current !== undefined && e.total !== undefined && e.current < e.total && now - prev.at < 50) return
    this.drawn.set(key, { status: e.status, at: now })
    const text = format(e)
    const idx = this.keys.indexOf(key)
    if (idx < 0) {
      if (this.footerShown) this.out.write('\x1b[1A\x1b[2K\r')
      this.out.write(`${text}\n`)
      this.keys.push(key)
      if (this.footerShown) this.out.write(`${this.footer()}\n`)
    } else {
      const up = this.keys.length - idx + (this.footerShown ? 1 : 0)
      this.out.write(`\x1b[${up}A\x1b[2K\r${text}\x1b[${up}B\r`)
    }
    if (e.current !== undefined && Date.now() - this.lastFooter > 100) this.drawFooter()
  }

  /** Final totals (on a terminal). */
  finish(): void {
    if (this.finished) return
    if (this.tty && this.footerShown) this.drawFooter()
    this.finished = true
  }

  private track(e: ProgressEvent): void {
    if (e.id === '') return
    if (e.current !== undefined && e.total !== undefined && (e.status === 'Downloading' || e.status === 'Pushing')) {
      this.bytes.set(e.id, { current: e.current, total: e.total })
    } else if (['Pushed', 'Download complete', 'Pull complete', 'Layer already exists'].includes(e.status) || e.status.startsWith('Mounted from')) {
      const b = this.bytes.get(e.id)
      if (b) b.current = b.total
    }
  }

  private footer(): string {
    let current = 0
    let total = 0
    for (const b of this.bytes.values()) {
      current += b.current
      total += b.total
    }
    const secs = (Date.now() - this.started) / 1000
    const rate = secs > 0 ? current / secs : 0
    const eta = rate > 0 && total > current ? `  ETA ${formatSeconds((total - current) / rate)}` : ''
    return `Total: ${humanSize(current)}/${humanSize(total)}  ${humanSize(rate)}/s${eta}`
  }

  private drawFooter(): void {
    if (this.bytes.size === 0) return
    this.lastFooter = Date.now()
    if (this.footerShown) this.out.write(`\x1b[1A\x1b[2K\r${this.footer()}\n`)
    else {
      this.out.write(`${this.footer()}\n`)
      this.footerShown = true
    }
  }
}

function format(e: ProgressEvent): string {
  const prefix = e.id ? `${e.id}: ` : ''
  if (e.current !== undefined && e.total !== undefined && e.current < e.total) return `${prefix}${e.status}  ${progressBar(e.current, e.total)}`
  return `${prefix}${e.status}`
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`
  const m = Math.floor(s / 60)
  return `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string))
  return Buffer.concat(chunks).toString('utf8')
}

/** Asks on the terminal; `hidden` keeps the answer from being echoed. */
async function prompt(question: string, hidden: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true })
  if (hidden) {
    const rlw = rl as unknown as { _writeToOutput: (s: string) => void }
    rlw._writeToOutput = (s: string) => {
      if (s.includes(question)) process.stdout.write(question)
    }
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve))
  } finally {
    if (hidden) process.stdout.write('\n')
    rl.close()
  }
}

