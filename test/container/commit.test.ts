/**
 * The article's `docker commit` with a real runtime, for both snapshotters: run a container,
 * change files, commit with -m and -a, and check the new image in Cairn and in real Docker.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { containerStore, requireContainers, type ContainerStore } from './helpers.js'
import { startDockerd, type Dockerd } from '../helpers/dockerd.js'
import type { StorageDriver } from '../../src/snapshot/types.js'

const sh = promisify(execFile)

const CHANGE = [
  'mkdir -p /usr/local/bin && echo "vim binary" > /usr/local/bin/vim', // add
  'echo "edited" >> /etc/motd', // modify
  'rm /usr/share/cairn/secret', // delete a file of a lower layer
  'rm -rf /root && mkdir /root && echo fresh > /root/only', // replace a directory (opaque)
].join(' && ')

const CHECK = 'cat /usr/local/bin/vim; tail -n 1 /etc/motd; ls /usr/share/cairn; ls -A /root; cat /root/only'
const EXPECTED = 'vim binary\nedited\nhello-hardlink.txt\nhello-symlink.txt\nhello.txt\nonly\nfresh\n'

for (const driver of ['overlay', 'native'] as StorageDriver[]) {
  describe(`commit with a real runtime (${driver})`, () => {
    let cs: ContainerStore | undefined
    let docker: Dockerd | undefined
    before(async () => {
      if (process.getuid?.() !== 0) return
      cs = await containerStore(driver)
    })
    after(async () => {
      await docker?.stop()
      await cs?.cleanup()
    })

    test('run, change, commit -m -a: images, history, a new container sees exactly the changes, Docker runs it', async (t) => {
      if (!(await requireContainers(t)) || !cs) return
      await cs.cliOk(['run', '--name', 'eba4a23b97c9', 'busybox', 'sh', '-c', CHANGE])
      const diff = (await cs.cliOk(['diff', 'eba4a23b97c9'])).stdout
      for (const line of ['A /usr/local/bin/vim', 'C /etc/motd', 'D /usr/share/cairn/secret', 'C /root', 'A /root/only']) assert.ok(diff.includes(`${line}\n`), `${line} in:\n${diff}`)
      const commit = await cs.cliOk(['commit', '-m', 'ubuntu install vim', '-a', 'huzd', 'eba4a23b97c9', 'ubuntuwithvim:1.0.0'])
      assert.match(commit.stdout, /^sha256:[a-f0-9]{64}\n$/)
      const id = commit.stdout.trim()
      const images = (await cs.cliOk(['images', 'ubuntuwithvim'])).stdout.trim().split('\n')
      assert.match(images[1] ?? '', new RegExp(`^ubuntuwithvim\\s+1\\.0\\.0\\s+${id.slice(7, 19)}\\s+.+ ago\\s+\\d[\\d.]*[kM]?B$`))
      const history = (await cs.cliOk(['history', '--no-trunc', 'ubuntuwithvim:1.0.0'])).stdout.split('\n')
      assert.match(history[1] ?? '', /ubuntu install vim/)
      const inspect = JSON.parse((await cs.cliOk(['inspect', 'ubuntuwithvim:1.0.0'])).stdout) as [{ Author: string; RootFS: { Layers: string[] } }]
      assert.equal(inspect[0].Author, 'huzd')
      assert.equal(inspect[0].RootFS.Layers.length, 2)
      const seen = await cs.cliOk(['run', '--rm', 'ubuntuwithvim:1.0.0', 'sh', '-c', CHECK])
      assert.equal(seen.stdout, EXPECTED)
      // the parent cannot go while the child exists
      const refused = await cs.cli(['rmi', '-f', (await cs.cliOk(['images', '-q', 'busybox'])).stdout.trim()])
      assert.equal(refused.code, 1)
      assert.match(refused.stderr, /dependent child images|being used by/)

      // and in real Docker, through cairn save / docker load
      docker = await startDockerd()
      await cs.cliOk(['save', '-o', `${cs.root}/../vim.tar`, 'ubuntuwithvim:1.0.0'])
      await docker.runOk(['load', '-i', `${cs.root}/../vim.tar`])
      const inDocker = await docker.runOk(['run', '--rm', '--network', 'none', 'ubuntuwithvim:1.0.0', 'sh', '-c', CHECK])
      assert.equal(inDocker.stdout, EXPECTED, 'whiteouts and the opaque directory survive the round trip through Docker')
      assert.equal((await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', 'ubuntuwithvim:1.0.0'])).stdout.trim(), id)
      // Docker commits on top of it; Cairn loads that back and sees both layers of changes
      await docker.runOk(['run', '--name', 'd1', '--network', 'none', 'ubuntuwithvim:1.0.0', 'sh', '-c', 'rm /usr/local/bin/vim && echo docker > /docker'])
      await docker.runOk(['commit', '-m', 'from docker', 'd1', 'fromdocker:1'])
      await docker.runOk(['save', '-o', `${cs.root}/../fromdocker.tar`, 'fromdocker:1'])
      await cs.cliOk(['load', '-i', `${cs.root}/../fromdocker.tar`])
      const back = await cs.cliOk(['run', '--rm', 'fromdocker:1', 'sh', '-c', 'ls /usr/local/bin; cat /docker; ls -A /root'])
      assert.equal(back.stdout, 'docker\nonly\n')
    })

    test('an empty change commits with an empty_layer entry; a stopped container commits', async (t) => {
      if (!(await requireContainers(t)) || !cs) return
      await cs.cliOk(['create', '--name', 'untouched', 'busybox', 'true'])
      const id = (await cs.cliOk(['commit', 'untouched'])).stdout.trim()
      const cfg = JSON.parse((await sh('cat', [`${cs.root}/blobs/sha256/${id.slice(7)}`])).stdout) as { history: { empty_layer?: boolean }[]; rootfs: { diff_ids: string[] } }
      assert.equal(cfg.history.at(-1)?.empty_layer, true)
      assert.equal(cfg.rootfs.diff_ids.length, 1)
      assert.match((await cs.cliOk(['images'])).stdout, new RegExp(`<none>\\s+<none>\\s+${id.slice(7, 19)}`))
    })

    test('SOURCE_DATE_EPOCH: two containers with the same change commit to the same image ID (no container ID or hostname in the config)', async (t) => {
      if (!(await requireContainers(t)) || !cs) return
      const ids: string[] = []
      for (const name of ['same-a', 'same-b']) {
        await cs.cliOk(['run', '--name', name, 'busybox', 'sh', '-c', 'echo same > /same'])
        ids.push((await cs.cliOk(['commit', name], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } })).stdout.trim())
        await new Promise((r) => setTimeout(r, 1100)) // different wall-clock mtimes
      }
      assert.equal(ids[0], ids[1])
      const cfg = JSON.parse((await sh('cat', [`${cs.root}/blobs/sha256/${(ids[0] as string).slice(7)}`])).stdout) as Record<string, unknown> & { config: { Hostname?: string } }
      assert.equal(cfg['container'], undefined)
      assert.equal(cfg['container_config'], undefined)
      assert.equal(cfg.config.Hostname ?? '', '')
      await cs.cliOk(['rm', 'same-a', 'same-b'])
    })

    test('a container writing continuously is paused during commit: the layer untars cleanly', async (t) => {
      if (!(await requireContainers(t)) || !cs) return
      await cs.cliOk(['run', '-d', '--name', 'writer', 'busybox', 'sh', '-c', 'mkdir /data; i=0; while true; do echo "$i $i $i $i" > /data/f$((i % 50)); i=$((i+1)); done'])
      await new Promise((r) => setTimeout(r, 500))
      const id = (await cs.cliOk(['commit', 'writer', 'written:1'])).stdout.trim()
      assert.match((await cs.cliOk(['ps', '--format', '{{.Names}} {{.Status}}'])).stdout, /writer Up/, 'the container runs on after the commit')
      await cs.cliOk(['save', '-o', `${cs.root}/../written.tar`, 'written:1'])
      // every file of the new layer is whole: four equal numbers per line
      const out = await cs.cliOk(['run', '--rm', 'written:1', 'sh', '-c', 'cat /data/*'])
      const lines = out.stdout.trim().split('\n')
      assert.ok(lines.length > 0)
      for (const l of lines) assert.match(l, /^(\d+) \1 \1 \1$/)
      await cs.cliOk(['rm', '-f', 'writer'])
      assert.match(id, /^sha256:/)
    })
  })
}
