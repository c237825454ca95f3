/** Test images made of given layer tars, recorded directly in a store. */
import { readFile } from 'node:fs/promises'
import { buffer } from 'node:stream/consumers'
import { Cairn } from '../../src/index.js'
import { buildManifest, serializeConfig, serializeManifest } from '../../src/image/manifest.js'
import { parseReference } from '../../src/oci/reference.js'
import type { ContainerConfig, ImageConfig } from '../../src/oci/types.js'
import { writeTar, type TarEntryInput } from '../../src/layer/tar.js'
import { busyboxRootfsTar } from '../helpers/rootfs.js'
import { asDiffId } from '../../src/oci/digest.js'

export interface LayerEntry {
  path: string
  type?: 'file' | 'directory' | 'hardlink' | 'symlink'
  content?: string
  /** hardlink/symlink target */
  target?: string
  xattrs?: Record<string, string>
  mode?: number
}

export async function layerTar(entries: readonly LayerEntry[]): Promise<Buffer> {
  const input: TarEntryInput[] = entries.map((e) => {
    const xattrs = new Map(Object.entries(e.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v)]))
    if (e.type === 'directory') return { header: { path: e.path, type: 'directory', mode: e.mode ?? 0o755, mtime: 1_700_000_000, xattrs } }
    if (e.type === 'hardlink' || e.type === 'symlink') return { header: { path: e.path, type: e.type, linkname: e.target ?? '', mtime: 1_700_000_000 } }
    const body = Buffer.from(e.content ?? '')
    return { header: { path: e.path, type: 'file', mode: e.mode ?? 0o644, size: body.length, mtime: 1_700_000_000, xattrs }, body }
  })
  return buffer(writeTar(input))
}

export async function busyboxLayer(): Promise<Buffer> {
  return readFile(await busyboxRootfsTar())
}

/** Records an image of these (uncompressed) layers under `tag`. */
export async function addImage(root: string, tag: string, layers: readonly Buffer[], config: ContainerConfig = { Cmd: ['sh'] }): Promise<string> {
  const cairn = await Cairn.open({ root })
  try {
    const store = cairn.store
    const staged = []
    for (const l of layers) staged.push(await store.content.stageBytes(l))
    const diffIds = staged.map((s) => asDiffId(s.digest))
    const cfg: ImageConfig = {
      architecture: 'amd64', os: 'linux', created: new Date(1_700_000_000_000).toISOString(), config,
      rootfs: { type: 'layers', diff_ids: diffIds }, history: diffIds.map((_d, i) => ({ created_by: `layer ${i}` })),
    }
    const cfgStaged = await store.content.stageBytes(serializeConfig(cfg))
    const descs = staged.map((s) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: s.digest, size: s.size }))
    const man = await store.content.stageBytes(serializeManifest(buildManifest('oci', cfgStaged, descs)))
    return store.addImage({
      manifest: man, manifestMediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfgStaged, configJson: cfg,
      layers: staged.map((s, i) => ({ descriptor: descs[i] as (typeof descs)[number], diffId: asDiffId(s.digest), size: s.size, diffSize: s.size, staged: s })),
      tags: [parseReference(tag)],
    }).id
  } finally {
    cairn.close()
  }
}
