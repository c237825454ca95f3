/** The registry client's pure parts and its HTTP plumbing, on in-test servers. */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { access, chmod, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { mergeScopes, parseChallenges } from '../../src/remote/auth.js'
import { parseRange } from '../../src/remote/client.js'
import { apiHost, credentialKey, defaultRemoteConfig, isInsecure, normalizeServer } from '../../src/remote/config.js'
import { proxyFor } from '../../src/remote/proxy.js'
import { selectManifest, parsePlatform } from '../../src/remote/platform.js'
import { DockerCredentials } from '../../src/remote/credentials.js'
import { Transport } from '../../src/remote/http.js'
import { registryError, isRetryableStatus } from '../../src/remote/errors.js'
import { hasCode } from '../../src/errors/index.js'
import type { ImageIndex } from '../../src/oci/types.js'
import { asDigest } from '../../src/oci/digest.js'
import { tempDir } from '../helpers/cairn.js'
import { sweepDownloads, PARTIAL_KEEP_MS } from '../../src/remote/download.js'
import { readdirSync, utimesSync } from 'node:fs'

test('WWW-Authenticate challenges: Bearer with quoted params, Basic, several at once', () => {
  const [b] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"')
  assert.deepEqual(b, { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/ubuntu:pull' } })
  assert.deepEqual(parseChallenges('Basic realm="cairn-test"'), [{ scheme: 'basic', params: { realm: 'cairn-test' } }])
  const two = parseChallenges('Basic realm="a", Bearer realm="https://x/t",service=x,error="insufficient_scope"')
  assert.equal(two.length, 2)
  assert.equal(two[1]?.params['error'], 'insufficient_scope')
  assert.deepEqual(mergeScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull']), ['repository:a:pull,push', 'repository:b:pull'])
})

test('upload ranges as distribution reports them', () => {
  assert.equal(parseRange(undefined), 0)
  assert.equal(parseRange('0-0'), 0)
  assert.equal(parseRange('0-1048575'), 1048576)
  assert.equal(parseRange('bytes=0-99'), 100)
})

test('Docker Hub names, config keys and insecure registries', () => {
  assert.equal(apiHost('docker.io'), 'registry-1.docker.io')
  assert.equal(credentialKey('docker.io'), 'https://index.docker.io/v1/')
  for (const s of ['https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io', 'docker.io']) assert.equal(normalizeServer(s), 'docker.io')
  assert.equal(normalizeServer('http://Registry.Local:5000/'), 'registry.local:5000')
  assert.equal(credentialKey('registry.local:5000'), 'registry.local:5000')
  const cfg = { ...defaultRemoteConfig(), insecureRegistries: ['registry.local:5000', '10.1.0.0/16'] }
  assert.equal(isInsecure('127.0.0.1:5000', cfg), true)
  assert.equal(isInsecure('localhost:5000', cfg), true)
  assert.equal(isInsecure('[::1]:5000', cfg), true)
  assert.equal(isInsecure('registry.local:5000', cfg), true)
  assert.equal(isInsecure('registry.local:5001', cfg), false)
  assert.equal(isInsecure('10.1.2.3:443', cfg), true)
  assert.equal(isInsecure('10.2.0.1', cfg), false)
  assert.equal(isInsecure('registry-1.docker.io', cfg), false)
})

test('proxies from the environment, as Go reads them', () => {
  const env = { HTTPS_PROXY: 'http://proxy:3128', http_proxy: 'proxy:8080', NO_PROXY: '.internal,registry.local:5000,10.0.0.0/8' }
  assert.equal(proxyFor(new URL('https://registry-1.docker.io/v2/'), env)?.href, 'http://proxy:3128/')
  assert.equal(proxyFor(new URL('http://example.com/'), env)?.href, 'http://proxy:8080/')
  assert.equal(proxyFor(new URL('https://a.internal/'), env), undefined)
  assert.equal(proxyFor(new URL('http://registry.local:5000/'), env), undefined)
  assert.equal(proxyFor(new URL('http://registry.local:5001/'), env)?.href, 'http://proxy:8080/')
  assert.equal(proxyFor(new URL('http://10.3.4.5/'), env), undefined)
  assert.equal(proxyFor(new URL('http://127.0.0.1:5000/'), env), undefined, 'loopback is never proxied')
  assert.equal(proxyFor(new URL('https://x/'), { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }), undefined)
})

test('manifest lists: platform selection with variants', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: 'm', digest: asDigest('sha256:' + 'a'.repeat(64)), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'm', digest: asDigest('sha256:' + 'b'.repeat(64)), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { mediaType: 'm', digest: asDigest('sha256:' + 'c'.repeat(64)), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { mediaType: 'm', digest: asDigest('sha256:' + 'd'.repeat(64)), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  }
  assert.equal(selectManifest(index, parsePlatform('linux/amd64'))?.digest.slice(7, 8), 'a')
  assert.equal(selectManifest(index, parsePlatform('linux/arm'))?.digest.slice(7, 8), 'c')
  assert.equal(selectManifest(index, parsePlatform('linux/arm/v6'))?.digest.slice(7, 8), 'b')
  assert.equal(selectManifest(index, parsePlatform('linux/aarch64'))?.digest.slice(7, 8), 'd')
  assert.equal(selectManifest(index, parsePlatform('linux/s390x')), undefined)
  assert.throws(() => parsePlatform('linux'), (e: unknown) => hasCode(e, 'INVALID_ARGUMENT'))
})

test('registry errors carry the spec codes; retries are decided on the status', () => {
  const e = registryError(404, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }), 'GET x', 'manifest')
  assert.equal(e.code, 'MANIFEST_UNKNOWN')
  assert.equal(e.temporary, false)
  assert.equal(registryError(404, '', 'HEAD', 'blob').code, 'BLOB_UNKNOWN')
  assert.equal(registryError(503, '<html>', 'GET', 'blob').code, 'UNAVAILABLE')
  assert.equal(registryError(503, '', 'GET', 'blob').temporary, true)
  assert.equal(registryError(429, '', 'GET', 'blob').code, 'TOOMANYREQUESTS')
  assert.deepEqual([408, 429, 500, 502, 503, 504, 400, 401, 404, 501].map(isRetryableStatus), [true, true, true, true, true, true, false, false, false, false])
})

test('credentials: Docker\'s config.json (auths) and a real docker-credential helper', async () => {
  const { dir, cleanup } = await tempDir('cairn-creds-')
  try {
    const file = new DockerCredentials(`${dir}/plain`)
    await file.store('https://index.docker.io/v1/', { username: 'u', password: 'p:w' })
    const cfg = JSON.parse(await readFile(`${dir}/plain/config.json`, 'utf8')) as { auths: Record<string, { auth: string }> }
    assert.equal(Buffer.from(cfg.auths['https://index.docker.io/v1/']?.auth ?? '', 'base64').toString(), 'u:p:w')
    assert.deepEqual(await file.get('docker.io'), { username: 'u', password: 'p:w' })
    assert.equal(await file.erase('index.docker.io'), true)
    assert.equal(await file.get('docker.io'), undefined)

    // a helper speaking the docker-credential protocol, keeping its secrets in a file
    const bin = `${dir}/bin`
    await mkdir(bin)
    const helper = `${bin}/docker-credential-cairntest`
    await writeFile(helper, `#!/bin/sh
store="${dir}/helper-store"
case "$1" in
  store) cat > "$store" ;;
  get) read server; if [ -s "$store" ]; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read server; if [ -s "$store" ]; then rm -f "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`)
    await chmod(helper, 0o755)
    await mkdir(`${dir}/helped`)
    await writeFile(`${dir}/helped/config.json`, JSON.stringify({ credHelpers: { 'registry.local:5000': 'cairntest' }, experimental: 'keep-me' }))
    const env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` }
    const helped = new DockerCredentials(`${dir}/helped`, env)
    assert.equal(await helped.get('registry.local:5000'), undefined)
    const where = await helped.store('registry.local:5000', { username: 'alice', password: 's3cret' })
    assert.equal(where.helper, 'cairntest')
    const stored = JSON.parse(await readFile(`${dir}/helper-store`, 'utf8')) as { ServerURL: string; Username: string; Secret: string }
    assert.deepEqual(stored, { ServerURL: 'registry.local:5000', Username: 'alice', Secret: 's3cret' })
    const after = JSON.parse(await readFile(`${dir}/helped/config.json`, 'utf8')) as { auths: Record<string, object>; experimental: string }
    assert.deepEqual(after.auths['registry.local:5000'], {}, 'the file keeps an empty entry, as Docker writes it')
    assert.equal(after.experimental, 'keep-me', 'other settings survive')
    assert.deepEqual(await helped.get('registry.local:5000'), { username: 'alice', password: 's3cret' })
    assert.equal(await helped.erase('registry.local:5000'), true)
    assert.equal(await helped.get('registry.local:5000'), undefined)

    // a config.json that is a symlink (as dotfile managers make it) stays one: its target is rewritten
    await mkdir(`${dir}/dotfiles`)
    await mkdir(`${dir}/linked`)
    await writeFile(`${dir}/dotfiles/docker.json`, '{}')
    await symlink('../dotfiles/docker.json', `${dir}/linked/config.json`)
    await new DockerCredentials(`${dir}/linked`).store('registry.local:5000', { username: 'bob', password: 'pw' })
    assert.ok((await lstat(`${dir}/linked/config.json`)).isSymbolicLink())
    const target = JSON.parse(await readFile(`${dir}/dotfiles/docker.json`, 'utf8')) as { auths: Record<string, { auth: string }> }
    assert.equal(Buffer.from(target.auths['registry.local:5000']?.auth ?? '', 'base64').toString(), 'bob:pw')
  } finally {
    await cleanup()
  }
})

test('redirects are followed without sending Authorization to another host', async () => {
  const got: { host: string; auth: string | undefined }[] = []
  const record = (req: IncomingMessage): void => {
    got.push({ host: req.headers.host ?? '', auth: req.headers.authorization })
  }
  const storage = createServer((req, res) => {
    record(req)
    res.end('blob bytes')
  })
  await new Promise<void>((r) => storage.listen(0, 'localhost', r))
  const sport = (storage.address() as AddressInfo).port
  const registry = createServer((req, res) => {
    record(req)
    if (req.url === '/same') {
      res.writeHead(307, { Location: '/final' })
      res.end()
      return
    }
    if (req.url === '/final') {
      res.end('same host')
      return
    }
    res.writeHead(307, { Location: `http://localhost:${sport}/bucket/blob` })
    res.end()
  })
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r))
  const rport = (registry.address() as AddressInfo).port
  const transport = new Transport(defaultRemoteConfig(), {})
  try {
    const res = await transport.request({ method: 'GET', url: new URL(`http://127.0.0.1:${rport}/v2/x/blobs/sha256:1`), headers: { Authorization: 'Bearer secret' } })
    assert.equal(await res.text(), 'blob bytes')
    assert.equal(got[0]?.auth, 'Bearer secret')
    assert.equal(got[1]?.host, `localhost:${sport}`)
    assert.equal(got[1]?.auth, undefined, 'no credentials for the storage host')
    got.length = 0
    const same = await transport.request({ method: 'GET', url: new URL(`http://127.0.0.1:${rport}/same`), headers: { Authorization: 'Bearer secret' } })
    assert.equal(await same.text(), 'same host')
    assert.equal(got[1]?.auth, 'Bearer secret', 'kept on the same origin')
  } finally {
    transport.close()
    storage.close()
    registry.close()
  }
})

