/** `-c` instructions as Docker applies them to an image config. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { applyChanges } from '../../src/image/changes.js'
import { hasCode } from '../../src/errors/index.js'

test('CMD and ENTRYPOINT in exec and shell form', () => {
  assert.deepEqual(applyChanges({}, ['CMD ["/bin/sh", "-c", "echo hi"]']).Cmd, ['/bin/sh', '-c', 'echo hi'])
  assert.deepEqual(applyChanges({}, ['CMD echo hi there']).Cmd, ['/bin/sh', '-c', 'echo hi there'])
  assert.deepEqual(applyChanges({}, ['entrypoint ["/init"]']).Entrypoint, ['/init'])
  assert.deepEqual(applyChanges({}, ['ENTRYPOINT [not json']).Entrypoint, ['/bin/sh', '-c', '[not json'])
})

test('ENV: key=value pairs with quotes, the legacy form, replacement and expansion', () => {
  const base = { Env: ['PATH=/usr/bin', 'A=old'] }
  const cfg = applyChanges(base, ['ENV A=new B="two words" C=\'$PATH\'', 'ENV D $PATH:/opt/bin', 'ENV E=${PATH}:/x F=${NOPE:-dflt}'])
  assert.deepEqual(cfg.Env, ['PATH=/usr/bin', 'A=new', 'B=two words', 'C=$PATH', 'D=/usr/bin:/opt/bin', 'E=/usr/bin:/x', 'F=dflt'])
  assert.deepEqual(base.Env, ['PATH=/usr/bin', 'A=old'], 'the input is not modified')
})

test('LABEL, EXPOSE, VOLUME, USER, WORKDIR, ONBUILD', () => {
  const cfg = applyChanges({ WorkingDir: '/srv' }, [
    'LABEL org.example.a=1 "b c"="d e"',
    'EXPOSE 80 443/tcp 53/udp 8000-8002',
    'VOLUME ["/data", "/logs"]',
    'VOLUME /cache',
    'USER nobody:nogroup',
    'WORKDIR app',
    'ONBUILD RUN echo child',
  ])
  assert.deepEqual(cfg.Labels, { 'org.example.a': '1', 'b c': 'd e' })
  assert.deepEqual(Object.keys(cfg.ExposedPorts ?? {}).sort(), ['443/tcp', '53/udp', '80/tcp', '8000/tcp', '8001/tcp', '8002/tcp'])
  assert.deepEqual(Object.keys(cfg.Volumes ?? {}), ['/data', '/logs', '/cache'])
  assert.equal(cfg.User, 'nobody:nogroup')
  assert.equal(cfg.WorkingDir, '/srv/app')
  assert.deepEqual(cfg.OnBuild, ['RUN echo child'])
})

test('what Docker refuses is refused with a clear error', () => {
  for (const bad of ['RUN echo', 'FROM x', 'ADD a b', '', 'EXPOSE', 'EXPOSE 99999', 'EXPOSE http', 'LABEL novalue', 'ENV', 'ONBUILD FROM x', 'VOLUME ["a", 1]', 'ENV A="unterminated']) {
    assert.throws(() => applyChanges({}, [bad]), (e) => hasCode(e, 'INVALID_ARGUMENT'), bad)
  }
})
