/**
 * Side by side with a real Docker (a private dockerd 20.10 on overlay2): the same image, the same
 * commands, and the same answers from both: `diff` lines, exit codes of commands that fail to
 * start, `ps` status words and COMMAND column, `exec` exit codes.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { requireTools } from '../helpers/tools.js'
import type { RunResult } from '../helpers/exec.js'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'

const CHANGE = [
  'echo new > /added', 'echo changed > /usr/share/cairn/hello.txt', 'rm /usr/share/cairn/secret', 'mkdir -p /opt/a/b',
  'rm -rf /var/tmp && mkdir /var/tmp && touch /var/tmp/x', 'rm /etc/motd', 'chmod 600 /etc/group',
].join('; ')

describe('containers: the same answers as Docker', { concurrency: false }, () => {
  let dockerd: Dockerd | undefined
  let s: ContainerStore | undefined
  let ready = false

  before(async () => {
    if (process.getuid?.() !== 0) return
    try {
      dockerd = await startDockerd()
    } catch (err) {
      if (process.env['CI']) throw err
      return
    }
    s = await containerStore('overlay')
    await dockerd.runOk(['import', '-c', 'CMD ["sh"]', await busyboxRootfsTar(), 'busybox'])
    ready = true
  })
  after(async () => {
    await s?.cleanup()
    await dockerd?.stop()
  })

  const both = async (args: string[]): Promise<{ docker: RunResult; cairn: RunResult }> => {
    const d = dockerd as Dockerd
    const c = s as ContainerStore
    return { docker: await d.run(args, { timeoutMs: 60_000 }), cairn: await c.cli(args) }
  }

  test('diff, exit codes, ps and exec', async (t) => {
    if (!(await requireContainers(t))) return
    if (!requireTools(t, ['dockerd', 'docker', 'containerd', 'setpriv'])) return
    if (!ready) {
      t.skip('no private dockerd could be started')
      return
    }
    // the same change, the same diff lines (Docker's order follows a Go map; compared as sets)
    const run = await both(['run', '--name', 'cmp', '--network', 'none', 'busybox', 'sh', '-c', CHANGE])
    assert.equal(run.docker.code, 0, run.docker.stderr)
    assert.equal(run.cairn.code, 0, run.cairn.stderr)
    const diff = await both(['diff', 'cmp'])
    const lines = (r: RunResult): string[] => r.stdout.split('\n').filter(Boolean).sort()
    assert.deepEqual(lines(diff.cairn), lines(diff.docker))

    // exit codes: passed through, 127 not found, 126 not executable
    for (const [cmd, code] of [[['sh', '-c', 'exit 3'], 3], [['no-such-command'], 127], [['/etc/passwd'], 126], [['/nope'], 127]] as const) {
      const r = await both(['run', '--rm', '--network', 'none', 'busybox', ...cmd])
      assert.equal(r.docker.code, code, `docker ${cmd.join(' ')}`)
      assert.equal(r.cairn.code, code, `cairn ${cmd.join(' ')}: ${r.cairn.stderr}`)
    }
    const failing = await both(['run', '--rm', '--network', 'none', 'busybox', 'no-such-command'])
    assert.match(failing.docker.stderr, /exec: "no-such-command": executable file not found in \$PATH/)
    assert.match(failing.cairn.stderr, /exec: "no-such-command": executable file not found in \$PATH/)

    // ps: status word and COMMAND column of an exited container
    const ps = await both(['ps', '-a', '--format', '{{.Command}}|{{.Status}}'])
    const row = (r: RunResult): string | undefined => r.stdout.split('\n').find((l) => l.startsWith('"sh -c \'echo new >'))
    assert.equal(row(ps.cairn)?.split('|')[0], row(ps.docker)?.split('|')[0])
    assert.match(row(ps.cairn)?.split('|')[1] ?? '', /^Exited \(0\) (Less than a second|\d+ seconds?) ago$/)
    assert.match(row(ps.docker)?.split('|')[1] ?? '', /^Exited \(0\) (Less than a second|\d+ seconds?) ago$/)

    // exec: the exit code, and 126 for a command that cannot start (Docker 20.10)
    await both(['run', '-d', '--name', 'ex', '--network', 'none', 'busybox', 'sleep', '60'])
    const ok = await both(['exec', 'ex', 'sh', '-c', 'exit 7'])
    assert.equal(ok.docker.code, 7)
    assert.equal(ok.cairn.code, 7)
    const missing = await both(['exec', 'ex', 'no-such-command'])
    assert.equal(missing.docker.code, 126)
    assert.equal(missing.cairn.code, 126)
    await both(['rm', '-f', 'ex', 'cmp'])
  })
})
