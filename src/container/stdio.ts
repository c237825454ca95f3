/**
 * Process I/O behind one type, for a container's first process and for `exec` alike.
 *
 * Two sides:
 * - `Stdio` is what a caller attaches: streams to read the process's output into and (with `-i`)
 *   one to feed its input from, and for a terminal its size and later sizes. The CLI builds one
 *   from its own terminal; the Engine API from a hijacked HTTP connection. The engine never
 *   touches its own process's stdin or stdout.
 * - `ChildIO` is what runs: the OCI runtime in the foreground, with pipes, or with a real
 *   pseudo-terminal that can be resized.
 *
 * Why node-pty (the prebuilt `@lydell/node-pty` build, Node-API, so one binary for Node.js 20, 22
 * and 24) and not the runtime's `--console-socket`: runc and crun hand the container's pty master
 * over a unix socket with SCM_RIGHTS, which Node.js cannot receive without a native addon of our
 * own (a compiler at install, and a second binary to keep for each Node.js line). Run in the
 * foreground with `terminal: true` and no console socket, both runtimes instead make the pty
 * themselves and copy between it and their own standard streams, put those in raw mode, and pass
 * on each SIGWINCH's window size. Giving the runtime a pty of ours as its standard streams (what
 * node-pty does) thus yields a terminal whose size we set (TIOCSWINSZ on our master: the kernel
 * sends SIGWINCH to the runtime, which resizes the container's). It replaces script(1), which gave
 * the runtime a terminal that could not be resized.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import type { Readable, Writable } from 'node:stream'
import { CairnError } from '../errors/index.js'

export interface TerminalSize {
  cols: number
  rows: number
}

/** What a caller attaches to a process. */
export interface Stdio {
  /** What the process reads (only when it keeps stdin open); its end closes the process's stdin. */
  stdin?: Readable
  /** Where its output goes (with a terminal, all of it). */
  stdout?: Writable
  /** Where its standard error goes (not with a terminal). */
  stderr?: Writable
  /** With a terminal: its size at the start. */
  size?: TerminalSize
  /** With a terminal: subscribes to later sizes; returns the unsubscriber. */
  onResize?: (listener: (size: TerminalSize) => void) => () => void
  /**
   * The caller's key sequence that detaches it from the process (Docker's `ctrl-p,ctrl-q`), as
   * bytes; the process goes on. Empty: none.
   */
  detachKeys?: Buffer
}

/** How an attached caller's session ended. */
export interface AttachOutcome {
  /** The process's exit code, when it ended while attached. */
  exitCode?: number
  /** The caller detached (its detach keys, or it went away) while the process runs on. */
  detached: boolean
}

/** A process as it runs: its input, its output, its size, its end. */
export interface ChildIO {
  readonly pid: number
  readonly tty: boolean
  write(data: Buffer): void
  /** Ends its standard input (with a terminal: nothing to close; sends nothing). */
  endInput(): void
  onOutput(listener: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): void
  resize(size: TerminalSize): void
  /** Its exit code (128 + signal when killed). */
  readonly exited: Promise<number>
  kill(signal?: NodeJS.Signals): void
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }

interface PtyModule {
  spawn(file: string, args: string[], opts: { cols: number; rows: number; cwd: string; env: Record<string, string>; encoding: null; name: string }): {
    pid: number
    write(data: Buffer | string): void
    resize(cols: number, rows: number): void
    kill(signal?: string): void
    onData(l: (d: Buffer | string) => void): unknown
    onExit(l: (e: { exitCode: number; signal?: number }) => void): unknown
  }
}

let ptyModule: PtyModule | undefined

function loadPty(): PtyModule {
  if (!ptyModule) {
    try {
      ptyModule = createRequire(import.meta.url)('@lydell/node-pty') as PtyModule
    } catch (err) {
      throw new CairnError('NOT_SUPPORTED', `terminals need the package @lydell/node-pty: ${(err as Error).message}`, { cause: err })
    }
  }
  return ptyModule
}

export interface SpawnOptions {
  tty: boolean
  /** With a terminal: its first size (default 80×24). */
  size?: TerminalSize
  /** Without a terminal: whether the process gets a stdin pipe (else /dev/null). */
  stdin?: boolean
  env?: NodeJS.ProcessEnv
}

/** Starts `file args` with pipes or a pseudo-terminal, as one `ChildIO`. */
export function spawnProcess(file: string, args: string[], opts: SpawnOptions): ChildIO {
  const env = opts.env ?? process.env
  if (opts.tty) return spawnPty(file, args, opts.size ?? { cols: 80, rows: 24 }, env)
  return spawnPipes(file, args, opts.stdin ?? false, env)
}

function spawnPipes(file: string, args: string[], stdin: boolean, env: NodeJS.ProcessEnv): ChildIO {
  const child: ChildProcess = spawn(file, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env })
  child.stdin?.on('error', () => undefined)
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => resolve(125))
    child.once('close', (code, sig) => resolve(code ?? 128 + (sig ? SIGNAL_NUMBERS[sig] ?? 0 : 0)))
  })
  return {
    get pid() {
      return child.pid ?? 0
    },
    tty: false,
    write: (d) => {
      if (child.stdin && !child.stdin.writableEnded) child.stdin.write(d)
    },
    endInput: () => child.stdin?.end(),
    onOutput: (l) => {
      child.stdout?.on('data', (b: Buffer) => l('stdout', b))
      child.stderr?.on('data', (b: Buffer) => l('stderr', b))
    },
    resize: () => undefined,
    exited,
    kill: (s) => {
      child.kill(s ?? 'SIGTERM')
    },
  }
}

