/** Test images for the registry client's tests: small layer tars and two-layer docker archives. */
import { createHash, randomBytes } from 'node:crypto'
import { buffer } from 'node:stream/consumers'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'
import { hostPlatform } from '../../src/oci/types.js'
import { tarOf } from '../helpers/cairn.js'

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A layer tar with one file of `size` random (incompressible) bytes. */
export async function randomLayer(size: number, name = 'data/random.bin'): Promise<Buffer> {
  return tarOf({ [name]: randomBytes(size).toString('latin1') })
}

/**
 * A `docker save` archive of one image made of the given layer tars (bottom first), tagged `tag`;
 * `cmd` becomes its CMD.
 */
export async function archiveOf(layers: Buffer[], tag: string, cmd: string[] = ['/bin/sh']): Promise<Buffer> {
  const created = '2024-01-01T00:00:00Z'
  const p = hostPlatform()
  const config = {
    architecture: p.architecture,
    ...(p.variant ? { variant: p.variant } : {}),
    os: 'linux',
    config: { Cmd: cmd, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    created,
    history: layers.map((_, i) => ({ created, created_by: `layer ${i}` })),
    rootfs: { type: 'layers', diff_ids: layers.map(sha) },
  }
  const configBytes = Buffer.from(JSON.stringify(config))
  const entries: TarEntryInput[] = []
  const mtime = 1_704_067_200
  const file = (path: string, body: Buffer): TarEntryInput => ({ header: { path, type: 'file', mode: 0o644, size: body.length, mtime }, body })
  entries.push(file('config.json', configBytes))
  const paths: string[] = []
  layers.forEach((l, i) => {
    const dir = `layer${i}`
    entries.push({ header: { path: `${dir}/`, type: 'directory', mode: 0o755, mtime } })
    entries.push(file(`${dir}/layer.tar`, l))
    paths.push(`${dir}/layer.tar`)
  })
  entries.push(file('manifest.json', Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: [tag], Layers: paths }]))))
  return buffer(writeTar(entries))
}
