/**
 * The attach socket a container's monitor serves (as conmon does for Podman): a unix socket per
 * running container, under /run, through which any number of callers (the CLI's `run`, `start -a`
 * and `attach`, the Engine API's hijacked connections) receive the output, send input and resize
 * the terminal, whichever process started the container and however long ago.
 *
 * A connection begins with one JSON line, the caller's header: `{"stdin":true,"stdout":true,
 * "stderr":true,"size":{"cols":80,"rows":24}}` to attach, or `{"resize":{"cols":…,"rows":…}}`
 * alone to resize. After it, both ways carry stdcopy frames (util/stdcopy.ts): towards the
 * monitor stdin data, `stdinEnd` and `resize`; back, stdout and stderr (with a terminal, all is
 * stdout), and last `exit` with the exit code before the monitor closes the connection.
 */
import { chmod, mkdir, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { CairnError } from '../errors/index.js'
import { encodeFrame, exitFrame, FrameDecoder, FrameTypes, resizeFrame } from '../util/stdcopy.js'
import { DetachKeyWatcher, type AttachOutcome, type ChildIO, type Stdio, type TerminalSize } from './stdio.js'

/** A caller's first line. */
export interface AttachHeader {
  stdin?: boolean
  stdout?: boolean
  stderr?: boolean
  size?: TerminalSize
  /** Only a resize: the connection carries nothing else. */
  resize?: TerminalSize
}

interface Client {
  socket: Socket
  header: AttachHeader
  /** The run of the process it joined (a restart policy runs it again). */
  run: number
}

/** A connection holding more unsent output than this (a caller that stopped reading) is dropped. */
const MAX_BACKLOG = 16 << 20

function validSize(s: unknown): TerminalSize | undefined {
  if (typeof s !== 'object' || s === null) return undefined
  const { cols, rows } = s as { cols?: unknown; rows?: unknown }
  if (typeof cols !== 'number' || typeof rows !== 'number' || !(cols > 0) || !(rows > 0)) return undefined
  return { cols: Math.min(65535, Math.trunc(cols)), rows: Math.min(65535, Math.trunc(rows)) }
}

/** The monitor's side. */
export class AttachServer {
  private server: Server | undefined
  private readonly clients = new Set<Client>()
  private child: ChildIO | undefined
  private pendingInput: Buffer[] = []
  private inputEnded = false
  private attachedCount = 0
  private waiters: (() => void)[] = []
  /** The first size a caller gave (the terminal starts with it). */
  size: TerminalSize | undefined
  private finished = false
  private run = 0

  constructor(
    readonly path: string,
    private readonly opts: { openStdin: boolean; stdinOnce: boolean },
  ) {}

  async listen(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
    await rm(this.path, { force: true })
    const server = createServer((s) => this.accept(s))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.path, () => resolve())
    })
    server.on('error', () => undefined)
    await chmod(this.path, 0o600)
    this.server = server
  }

  /** Resolves once `n` callers attached (or after `timeoutMs`). */
  async waitForAttach(n: number, timeoutMs: number): Promise<void> {
    if (this.attachedCount >= n) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      const check = (): void => {
        if (this.attachedCount >= n) {
          clearTimeout(timer)
          resolve()
        } else this.waiters.push(check)
      }
      this.waiters.push(check)
    })
  }

  private accept(socket: Socket): void {
    socket.on('error', () => undefined)
    let head = ''
    let decoder: FrameDecoder | undefined
    let client: Client | undefined
    const onFrames = (chunk: Buffer): void => {
      if (!decoder || !client) return
      let frames
      try {
        frames = decoder.push(chunk)
      } catch {
        socket.destroy()
        return
      }
      for (const f of frames) this.fromClient(client, f.type, f.payload)
    }
    socket.on('data', (b: Buffer) => {
      if (decoder) return onFrames(b)
      const text = b.toString('latin1')
      const nl = text.indexOf('\n')
      if (nl < 0) {
        head += text
        if (head.length > 4096) socket.destroy()
        return
      }
      head += text.slice(0, nl)
      let header: AttachHeader
      try {
        header = JSON.parse(head) as AttachHeader
      } catch {
        socket.destroy()
        return
      }
      const rest = b.subarray(Buffer.byteLength(text.slice(0, nl + 1), 'latin1'))
      const resize = validSize(header.resize)
      if (resize) {
        this.resize(resize)
        socket.end()
        return
      }
      if (this.finished) {
        socket.end()
        return
      }
      client = { socket, header, run: this.run }
      const size = validSize(header.size)
      if (size) {
        this.size ??= size
        if (this.child) this.child.resize(size)
      }
      this.clients.add(client)
      socket.once('close', () => {
        this.clients.delete(client as Client)
        // a caller that fed stdin and went away ends it, with StdinOnce (Docker's `run -i`)
        if (header.stdin && (client as Client).run === this.run) this.stdinGone()
      })
      this.attachedCount++
      for (const w of this.waiters.splice(0)) w()
      decoder = new FrameDecoder(1 << 20)
      if (rest.length > 0) onFrames(rest)
    })
  }

  private fromClient(client: Client, type: number, payload: Buffer): void {
    if (type === FrameTypes.stdin) {
      if (!client.header.stdin || !this.opts.openStdin || this.inputEnded) return
      if (this.child) this.child.write(payload)
      else this.pendingInput.push(Buffer.from(payload))
    } else if (type === FrameTypes.stdinEnd) {
      if (client.header.stdin) {
        client.header.stdin = false
        this.stdinGone()
      }
    } else if (type === FrameTypes.resize && payload.length >= 4) {
      this.resize({ cols: payload.readUInt16BE(0), rows: payload.readUInt16BE(2) })
    }
  }

  private stdinGone(): void {
    if (!this.opts.stdinOnce || this.inputEnded) return
    this.inputEnded = true
    if (this.child) this.child.endInput()
  }

  private resize(size: TerminalSize): void {
    if (this.child) this.child.resize(size)
    else this.size = size
  }

  /** The process runs: input from now on goes to it. */
  bind(child: ChildIO): void {
    this.child = child
    for (const b of this.pendingInput.splice(0)) child.write(b)
    if (this.inputEnded) child.endInput()
  }

  /** Output of the process, to every caller that asked for that stream. */
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    if (this.clients.size === 0) return
    const frame = encodeFrame(stream === 'stdout' ? FrameTypes.stdout : FrameTypes.stderr, chunk)
    for (const c of this.clients) {
      if (stream === 'stdout' ? c.header.stdout === false : c.header.stderr === false) continue
      if (c.socket.writableLength > MAX_BACKLOG) {
        c.socket.destroy()
        continue
      }
      c.socket.write(frame)
    }
  }

  /** The process ended: every caller gets the exit code; the socket goes. */
  async finish(exitCode: number): Promise<void> {
    this.finished = true
    await this.release(exitCode)
    await this.close()
  }

  /**
   * A run of the process ended and its restart policy runs it again: the callers of this run get
   * its exit code and are let go (as Docker's attach ends at an exit); the socket keeps serving,
   * and later callers join the next run, with its input open again.
   */
  async endRun(exitCode: number): Promise<void> {
    this.child = undefined
    this.run++
    await this.release(exitCode)
    this.pendingInput = []
    this.inputEnded = false
  }

  /** Every caller attached now gets the exit code and is disconnected. */
  private async release(exitCode: number): Promise<void> {
    const frame = exitFrame(exitCode)
    const leaving = [...this.clients]
    this.clients.clear()
    await Promise.all(leaving.map((c) => new Promise<void>((resolve) => {
      c.socket.once('close', () => resolve())
      c.socket.end(frame)
      setTimeout(() => {
        c.socket.destroy()
        resolve()
      }, 2000).unref()
    })))
  }

  async close(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
    await rm(this.path, { force: true }).catch(() => undefined)
  }
}

