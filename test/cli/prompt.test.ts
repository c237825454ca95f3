/**
 * The password prompt on a real terminal (a pseudo-terminal from node-pty): nothing of the answer
 * is echoed, Backspace edits it, Enter ends it, Ctrl-C interrupts; and the terminal is back in
 * its normal mode afterwards.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type * as Pty from '@lydell/node-pty'

const pty = createRequire(import.meta.url)('@lydell/node-pty') as typeof Pty
const PROMPT = fileURLToPath(new URL('../../src/cli/prompt.js', import.meta.url))

/** Runs `ask('Password: ', { hidden: true })` on a terminal, types `keys` once asked; its output and exit code. */
async function askOnTerminal(keys: string): Promise<{ output: string; code: number }> {
  const script = `
    const { ask } = await import(${JSON.stringify(PROMPT)})
    try {
      const answer = await ask('Password: ', { hidden: true })
      process.stdout.write('answer=' + JSON.stringify(answer) + ' raw=' + process.stdin.isRaw + '\\n')
    } catch (err) {
      process.stdout.write('error=' + err.code + ' raw=' + process.stdin.isRaw + '\\n')
      process.exitCode = 130
    }`
  const term = pty.spawn(process.execPath, ['--input-type=module', '-e', script], { cols: 80, rows: 10, env: { ...process.env, TERM: 'dumb' } })
  let output = ''
  let typed = false
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      term.kill()
      reject(new Error(`no answer; the terminal showed ${JSON.stringify(output)}`))
    }, 20_000)
    term.onData((d) => {
      output += d
      if (!typed && output.includes('Password: ')) {
        typed = true
        term.write(keys)
      }
    })
    term.onExit(({ exitCode }) => {
      clearTimeout(timer)
      resolve({ output, code: exitCode })
    })
  })
}

test('a hidden answer is not echoed; Backspace edits it; the terminal leaves raw mode', async () => {
  const { output, code } = await askOnTerminal('sec\x7fret\r')
  assert.equal(code, 0, output)
  assert.match(output, /answer="seret" raw=false/)
  const shown = output.slice(output.indexOf('Password: ') + 'Password: '.length, output.indexOf('answer='))
  assert.doesNotMatch(shown, /[a-z]/, `the terminal showed ${JSON.stringify(shown)}`)
})

test('Ctrl-C interrupts the question', async () => {
  const { output, code } = await askOnTerminal('pa\x03')
  assert.equal(code, 130, output)
  assert.match(output, /error=ABORTED raw=false/)
  const shown = output.slice(output.indexOf('Password: ') + 'Password: '.length, output.indexOf('error='))
  assert.doesNotMatch(shown, /[a-z]/, `the terminal showed ${JSON.stringify(shown)}`)
})
