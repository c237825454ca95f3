/** `login`, `logout`, `push`, `pull`: printing only. */
import type { Command } from 'commander'
import { CairnError } from '../errors/index.js'
import { login, logout, storedCredentials, checkCredentials, DEFAULT_LOGIN_SERVER } from '../api/login.js'
import { pushImage } from '../api/push.js'
import { pullImage } from '../api/pull.js'
import { normalizeServer } from '../remote/config.js'
import { interruptSignal, withStore } from './context.js'
import { ProgressRenderer } from './progress.js'
import { ask, readAll } from './prompt.js'

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
        if (username === undefined) username = (await ask('Username: ')).trim()
        if (password === undefined) password = await ask('Password: ', { hidden: true })
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
          const renderer = opts.quiet ? undefined : new ProgressRenderer(process.stdout, { totals: true })
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
          const renderer = opts.quiet ? undefined : new ProgressRenderer(process.stdout, { totals: true })
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