test('requests through HTTP_PROXY: plain HTTP with the whole URL, HTTPS through a CONNECT tunnel', async () => {
  const seen: { method: string; url: string; auth: string | undefined }[] = []
  const proxy = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers['proxy-authorization'] })
    res.end('via proxy')
  })
  proxy.on('connect', (req: IncomingMessage, socket) => {
    seen.push({ method: 'CONNECT', url: req.url ?? '', auth: req.headers['proxy-authorization'] })
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n')
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  const port = (proxy.address() as AddressInfo).port
  const env = { HTTP_PROXY: `http://user:pw@127.0.0.1:${port}`, HTTPS_PROXY: `http://127.0.0.1:${port}` }
  const transport = new Transport(defaultRemoteConfig(), env)
  try {
    const res = await transport.request({ method: 'GET', url: new URL('http://registry.example.test:5000/v2/') })
    assert.equal(await res.text(), 'via proxy')
    assert.deepEqual(seen[0], { method: 'GET', url: 'http://registry.example.test:5000/v2/', auth: `Basic ${Buffer.from('user:pw').toString('base64')}` })
    await assert.rejects(transport.request({ method: 'GET', url: new URL('https://registry.example.test/v2/') }), (e: unknown) => hasCode(e, 'UNAVAILABLE'))
    assert.deepEqual(seen[1], { method: 'CONNECT', url: 'registry.example.test:443', auth: undefined })
  } finally {
    transport.close()
    proxy.close()
  }
})