function spawnPty(file: string, args: string[], size: TerminalSize, env: NodeJS.ProcessEnv): ChildIO {
  const pty = loadPty()
  const clean: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v
  const p = pty.spawn(file, args, { cols: size.cols, rows: size.rows, cwd: '/', env: clean, encoding: null, name: 'xterm' })
  const listeners: ((s: 'stdout' | 'stderr', c: Buffer) => void)[] = []
  const early: Buffer[] = []
  let ended = false
  p.onData((d) => {
    const b = typeof d === 'string' ? Buffer.from(d) : d
    if (listeners.length === 0) early.push(b)
    for (const l of listeners) l('stdout', b)
  })
  const exited = new Promise<number>((resolve) => {
    p.onExit((e) => {
      ended = true
      resolve(e.signal !== undefined && e.signal > 0 ? 128 + e.signal : e.exitCode)
    })
  })
  return {
    pid: p.pid,
    tty: true,
    write: (d) => {
      if (!ended) p.write(d)
    },
    endInput: () => undefined,
    onOutput: (l) => {
      listeners.push(l)
      for (const b of early.splice(0)) l('stdout', b)
    },
    resize: (s) => {
      if (!ended) {
        try {
          p.resize(Math.max(1, s.cols), Math.max(1, s.rows))
        } catch {
          // the pty closed meanwhile
        }
      }
    },
    exited,
    kill: (s) => {
      if (!ended) p.kill(s ?? 'SIGTERM')
    },
  }
}

const KEY_NAMES: Record<string, number> = { 'ctrl-@': 0, 'ctrl-[': 27, 'ctrl-\\': 28, 'ctrl-]': 29, 'ctrl-^': 30, 'ctrl-_': 31 }

/** Docker's default detach keys. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q'

/**
 * Docker's `--detach-keys` syntax: comma-separated single characters or `ctrl-<value>` (a letter,
 * `@`, `[`, `\`, `]`, `^`, `_`), as the bytes they send. Empty means no detach keys.
 */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0)
  const out: number[] = []
  for (const key of spec.split(',')) {
    const k = key.toLowerCase()
    if (key.length === 1) out.push(key.charCodeAt(0))
    else if (/^ctrl-[a-z]$/.test(k)) out.push(k.charCodeAt(5) - 96)
    else if (k in KEY_NAMES) out.push(KEY_NAMES[k] as number)
    else throw new CairnError('INVALID_ARGUMENT', `Unknown character: '${key}'`)
  }
  return Buffer.from(out)
}

/**
 * Watches input for the detach sequence: `feed` returns the bytes to pass on (a partial match is
 * held back until it either completes, then `detached` is true, or breaks, then it is passed on).
 */
export class DetachKeyWatcher {
  private held: number[] = []
  detached = false

  constructor(private readonly keys: Buffer) {}

  feed(chunk: Buffer): Buffer {
    if (this.keys.length === 0 || this.detached) return chunk
    const out: number[] = []
    for (const byte of chunk) {
      if (this.detached) break
      if (byte === this.keys[this.held.length]) {
        this.held.push(byte)
        if (this.held.length === this.keys.length) {
          this.detached = true
          this.held = []
        }
      } else {
        out.push(...this.held)
        this.held = []
        if (byte === this.keys[0]) this.held.push(byte)
        else out.push(byte)
      }
    }
    return Buffer.from(out)
  }
}

/**
 * Joins a caller's streams to a process that is this one's child (an exec): output to the
 * caller, its input (less the detach keys) to the process, its sizes to the terminal. Ends
 * with the exit code, or when the caller detaches (the process runs on).
 */
export function connectChild(child: ChildIO, stdio: Stdio): Promise<AttachOutcome> {
  child.onOutput((stream, chunk) => {
    const out = stream === 'stdout' || child.tty ? stdio.stdout : stdio.stderr
    out?.write(chunk)
  })
  const unsubscribe = stdio.onResize?.((s) => child.resize(s))
  const input = stdio.stdin
  const watcher = new DetachKeyWatcher(stdio.detachKeys ?? Buffer.alloc(0))
  return new Promise<AttachOutcome>((resolve) => {
    let settled = false
    const finish = (o: AttachOutcome): void => {
      if (settled) return
      settled = true
      unsubscribe?.()
      if (input) {
        input.off('data', onInput)
        input.off('end', onEnd)
      }
      resolve(o)
    }
    const onInput = (b: Buffer | string): void => {
      const data = watcher.feed(typeof b === 'string' ? Buffer.from(b) : b)
      if (data.length > 0) child.write(data)
      if (watcher.detached) finish({ detached: true })
    }
    const onEnd = (): void => child.endInput()
    if (input) {
      input.on('data', onInput)
      input.once('end', onEnd)
      // a stream paused explicitly (a hijacked socket whose request body was read off it first)
      // stays paused when a 'data' listener comes: without this, the keys typed never arrive
      input.resume()
    }
    void child.exited.then((code) => finish({ exitCode: code, detached: false }))
  })
}
