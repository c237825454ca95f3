/**
 * `cairn build` as users run it: the build cache (what runs again after a change, --no-cache,
 * --build-arg), a failing RUN, input that must be refused before anything runs, multi-stage
 * builds (independent stages at once, only what the target needs), the kinds of context, ADD of
 * an archive and of a URL (from a loopback server), .dockerignore, SOURCE_DATE_EPOCH, --output,
 * and the cache in `system df` and `builder prune`.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync, existsSync, ftruncateSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Cairn } from '../../src/index.js'
import type { BuildEvent } from '../../src/build/events.js'
import { hasCode } from '../../src/errors/index.js'
import { CLI, tempDir } from '../helpers/cairn.js'
import { containerDirs, containerStore, requireContainers, type ContainerStore } from '../container/helpers.js'

function count(s: string, re: RegExp): number {
  return (s.match(new RegExp(re.source, 'g')) ?? []).length
}

describe('cairn build', { concurrency: false }, () => {
  let cs: ContainerStore | undefined
  let dir = ''
  let cleanupDir: (() => Promise<void>) | undefined
  let server: Server | undefined
  let served = 'first download\n'

  before(async () => {
    if (process.getuid?.() !== 0) return
    cs = await containerStore('overlay')
    ;({ dir, cleanup: cleanupDir } = await tempDir('cairn-build-'))
    server = createServer((req, res) => {
      if (req.url === '/files/notes.txt') {
        res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' })
        res.end(served)
      } else {
        res.writeHead(404)
        res.end()
      }
    })
    await new Promise<void>((ok) => server?.listen(0, '127.0.0.1', ok))
  })

  after(async () => {
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()))
    await cs?.cleanup()
    await cleanupDir?.()
  })

  function context(name: string, files: Record<string, string>): string {
    const root = `${dir}/${name}`
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(`${root}/${p}`.replace(/\/[^/]*$/, ''), { recursive: true })
      writeFileSync(`${root}/${p}`, content)
    }
    return root
  }

  test('the cache: unchanged steps are reused; a changed file reruns from the first COPY that reads it; --build-arg and --no-cache', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('cache', {
      Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nARG V=1\nRUN echo "v=$V" > /v\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt /v > /all\nCMD ["cat", "/all"]\n',
      'a.txt': 'a1\n',
      'b.txt': 'b1\n',
    })
    const first = await cs.cliOk(['build', '--progress', 'plain', '-t', 'cached:1', ctx])
    assert.equal(count(first.stdout, / ---> Running in [0-9a-f]{12}/), 2)
    assert.equal(count(first.stdout, / ---> Using cache/), 0)
    assert.match(first.stdout, /^Step 1\/7 : FROM busybox$/m)
    assert.match(first.stdout, /^Successfully tagged cached:1$/m)
    const id = /Successfully built ([0-9a-f]{12})/.exec(first.stdout)?.[1]
    assert.ok(id)
    assert.equal((await cs.cliOk(['run', '--rm', 'cached:1'])).stdout, 'a1\nb1\nv=1\n')

    // nothing changed; then only an mtime changed: everything from the cache, the same image
    const again = await cs.cliOk(['build', '--progress', 'plain', '-t', 'cached:1', ctx])
    assert.equal(count(again.stdout, / ---> Using cache/), 6)
    assert.match(again.stdout, new RegExp(`Successfully built ${id}`))
    execFileSync('touch', ['-d', '2001-01-01', `${ctx}/a.txt`, `${ctx}/b.txt`])
    const touched = await cs.cliOk(['build', '--progress', 'plain', '-q', ctx])
    assert.equal(touched.stdout.trim().slice(7, 19), id, 'the cache reads contents, not mtimes')

    // b.txt changed: the steps before COPY b.txt come from the cache, the rest run again
    writeFileSync(`${ctx}/b.txt`, 'b2\n')
    const changed = await cs.cliOk(['build', '--progress', 'plain', '-t', 'cached:2', ctx])
    const steps = changed.stdout.split(/^Step /m).slice(1)
    assert.deepEqual(steps.map((s) => s.includes('Using cache')), [false, true, true, true, false, false, false])
    assert.equal((await cs.cliOk(['run', '--rm', 'cached:2'])).stdout, 'a1\nb2\nv=1\n')

    // a build arg invalidates the steps that see it, not those before its ARG
    const arg = await cs.cliOk(['build', '--progress', 'plain', '--build-arg', 'V=2', '-t', 'cached:3', ctx])
    const argSteps = arg.stdout.split(/^Step /m).slice(1)
    assert.ok(argSteps[1]?.includes('Using cache'), 'COPY a.txt, before the ARG, is cached')
    assert.ok(!argSteps[3]?.includes('Using cache'), 'the RUN that sees V runs again')
    assert.equal((await cs.cliOk(['run', '--rm', 'cached:3'])).stdout, 'a1\nb2\nv=2\n')
    const unused = await cs.cliOk(['build', '--progress', 'plain', '--build-arg', 'NOPE=1', ctx])
    assert.match(unused.stdout, /\[Warning\] One or more build-args \[NOPE\] were not consumed/)

    const nocache = await cs.cliOk(['build', '--progress', 'plain', '--no-cache', ctx])
    assert.equal(count(nocache.stdout, / ---> Using cache/), 0)
    assert.equal(count(nocache.stdout, / ---> Running in/), 2)
    assert.deepEqual(containerDirs(cs.root), [], 'no container is left behind')
  })

  test('history and config read as Docker writes them; metadata steps are empty layers, WORKDIR a layer', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('history', {
      Dockerfile: 'FROM busybox\nENV APP=/srv/app PORT=8080\nWORKDIR $APP\nCOPY app.sh ./\nRUN chmod +x app.sh\nUSER nobody\nEXPOSE $PORT/tcp\nLABEL org.example.name="demo app"\nENTRYPOINT ["./app.sh"]\nCMD ["--port", "8080"]\n',
      'app.sh': '#!/bin/sh\necho "app $*"\n',
    })
    await cs.cliOk(['build', '-q', '-t', 'hist:1', ctx])
    const inspect = JSON.parse((await cs.cliOk(['inspect', 'hist:1'])).stdout) as { Config: Record<string, unknown>; RootFS: { Layers: string[] } }[]
    const c = inspect[0]?.Config ?? {}
    assert.deepEqual(c['Env'], ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP=/srv/app', 'PORT=8080'])
    assert.equal(c['WorkingDir'], '/srv/app')
    assert.equal(c['User'], 'nobody')
    assert.deepEqual(c['ExposedPorts'], { '8080/tcp': {} })
    assert.deepEqual(c['Labels'], { 'org.example.name': 'demo app' })
    assert.deepEqual(c['Entrypoint'], ['./app.sh'])
    assert.deepEqual(c['Cmd'], ['--port', '8080'])
    assert.equal(inspect[0]?.RootFS.Layers.length, 4, 'base, WORKDIR, COPY, RUN')
    const hist = (await cs.cliOk(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}|{{.Comment}}', 'hist:1'])).stdout.trim().split('\n')
    assert.deepEqual(hist.slice(0, 9).map((l) => l.split('|')[0]), [
      'CMD ["--port" "8080"]', 'ENTRYPOINT ["./app.sh"]', 'LABEL org.example.name=demo app', 'EXPOSE map[8080/tcp:{}]', 'USER nobody',
      'RUN /bin/sh -c chmod +x app.sh # buildkit', 'COPY app.sh ./ # buildkit', 'WORKDIR /srv/app', 'ENV APP=/srv/app PORT=8080',
    ])
    assert.ok(hist.slice(0, 9).every((l) => l.endsWith('|buildkit.dockerfile.v0')))
    assert.equal((await cs.cliOk(['run', '--rm', 'hist:1'])).stdout, 'app --port 8080\n')
  })

  test('a failing RUN: its output, exit code and line; no container or half-made image left; the steps before stay cached', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('fail', { Dockerfile: 'FROM busybox\nCOPY x /x\nRUN echo "about to fail" && exit 3\nRUN echo never\n', x: 'x' })
    const imagesBefore = (await cs.cliOk(['images', '-aq'])).stdout
    const r = await cs.cli(['build', '--progress', 'plain', '-t', 'fails:1', ctx])
    assert.equal(r.code, 1)
    assert.match(r.stdout, /about to fail/)
    assert.match(r.stderr, /^Error: Dockerfile:3: RUN echo "about to fail" && exit 3: the command '\/bin\/sh -c echo "about to fail" && exit 3' returned a non-zero code: 3$/m)
    assert.doesNotMatch(r.stdout, /Step 4\/4/)
    assert.equal((await cs.cliOk(['ps', '-aq'])).stdout, '', 'no container left')
    assert.deepEqual(containerDirs(cs.root), [])
    const imagesAfter = (await cs.cliOk(['images', '-aq'])).stdout
    assert.equal(imagesAfter.split('\n').filter(Boolean).length, imagesBefore.split('\n').filter(Boolean).length + 1, 'only the cached COPY step was added')
    assert.doesNotMatch((await cs.cliOk(['images'])).stdout, /fails/)
    writeFileSync(`${ctx}/Dockerfile`, 'FROM busybox\nCOPY x /x\nRUN echo "fixed"\n')
    const fixed = await cs.cliOk(['build', '--progress', 'plain', ctx])
    assert.ok(fixed.stdout.split(/^Step /m)[2]?.includes('Using cache'))
  })

  test('a build killed during a RUN: the next command stops its container, the next build\'s first RUN step removes it', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    // the step's text shows ru''nning (not the word its output has)
    const ctx = context('killed', { Dockerfile: 'FROM busybox\nRUN echo ru\'\'nning-now && sleep 60\n' })
    const child = spawn(CLI, ['--root', cs.root, 'build', '--progress', 'plain', '--no-cache', ctx], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the RUN step did not start: ${out}`)), 30_000)
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString()
        if (out.includes('running-now')) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('close', resolve))
    const left = (await cs.cliOk(['ps', '-a', '--format', '{{.Status}}'])).stdout
    assert.match(left, /^Exited \(255\)/, 'the next command stopped and recorded it')
    const ctx2 = context('after-kill', { Dockerfile: 'FROM busybox\nRUN echo again\n' })
    await cs.cliOk(['build', '--progress', 'plain', '--no-cache', ctx2])
    assert.equal((await cs.cliOk(['ps', '-aq'])).stdout, '', 'the next build removed it')
    assert.deepEqual(containerDirs(cs.root), [])
  })

  test('bad input is refused before anything runs, in Docker\'s words', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const images = (await cs.cliOk(['images', '-aq'])).stdout
    const refuse = async (name: string, files: Record<string, string>, args: string[], re: RegExp): Promise<void> => {
      const ctx = context(name, files)
      const r = await cs!.cli(['build', '--progress', 'plain', ...args, ctx])
      assert.notEqual(r.code, 0, `${name} should fail`)
      assert.match(r.stderr, re, name)
      assert.doesNotMatch(r.stdout, /Running in/, `${name}: nothing ran`)
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`)
    }
    await refuse('unknown', { Dockerfile: 'FROM busybox\nRUN echo hi\nFOOBAR baz\n' }, [], /^Error: dockerfile parse error on line 3: unknown instruction: FOOBAR$/m)
    await refuse('missing', { Dockerfile: 'FROM busybox\nRUN echo hi\nCOPY nothere.txt /x\n' }, [], /Dockerfile:3: COPY nothere.txt \/x: file not found in build context or excluded by \.dockerignore: stat nothere.txt: file does not exist/)
    await refuse('escape', { Dockerfile: 'FROM busybox\nCOPY ../outside /x\n' }, [], /forbidden path outside the build context: \.\.\/outside/)
    const linkCtx = context('symlink', { Dockerfile: 'FROM busybox\nCOPY link/passwd /x\n' })
    symlinkSync('/etc', `${linkCtx}/link`)
    const r = await cs.cli(['build', linkCtx])
    assert.match(r.stderr, /forbidden path outside the build context: link\/passwd/)
    await refuse('cycle', { Dockerfile: 'FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n' }, [], /circular dependency detected on stage: (a|b)/)
    await refuse('target', { Dockerfile: 'FROM busybox AS a\nRUN true\n' }, ['--target', 'nope'], /failed to reach build target nope in Dockerfile/)
    await refuse('tag', { Dockerfile: 'FROM busybox\n' }, ['-t', 'UPPER:case'], /invalid reference format/)
    assert.equal((await cs.cliOk(['images', '-aq'])).stdout, images, 'no image was made')

    // a huge context is not read: only what COPY names is
    const huge = context('huge', { Dockerfile: 'FROM busybox\nCOPY small /small\n', small: 'small\n' })
    const fd = openSync(`${huge}/huge.img`, 'w')
    ftruncateSync(fd, 64 * 2 ** 30)
    closeSync(fd)
    const t0 = performance.now()
    await cs.cliOk(['build', '-q', huge])
    assert.ok(performance.now() - t0 < 30_000, 'a 64 GiB file the Dockerfile never names is not read')
  })

  test('multi-stage: independent stages build at once; only the stages the target needs; COPY --from a stage', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('multi', {
      Dockerfile: [
        'FROM busybox AS one', 'RUN sleep 1 && echo one > /one',
        'FROM busybox AS two', 'RUN sleep 1 && echo two > /two',
        'FROM busybox AS unused', 'RUN echo unused > /unused',
        'FROM busybox', 'COPY --from=one /one /one', 'COPY --from=two /two /two', 'CMD cat /one /two', '',
      ].join('\n'),
    })
    const cairn = await Cairn.open({ root: cs.root })
    const events: { e: BuildEvent; at: number }[] = []
    try {
      const res = await cairn.build({ context: ctx, tags: ['multi:1'], onProgress: (e) => events.push({ e, at: performance.now() }) })
      assert.equal(res.tags[0], 'multi:1')
    } finally {
      cairn.close()
    }
    const when = (type: string, stage: string): number => events.find((x) => x.e.type === type && 'ref' in x.e && x.e.ref.stage === stage && x.e.ref.index === 2)?.at ?? NaN
    assert.ok(when('running', 'one') < when('done', 'two') && when('running', 'two') < when('done', 'one'), 'the two RUNs overlap')
    assert.ok(!events.some((x) => 'ref' in x.e && x.e.ref.stage === 'unused'), 'the unused stage is not built')
    assert.equal((await cs.cliOk(['run', '--rm', 'multi:1'])).stdout, 'one\ntwo\n')
    const target = await cs.cliOk(['build', '--progress', 'plain', '--target', 'two', '-t', 'two:1', ctx])
    assert.match(target.stdout, /^Step 1\/2 : FROM busybox AS two$/m)
    assert.doesNotMatch(target.stdout, /AS one/)
  })

  test('contexts: a tar on stdin, a Dockerfile on stdin (no context), a tarball, -f elsewhere; .dockerignore', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('ctx', {
      Dockerfile: 'FROM busybox\nCOPY . /ctx/\nRUN find /ctx -type f | sort\n',
      'Dockerfile.other': 'FROM busybox\nCOPY keep.txt /k\nCMD ["cat", "/k"]\n',
      '.dockerignore': '*.log\nsecret/\n!secret/public.txt\n',
      'keep.txt': 'keep\n',
      'debug.log': 'no\n',
      'secret/key': 'no\n',
      'secret/public.txt': 'yes\n',
    })
    const tar = execFileSync('tar', ['-C', ctx, '-c', '.'])
    const fromTar = await cs.cliOk(['build', '--progress', 'plain', '--no-cache', '-'], { input: tar })
    assert.match(fromTar.stdout, /\/ctx\/keep.txt/)
    assert.match(fromTar.stdout, /\/ctx\/secret\/public.txt/)
    assert.doesNotMatch(fromTar.stdout, /debug\.log|secret\/key/, '.dockerignore excludes, with exceptions')
    execFileSync('sh', ['-c', `tar -C ${ctx} -czf ${dir}/ctx.tar.gz .`])
    const fromTarball = await cs.cliOk(['build', '--progress', 'plain', '--no-cache', `${dir}/ctx.tar.gz`])
    assert.match(fromTarball.stdout, /\/ctx\/keep.txt/)
    const other = await cs.cliOk(['build', '-q', '-f', `${ctx}/Dockerfile.other`, '-t', 'other:1', ctx])
    assert.match(other.stdout, /^sha256:[0-9a-f]{64}\n$/)
    assert.equal((await cs.cliOk(['run', '--rm', 'other:1'])).stdout, 'keep\n')
    const stdinDf = await cs.cliOk(['build', '--progress', 'plain', '-t', 'nocontext:1', '-'], { input: 'FROM busybox\nRUN echo from-stdin\n' })
    assert.match(stdinDf.stdout, /from-stdin/)
    const noCtx = await cs.cli(['build', '-'], { input: 'FROM busybox\nCOPY x /x\n' })
    assert.match(noCtx.stderr, /no build context/)
  })

  test('ADD: a local tarball is unpacked, a URL is downloaded (its content is the cache key)', async (t) => {
    if (!(await requireContainers(t)) || !cs || !server) return
    const port = (server.address() as AddressInfo).port
    const ctx = context('add', { Dockerfile: `FROM busybox\nADD files.tar.gz /opt/\nADD http://127.0.0.1:${port}/files/notes.txt /notes/\nRUN ls -l /notes/notes.txt | cut -c1-10 && cat /opt/inner/file /notes/notes.txt\n` })
    context('add-src', { 'inner/file': 'from the tarball\n' })
    execFileSync('tar', ['-C', `${dir}/add-src`, '-czf', `${ctx}/files.tar.gz`, 'inner'])
    const first = await cs.cliOk(['build', '--progress', 'plain', ctx])
    assert.match(first.stdout, /-rw-------\nfrom the tarball\nfirst download\n/)
    const same = await cs.cliOk(['build', '--progress', 'plain', ctx])
    assert.equal(count(same.stdout, / ---> Using cache/), 3)
    served = 'second download\n'
    const changed = await cs.cliOk(['build', '--progress', 'plain', ctx])
    assert.equal(count(changed.stdout, / ---> Using cache/), 1)
    assert.match(changed.stdout, /second download/)
    const sum = context('add-sum', { Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/notes.txt /n\n` })
    const bad = await cs.cli(['build', sum])
    assert.match(bad.stderr, /digest mismatch for http:\/\/127\.0\.0\.1:\d+\/files\/notes\.txt: got sha256:[0-9a-f]{64}, expected sha256:0{64}/)
  })

  test('SOURCE_DATE_EPOCH: two builds without the cache give the same image ID; --output and --iidfile', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('epoch', { Dockerfile: 'FROM busybox\nCOPY f /f\nRUN echo built > /built\nENV X=1\n', f: 'same\n' })
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' }
    const a = (await cs.cliOk(['build', '-q', '--no-cache', ctx], { env })).stdout.trim()
    await new Promise((r) => setTimeout(r, 1100))
    execFileSync('touch', [`${ctx}/f`])
    const b = (await cs.cliOk(['build', '-q', '--no-cache', '--iidfile', `${dir}/iid`, '--output', `type=oci,dest=${dir}/out.tar`, ctx], { env })).stdout.trim()
    assert.equal(a, b)
    assert.equal(readFileSync(`${dir}/iid`, 'utf8'), b)
    const listing = execFileSync('tar', ['-tf', `${dir}/out.tar`]).toString()
    assert.match(listing, /^oci-layout$/m)
    assert.match(listing, /^index\.json$/m)
  })

  test('the trees a build leaves for its layers (a RUN container\'s own, a COPY written as it is made) are what the saved image unpacks to', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('trees', {
      Dockerfile: [
        'FROM busybox AS gen',
        'RUN head -c 3000000 /dev/urandom > /gen.bin && chmod 604 /gen.bin',
        'FROM busybox',
        'COPY tree/ /srv/',
        // files over 1 MiB are copied into the step's tree by the kernel, beside the tar
        'COPY --chmod=640 --chown=12:34 tree/big.bin /srv/big2',
        'COPY --from=gen /gen.bin /srv/',
        'RUN rm /bin/vi /srv/sub/b && rm -rf /srv/gone && mkdir -p /srv/new/deep && echo n > /srv/new/deep/n && chmod 700 /srv/new && ln -s /srv/a /srv/link',
        'RUN rm -rf /srv/new && mkdir /srv/new && echo again > /srv/new/x && echo more >> /srv/a',
        'COPY tree/sub/ /srv/sub2/',
        '',
      ].join('\n'),
      'tree/a': 'a\n', 'tree/sub/b': 'b\n', 'tree/sub/c': 'c\n', 'tree/gone/g': 'g\n',
    })
    const big = randomBytes(3 << 20)
    writeFileSync(`${ctx}/tree/big.bin`, big)
    await cs.cliOk(['build', '-q', '--network', 'none', '-t', 'trees:1', ctx])
    // every path with its type, mode, owner and size, files with mtime and content (what the
    // containers' own init files and the folders holding them say is left out)
    const listing = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort | while read -r f; do '
      + 'case "$f" in /|/etc|/etc/hosts|/etc/hostname|/etc/resolv.conf|/etc/mtab) continue;; esac; '
      + 'if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$(stat -c "%n %F %a %u:%g %s %Y" "$f") $(md5sum < "$f")"; else stat -c "%n %F %a %u:%g" "$f"; fi; done'
    const built = (await cs.cliOk(['run', '--rm', '--network', 'none', 'trees:1', 'sh', '-c', listing])).stdout
    assert.match(built, /^\/srv\/new\/x regular file /m)
    const md5 = createHash('md5').update(big).digest('hex')
    assert.match(built, new RegExp(`^/srv/big\\.bin regular file 644 0:0 ${big.length} \\d+ ${md5} {2}-$`, 'm'))
    assert.match(built, new RegExp(`^/srv/big2 regular file 640 12:34 ${big.length} \\d+ ${md5} {2}-$`, 'm'))
    assert.match(built, /^\/srv\/gen\.bin regular file 604 0:0 3000000 \d+ [0-9a-f]{32} {2}-$/m)
    assert.doesNotMatch(built, /^\/bin\/vi |^\/srv\/gone|^\/srv\/new\/deep|^\/srv\/sub\/b /m)
    await cs.cliOk(['save', '-o', `${dir}/trees.tar`, 'trees:1'])
    const fresh = await containerStore('overlay')
    try {
      await fresh.cliOk(['load', '-i', `${dir}/trees.tar`])
      const unpacked = (await fresh.cliOk(['run', '--rm', '--network', 'none', 'trees:1', 'sh', '-c', listing])).stdout
      assert.equal(built, unpacked)
    } finally {
      await fresh.cleanup()
    }
  })

  test('--no-cache after a touch: the same cache key makes a different layer (mtimes), and the steps after it see the new one', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('touched', { Dockerfile: 'FROM busybox\nCOPY f /f\nRUN stat -c %Y /f > /seen\n', f: 'same\n' })
    execFileSync('touch', ['-d', '@1600000000', `${ctx}/f`])
    await cs.cliOk(['build', '-q', '--network', 'none', '-t', 'touched:1', ctx])
    assert.equal((await cs.cliOk(['run', '--rm', 'touched:1', 'cat', '/seen'])).stdout, '1600000000\n')
    execFileSync('touch', ['-d', '@1700000000', `${ctx}/f`])
    await cs.cliOk(['build', '-q', '--no-cache', '--network', 'none', '-t', 'touched:2', ctx])
    assert.equal((await cs.cliOk(['run', '--rm', 'touched:2', 'sh', '-c', 'cat /seen; stat -c %Y /f'])).stdout, '1700000000\n1700000000\n')
  })

  test('the cache in system df, and builder prune', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const ctx = context('prune', { Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/zero > /zeros\nENV DONE=1\n' })
    await cs.cliOk(['build', '-q', '-t', 'prune:1', ctx])
    const df = (await cs.cliOk(['system', 'df'])).stdout
    assert.match(df, /^Build Cache\s+[1-9]\d*\s/m)
    await cs.cliOk(['tag', 'prune:1', 'prune:keep'])
    const pruned = await cs.cliOk(['builder', 'prune', '-f'])
    assert.match(pruned.stdout, /Total reclaimed space: /)
    const rebuilt = await cs.cliOk(['build', '--progress', 'plain', ctx])
    assert.match(rebuilt.stdout, / ---> Using cache/, 'what a tagged image stands on stays in the cache')
    await cs.cliOk(['rmi', '--no-prune', 'prune:1', 'prune:keep'])
    const cairn = await Cairn.open({ root: cs.root })
    try {
      const usage = cairn.buildCacheUsage()
      assert.ok(usage.reclaimable >= 300_000, `reclaimable ${usage.reclaimable}`)
      const res = await cairn.pruneBuildCache()
      assert.ok(res.reclaimed >= 300_000)
      assert.equal(cairn.buildCacheUsage().reclaimable, 0)
    } finally {
      cairn.close()
    }
    assert.ok(existsSync(cs.root))
  })

  test('the library: cairn.build reports errors by code', async (t) => {
    if (!(await requireContainers(t)) || !cs) return
    const cairn = await Cairn.open({ root: cs.root })
    try {
      await assert.rejects(cairn.build({ context: dir, dockerfile: { text: 'FROM busybox\nRUN exit 7\n' } }), (err: unknown) => hasCode(err, 'BUILD_FAILED') && (err as { detail?: { exitCode?: number } }).detail?.exitCode === 7)
      await assert.rejects(cairn.build({ context: dir, dockerfile: { text: 'FROM busybox\nBOGUS\n' } }), (err: unknown) => hasCode(err, 'INVALID_ARGUMENT'))
    } finally {
      cairn.close()
    }
  })
})
