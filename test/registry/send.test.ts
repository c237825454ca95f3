/**
 * Serving large blobs through reusable buffers (src/registry/send.ts): whole blobs and ranges across
 * buffer boundaries arrive intact, a client that stops reading stops the reads (backpressure), a
 * client that goes away leaves nothing open, and the buffers go back to the pool for the next
 * response.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startRegistry, type RunningRegistry } from '../../src/registry/index.js'
import { FilesystemStorage } from '../../src/registry/fs-storage.js'
import { pooledSendBuffers, SEND_CHUNK } from '../../src/registry/send.js'
import type { RandomAccessBlob } from '../../src/registry/storage.js'
import type { Digest } from '../../src/oci/digest.js'
import { tempDir } from '../helpers/cairn.js'
import { pushBlob } from './helpers.js'

/** The filesystem storage, counting what its open blobs read and whether they were closed. */
class CountingStorage extends FilesystemStorage {
  bytesRead = 0
  open = 0

  override async openBlobFile(digest: Digest): Promise<RandomAccessBlob> {
    const file = await super.openBlobFile(digest)
    this.open++
    return {
      read: async (buf, length, position) => {
        const n = await file.read(buf, length, position)
        this.bytesRead += n
        return n
      },
      close: async () => {
        this.open--
        await file.close()
      },
    }
  }
}

function get(url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, resolve)
    req.on('error', reject)
    req.end()
  })
}

async function body(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('registry: sending large blobs', () => {
  let reg: RunningRegistry
  let storage: CountingStorage
  let cleanup: () => Promise<void>
  const internal: unknown[] = []
  // 5 buffers and a bit: every boundary case of the loop
  const data = randomBytes(5 * SEND_CHUNK + 12_345)
  const big = randomBytes(96 << 20)
  let digest: string
  let bigDigest: string

  before(async () => {
    const t = await tempDir('cairn-registry-send-')
    cleanup = t.cleanup
    storage = new CountingStorage(t.dir)
    reg = await startRegistry({ storage, port: 0, onError: (e) => internal.push(e) })
    digest = await pushBlob(reg.url, 'send/app', data)
    bigDigest = await pushBlob(reg.url, 'send/app', big)
  })
  after(async () => {
    await reg.close()
    await cleanup()
    assert.deepEqual(internal, [], 'no request was the server\'s fault')
  })

  it('sends a whole blob and ranges across buffer boundaries, byte for byte', async () => {
    const whole = await get(`${reg.url}/v2/send/app/blobs/${digest}`)
    assert.equal(whole.statusCode, 200)
    assert.equal(whole.headers['content-length'], String(data.length))
    assert.equal(sha(await body(whole)), sha(data))
    const ranges: [number, number][] = [[0, 0], [SEND_CHUNK - 1, SEND_CHUNK], [1, 3 * SEND_CHUNK + 7], [2 * SEND_CHUNK, data.length - 1], [data.length - 10, data.length - 1]]
    for (const [start, end] of ranges) {
      const r = await get(`${reg.url}/v2/send/app/blobs/${digest}`, { Range: `bytes=${start}-${end}` })
      assert.equal(r.statusCode, 206)
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${data.length}`)
      assert.ok((await body(r)).equals(data.subarray(start, end + 1)), `range ${start}-${end}`)
    }
    const suffix = await get(`${reg.url}/v2/send/app/blobs/${digest}`, { Range: 'bytes=-70000' })
    assert.ok((await body(suffix)).equals(data.subarray(data.length - 70_000)))
    assert.equal(storage.open, 0, 'every blob file was closed')
    assert.ok(pooledSendBuffers() >= 1, 'the buffers went back to the pool')
  })

  it('reads no further than a client that stops reading takes', async () => {
    const before = storage.bytesRead
    const res = await get(`${reg.url}/v2/send/app/blobs/${bigDigest}`)
    assert.equal(res.statusCode, 200)
    res.pause()
    await sleep(1500)
    const read = storage.bytesRead - before
    // what the two sockets' kernel buffers hold plus the two buffers in flight: far less than the blob
    assert.ok(read < 48 << 20, `read ${read} bytes of ${big.length} while the client was not reading`)
    res.resume()
    assert.equal(sha(await body(res)), sha(big))
    assert.equal(storage.bytesRead - before, big.length, 'each byte read once')
  })

  it('closes the blob when the client goes away mid-transfer, and serves the next one', async () => {
    const res = await get(`${reg.url}/v2/send/app/blobs/${bigDigest}`)
    await new Promise<void>((resolve) => res.once('data', () => resolve()))
    res.destroy()
    for (let i = 0; i < 50 && storage.open > 0; i++) await sleep(100)
    assert.equal(storage.open, 0, 'the file was closed')
    const again = await get(`${reg.url}/v2/send/app/blobs/${digest}`)
    assert.equal(sha(await body(again)), sha(data))
  })
})
