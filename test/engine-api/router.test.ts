/** The router on its own: version prefixes, path parameters, 404/405/400; and the README's table is current. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { fileURLToPath } from 'node:url'
import { Router } from '../../src/engine-api/router.js'
import { ROUTES } from '../../src/engine-api/routes.js'
import { HttpError } from '../../src/engine-api/errors.js'
import type { Exchange } from '../../src/engine-api/exchange.js'
import { withCurrentTable } from '../../scripts/endpoint-table.js'

function fake(method: string, url: string): Exchange {
  return { req: { method, url } as IncomingMessage, method, path: '/', version: '', params: {} } as unknown as Exchange
}

test('routes match with and without a version prefix; image names keep their slashes', () => {
  const r = new Router(ROUTES)
  const x = fake('GET', '/v1.47/images/localhost:5000/a/b:1/json')
  assert.equal(r.match(x).path, '/images/{name*}/json')
  assert.equal(x.params['name'], 'localhost:5000/a/b:1')
  assert.equal(x.version, '1.47')
  const d = fake('DELETE', '/images/team/app%3Av2')
  assert.equal(r.match(d).path, '/images/{name*}')
  assert.equal(d.params['name'], 'team/app:v2')
  const c = fake('POST', '/containers/abc/start')
  assert.equal(r.match(c).path, '/containers/{id}/start')
  assert.equal(c.params['id'], 'abc')
  const status = (m: string, u: string): number => {
    try {
      r.match(fake(m, u))
      return 200
    } catch (err) {
      return err instanceof HttpError ? err.status : 0
    }
  }
  assert.equal(status('GET', '/v1.99/info'), 400)
  assert.equal(status('GET', '/v1.12/info'), 400)
  assert.equal(status('GET', '/nope'), 404)
  assert.equal(status('DELETE', '/info'), 405)
  assert.equal(status('GET', '/containers/a%00b/json'), 400)
})

test("the README's endpoint table is the router's", () => {
  const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8')
  assert.equal(withCurrentTable(readme), readme, 'README.md is stale: run node build/scripts/endpoint-table.js')
})
