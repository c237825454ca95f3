// Fuzzing layer extraction: plain, gzip and zstd streams through decompressStream and applyLayer.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { gzipSync } from 'node:zlib'
import { applyLayer } from '../../src/layer/apply.js'
import { compressStream, decompressStream } from '../../src/layer/compression.js'
import { collect, tarOf } from '../layer/helpers.js'
import { fuzzTest } from './helpers.js'

describe('fuzz: layers through apply', () => {
  it('applyLayer refuses bad (compressed) layers with a CairnError and never crashes or hangs', async (t) => {
    const tar = await tarOf([
      { header: { path: 'etc/', type: 'directory' } },
      { header: { path: 'etc/hosts', type: 'file', size: 4 }, body: 'host' },
      { header: { path: 'etc/.wh.old', type: 'file' } },
      { header: { path: 'etc/.wh..wh..opq', type: 'file' } },
      { header: { path: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' } },
      { header: { path: 'bin/ls', type: 'hardlink', linkname: 'etc/hosts' } },
    ])
    const zst = await collect(Readable.from([tar]).pipe(compressStream('zstd')))
    const root = await mkdtemp(join(tmpdir(), 'cairn-fuzz-apply-'))
    t.after(() => rm(root, { recursive: true, force: true }))
    let n = 0
    await fuzzTest(t, 'apply', async (data) => {
      const dir = await mkdtemp(join(root, `${n++}-`))
      try {
        // whiteouts as OCI files: overlay mode needs root and mknod, and is the same parse
        await applyLayer(decompressStream(Readable.from([data])), dir, { whiteouts: 'oci' })
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }, {
      seeds: [tar, gzipSync(tar), zst, gzipSync(tar).subarray(0, 40), zst.subarray(0, 30)],
      dictionary: ['\x1f\x8b\x08\x00', '\x28\xb5\x2f\xfd', '.wh.', '.wh..wh..opq', '../', '/', 'ustar\x0000'],
    })
  })
})
