/**
 * Cases ported from distribution/reference's tests (normalize_test.go, reference_test.go,
 * regexp_test.go), plus the references of the seed transcript. Messages were checked
 * against the docker 28.2 CLI, which parses references on the client side.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  familiarName, familiarString, formatReference, isNameValid, isTagValid, looksLikeIdPrefix,
  parseReference, parseRepositoryTag, repositoryName, withDefaultTag, type Reference,
} from '../../src/oci/reference.js'
import { hasCode } from '../../src/errors/index.js'
import type { Digest } from '../../src/oci/digest.js'

const SHA256 = 'sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'
const SHA512 = `sha512:${'f'.repeat(128)}`
const HEX64 = '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a'

interface Valid {
  input: string
  domain: string
  path: string
  tag?: string
  digest?: string
  /** familiarString of the result; defaults to the input. */
  familiar?: string
}

const valid: Valid[] = [
  // normalisation to Docker Hub
  { input: 'ubuntu', domain: 'docker.io', path: 'library/ubuntu' },
  { input: 'ubuntu:latest', domain: 'docker.io', path: 'library/ubuntu', tag: 'latest' },
  { input: 'debian', domain: 'docker.io', path: 'library/debian' },
  { input: 'library/debian', domain: 'docker.io', path: 'library/debian', familiar: 'debian' },
  { input: 'docker.io/library/debian', domain: 'docker.io', path: 'library/debian', familiar: 'debian' },
  { input: 'docker.io/debian', domain: 'docker.io', path: 'library/debian', familiar: 'debian' },
  { input: 'index.docker.io/debian', domain: 'docker.io', path: 'library/debian', familiar: 'debian' },
  { input: 'index.docker.io/library/debian', domain: 'docker.io', path: 'library/debian', familiar: 'debian' },
  { input: 'docker/docker', domain: 'docker.io', path: 'docker/docker' },
  { input: 'docker.io/docker/docker', domain: 'docker.io', path: 'docker/docker', familiar: 'docker/docker' },
  { input: 'index.docker.io/docker/docker', domain: 'docker.io', path: 'docker/docker', familiar: 'docker/docker' },
  { input: 'fooo/bar', domain: 'docker.io', path: 'fooo/bar' },
  { input: 'index.docker.io/fooo/bar', domain: 'docker.io', path: 'fooo/bar', familiar: 'fooo/bar' },
  { input: 'nonlibrary/ubuntu', domain: 'docker.io', path: 'nonlibrary/ubuntu' },
  { input: 'other/library', domain: 'docker.io', path: 'other/library' },
  { input: 'library/ubuntu-12.04-base', domain: 'docker.io', path: 'library/ubuntu-12.04-base', familiar: 'ubuntu-12.04-base' },
  { input: 'docker.io/library/foo/bar', domain: 'docker.io', path: 'library/foo/bar', familiar: 'library/foo/bar' },
  { input: 'store/foo/bar', domain: 'docker.io', path: 'store/foo/bar' },
  { input: 'test_com/foo', domain: 'docker.io', path: 'test_com/foo' },
  { input: 'docker/migrator', domain: 'docker.io', path: 'docker/migrator' },
  { input: 'huzd/iredis:1.1.1', domain: 'docker.io', path: 'huzd/iredis', tag: '1.1.1' },
  { input: 'ubuntuwithvim:1.0.0', domain: 'docker.io', path: 'library/ubuntuwithvim', tag: '1.0.0' },
  // other registries
  { input: 'registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0', domain: 'registry.cn-qingdao.aliyuncs.com', path: 'huzd/test', tag: '1.0.0' },
  { input: `localhost:5000/a/b@${SHA256}`, domain: 'localhost:5000', path: 'a/b', digest: SHA256 },
  { input: 'localhost/foo', domain: 'localhost', path: 'foo' },
  { input: '127.0.0.1:8000/private/moonbase', domain: '127.0.0.1:8000', path: 'private/moonbase' },
  { input: '127.0.0.1:8000/privatebase', domain: '127.0.0.1:8000', path: 'privatebase' },
  { input: 'example.com/private/moonbase', domain: 'example.com', path: 'private/moonbase' },
  { input: 'example.com:8000/privatebasee', domain: 'example.com:8000', path: 'privatebasee' },
  { input: '192.168.0.1:8/debian', domain: '192.168.0.1:8', path: 'debian' },
  { input: 'test:5000/repo', domain: 'test:5000', path: 'repo' },
  { input: 'test:5000/repo:tag', domain: 'test:5000', path: 'repo', tag: 'tag' },
  { input: `test:5000/repo@${SHA256}`, domain: 'test:5000', path: 'repo', digest: SHA256 },
  { input: `test:5000/repo:tag@${SHA256}`, domain: 'test:5000', path: 'repo', tag: 'tag', digest: SHA256 },
  { input: 'test.com:8080/foo', domain: 'test.com:8080', path: 'foo' },
  { input: 'test-com:8080/foo', domain: 'test-com:8080', path: 'foo' },
  { input: 'xn--n3h.com:18080/foo', domain: 'xn--n3h.com:18080', path: 'foo' },
  { input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag', domain: 'sub-dom1.foo.com', path: 'bar/baz/quux', tag: 'some-long-tag' },
  { input: 'b.gcr.io/test.example.com/my-app:test.example.com', domain: 'b.gcr.io', path: 'test.example.com/my-app', tag: 'test.example.com' },
  { input: 'xn--n3h.com/myimage:xn--n3h.com', domain: 'xn--n3h.com', path: 'myimage', tag: 'xn--n3h.com' },
  { input: `xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`, domain: 'xn--7o8h.com', path: 'myimage', tag: 'xn--7o8h.com', digest: SHA512 },
  { input: 'registry.io/foo/project--id.module--name.ver---sion--name', domain: 'registry.io', path: 'foo/project--id.module--name.ver---sion--name' },
  { input: 'example.com/some_separator__underscore/myimage', domain: 'example.com', path: 'some_separator__underscore/myimage' },
  // IP addresses
  { input: '[::1]:5000/x', domain: '[::1]:5000', path: 'x' },
  { input: '[fc00::1]:5000/docker/docker', domain: '[fc00::1]:5000', path: 'docker/docker' },
  { input: '[fc00:1:2:3:4:5:6:7]:5000/library/debian', domain: '[fc00:1:2:3:4:5:6:7]:5000', path: 'library/debian' },
  { input: '[2001:db8::1]/repo', domain: '[2001:db8::1]', path: 'repo' },
  { input: `[2001:db8::1]:5000/repo:tag@${SHA256}`, domain: '[2001:db8::1]:5000', path: 'repo', tag: 'tag', digest: SHA256 },
  // tags, digests, both
  { input: 'lowercase:Uppercase', domain: 'docker.io', path: 'library/lowercase', tag: 'Uppercase' },
  { input: `busybox:latest@${SHA256}`, domain: 'docker.io', path: 'library/busybox', tag: 'latest', digest: SHA256 },
  { input: `redis@${SHA256}`, domain: 'docker.io', path: 'library/redis', digest: SHA256 },
  { input: `dmcgowan/myapp@${SHA256}`, domain: 'docker.io', path: 'dmcgowan/myapp', digest: SHA256 },
  { input: `ubuntu:${'t'.repeat(128)}`, domain: 'docker.io', path: 'library/ubuntu', tag: 't'.repeat(128) },
  { input: 'ubuntu:_x.y-z', domain: 'docker.io', path: 'library/ubuntu', tag: '_x.y-z' },
  // remote-name grammar
  { input: 'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', domain: 'docker.io', path: 'library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev' },
  { input: 'docker-rules/docker', domain: 'docker.io', path: 'docker-rules/docker' },
  { input: 'docker---rules/docker', domain: 'docker.io', path: 'docker---rules/docker' },
  { input: 'doc/docker', domain: 'docker.io', path: 'doc/docker' },
  { input: 'd/docker', domain: 'docker.io', path: 'd/docker' },
  { input: 'jess/t', domain: 'docker.io', path: 'jess/t' },
  { input: 'dock__er/docker', domain: 'docker.io', path: 'dock__er/docker' },
  // Docker's quirks, reproduced
  { input: 'Docker/docker', domain: 'Docker', path: 'docker' }, // an upper-case first component is a host
  { input: 'FOO/bar', domain: 'FOO', path: 'bar' },
  { input: `docker.io/${HEX64}`, domain: 'docker.io', path: `library/${HEX64}`, familiar: HEX64 },
  { input: `${HEX64}:latest`, domain: 'docker.io', path: `library/${HEX64}`, tag: 'latest' }, // only a bare 64-hex is refused
  { input: 'foo_bar.com/x', domain: '', path: 'foo_bar.com/x' }, // looks like a host, is not one: a plain path
  { input: `localhost:8080@${SHA256}`, domain: 'docker.io', path: 'library/localhost', tag: '8080', digest: SHA256 },
  { input: '192.168.1.1:5000', domain: 'docker.io', path: 'library/192.168.1.1', tag: '5000' },
  { input: 'a'.repeat(247), domain: 'docker.io', path: `library/${'a'.repeat(247)}` }, // path (library/…) is 255
  { input: `registry.example.com:5000/${'a'.repeat(240)}`, domain: 'registry.example.com:5000', path: 'a'.repeat(240) }, // the domain does not count
]

describe('parseReference: valid references', () => {
  for (const c of valid) {
    it(c.input.length > 80 ? `${c.input.slice(0, 77)}...` : c.input, () => {
      const ref = parseReference(c.input)
      const expected: Reference = { domain: c.domain, path: c.path }
      if (c.tag !== undefined) expected.tag = c.tag
      if (c.digest !== undefined) expected.digest = c.digest as Digest
      assert.deepEqual(ref, expected)
      assert.equal('tag' in ref, c.tag !== undefined, 'no tag key unless tagged')
      assert.equal('digest' in ref, c.digest !== undefined, 'no digest key unless digested')
      assert.equal(familiarString(ref), c.familiar ?? c.input)
      // the full form parses back to the same reference
      assert.deepEqual(parseReference(formatReference(ref)), ref)
    })
  }
})

const invalid: Array<[input: string, message: string]> = [
  ['', 'invalid reference format'],
  ['Ubuntu', 'invalid reference format: repository name (library/Ubuntu) must be lowercase'],
  ['library/Ubuntu:1', 'invalid reference format: repository name (library/Ubuntu) must be lowercase'],
  ['Uppercase:tag', 'invalid reference format: repository name (library/Uppercase) must be lowercase'],
  ['docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
  ['docker.io/docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
  ['test:5000/Uppercase/lowercase:tag', 'invalid reference format: repository name (Uppercase/lowercase) must be lowercase'],
  [`ubuntu@SHA256:${'f'.repeat(64)}`, 'invalid reference format: repository name (library/ubuntu@SHA256) must be lowercase'],
  ['Foo_Bar/x', 'invalid reference format: repository name must be lowercase'],
  [HEX64, `invalid repository name (${HEX64}), cannot specify 64-byte hexadecimal strings`],
  ['a'.repeat(248), 'invalid reference format: repository name must not be more than 255 characters'],
  [`${'a/'.repeat(128)}a:tag`, 'invalid reference format: repository name must not be more than 255 characters'],
  [`this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_${'x'.repeat(200)}/docker`, 'invalid reference format: repository name must not be more than 255 characters'],
  ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'invalid reference format: invalid checksum digest length'],
  [`validname@invaliddigest:${'f'.repeat(64)}`, 'invalid reference format: unsupported digest algorithm'],
  [`validname@constructor:${'f'.repeat(64)}`, 'invalid reference format: unsupported digest algorithm'],
  [`validname@sha384:${'f'.repeat(96)}`, 'invalid reference format: unsupported digest algorithm'], // Docker accepts sha384
  [`ubuntu@sha256:${'F'.repeat(64)}`, 'invalid reference format: invalid checksum digest format'],
  ['ubuntu@sha256:abc', 'invalid reference format'],
  ['ubuntu:-bad', 'invalid reference format'],
  [`ubuntu:${'t'.repeat(129)}`, 'invalid reference format'],
  ['ubuntu:a:b', 'invalid reference format'],
  [':justtag', 'invalid reference format'],
  [`@${SHA256}`, 'invalid reference format'],
  ['https://github.com/docker/docker', 'invalid reference format'],
  ['-docker', 'invalid reference format'],
  ['-docker/docker', 'invalid reference format'],
  ['-docker.io/docker/docker', 'invalid reference format'],
  ['docker-/docker', 'invalid reference format'],
  ['-docker-/docker', 'invalid reference format'],
  ['docker///docker', 'invalid reference format'],
  ['docker.io/docker///docker', 'invalid reference format'],
  ['____/____', 'invalid reference format'],
  ['_docker/_docker', 'invalid reference format'],
  ['dock..er/docker', 'invalid reference format'],
  ['dock_.er/docker', 'invalid reference format'],
  ['dock-.er/docker', 'invalid reference format'],
  ['docker/', 'invalid reference format'],
  ['aa/asdf$$^/aa', 'invalid reference format'],
  ['example.com/__underscore/myimage', 'invalid reference format'],
  ['example.com/.dots/myimage', 'invalid reference format'],
  ['do__cker:8080/docker', 'invalid reference format'],
  ['bad_hostname.com:8080/myapp:tag', 'invalid reference format'],
  ['localhost:http/name', 'invalid reference format'],
  ['[fc00::1]', 'invalid reference format'],
  ['[fc00::1]:5000', 'invalid reference format'],
  ['fc00::1:5000/debian', 'invalid reference format'],
  ['[fe80::1%eth0]:5000/debian', 'invalid reference format'],
  ['[2001:db8:3:4::192.0.2.33]:5000/debian', 'invalid reference format'],
  [' ubuntu', 'invalid reference format'],
]

describe('parseReference: invalid references', () => {
  for (const [input, message] of invalid) {
    it(input.length > 80 ? `${input.slice(0, 77)}...` : JSON.stringify(input), () => {
      assert.throws(() => parseReference(input), (err: unknown) => {
        assert.ok(hasCode(err, 'INVALID_REFERENCE'), `code of ${String(err)}`)
        assert.equal((err as Error).message, message)
        return true
      })
    })
  }
})

describe('parseReference: pathological input stays fast', () => {
  it('long near-miss strings fail in milliseconds', () => {
    const inputs = [
      `${'a'.repeat(5000)}!`, `${'a-'.repeat(3000)}!`, `${'a.'.repeat(3000)}/!`, `${'a'.repeat(3000)}:${'b'.repeat(3000)}`,
      `${'a_'.repeat(3000)}`, `${'a0-'.repeat(2000)}.com:5000/${'b__'.repeat(2000)}`,
    ]
    const start = performance.now()
    for (const s of inputs) assert.throws(() => parseReference(s))
    assert.ok(performance.now() - start < 2000, 'parsing took too long')
  })
})

describe('printing', () => {
  const cases: Array<[input: string, full: string, familiar: string, repository: string]> = [
    ['ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'docker.io/library/ubuntu'],
    ['huzd/test:1.0.0', 'docker.io/huzd/test:1.0.0', 'huzd/test', 'docker.io/huzd/test'],
    ['registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0', 'registry.cn-qingdao.aliyuncs.com/huzd/test:1.0.0',
      'registry.cn-qingdao.aliyuncs.com/huzd/test', 'registry.cn-qingdao.aliyuncs.com/huzd/test'],
    [`localhost:5000/a/b@${SHA256}`, `localhost:5000/a/b@${SHA256}`, 'localhost:5000/a/b', 'localhost:5000/a/b'],
    ['docker.io/library/foo/bar', 'docker.io/library/foo/bar', 'library/foo/bar', 'docker.io/library/foo/bar'],
    ['foo_bar.com/x:1', 'foo_bar.com/x:1', 'foo_bar.com/x', 'foo_bar.com/x'],
  ]
  for (const [input, full, familiar, repository] of cases) {
    it(input, () => {
      const ref = parseReference(input)
      assert.equal(formatReference(ref), full)
      assert.equal(familiarName(ref), familiar)
      assert.equal(repositoryName(ref), repository)
    })
  }

  it('formats tag and digest together', () => {
    const ref = parseReference(`busybox:latest@${SHA256}`)
    assert.equal(formatReference(ref), `docker.io/library/busybox:latest@${SHA256}`)
    assert.equal(familiarString(ref), `busybox:latest@${SHA256}`)
  })
})

describe('withDefaultTag', () => {
  it('adds latest only when there is neither tag nor digest', () => {
    assert.equal(formatReference(withDefaultTag(parseReference('ubuntu'))), 'docker.io/library/ubuntu:latest')
    assert.equal(formatReference(withDefaultTag(parseReference('ubuntu:22.04'))), 'docker.io/library/ubuntu:22.04')
    assert.equal(formatReference(withDefaultTag(parseReference(`ubuntu@${SHA256}`))), `docker.io/library/ubuntu@${SHA256}`)
  })
  it('does not modify its argument', () => {
    const ref = parseReference('ubuntu')
    withDefaultTag(ref)
    assert.deepEqual(ref, { domain: 'docker.io', path: 'library/ubuntu' })
  })
})

describe('parseRepositoryTag', () => {
  it('reads REPOSITORY[:TAG] with latest as the default tag', () => {
    assert.deepEqual(parseRepositoryTag('ubuntuwithvim:1.0.0'), { domain: 'docker.io', path: 'library/ubuntuwithvim', tag: '1.0.0' })
    assert.deepEqual(parseRepositoryTag('huzd/test'), { domain: 'docker.io', path: 'huzd/test', tag: 'latest' })
    assert.deepEqual(parseRepositoryTag('localhost:5000/x'), { domain: 'localhost:5000', path: 'x', tag: 'latest' })
  })
  it('refuses a digest with Docker\'s message', () => {
    for (const s of [`b@${SHA256}`, `b:1@${SHA256}`]) {
      assert.throws(() => parseRepositoryTag(s), (err: unknown) => {
        assert.ok(hasCode(err, 'INVALID_REFERENCE'))
        assert.equal((err as Error).message, 'refusing to create a tag with a digest reference')
        return true
      })
    }
  })
  it('passes grammar errors through', () => {
    assert.throws(() => parseRepositoryTag('Bad'), /must be lowercase/)
  })
})

describe('isNameValid (OCI distribution-spec <name>)', () => {
  const good = ['a', 'library/ubuntu', 'huzd/test', 'a/b/c/d', 'foo_bar', 'foo__bar', 'foo---bar', 'a.b/c-d', 'x'.repeat(255)]
  const bad = ['', 'A', 'library/Ubuntu', '/a', 'a/', 'a//b', '_a', 'a_', 'a___b', 'a..b', 'a._b', '-a', 'a-',
    'localhost:5000/a', 'a b', 'a:b', 'a@b', 'x'.repeat(256)]
  for (const n of good) it(`accepts ${n.slice(0, 40)}`, () => assert.equal(isNameValid(n), true))
  for (const n of bad) it(`refuses ${JSON.stringify(n.slice(0, 40))}`, () => assert.equal(isNameValid(n), false))
})

describe('isTagValid', () => {
  it('follows [\\w][\\w.-]{0,127}', () => {
    for (const t of ['latest', '1.0.0', 'A', '_', 'v1_2-3.4', 'x'.repeat(128)]) assert.equal(isTagValid(t), true, t)
    for (const t of ['', '-a', '.a', 'a:b', 'a/b', 'x'.repeat(129), 'é']) assert.equal(isTagValid(t), false, t)
  })
})

describe('looksLikeIdPrefix', () => {
  it('is true for 1 to 64 lower-case hex characters', () => {
    for (const s of ['7', '753', '753e19c60999', HEX64]) assert.equal(looksLikeIdPrefix(s), true, s)
    for (const s of ['', 'ubuntu', '753G', '753E', `${HEX64}0`, 'sha256:753', ' 753']) assert.equal(looksLikeIdPrefix(s), false, s)
  })
})
