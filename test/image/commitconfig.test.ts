/** A commit's given config merged with the container's, as Docker's daemon merges them. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mergeCommitConfig } from '../../src/image/commitconfig.js'
import type { ContainerConfig } from '../../src/oci/types.js'

const container: ContainerConfig = {
  User: 'app', Env: ['PATH=/bin', 'A=1'], Cmd: ['serve'], Entrypoint: ['/init'], WorkingDir: '/srv',
  Labels: { a: '1' }, ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} }, StopSignal: 'SIGINT',
  Healthcheck: { Test: ['CMD', 'check'], Interval: 5e9, Retries: 3 }, Shell: ['/bin/bash', '-c'],
}

test('an empty given config takes the container\'s settings, but not its shell', () => {
  const m = mergeCommitConfig({}, container)
  assert.deepEqual(m, {
    User: 'app', Env: ['PATH=/bin', 'A=1'], Cmd: ['serve'], Entrypoint: ['/init'], WorkingDir: '/srv',
    Labels: { a: '1' }, ExposedPorts: { '80/tcp': {} }, Volumes: { '/data': {} }, StopSignal: 'SIGINT',
    Healthcheck: { Test: ['CMD', 'check'], Interval: 5e9, Retries: 3 },
  })
})

test('given fields win; lists and maps gain the container\'s missing entries', () => {
  const m = mergeCommitConfig({ User: 'root', Env: ['A=2'], Labels: { a: 'x', b: '2' }, ExposedPorts: { '8080/tcp': {} }, Volumes: { '/v': {} } }, container)
  assert.equal(m.User, 'root')
  assert.deepEqual(m.Env, ['A=2', 'PATH=/bin'])
  assert.deepEqual(m.Labels, { a: 'x', b: '2' })
  assert.deepEqual(Object.keys(m.ExposedPorts ?? {}).sort(), ['80/tcp', '8080/tcp'])
  assert.deepEqual(Object.keys(m.Volumes ?? {}).sort(), ['/data', '/v'])
})

test('Cmd and Entrypoint: a given entrypoint (even an empty one) keeps the container\'s away', () => {
  assert.deepEqual(mergeCommitConfig({ Cmd: ['x'] }, container).Entrypoint, ['/init'])
  assert.deepEqual(mergeCommitConfig({ Cmd: ['x'] }, container).Cmd, ['x'])
  const e = mergeCommitConfig({ Entrypoint: ['/other'] }, container)
  assert.deepEqual(e.Entrypoint, ['/other'])
  assert.equal(e.Cmd, undefined)
  const empty = mergeCommitConfig({ Entrypoint: [] }, container)
  assert.deepEqual(empty.Entrypoint, [])
  assert.deepEqual(empty.Cmd, ['serve'])
})

test('a given healthcheck is filled field by field', () => {
  assert.deepEqual(mergeCommitConfig({ Healthcheck: { Timeout: 1e9 } }, container).Healthcheck, { Test: ['CMD', 'check'], Interval: 5e9, Timeout: 1e9, Retries: 3 })
})