test('parallel gzip: deterministic members that any gunzip reads back', async () => {
  const { parallelGzip } = await import('../../src/layer/pgzip.js')
  const { gunzipSync } = await import('node:zlib')
  const { Readable } = await import('node:stream')
  const { buffer } = await import('node:stream/consumers')
  const input = Buffer.concat([Buffer.alloc(300_000, 'a'), (await import('node:crypto')).randomBytes(200_000), Buffer.alloc(123_457, 'z')])
  const run = async (parallelism: number, chunk: number): Promise<Buffer> => {
    const parts: Buffer[] = []
    for (let i = 0; i < input.length; i += chunk) parts.push(input.subarray(i, i + chunk))
    return buffer(Readable.from(parts).pipe(parallelGzip({ blockSize: 64 * 1024, parallelism })))
  }
  const a = await run(1, 7000)
  const b = await run(3, 65_536)
  assert.ok(a.equals(b), 'the same bytes whatever the parallelism and the input chunking')
  assert.ok(gunzipSync(a).equals(input), 'multi-member gzip reads back')
  assert.ok(gunzipSync(await buffer(Readable.from([]).pipe(parallelGzip()))).equals(Buffer.alloc(0)))
})

/**
 * Runs `fn` in a scratch folder with `ssl(...args)`, openssl(1) run there; the test is skipped where
 * openssl is missing.
 */
