/**
 * Questions on the terminal: a line typed by the user, echoed or not (passwords), and a yes/no
 * confirmation. A hidden answer is read with the terminal in raw mode, one key at a time (no
 * readline internals): Enter ends it, Backspace edits it, Ctrl-C interrupts (exit 130), Ctrl-D on
 * an empty line ends input.
 */
import { CairnError } from '../errors/index.js'

/**
 * The next line of a stream (without its newline); undefined at the end of input. The stream is
 * left open and paused (what followed the line is put back), so that it can be read again.
 */
export function readLine(input: NodeJS.ReadStream | NodeJS.ReadableStream): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const finish = (line: string | undefined, rest?: string): void => {
      input.off('data', onData)
      input.off('end', onEnd)
      input.off('error', onError)
      input.pause()
      if (rest !== undefined && rest !== '' && 'unshift' in input) (input as NodeJS.ReadStream).unshift(Buffer.from(rest))
      resolve(line)
    }
    const onData = (chunk: Buffer | string): void => {
      buf += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : chunk
      const nl = buf.indexOf('\n')
      if (nl >= 0) finish(buf.slice(0, nl).replace(/\r$/, ''), buf.slice(nl + 1))
    }
    const onEnd = (): void => finish(buf === '' ? undefined : buf.replace(/\r$/, ''))
    const onError = (err: Error): void => {
      input.off('data', onData)
      input.off('end', onEnd)
      reject(err)
    }
    input.on('data', onData)
    input.once('end', onEnd)
    input.once('error', onError)
    input.resume()
  })
}

/** Everything on a stream, as text. */
export async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of input) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)))
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Asks `question` on `out` and returns the line typed on the terminal. `hidden`: nothing of the
 * answer is echoed.
 */
export async function ask(question: string, opts: { hidden?: boolean; out?: NodeJS.WriteStream } = {}): Promise<string> {
  const out = opts.out ?? process.stdout
  const input = process.stdin
  if (!opts.hidden || !input.isTTY) {
    out.write(question)
    return (await readLine(input)) ?? ''
  }
  // raw (no echo) before the question shows: keys typed as soon as it does are never echoed
  input.setRawMode(true)
  out.write(question)
  input.resume()
  try {
    return await new Promise<string>((resolve, reject) => {
      let answer = ''
      const onData = (b: Buffer): void => {
        for (const ch of b.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            done()
            resolve(answer)
            return
          }
          if (ch === '\u0003') {
            done()
            reject(new CairnError('ABORTED', 'interrupted'))
            return
          }
          if (ch === '\u0004' && answer === '') {
            done()
            resolve('')
            return
          }
          if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1)
          else if (ch >= ' ') answer += ch
        }
      }
      const done = (): void => {
        input.off('data', onData)
        out.write('\n')
      }
      input.on('data', onData)
    })
  } finally {
    input.setRawMode(false)
    input.pause()
  }
}

/** Docker's `[y/N]` confirmation (on stderr); without a terminal, `-f` is needed. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) {
    process.stderr.write(`${question}\n`)
    throw new CairnError('INVALID_ARGUMENT', 'not a terminal: give -f to confirm')
  }
  const answer = await ask(question, { out: process.stderr })
  process.stdin.pause()
  return /^y(es)?$/i.test(answer.trim())
}
