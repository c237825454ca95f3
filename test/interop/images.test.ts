/**
 * Interop with the real peers, both ways: Cairn's archives load and run in Docker, Docker's
 * archives load in Cairn, skopeo reads Cairn's OCI archives and Cairn reads skopeo's.
 */
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { text } from 'node:stream/consumers'
import { readTar } from '../../src/layer/tar.js'
import { requireRoot } from '../helpers/root.js'
import { requireTools } from '../helpers/tools.js'
import { startDockerd, skopeo, type Dockerd } from '../helpers/dockerd.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { cairnOk, tempDir } from '../helpers/cairn.js'

describe('interop with dockerd and skopeo', () => {
  let docker: Dockerd | undefined
  let dir = ''
  let cleanup: () => Promise<void> = async () => undefined
  let rootfs = ''
  let root = ''

  before(async () => {
    const t = await tempDir()
    dir = t.dir
    cleanup = t.cleanup
    root = `${dir}/store`
    if (process.getuid?.() !== 0) return
    rootfs = await busyboxRootfsTar()
    docker = await startDockerd()
  })
  after(async () => {
    await docker?.stop()
    await cleanup()
  })

  test('docker load accepts cairn save (docker format) and runs the image, with the same IMAGE ID', async (t) => {
    if (!requireRoot(t, 'dockerd') || !requireTools(t, ['dockerd', 'docker'])) return
    assert.ok(docker)
    const id = (await cairnOk(root, ['import', '-c', 'CMD ["/bin/sh", "-c", "cat /usr/share/cairn/hello.txt"]', rootfs, 'cairn/busybox:1'])).stdout.trim()
    await cairnOk(root, ['save', '-o', `${dir}/docker.tar`, 'cairn/busybox:1'])
    const loaded = await docker.runOk(['load', '-i', `${dir}/docker.tar`])
    assert.match(loaded.stdout, /Loaded image: cairn\/busybox:1/)
    const dockerId = (await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', 'cairn/busybox:1'])).stdout.trim()
    assert.equal(dockerId, id, 'Docker computes the same image ID from the same config')
    const expected = await fileInTar(rootfs, 'usr/share/cairn/hello.txt')
    const ran = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn/busybox:1'])
    assert.equal(ran.stdout, expected, 'the image\'s CMD ran and read the layer\'s file')
    // modes and the hard link survive: 0600 secret, hello.txt with two links
    const st = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn/busybox:1', '/bin/sh', '-c', 'stat -c "%a %h" /usr/share/cairn/secret /usr/share/cairn/hello.txt'])
    assert.equal(st.stdout, '600 1\n644 2\n')
  })

  test('docker load accepts cairn save --compression gzip (parallel libdeflate members) and the gzip layers of import --compression gzip', async (t) => {
    if (!requireRoot(t, 'dockerd') || !requireTools(t, ['dockerd', 'docker'])) return
    assert.ok(docker)
    const id = (await cairnOk(root, ['import', '--compression', 'gzip', rootfs, 'cairn/gz:1'])).stdout.trim()
    await cairnOk(root, ['save', '--compression', 'gzip', '--format', 'oci', '-o', `${dir}/oci.tar.gz`, 'cairn/gz:1'])
    const loaded = await docker.runOk(['load', '-i', `${dir}/oci.tar.gz`])
    assert.match(loaded.stdout, /Loaded image: cairn\/gz:1/)
    const dockerId = (await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', 'cairn/gz:1'])).stdout.trim()
    assert.equal(dockerId, id, 'Go\'s gzip reader took the archive and the gzip layer in it, and the diffID matched')
    const ran = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn/gz:1', '/bin/echo', 'from-gzip'])
    assert.equal(ran.stdout, 'from-gzip\n')
  })

  test('docker load accepts cairn save --format oci', async (t) => {
    if (!requireRoot(t, 'dockerd') || !requireTools(t, ['dockerd', 'docker'])) return
    assert.ok(docker)
    await cairnOk(root, ['import', rootfs, 'cairn/oci:1'])
    await cairnOk(root, ['save', '--format', 'oci', '-o', `${dir}/oci.tar`, 'cairn/oci:1'])
    const loaded = await docker.runOk(['load', '-i', `${dir}/oci.tar`])
    assert.match(loaded.stdout, /Loaded image: cairn\/oci:1/)
    const ran = await docker.runOk(['run', '--rm', '--network', 'none', 'cairn/oci:1', '/bin/echo', 'from-oci'])
    assert.equal(ran.stdout, 'from-oci\n')
  })

  test('cairn loads what docker save writes, and its save of it loads back into Docker', async (t) => {
    if (!requireRoot(t, 'dockerd') || !requireTools(t, ['dockerd', 'docker'])) return
    assert.ok(docker)
    await docker.runOk(['import', '--change', 'ENV FROM_DOCKER=yes', rootfs, 'from-docker:1'])
    await docker.runOk(['tag', 'from-docker:1', 'from-docker:2'])
    const dockerId = (await docker.runOk(['image', 'inspect', '--format', '{{.Id}}', 'from-docker:1'])).stdout.trim()
    await docker.runOk(['save', '-o', `${dir}/from-docker.tar`, 'from-docker'])
    const loaded = await cairnOk(root, ['load', '-i', `${dir}/from-docker.tar`])
    assert.deepEqual(loaded.stdout.trim().split('\n').sort(), ['Loaded image: from-docker:1', 'Loaded image: from-docker:2'])
    const inspect = JSON.parse((await cairnOk(root, ['inspect', 'from-docker:1'])).stdout) as [{ Id: string; Config: { Env: string[] }; Size: number }]
    assert.equal(inspect[0].Id, dockerId)
    assert.ok(inspect[0].Config.Env.includes('FROM_DOCKER=yes'))
    const dockerSize = Number((await docker.runOk(['image', 'inspect', '--format', '{{.Size}}', 'from-docker:1'])).stdout.trim())
    assert.equal(inspect[0].Size, dockerSize, 'SIZE counted as Docker counts it')
    // and back: remove from Docker, load Cairn's save of it
    await docker.runOk(['rmi', 'from-docker:1', 'from-docker:2'])
    await cairnOk(root, ['save', '-o', `${dir}/back.tar`, 'from-docker:1'])
    await docker.runOk(['load', '-i', `${dir}/back.tar`])
    const ran = await docker.runOk(['run', '--rm', '--network', 'none', 'from-docker:1', '/bin/sh', '-c', 'echo $FROM_DOCKER'])
    assert.equal(ran.stdout, 'yes\n')
  })

  test('skopeo reads cairn\'s OCI archive, and cairn loads skopeo\'s', async (t) => {
    if (!requireRoot(t, 'skopeo policy and dockerd') || !requireTools(t, ['skopeo'])) return
    await cairnOk(root, ['import', rootfs, 'cairn/skopeo:1'])
    await cairnOk(root, ['save', '--format', 'oci', '-o', `${dir}/for-skopeo.tar`, 'cairn/skopeo:1'])
    const info = JSON.parse(await skopeo(['inspect', `oci-archive:${dir}/for-skopeo.tar`])) as { Layers: string[] }
    assert.equal(info.Layers.length, 1)
    // skopeo copies it into an OCI layout and a Docker archive without complaint
    await skopeo(['copy', `oci-archive:${dir}/for-skopeo.tar`, `oci-archive:${dir}/from-skopeo.tar:skopeo/copied:2`])
    await skopeo(['copy', `oci-archive:${dir}/for-skopeo.tar`, `docker-archive:${dir}/from-skopeo-docker.tar:skopeo/docker:3`])
    const a = await cairnOk(root, ['load', '-i', `${dir}/from-skopeo.tar`])
    assert.match(a.stdout, /Loaded image: skopeo\/copied:2/)
    const b = await cairnOk(root, ['load', '-i', `${dir}/from-skopeo-docker.tar`])
    assert.match(b.stdout, /Loaded image: skopeo\/docker:3/)
    const ids = new Set((await cairnOk(root, ['images', '-q', '--no-trunc'])).stdout.trim().split('\n'))
    const cairnId = (await cairnOk(root, ['images', '-q', '--no-trunc', 'cairn/skopeo:1'])).stdout.trim()
    const copiedId = (await cairnOk(root, ['images', '-q', '--no-trunc', 'skopeo/copied:2'])).stdout.trim()
    assert.equal(copiedId, cairnId, 'the config survives the round trip byte for byte')
    assert.ok(ids.has(cairnId))
  })
})

async function fileInTar(tarPath: string, name: string): Promise<string> {
  for await (const { header, body } of readTar(createReadStream(tarPath))) {
    if (header.path.replace(/^\.?\//, '') === name) {
      if (header.type === 'hardlink') return fileInTar(tarPath, header.linkname.replace(/^\.?\//, ''))
      return await text(body)
    }
    body.resume()
  }
  throw new Error(`${name} not in ${tarPath}`)
}