async function withOpenssl(t: TestContext, fn: (dir: string, ssl: (...args: string[]) => void) => Promise<void>): Promise<void> {
  if (!(await access('/usr/bin/openssl').then(() => true, () => false))) {
    t.skip('no openssl to make certificates')
    return
  }
  const { dir, cleanup } = await tempDir('cairn-tls-')
  try {
    await fn(dir, (...args) => {
      execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' })
    })
  } finally {
    await cleanup()
  }
}

test('certs.d: a client certificate from <certs-dir>/<host:port>/ is presented over HTTPS', async (t) => {
  await withOpenssl(t, async (dir, ssl) => {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=cairn test CA')
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
    await writeFile(`${dir}/san.ext`, 'subjectAltName=IP:127.0.0.1\n')
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext')
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=cairn-client')
    ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.cert', '-days', '2')
    const server = createHttpsServer({
      key: await readFile(`${dir}/server.key`), cert: await readFile(`${dir}/server.crt`),
      ca: await readFile(`${dir}/ca.crt`), requestCert: true, rejectUnauthorized: true,
    }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate()
      res.end(`hello ${String(peer.subject?.CN ?? 'nobody')}`)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    const certs = `${dir}/certs.d/127.0.0.1:${port}`
    await mkdir(certs, { recursive: true })
    for (const f of ['ca.crt', 'client.cert', 'client.key']) await writeFile(`${certs}/${f}`, await readFile(`${dir}/${f}`))
    const transport = new Transport({ ...defaultRemoteConfig(), certsDir: `${dir}/certs.d` }, {})
    const bare = new Transport({ ...defaultRemoteConfig(), certsDir: `${dir}/none` }, {})
    try {
      const res = await transport.request({ method: 'GET', url: new URL(`https://127.0.0.1:${port}/v2/`) })
      assert.equal(await res.text(), 'hello cairn-client')
      // without the client certificate the server refuses the handshake
      await assert.rejects(async () => {
        const r = await bare.request({ method: 'GET', url: new URL(`https://127.0.0.1:${port}/v2/`) })
        await r.text()
      })
    } finally {
      transport.close()
      bare.close()
      server.close()
    }
  })
})

test('a loopback registry over HTTPS with a certificate nobody signed: its TLS context, given no CA, still connects', async (t) => {
  await withOpenssl(t, async (dir, ssl) => {
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=somewhere.else', '-keyout', 'key.pem', '-out', 'cert.pem')
    const server = createHttpsServer({ key: await readFile(`${dir}/key.pem`), cert: await readFile(`${dir}/cert.pem`) }, (_req, res) => res.end('hello'))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    const transport = new Transport({ ...defaultRemoteConfig(), certsDir: `${dir}/none` }, {})
    try {
      const res = await transport.request({ method: 'GET', url: new URL(`https://127.0.0.1:${port}/v2/`) })
      assert.equal(await res.text(), 'hello')
    } finally {
      transport.close()
      server.close()
    }
  })
})

test('sweepDownloads: abandoned partials go after a week, private copies after an hour, dead locks at once; live ones stay', async () => {
  const { dir, cleanup } = await tempDir('cairn-sweep-')
  try {
    const d = `${dir}/downloads`
    await mkdir(d)
    const hex = (c: string): string => c.repeat(64)
    const now = Date.now()
    const age = (name: string, ms: number): void => utimesSync(`${d}/${name}`, (now - ms) / 1000, (now - ms) / 1000)
    const files: Record<string, number> = {
      [`sha256-${hex('a')}`]: PARTIAL_KEEP_MS + 60_000, // abandoned: goes
      [`sha256-${hex('b')}`]: PARTIAL_KEEP_MS + 60_000, // as old, but its downloader lives: stays
      [`sha256-${hex('c')}`]: 60_000, // recent: stays, to be resumed
      [`sha256-${hex('d')}.4242-0123456789abcdef`]: 2 * 3600_000, // a private copy of a dead pull: goes
      [`sha256-${hex('e')}.4242-0123456789abcdef`]: 60_000, // a private copy being written: stays
      'notes.txt': PARTIAL_KEEP_MS * 2, // not ours: stays
    }
    for (const [name, ms] of Object.entries(files)) {
      await writeFile(`${d}/${name}`, 'partial')
      age(name, ms)
    }
    await writeFile(`${d}/sha256-${hex('b')}.lock`, `${process.pid}\n`)
    await writeFile(`${d}/sha256-${hex('f')}.lock`, '2147483646\n') // a dead process's lock, no partial: goes
    const removed = await sweepDownloads(dir, now)
    assert.deepEqual(removed.sort(), [`sha256-${hex('a')}`, `sha256-${hex('d')}.4242-0123456789abcdef`, `sha256-${hex('f')}.lock`].sort())
    assert.deepEqual(readdirSync(d).sort(), [
      'notes.txt', `sha256-${hex('b')}`, `sha256-${hex('b')}.lock`, `sha256-${hex('c')}`, `sha256-${hex('e')}.4242-0123456789abcdef`,
    ].sort())
    // a store that never pulled has no downloads folder: nothing to do
    assert.deepEqual(await sweepDownloads(`${dir}/none`), [])
  } finally {
    await cleanup()
  }
})

test('parallel gzip: compression slots follow the cores up to a cap, and so does the memory a stream holds', async () => {
  const { compressionBudget, MAX_COMPRESSION_SLOTS } = await import('../../src/layer/pgzip.js')
  // this machine's shape: 2 cores, the pool the command sizes (cores + 3)
  assert.deepEqual(compressionBudget(2, 5), { slots: 3, window: 8 })
  assert.deepEqual(compressionBudget(1, 4), { slots: 2, window: 6 })
  // libuv's default pool of 4 keeps two threads for file I/O
  assert.deepEqual(compressionBudget(16, 4), { slots: 2, window: 6 })
  // many cores: at most MAX_COMPRESSION_SLOTS blocks compress, at most 8 more wait, whatever the pool
  for (const cores of [8, 16, 64, 256]) {
    const b = compressionBudget(cores, cores + 3)
    assert.equal(b.slots, MAX_COMPRESSION_SLOTS)
    assert.equal(b.window, MAX_COMPRESSION_SLOTS + 8)
  }
})
