// Fuzzing the tar reader (headers, PAX records, GNU long names, sizes in octal and base-256).
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { readTar, writeTar } from '../../src/layer/tar.js'
import { collect } from '../layer/helpers.js'
import { fuzzTest } from './helpers.js'

async function seeds(): Promise<Buffer[]> {
  const long = `dir/${'n'.repeat(180)}/file`
  return [
    await collect(writeTar([
      { header: { path: 'a/', type: 'directory', mode: 0o755 } },
      { header: { path: 'a/file', type: 'file', size: 5, mtime: 1700000000, mtimeNsec: 5 }, body: Buffer.from('hello') },
      { header: { path: 'a/link', type: 'symlink', linkname: '../etc/passwd' } },
      { header: { path: 'a/hard', type: 'hardlink', linkname: 'a/file' } },
      { header: { path: 'a/.wh.gone', type: 'file', size: 0 } },
    ])),
    await collect(writeTar([
      { header: { path: long, type: 'file', size: 1, uname: 'ü'.repeat(40), xattrs: new Map([['user.bin', Buffer.from([0, 255, 10])]]) }, body: Buffer.from('x') },
      { header: { path: 'dev', type: 'char', devmajor: 1, devminor: 3, uid: 2 ** 31 } },
      { header: { path: 'fifo', type: 'fifo' } },
    ])),
  ]
}

describe('fuzz: tar headers', () => {
  it('readTar refuses bad archives with a CairnError and never crashes or hangs', async (t) => {
    await fuzzTest(t, 'tar', async (data) => {
      for await (const { body } of readTar(Readable.from([data]))) {
        for await (const _ of body) { /* drain */ }
      }
    }, {
      seeds: await seeds(),
      dictionary: ['ustar\x0000', 'ustar  \x00', 'PaxHeader', 'path=', 'linkpath=', 'size=', 'mtime=', 'SCHILY.xattr.', 'GNU.sparse', '././@LongLink', '\x80\x00\x00\x00', '\xff\xff\xff\xff', '0000777\x00', ' 1 '],
    })
  })
})
