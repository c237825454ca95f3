/**
 * `cairn registry serve|gc|check|purge-uploads|token-server|keygen|htpasswd`: flags and printing only;
 * the registry itself is src/registry.
 */
import { createWriteStream } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { ask, readLine } from './prompt.js'
import type { Writable } from 'node:stream'
import { type Command, Option } from 'commander'
import { CairnError } from '../errors/index.js'
import { humanSize } from '../util/format.js'
import { keepYoungGenerationSmall } from '../util/reclaim.js'
import {
  checkRegistry,
  collectGarbage,
  defaultConfig,
  FilesystemStorage,
  generateSigningKeyPem,
  Htpasswd,
  htpasswdLine,
  loadRegistryConfig,
  parseDuration,
  parseListen,
  parseSize,
  privateKeyFromPem,
  purgeUploads,
  serveFromConfig,
  startTokenServer,
  TokenSigner,
  type CheckReport,
  type GcReport,
  type RegistryConfig,
} from '../registry/index.js'

interface CommonOpts {
  config?: string
  root?: string
}

interface ServeOpts extends CommonOpts {
  listen?: string
  htpasswd?: string
  tlsCert?: string
  tlsKey?: string
  readOnly?: boolean
  token?: boolean
  tokenRealm?: string
  tokenService?: string
  tokenIssuer?: string
  tokenKey?: string
  tokenPublicKey?: string
  anonymousPull?: boolean
  rateLimit?: string
  rateBurst?: string
  accessLog?: string
  gcInterval?: string
  gcGracePeriod?: string
  uploadPurgeAfter?: string
  manifestLimit?: string
  metrics?: boolean
}

function commonOptions(c: Command): Command {
  return c
    .addOption(new Option('-c, --config <file>', 'configuration file (YAML)').env('CAIRN_REGISTRY_CONFIG'))
    .addOption(new Option('--root <dir>', 'storage folder (default: /var/lib/cairn-registry as root, else $XDG_DATA_HOME/cairn-registry)').env('CAIRN_REGISTRY_ROOT'))
}

async function baseConfig(opts: CommonOpts): Promise<RegistryConfig> {
  const cfg = opts.config !== undefined ? await loadRegistryConfig(opts.config) : defaultConfig()
  if (opts.root !== undefined) cfg.root = opts.root
  return cfg
}

function number(v: string, what: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new CairnError('INVALID_ARGUMENT', `${what} must be a positive number (got ${v})`)
  return n
}

/** Flags over the configuration file. */
function applyServeFlags(cfg: RegistryConfig, o: ServeOpts): RegistryConfig {
  if (o.listen !== undefined) {
    parseListen(o.listen, '--listen')
    cfg.listen = o.listen
  }
  if (o.readOnly) cfg.readOnly = true
  if (o.htpasswd !== undefined) cfg.auth.htpasswd = o.htpasswd
  if (o.tlsCert !== undefined || o.tlsKey !== undefined) {
    if (o.tlsCert === undefined || o.tlsKey === undefined) throw new CairnError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together')
    cfg.tls = { cert: o.tlsCert, key: o.tlsKey }
  }
  const tokenFlags = o.token || o.tokenRealm !== undefined || o.tokenService !== undefined || o.tokenIssuer !== undefined ||
    o.tokenKey !== undefined || o.tokenPublicKey !== undefined
  if (tokenFlags) {
    const t = cfg.auth.token ?? { service: 'cairn-registry', issuer: 'cairn-token-server', expirationSeconds: 300 }
    if (o.tokenRealm !== undefined) t.realm = o.tokenRealm
    if (o.tokenService !== undefined) t.service = o.tokenService
    if (o.tokenIssuer !== undefined) t.issuer = o.tokenIssuer
    if (o.tokenKey !== undefined) t.key = o.tokenKey
    if (o.tokenPublicKey !== undefined) t.publicKey = o.tokenPublicKey
    cfg.auth.token = t
  }
  if (o.anonymousPull) cfg.access = { ...cfg.access, anonymousPull: true }
  if (o.rateLimit !== undefined) {
    cfg.rateLimit = { rate: number(o.rateLimit, '--rate-limit') }
    if (o.rateBurst !== undefined) cfg.rateLimit.burst = number(o.rateBurst, '--rate-burst')
  }
  if (o.accessLog !== undefined) cfg.accessLog = o.accessLog
  if (o.gcInterval !== undefined) cfg.gc.intervalMs = parseDuration(o.gcInterval, '--gc-interval')
  if (o.gcGracePeriod !== undefined) cfg.gc.gracePeriodMs = parseDuration(o.gcGracePeriod, '--gc-grace-period')
  if (o.uploadPurgeAfter !== undefined) cfg.uploads.purgeAfterMs = parseDuration(o.uploadPurgeAfter, '--upload-purge-after')
  if (o.manifestLimit !== undefined) cfg.manifestLimit = parseSize(o.manifestLimit, '--manifest-limit')
  if (o.metrics === false) cfg.metrics = false
  return cfg
}

