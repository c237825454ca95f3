/** Registry answers as coded errors: the code from the body or the status, the words, retries. */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { CairnError, hasCode } from '../../src/errors/index.js'
import { isRetryableStatus, isTemporary, networkError, registryError } from '../../src/remote/errors.js'

describe('registry errors', () => {
  test('a 404 names what is unknown; other statuses their code; a known body code wins', () => {
    const code = (status: number, subject: Parameters<typeof registryError>[3], body = ''): string => registryError(status, body, 'GET x', subject).code
    assert.deepEqual([code(404, 'blob'), code(404, 'manifest'), code(404, 'upload'), code(404, 'repository'), code(404, 'registry'), code(404, 'token')],
      ['BLOB_UNKNOWN', 'MANIFEST_UNKNOWN', 'BLOB_UPLOAD_UNKNOWN', 'NAME_UNKNOWN', 'UNSUPPORTED', 'UNSUPPORTED'])
    assert.deepEqual([code(401, 'blob'), code(403, 'blob'), code(405, 'blob'), code(413, 'blob'), code(416, 'upload'), code(429, 'blob'), code(502, 'blob'), code(418, 'blob')],
      ['UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'SIZE_INVALID', 'BLOB_UPLOAD_INVALID', 'TOOMANYREQUESTS', 'UNAVAILABLE', 'UNKNOWN'])
    assert.equal(code(400, 'manifest', '{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}'), 'MANIFEST_INVALID')
    assert.equal(code(400, 'manifest', '{"errors":[{"code":"NOT_A_CODE"}]}'), 'UNKNOWN')
    assert.equal(code(400, 'manifest', '{"errors":"junk"}'), 'UNKNOWN')
  })

  test('the message: the body\'s message, a short plain body, or the status\'s words', () => {
    assert.equal(registryError(401, '', 'push x', 'blob').message, 'push x: unauthorized: authentication required')
    assert.equal(registryError(403, '', 'push x', 'blob').message, 'push x: denied: requested access to the resource is denied')
    assert.equal(registryError(404, '<html>not found</html>', 'GET x', 'blob').message, 'GET x: not found (HTTP 404)')
    assert.equal(registryError(400, '  quota exceeded \n', 'PUT x', 'blob').message, 'PUT x: quota exceeded (HTTP 400)')
    assert.equal(registryError(400, 'x'.repeat(300), 'PUT x', 'blob').message, 'PUT x: bad request (HTTP 400)')
    assert.equal(registryError(599, '', 'PUT x', 'blob').message, 'PUT x: unexpected status 599 (HTTP 599)')
    const e = registryError(400, '{"errors":[{"code":"DIGEST_INVALID","message":"digest mismatch","detail":{"a":1}}]}', 'PUT x', 'blob')
    assert.equal(e.message, 'PUT x: digest mismatch (HTTP 400)')
    assert.deepEqual(e.detail, { status: 400, detail: { a: 1 } })
  })

  test('what is worth retrying', () => {
    assert.deepEqual([408, 429, 500, 501, 502, 503, 505, 400, 404].map(isRetryableStatus), [true, true, true, false, true, true, false, false, false])
    assert.equal(isTemporary(registryError(503, '', 'GET', 'blob')), true)
    assert.equal(isTemporary(registryError(404, '', 'GET', 'blob')), false)
    assert.equal(isTemporary(new Error('x')), false)
  })

  test('socket failures become UNAVAILABLE (temporary, or not for names and certificates); others pass through', () => {
    const sock = (code: string, message = `connect ${code}`): Error => Object.assign(new Error(message), { code })
    const refused = networkError(sock('ECONNREFUSED'), 'GET https://r/v2/')
    assert.ok(hasCode(refused, 'UNAVAILABLE') && isTemporary(refused))
    assert.match((refused as Error).message, /^GET https:\/\/r\/v2\/: /)
    const closed = networkError(sock('ECONNRESET', 'aborted'), 'GET b')
    assert.ok(hasCode(closed, 'UNAVAILABLE') && isTemporary(closed))
    for (const c of ['ENOTFOUND', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED']) {
      const e = networkError(sock(c), 'GET c')
      assert.ok(hasCode(e, 'UNAVAILABLE') && !isTemporary(e), c)
    }
    const coded = new CairnError('DENIED', 'no')
    assert.equal(networkError(coded, 'x'), coded)
    const other = new Error('other')
    assert.equal(networkError(other, 'x'), other)
    assert.equal(networkError(null, 'x'), null)
  })
})
