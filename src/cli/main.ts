#!/usr/bin/env node
/**
 * The `cairn` command: parses arguments, calls the library, prints. Nothing else lives here.
 */
import { realpathSync } from 'node:fs'
import { Command, CommanderError, Option } from 'commander'
import { printError } from './errors.js'

/** Exit codes: Docker uses 1 for a failed operation and 125 for a usage error. */
export const ExitCodes = { failure: 1, usage: 125 } as const

/** Registers a module's commands (`word`: the command line's command word, which some register alone). */
type Register = (program: Command, word?: string) => void

/** Command modules, loaded only when the command line needs them (start-up time matters for a CLI). */
const Modules = {
  images: async (): Promise<Register> => (await import('./images.js')).registerImageCommands,
  transfer: async (): Promise<Register> => (await import('./transfer.js')).registerTransferCommands,
  containers: async (): Promise<Register> => (await import('./containers.js')).registerContainerCommands,
  commit: async (): Promise<Register> => (await import('./commit.js')).registerCommitCommand,
  registry: async (): Promise<Register> => (await import('./registry.js')).registerRegistryCommands,
  remote: async (): Promise<Register> => (await import('./remote.js')).registerRemoteCommands,
  system: async (): Promise<Register> => (await import('./system.js')).registerSystemCommands,
  network: async (): Promise<Register> => (await import('./network.js')).registerNetworkCommands,
  volume: async (): Promise<Register> => (await import('./volume.js')).registerVolumeCommands,
  build: async (): Promise<Register> => (await import('./build.js')).registerBuildCommands,
} as const
type ModuleName = keyof typeof Modules
const ALL = Object.keys(Modules) as ModuleName[]

const CONTAINER_VERBS = ['create', 'run', 'start', 'stop', 'kill', 'pause', 'unpause', 'exec', 'logs', 'ps', 'rm', 'rename', 'cp', 'diff', 'export', 'port', 'attach', 'wait', 'update', 'stats', 'top']
/** Which modules a top-level command needs; anything else (help, `image`, `container`) loads them all. */
const NEEDS: Record<string, ModuleName[]> = {
  images: ['images'], tag: ['images'], rmi: ['images'], inspect: ['images'], history: ['images'],
  system: ['system'], info: ['system'], version: ['system'], events: ['system'], network: ['network'], volume: ['volume'],
  import: ['images', 'transfer'], save: ['images', 'transfer'], load: ['images', 'transfer'],
  commit: ['containers', 'commit'],
  registry: ['registry'],
  login: ['remote'], logout: ['remote'], push: ['remote'], pull: ['remote'],
  build: ['build'], builder: ['build'],
  ...Object.fromEntries(CONTAINER_VERBS.map((v) => [v, ['containers'] as ModuleName[]])),
}

/** Commands that stream layers: read from a registry or an archive (pull, load, and run, create and build, which may pull), or compressed for one (push). */
const STREAMING = new Set(['pull', 'push', 'load', 'run', 'create', 'build', 'image', 'container'])

/** The command word of a command line (skipping global options and their values). */
function commandWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--root') {
      i++
      continue
    }
    if (a.startsWith('-')) continue
    return a
  }
  return undefined
}

export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('cairn')
  program
    .description('Cairn: container images as stacks of content-addressed layers')
    .version(process.env['npm_package_version'] ?? '0.1.0', '-v, --version')
    .addOption(new Option('--root <dir>', 'the store (default: /var/lib/cairn as root, else $XDG_DATA_HOME/cairn)').env('CAIRN_ROOT'))
    .showHelpAfterError(false)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) })
  const word = commandWord(argv)
  // a container monitor starts loading now, while this command loads
  if (word === 'run') (await import('./standby.js')).startStandbyFor(argv, word)
  const versionOnly = word === undefined && (argv.includes('-v') || argv.includes('--version'))
  const needed = versionOnly ? [] : ((word !== undefined ? NEEDS[word] : undefined) ?? ALL)
  for (const name of ALL) if (needed.includes(name)) (await Modules[name]())(program, word)
  return program
}

/** Applies Docker's conventions to every (sub)command: usage errors exit 125. */
function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride()
  for (const c of cmd.commands) exitOverrideAll(c)
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv)
  exitOverrideAll(program)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return process.exitCode === undefined ? 0 : Number(process.exitCode)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0
      return ExitCodes.usage
    }
    // a template error (cli/template.ts's FormatError): Docker's own words, its exit code
    if (err instanceof Error && err.name === 'FormatError' && typeof (err as { exitCode?: unknown }).exitCode === 'number') {
      process.stderr.write(`${err.message}\n`)
      return (err as unknown as { exitCode: number }).exitCode
    }
    printError(err)
    return ExitCodes.failure
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${realpathSync(process.argv[1])}`).href
if (isMain) {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
  })
  let settled = false
  // an operation whose promise can never settle would otherwise end the process with status 0
  process.on('beforeExit', () => {
    if (!settled) {
      process.stderr.write('Error: internal error: the operation stalled before it finished\n')
      process.exit(70)
    }
  })
  // a command that streams layers keeps the buffers they pass through collected (util/reclaim.ts)
  const word = commandWord(process.argv.slice(2))
  const ready = word !== undefined && STREAMING.has(word) ? import('../util/reclaim.js').then((m) => m.collectWhileStreaming()) : Promise.resolve()
  ready.then(() => main(process.argv.slice(2))).then(
    (code) => {
      settled = true
      process.exitCode = code
    },
    (err: unknown) => {
      settled = true
      printError(err)
      process.exitCode = ExitCodes.failure
    },
  )
}