function accessLogSink(dest: string): Writable | undefined {
  if (dest === 'none') return undefined
  if (dest === 'stdout' || dest === '-') return process.stdout
  if (dest === 'stderr') return process.stderr
  return createWriteStream(dest, { flags: 'a' })
}

/** Resolves on the first SIGINT/SIGTERM; a second one ends the process at once. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let seen = false
    const on = (sig: NodeJS.Signals): void => {
      if (seen) process.exit(130)
      seen = true
      resolve(sig)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

function printInternal(err: unknown, context: string): void {
  const msg = err instanceof Error ? (process.env['CAIRN_DEBUG'] && err.stack ? err.stack : err.message) : String(err)
  process.stderr.write(`cairn registry: error (${context}): ${msg}\n`)
}

export function registerRegistryCommands(program: Command): void {
  const registry = program.command('registry').description('Run and maintain an OCI distribution registry')

  commonOptions(
    registry
      .command('serve')
      .description('Serve the OCI distribution API (default: http://127.0.0.1:5000, open, from the default root)')
      .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5000; :5000 for all interfaces)')
      .option('--htpasswd <file>', 'Basic authentication against an htpasswd file (bcrypt entries)')
      .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
      .option('--tls-key <file>', "the certificate's private key (PEM)")
      .option('--read-only', 'refuse every write')
      .option('--token', 'token authentication, issuing tokens at /token (users from --htpasswd)')
      .option('--token-realm <url>', 'where clients get tokens (default: this server\'s /token)')
      .option('--token-service <name>', 'the service name tokens are for (default cairn-registry)')
      .option('--token-issuer <name>', 'the issuer of the tokens (default cairn-token-server)')
      .option('--token-key <file>', 'private key (PEM, EC P-256 or RSA) to sign tokens; default: a fresh key per run')
      .option('--token-public-key <file>', 'only verify tokens signed elsewhere with this key or certificate (needs --token-realm)')
      .option('--anonymous-pull', 'let clients without credentials pull every repository')
      .option('--rate-limit <n>', 'requests per second per client (429 TOOMANYREQUESTS beyond)')
      .option('--rate-burst <n>', 'requests a client may make at once (default 2 × rate)')
      .option('--access-log <dest>', 'stdout (default), stderr, none, or a file (JSON lines)')
      .option('--gc-interval <duration>', 'run gc in the background this often (e.g. 24h; default never)')
      .option('--gc-grace-period <duration>', 'keep unreferenced blobs younger than this (default 1h)')
      .option('--upload-purge-after <duration>', 'remove upload sessions idle this long (default 24h)')
      .option('--manifest-limit <size>', 'largest manifest accepted (default 4MiB)')
      .option('--no-metrics', 'do not serve /metrics'),
  ).action(async (o: ServeOpts) => {
    // a server lives long: its memory stays near what it needs (src/util/reclaim.ts)
    keepYoungGenerationSmall()
    const cfg = applyServeFlags(await baseConfig(o), o)
    const log = accessLogSink(cfg.accessLog)
    const stopped = stopSignal()
    const reg = await serveFromConfig(cfg, {
      ...(log === undefined ? {} : { accessLog: log }),
      onError: printInternal,
    })
    const auth = cfg.auth.token ? 'token' : cfg.auth.htpasswd ? 'basic' : 'none'
    process.stderr.write(`cairn registry: listening on ${reg.url} (root ${cfg.root}, auth ${auth}${cfg.readOnly ? ', read-only' : ''})\n`)
    const sig = await stopped
    process.stderr.write(`cairn registry: ${sig}: finishing requests in flight\n`)
    await reg.close()
    if (log !== undefined && log !== process.stdout && log !== process.stderr) await new Promise<void>((r) => log.end(() => r()))
    process.stderr.write('cairn registry: stopped\n')
  })

  commonOptions(
    registry
      .command('gc')
      .description('Delete blobs no manifest references (safe while the registry serves)')
      .option('--dry-run', 'only report what would be deleted')
      .option('--delete-untagged', 'also delete manifests no tag reaches')
      .option('--grace-period <duration>', 'keep unreferenced blobs younger than this (default: the configuration\'s, 1h)')
      .option('--format <format>', "'json' for the report as JSON"),
  ).action(async (o: CommonOpts & { dryRun?: boolean; deleteUntagged?: boolean; gracePeriod?: string; format?: string }) => {
    const cfg = await baseConfig(o)
    const storage = new FilesystemStorage(cfg.root, { holdTtlMs: cfg.uploads.purgeAfterMs })
    await storage.init()
    const ac = new AbortController()
    const onSig = (): void => ac.abort(new Error('interrupted'))
    process.once('SIGINT', onSig)
    process.once('SIGTERM', onSig)
    const report = await collectGarbage(storage, {
      dryRun: o.dryRun ?? false,
      deleteUntagged: o.deleteUntagged ?? cfg.gc.deleteUntagged,
      gracePeriodMs: o.gracePeriod !== undefined ? parseDuration(o.gracePeriod, '--grace-period') : cfg.gc.gracePeriodMs,
      signal: ac.signal,
    }).finally(() => storage.close())
    process.stdout.write(o.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderGc(report))
  })

  commonOptions(
    registry
      .command('check')
      .description('Find tags without manifests, manifests missing blobs, dangling links and broken uploads (read-only unless --repair)')
      .option('--repair', 'fix what can be fixed without losing anything, and say what was done')
      .option('--format <format>', "'json' for the report as JSON"),
  ).action(async (o: CommonOpts & { repair?: boolean; format?: string }) => {
    const cfg = await baseConfig(o)
    if (o.format !== undefined && o.format !== 'json') throw new CairnError('INVALID_ARGUMENT', `unknown format ${JSON.stringify(o.format)} (only json)`)
    if (!(await isDirectory(`${cfg.root}/repositories`)) && !(await isDirectory(`${cfg.root}/blobs`))) {
      throw new CairnError('INVALID_ARGUMENT', `${cfg.root} is not a registry root (no blobs/ or repositories/ in it)`)
    }
    const storage = new FilesystemStorage(cfg.root, { holdTtlMs: cfg.uploads.purgeAfterMs, readOnly: !o.repair })
    if (o.repair) await storage.init()
    const report = await checkRegistry(storage, { repair: o.repair ?? false }).finally(() => storage.close())
    process.stdout.write(o.format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report))
    // 0: nothing found; 2: problems found (with --repair: all repaired); 3: --repair left some
    if (report.problems.length > 0) process.exitCode = report.remaining > 0 && report.repair ? 3 : 2
  })

  commonOptions(
    registry
      .command('purge-uploads')
      .description('Remove upload sessions idle for longer than a limit')
      .option('--older-than <duration>', 'idle time (default: the configuration\'s, 24h)')
      .option('--dry-run', 'only report'),
  ).action(async (o: CommonOpts & { olderThan?: string; dryRun?: boolean }) => {
    const cfg = await baseConfig(o)
    const storage = new FilesystemStorage(cfg.root, { holdTtlMs: cfg.uploads.purgeAfterMs })
    await storage.init()
    const r = await purgeUploads(storage, {
      olderThanMs: o.olderThan !== undefined ? parseDuration(o.olderThan, '--older-than') : cfg.uploads.purgeAfterMs,
      dryRun: o.dryRun ?? false,
    }).finally(() => storage.close())
    for (const u of r.uploads) process.stdout.write(`${o.dryRun ? 'Would remove' : 'Removed'} upload ${u.id} (${u.repository}, ${humanSize(u.offset)}, idle since ${u.updatedAt})\n`)
    process.stdout.write(`${r.purged} upload${r.purged === 1 ? '' : 's'}, ${humanSize(r.bytes)}\n`)
  })

  registry
    .command('token-server')
    .description('Serve only the token endpoint (/token) for a registry using token authentication')
    .addOption(new Option('-c, --config <file>', 'configuration file (YAML): auth.token, auth.htpasswd, access, tokenServer.listen').env('CAIRN_REGISTRY_CONFIG'))
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:5001)')
    .option('--htpasswd <file>', 'users and their bcrypt passwords')
    .option('--token-key <file>', 'private key (PEM) that signs the tokens (required)')
    .option('--token-service <name>', 'the registry\'s service name (default cairn-registry)')
    .option('--token-issuer <name>', 'the issuer name (default cairn-token-server)')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', "the certificate's private key (PEM)")
    .option('--anonymous-pull', 'anonymous clients get pull tokens for every repository')
    .option('--access-log <dest>', 'stdout (default), stderr, none, or a file')
    .action(async (o: ServeOpts) => {
      const { listen: listenFlag, ...rest } = o
      const cfg = applyServeFlags(o.config !== undefined ? await loadRegistryConfig(o.config) : defaultConfig(), { ...rest, token: true })
      const listen = parseListen(listenFlag ?? cfg.tokenServerListen, '--listen')
      const t = cfg.auth.token
      if (t?.key === undefined) throw new CairnError('INVALID_ARGUMENT', 'the token server needs a signing key: --token-key FILE (cairn registry keygen makes one)')
      const signer = new TokenSigner(privateKeyFromPem(await readFile(t.key)), t.issuer)
      const log = accessLogSink(cfg.accessLog)
      const stopped = stopSignal()
      const srv = await startTokenServer({
        host: listen.host,
        port: listen.port,
        signer,
        service: t.service,
        ttlSeconds: t.expirationSeconds,
        access: cfg.access,
        ...(cfg.auth.htpasswd === undefined ? {} : { htpasswd: await Htpasswd.load(cfg.auth.htpasswd) }),
        ...(cfg.tls ? { tls: { cert: await readFile(cfg.tls.cert), key: await readFile(cfg.tls.key) } } : {}),
        ...(log === undefined ? {} : { accessLog: log }),
      })
      process.stderr.write(`cairn registry token-server: listening on ${srv.url}, realm ${srv.realm}, service ${t.service}\n`)
      await stopped
      await srv.close()
    })

  registry
    .command('keygen')
    .description('Make a private key (PEM) to sign tokens with')
    .option('--type <type>', 'ec (P-256, ES256; default) or rsa (2048 bits, RS256)', 'ec')
    .option('-o, --output <file>', 'write it here (mode 0600) instead of standard output')
    .action(async (o: { type: string; output?: string }) => {
      if (o.type !== 'ec' && o.type !== 'rsa') throw new CairnError('INVALID_ARGUMENT', `--type must be ec or rsa (got ${o.type})`)
      const pem = generateSigningKeyPem(o.type)
      if (o.output !== undefined) await writeFile(o.output, pem, { mode: 0o600, flag: 'wx' })
      else process.stdout.write(pem)
    })

  registry
    .command('htpasswd')
    .description('Print an htpasswd line (bcrypt) for USER; the password is asked for without echo on a terminal, else read from standard input')
    .argument('<user>', 'user name')
    .option('--cost <n>', 'bcrypt cost (default 10)', '10')
    .action(async (user: string, o: { cost: string }) => {
      const cost = Number(o.cost)
      if (!Number.isInteger(cost) || cost < 4 || cost > 31) throw new CairnError('INVALID_ARGUMENT', '--cost must be an integer from 4 to 31')
      // on a terminal: asked twice, not echoed (as htpasswd does); else the first line of standard input
      let password: string | undefined
      if (process.stdin.isTTY) {
        password = await ask('New password: ', { hidden: true, out: process.stderr })
        if ((await ask('Re-type new password: ', { hidden: true, out: process.stderr })) !== password) throw new CairnError('INVALID_ARGUMENT', 'password verification error')
      } else {
        password = await readLine(process.stdin)
      }
      if (password === undefined || password === '') throw new CairnError('INVALID_ARGUMENT', 'no password given')
      process.stdout.write(`${await htpasswdLine(user, password, cost)}\n`)
    })
}

function renderGc(r: GcReport): string {
  const verb = r.dryRun ? 'Would delete' : 'Deleted'
  const lines: string[] = []
  for (const m of r.manifestsDeleted) lines.push(`${verb} manifest ${m.repository}@${m.digest}`)
  lines.push(
    `${r.repositories} repositories, ${r.manifests} manifests, ${r.blobs} blobs (${r.blobsMarked} referenced, ${r.blobsFresh} unreferenced but within the grace period)`,
  )
  lines.push(`${verb} ${r.manifestsDeleted.length} untagged manifest${r.manifestsDeleted.length === 1 ? '' : 's'} and ${r.blobsDeleted} blob${r.blobsDeleted === 1 ? '' : 's'}, ${humanSize(r.bytesFreed)}`)
  const kept = r.blobsHeld + r.blobsInUse
  if (kept > 0) lines.push(`${kept} unreferenced blob${kept === 1 ? '' : 's'} kept for pushes in progress`)
  if (r.manifestsHeld > 0) lines.push(`${r.manifestsHeld} untagged manifest${r.manifestsHeld === 1 ? '' : 's'} kept for pushes in progress`)
  if (r.linksRemoved > 0) lines.push(`${r.linksRemoved} link${r.linksRemoved === 1 ? '' : 's'} to deleted blobs removed`)
  if (r.holdsExpired > 0) lines.push(`${r.holdsExpired} hold${r.holdsExpired === 1 ? '' : 's'} of abandoned pushes removed`)
  lines.push(`took ${(r.durationMs / 1000).toFixed(2)}s`)
  return `${lines.join('\n')}\n`
}

function renderCheck(r: CheckReport): string {
  const lines: string[] = []
  for (const p of r.problems) {
    lines.push(`${p.kind}: ${p.message}`)
    if (p.repaired === true) lines.push(`  repaired: ${p.action ?? ''}`)
    else if (p.repaired === false) lines.push(`  not repaired: ${p.action ?? ''}`)
  }
  const scope = `${r.repositories} repositor${r.repositories === 1 ? 'y' : 'ies'}, ${r.tags} tag${r.tags === 1 ? '' : 's'}, ${r.manifests} manifest${r.manifests === 1 ? '' : 's'}, ${r.links} link${r.links === 1 ? '' : 's'}, ${r.uploads} upload${r.uploads === 1 ? '' : 's'}`
  const n = r.problems.length
  if (n === 0) lines.push(`No problems found (${scope})`)
  else if (r.repair) lines.push(`${n} problem${n === 1 ? '' : 's'} found (${scope}): ${r.repaired} repaired, ${r.remaining} left`)
  else lines.push(`${n} problem${n === 1 ? '' : 's'} found (${scope}); --repair fixes what can be fixed`)
  return `${lines.join('\n')}\n`
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false
}