/** A caller attached through a monitor's socket. */
export interface Attached {
  /** Ends when the process ended (with its exit code), the caller detached, or the connection dropped. */
  readonly done: Promise<AttachOutcome>
  resize(size: TerminalSize): void
  /** Leaves the process running. */
  detach(): void
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    s.once('connect', () => {
      s.removeListener('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Attaches `stdio` to the process of the monitor serving `path`. */
export async function attachSocket(path: string, stdio: Stdio, opts: { tty: boolean }): Promise<Attached> {
  let socket: Socket
  try {
    socket = await connect(path)
  } catch (err) {
    throw new CairnError('CONFLICT', `cannot attach: the container's monitor does not answer (${(err as Error).message})`, { cause: err })
  }
  socket.on('error', () => undefined)
  const header: AttachHeader = { stdin: stdio.stdin !== undefined, stdout: stdio.stdout !== undefined, stderr: !opts.tty && stdio.stderr !== undefined }
  if (stdio.size) header.size = stdio.size
  socket.write(`${JSON.stringify(header)}\n`)
  let exitCode: number | undefined
  let detached = false
  const decoder = new FrameDecoder()
  socket.on('data', (b: Buffer) => {
    let frames
    try {
      frames = decoder.push(b)
    } catch {
      socket.destroy()
      return
    }
    for (const f of frames) {
      if (f.type === FrameTypes.stdout) stdio.stdout?.write(f.payload)
      else if (f.type === FrameTypes.stderr) (opts.tty ? stdio.stdout : stdio.stderr)?.write(f.payload)
      else if (f.type === FrameTypes.exit && f.payload.length >= 4) exitCode = f.payload.readInt32BE(0)
    }
  })
  const unsubscribe = stdio.onResize?.((s) => {
    if (!socket.destroyed) socket.write(resizeFrame(s.cols, s.rows))
  })
  const input = stdio.stdin
  const watcher = new DetachKeyWatcher(stdio.detachKeys ?? Buffer.alloc(0))
  const onInput = (b: Buffer | string): void => {
    const data = watcher.feed(typeof b === 'string' ? Buffer.from(b) : b)
    if (data.length > 0 && !socket.destroyed) socket.write(encodeFrame(FrameTypes.stdin, data))
    if (watcher.detached) stop(true)
  }
  const onInputEnd = (): void => {
    if (!socket.destroyed) socket.write(encodeFrame(FrameTypes.stdinEnd))
  }
  const stop = (asDetach: boolean): void => {
    if (asDetach) detached = true
    socket.destroy()
  }
  if (input) {
    input.on('data', onInput)
    input.once('end', onInputEnd)
    // flowing even when it was paused explicitly (see connectChild in stdio.ts)
    input.resume()
  }
  const done = new Promise<AttachOutcome>((resolve) => {
    socket.once('close', () => {
      unsubscribe?.()
      if (input) {
        input.off('data', onInput)
        input.off('end', onInputEnd)
      }
      resolve(exitCode !== undefined ? { exitCode, detached: false } : { detached: true })
      void detached
    })
  })
  return {
    done,
    resize: (s) => {
      if (!socket.destroyed) socket.write(resizeFrame(s.cols, s.rows))
    },
    detach: () => stop(true),
  }
}

/** Resizes the terminal of the process behind a monitor's socket. */
export async function resizeSocket(path: string, size: TerminalSize): Promise<void> {
  let socket: Socket
  try {
    socket = await connect(path)
  } catch (err) {
    throw new CairnError('CONFLICT', `cannot resize: the container's monitor does not answer (${(err as Error).message})`, { cause: err })
  }
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    socket.end(`${JSON.stringify({ resize: size })}\n`)
  })
}
