/**
 * The YAML subset, the configuration file, and `cairn registry serve --config FILE` end to end.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { applyConfig, defaultConfig, htpasswdLine, loadRegistryConfig, parseDuration, parseListen, parseSize, parseYaml } from '../../src/registry/index.js'
import { cairn, tempDir } from '../helpers/cairn.js'
import { basic, pushImage, request, serveProcess } from './helpers.js'

describe('YAML subset', () => {
  it('reads mappings, sequences, flow collections, scalars, quotes, comments and block scalars', () => {
    const doc = parseYaml(`---
# a comment
listen: 127.0.0.1:5000   # trailing comment
root: "/var/lib/x # not a comment"
quoted: 'it''s'
n: 42
f: 1.5
yes: true
nothing: ~
list:
  - a
  - "b c"
  - {x: 1, y: [p, q]}
nested:
  deeper:
    key: value
items:
- name: one
  actions: [pull, push]
- name: two
pem: |
  -----BEGIN-----
  abc
  -----END-----
empty:
`)
    assert.deepEqual(doc, {
      listen: '127.0.0.1:5000',
      root: '/var/lib/x # not a comment',
      quoted: "it's",
      n: 42,
      f: 1.5,
      yes: true,
      nothing: null,
      list: ['a', 'b c', { x: 1, y: ['p', 'q'] }],
      nested: { deeper: { key: 'value' } },
      items: [{ name: 'one', actions: ['pull', 'push'] }, { name: 'two' }],
      pem: '-----BEGIN-----\nabc\n-----END-----\n',
      empty: null,
    })
  })

  it('refuses what it does not support, with the line number', () => {
    for (const [text, re] of [
      ['a: 1\na: 2', /line 2: duplicate key/],
      ['a:\n\t- x', /tabs/],
      ['a: &anchor 1', /anchors/],
      ['a: 1\n---\nb: 2', /multiple documents/],
      ['a: [1, 2', /flow sequence/],
      ['__proto__: 1', /__proto__/],
    ] as const) assert.throws(() => parseYaml(text), re)
  })
})

describe('configuration', () => {
  it('parses durations, sizes and listen addresses', () => {
    assert.equal(parseDuration('90', 'x'), 90_000)
    assert.equal(parseDuration('5m', 'x'), 300_000)
    assert.equal(parseDuration('1.5h', 'x'), 5_400_000)
    assert.equal(parseDuration(30, 'x'), 30_000)
    assert.throws(() => parseDuration('soon', 'gc.interval'), /gc.interval/)
    assert.equal(parseSize('4MiB', 'x'), 4 << 20)
    assert.equal(parseSize(1024, 'x'), 1024)
    assert.deepEqual(parseListen(':5000'), { host: '0.0.0.0', port: 5000 })
    assert.deepEqual(parseListen('[::1]:5000'), { host: '::1', port: 5000 })
    assert.throws(() => parseListen('localhost'), /HOST:PORT/)
  })

  it('applies a file over the defaults, resolving paths against its folder, and rejects unknown keys', () => {
    const cfg = applyConfig(parseYaml(`
listen: 0.0.0.0:5443
root: data
readOnly: true
tls: { cert: tls/cert.pem, key: tls/key.pem }
auth:
  htpasswd: htpasswd
  token:
    service: reg
    key: /etc/token.pem
    expiration: 10m
access:
  anonymousPull: true
  groups:
    dev: [alice]
  rules:
    - repository: team/*
      groups: [dev]
      actions: [pull, push]
rateLimit: { rate: 50 }
gc: { interval: 24h, gracePeriod: 2h, deleteUntagged: true }
log: { access: none }
limits: { manifestSize: 1MiB }
`), defaultConfig(), '/etc/cairn')
    assert.equal(cfg.listen, '0.0.0.0:5443')
    assert.equal(cfg.root, '/etc/cairn/data')
    assert.equal(cfg.readOnly, true)
    assert.deepEqual(cfg.tls, { cert: '/etc/cairn/tls/cert.pem', key: '/etc/cairn/tls/key.pem' })
    assert.equal(cfg.auth.htpasswd, '/etc/cairn/htpasswd')
    assert.deepEqual(cfg.auth.token, { service: 'reg', issuer: 'cairn-token-server', expirationSeconds: 600, key: '/etc/token.pem' })
    assert.deepEqual(cfg.access.rules, [{ repositories: ['team/*'], groups: ['dev'], actions: ['pull', 'push'] }])
    assert.deepEqual(cfg.rateLimit, { rate: 50 })
    assert.deepEqual(cfg.gc, { intervalMs: 86_400_000, gracePeriodMs: 7_200_000, deleteUntagged: true })
    assert.equal(cfg.accessLog, 'none')
    assert.equal(cfg.manifestLimit, 1 << 20)
    assert.throws(() => applyConfig(parseYaml('listen: 1:2\nfoo: 1'), defaultConfig(), '/'), /foo unknown key/)
    assert.throws(() => applyConfig(parseYaml('access:\n  rules:\n    - repository: x\n      actions: [fly]'), defaultConfig(), '/'), /unknown action/)
    assert.throws(() => applyConfig(parseYaml('tls: { cert: a }'), defaultConfig(), '/'), /both cert and key/)
  })

  it('serves from a configuration file: cairn registry serve --config FILE', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-config-')
    t.after(cleanup)
    await writeFile(`${dir}/htpasswd`, `${await htpasswdLine('alice', 'secret', 4)}\n`)
    await writeFile(`${dir}/registry.yaml`, `# test configuration
root: store
auth:
  htpasswd: htpasswd
access:
  anonymousPull: true
log:
  access: access.log
`)
    const cfg = await loadRegistryConfig(`${dir}/registry.yaml`)
    assert.equal(cfg.root, `${dir}/store`)
    const reg = await serveProcess(`${dir}/store`, ['--config', `${dir}/registry.yaml`])
    t.after(() => reg.kill())
    assert.match(reg.stderr(), /auth basic/)
    const img = await pushImage(reg.url, 'cfg/app', 'v1', undefined, basic('alice', 'secret'))
    assert.deepEqual((await request(reg.url, 'GET', '/v2/cfg/app/manifests/v1')).body, img.manifest, 'anonymous pull')
    assert.equal((await request(reg.url, 'POST', '/v2/cfg/app/blobs/uploads/')).status, 401)
    assert.equal((await reg.stop()).code, 0)
    const { readFile } = await import('node:fs/promises')
    const lines = (await readFile(`${dir}/access.log`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { user?: string; status: number })
    assert.ok(lines.some((l) => l.user === 'alice' && l.status === 201))
    // a broken configuration is a clear error, exit 1
    await writeFile(`${dir}/bad.yaml`, 'listen: nowhere\n')
    const bad = await cairn(dir, ['registry', 'serve', '--config', `${dir}/bad.yaml`])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /^Error: configuration: listen must be HOST:PORT/m)
  })

  it('makes keys and htpasswd lines from the command line', async (t) => {
    const { dir, cleanup } = await tempDir('cairn-registry-keygen-')
    t.after(cleanup)
    const k = await cairn(dir, ['registry', 'keygen'])
    assert.equal(k.code, 0)
    assert.match(k.stdout, /^-----BEGIN PRIVATE KEY-----/)
    const h = await cairn(dir, ['registry', 'htpasswd', 'alice', '--cost', '4'], { input: 'pw\n' })
    assert.equal(h.code, 0, h.stderr)
    assert.match(h.stdout, /^alice:\$2[aby]\$04\$/)
  })
})
