/**
 * Expected strings come from Go itself (fmt `%g` through the docker 28.2 CLI's
 * templates, the docker CLI's tabwriter through `docker context ls`), from the
 * go-units and docker CLI test suites, and from the seed transcript's `docker images`.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import {
  ago, bytesSize, displayWidth, ellipsis, formatCreatedBy, formatG, humanDuration, humanSize,
  humanSizeWithPrecision, renderTable, shortId, tabwrite,
} from '../../src/util/format.js'

describe('formatG (Go %.Ng)', () => {
  const cases: Array<[value: number, precision: number, expected: string]> = [
    [0, 3, '0'], [-0, 3, '-0'], [1, 3, '1'], [100, 3, '100'], [1000, 3, '1e+03'], [999.999, 3, '1e+03'],
    [1.125, 3, '1.12'], [998.5, 3, '998'], [999.5, 3, '1e+03'], // exact ties go to even
    [2.5, 1, '2'], [1.5, 1, '2'], [0.25, 1, '0.2'], [0.35, 1, '0.3'], // 0.35 is just below .35 in binary
    [1.0005, 4, '1'], [1.2345678, 3, '1.23'], [12.5, 3, '12.5'], [123456789, 3, '1.23e+08'],
    [0.0001234, 3, '0.000123'], [0.00001234, 3, '1.23e-05'], [1e21, 3, '1e+21'], [1e100, 3, '1e+100'],
    [1 / 3, 6, '0.333333'], [0.1, 0, '0.1'], [5e-324, 3, '4.94e-324'], [1.7976931348623157e308, 4, '1.798e+308'],
    [-1500, 3, '-1.5e+03'], [9.995, 3, '9.99'], [99.95, 3, '100'],
    [NaN, 3, 'NaN'], [Infinity, 3, '+Inf'], [-Infinity, 3, '-Inf'],
  ]
  for (const [value, precision, expected] of cases) {
    it(`%.${precision}g of ${value} is ${expected}`, () => assert.equal(formatG(value, precision), expected))
  }
  it('refuses a negative precision', () => assert.throws(() => formatG(1, -1), RangeError))
})

describe('humanSize (go-units HumanSizeWithPrecision(size, 3))', () => {
  const cases: Array<[bytes: number, expected: string]> = [
    [0, '0B'], [1, '1B'], [999, '999B'], [1000, '1kB'], [1024, '1.02kB'], [1125, '1.12kB'], [1135, '1.14kB'],
    [1500, '1.5kB'], [13256, '13.3kB'], [998500, '998kB'], [999499, '999kB'], [999500, '1e+03kB'],
    [999999, '1e+03kB'], [1000000, '1MB'], [1048576, '1.05MB'], [1234567, '1.23MB'], [2971234, '2.97MB'],
    [72776993, '72.8MB'], [109123456, '109MB'], [112691373, '113MB'], [141479488, '141MB'], [177812345, '178MB'],
    [1431234567, '1.43GB'], [1e24, '1YB'], [1e28, '1e+04YB'],
  ]
  for (const [bytes, expected] of cases) it(`${bytes} → ${expected}`, () => assert.equal(humanSize(bytes), expected))

  it('HumanSize (precision 4) matches go-units\' own cases', () => {
    assert.equal(humanSizeWithPrecision(1000, 4), '1kB')
    assert.equal(humanSizeWithPrecision(1024, 4), '1.024kB')
    assert.equal(humanSizeWithPrecision(1000000, 4), '1MB')
    assert.equal(humanSizeWithPrecision(1048576, 4), '1.049MB')
    assert.equal(humanSizeWithPrecision(2e6, 4), '2MB')
    assert.equal(humanSizeWithPrecision(3.42e9, 4), '3.42GB')
    assert.equal(humanSizeWithPrecision(5.372e12, 4), '5.372TB')
    assert.equal(humanSizeWithPrecision(2.22e15, 4), '2.22PB')
    assert.equal(humanSizeWithPrecision(1e28, 4), '1e+04YB')
    assert.equal(humanSizeWithPrecision(999999, 4), '1000kB')
  })
})

describe('bytesSize (go-units BytesSize)', () => {
  const KiB = 1024
  const cases: Array<[bytes: number, expected: string]> = [
    [0, '0B'], [1023, '1023B'], [KiB, '1KiB'], [1536, '1.5KiB'], [KiB * KiB, '1MiB'], [KiB * KiB - 1, '1024KiB'],
    [2 * KiB ** 2, '2MiB'], [123456789, '117.7MiB'], [3.42 * KiB ** 3, '3.42GiB'], [5.372 * KiB ** 4, '5.372TiB'],
    [2.22 * KiB ** 5, '2.22PiB'], [KiB ** 10, '1.049e+06YiB'],
  ]
  for (const [bytes, expected] of cases) it(`${bytes} → ${expected}`, () => assert.equal(bytesSize(bytes), expected))
})

describe('humanDuration (go-units HumanDuration)', () => {
  const s = 1000
  const m = 60 * s
  const h = 60 * m
  const day = 24 * h
  const week = 7 * day
  const month = 30 * day
  const year = 365 * day
  const cases: Array<[ms: number, expected: string]> = [
    [-5 * s, 'Less than a second'], [0, 'Less than a second'], [450, 'Less than a second'], [999, 'Less than a second'],
    [1 * s, '1 second'], [1999, '1 second'], [2 * s, '2 seconds'], [4 * s, '4 seconds'], [45 * s, '45 seconds'],
    [59 * s, '59 seconds'], [59999, '59 seconds'], [60 * s, 'About a minute'], [119 * s, 'About a minute'],
    [2 * m, '2 minutes'], [3 * m, '3 minutes'], [35 * m, '35 minutes'], [35 * m + 40 * s, '35 minutes'],
    [45 * m, '45 minutes'], [59 * m, '59 minutes'], [59 * m + 59 * s, '59 minutes'],
    [1 * h, 'About an hour'], [1 * h + 29 * m, 'About an hour'], [1 * h + 30 * m - 1, 'About an hour'],
    [1 * h + 30 * m, '2 hours'], [1 * h + 31 * m, '2 hours'], [1 * h + 59 * m, '2 hours'], [3 * h, '3 hours'],
    [3 * h + 29 * m, '3 hours'], [3 * h + 31 * m, '4 hours'], [3 * h + 60 * m, '4 hours'], [24 * h, '24 hours'],
    [25 * h, '25 hours'], [1 * day + 12 * h, '36 hours'], [47 * h + 29 * m, '47 hours'],
    [47 * h + 30 * m, '2 days'], [2 * day, '2 days'], [7 * day, '7 days'], [13 * day + 5 * h, '13 days'],
    [14 * day - 31 * m, '13 days'], [2 * week, '2 weeks'], [2 * week + 4 * day, '2 weeks'], [3 * week, '3 weeks'],
    [4 * week, '4 weeks'], [4 * week + 3 * day, '4 weeks'], [1 * month, '4 weeks'], [1 * month + 2 * week, '6 weeks'],
    [60 * day - 31 * m, '8 weeks'], [2 * month, '2 months'], [2 * month + 2 * week, '2 months'],
    [3 * month, '3 months'], [3 * month + 1 * week, '3 months'], [5 * month + 2 * week, '5 months'],
    [13 * month, '13 months'], [23 * month, '23 months'], [24 * month, '24 months'],
    [2 * year - 31 * m, '24 months'], [2 * year, '2 years'], [24 * month + 2 * week, '2 years'],
    [3 * year + 2 * month, '3 years'], [10 * year, '10 years'],
  ]
  for (const [ms, expected] of cases) it(`${ms} ms → ${expected}`, () => assert.equal(humanDuration(ms), expected))
})

describe('ago', () => {
  const now = Date.parse('2022-06-10T12:00:00.500Z')
  it('appends " ago"', () => {
    assert.equal(ago(now - 4000, now), '4 seconds ago')
    assert.equal(ago(new Date(now - 25 * 3600_000), now), '25 hours ago')
    assert.equal(ago(new Date(now - 250 * 86400_000).toISOString(), new Date(now)), '8 months ago')
  })
  it('truncates the creation time to whole seconds, as Docker receives it', () => {
    // created 11:59:59.900 is seen as 11:59:59; 1.5 s before now, not 0.6 s
    assert.equal(ago('2022-06-10T11:59:59.900Z', now), '1 second ago')
  })
  it('reads a creation time in the future as less than a second', () => {
    assert.equal(ago(now + 60_000, now), 'Less than a second ago')
  })
  it('refuses an unreadable time', () => assert.throws(() => ago('yesterday', now), TypeError))
})

describe('shortId', () => {
  it('drops the algorithm and keeps 12 characters', () => {
    assert.equal(shortId('sha256:753e19c609990aabf75cfc429f4d824a427f5c853202869d77d30eda41238160'), '753e19c60999')
    assert.equal(shortId('753e19c609990aabf75cfc429f4d824a427f5c853202869d77d30eda41238160'), '753e19c60999')
    assert.equal(shortId('sha256:753e'), '753e')
    assert.equal(shortId(''), '')
  })
})

describe('ellipsis (docker CLI Ellipsis)', () => {
  const cases: Array<[s: string, width: number, expected: string]> = [
    // docker CLI's own cases
    ['t🐳ststring', 0, ''], ['t🐳ststring', 1, 't'], ['t🐳ststring', 2, 't…'], ['t🐳ststring', 6, 't🐳st…'],
    ['t🐳ststring', 20, 't🐳ststring'], ['你好世界teststring', 0, ''], ['你好世界teststring', 1, '你'],
    ['你好世界teststring', 3, '你…'], ['你好世界teststring', 6, '你好…'], ['你好世界teststring', 20, '你好世界teststring'],
    // ASCII
    ['abcdef', 6, 'abcdef'], ['abcdefg', 6, 'abcde…'], ['', 1, ''], ['', 5, ''],
    // Docker's fall-through: a first wide character that does not fit leaves the string whole
    ['你好世界teststring', 2, '你好世界teststring'],
  ]
  for (const [s, width, expected] of cases) {
    it(`${JSON.stringify(s)} at ${width} → ${JSON.stringify(expected)}`, () => assert.equal(ellipsis(s, width), expected))
  }
})

describe('formatCreatedBy (docker history CREATED BY)', () => {
  it('keeps short commands and cuts long ones to 45 columns', () => {
    assert.equal(formatCreatedBy('/bin/sh -c #(nop)  CMD ["bash"]'), '/bin/sh -c #(nop)  CMD ["bash"]')
    const long = '/bin/sh -c apt-get update && apt-get install -y vim && rm -rf /var/lib/apt/lists/*'
    assert.equal(formatCreatedBy(long), '/bin/sh -c apt-get update && apt-get install…')
    assert.equal(formatCreatedBy(long).length, 45)
    assert.equal(formatCreatedBy(long, false), long)
  })
  it('turns tabs into spaces', () => {
    assert.equal(formatCreatedBy('RUN\ta\tb'), 'RUN a b')
  })
})

describe('displayWidth (as the docker CLI tabwriter measures)', () => {
  const cases: Array<[s: string, width: number]> = [
    ['', 0], ['abc', 3], ['你好世界', 8], ['ＡＢＣ', 6], ['한국어', 6], ['ｱｲｳ', 3], ['±…é', 3], ['e\u0301', 1],
    ['\u200bz', 1], ['🐳x', 3], ['✅', 2], ['☀', 1], ['❤️', 1], ['🇩🇪', 1], ['👨\u200d👩\u200d👧', 2],
  ]
  for (const [s, width] of cases) it(`${JSON.stringify(s)} is ${width}`, () => assert.equal(displayWidth(s), width))
})

describe('tabwrite (docker CLI tabwriter: minwidth 10, padding 3)', () => {
  it('pads columns, leaves the last cell alone, honours wide characters', () => {
    // Output of `docker context ls --format 'table {{.Description}}'` with these descriptions.
    const input = [
      'DESCRIPTION', 'REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE', '你好世界\tlatest\t🐳x\te\u0301\tz', 'a\t\tb', 'only',
      'x\ty\tz\tw', 'aaaaaaaaaaaaaaaa\tb', 'Current DOCKER_HOST based configuration',
    ].map((l) => `${l}\n`).join('')
    const expected = [
      'DESCRIPTION',
      'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE',
      '你好世界     latest    🐳x        e\u0301         z',
      'a                      b',
      'only',
      'x                  y         z         w',
      'aaaaaaaaaaaaaaaa   b',
      'Current DOCKER_HOST based configuration',
    ].map((l) => `${l}\n`).join('')
    assert.equal(tabwrite(input), expected)
  })

  it('measures grapheme clusters the way go-runewidth does', () => {
    const cells = ['👨\u200d👩\u200d👧', '🇩🇪', 'ＡＢＣ', '한국어', '±…é', '\u200bz', '✅', '☀', '❤️', 'ｱｲｳ']
    const input = ['DESCRIPTION', ...cells.map((c) => `${c}\tx`)].map((l) => `${l}\n`).join('')
    const expected = [
      'DESCRIPTION',
      '👨\u200d👩\u200d👧        x', '🇩🇪         x', 'ＡＢＣ    x', '한국어    x', '±…é       x',
      '\u200bz         x', '✅        x', '☀         x', '❤️         x', 'ｱｲｳ       x',
    ].map((l) => `${l}\n`).join('')
    assert.equal(tabwrite(input), expected)
  })

  it('writes an unterminated last line without a newline', () => {
    assert.equal(tabwrite('a\tb\nccc\td'), 'a         b\nccc       d')
    assert.equal(tabwrite(''), '')
    assert.equal(tabwrite('x'), 'x')
  })

  it('starts new column blocks after a formfeed', () => {
    assert.equal(tabwrite('aaaaaaaaaaaa\tb\n\fc\td\n'), 'aaaaaaaaaaaa   b\n\nc         d\n')
  })

  it('accepts other settings', () => {
    assert.equal(tabwrite('a\tb\nccc\td\n', { minWidth: 0, padding: 1, padChar: '.' }), 'a...b\nccc.d\n')
    assert.throws(() => tabwrite('a\tb', { minWidth: 0, padding: 1, padChar: '\t' }), TypeError)
  })
})

describe('renderTable reproduces `docker images` from the seed transcript', () => {
  const headers = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']

  it('the first table', () => {
    const rows = [
      ['ubuntuwithvim', '1.0.0', '753e19c60999', '4 seconds ago', '178MB'],
      ['huzd/iredis', '1.1.1', 'b292881e118d', '25 hours ago', '109MB'],
      ['docker/disk-usage-extension', '0.2.4', '8046bf511714', '2 days ago', '2.97MB'],
      ['kartoza/geoserver', '2.20.4', '2c8bec02cf4e', '2 months ago', '1.43GB'],
      ['nginx', 'latest', '605c77e624dd', '5 months ago', '141MB'],
      ['redis', 'latest', '7614ae9453d1', '5 months ago', '113MB'],
      ['ubuntu', 'latest', 'ba6acccedd29', '8 months ago', '72.8MB'],
      ['hello-world', 'latest', 'feb5d9fea6a5', '8 months ago', '13.3kB'],
    ]
    assert.equal(renderTable(headers, rows),
      'REPOSITORY                    TAG       IMAGE ID       CREATED         SIZE\n' +
      'ubuntuwithvim                 1.0.0     753e19c60999   4 seconds ago   178MB\n' +
      'huzd/iredis                   1.1.1     b292881e118d   25 hours ago    109MB\n' +
      'docker/disk-usage-extension   0.2.4     8046bf511714   2 days ago      2.97MB\n' +
      'kartoza/geoserver             2.20.4    2c8bec02cf4e   2 months ago    1.43GB\n' +
      'nginx                         latest    605c77e624dd   5 months ago    141MB\n' +
      'redis                         latest    7614ae9453d1   5 months ago    113MB\n' +
      'ubuntu                        latest    ba6acccedd29   8 months ago    72.8MB\n' +
      'hello-world                   latest    feb5d9fea6a5   8 months ago    13.3kB\n')
  })

  it('the table with a long registry name', () => {
    const rows = [
      ['ubuntuwithvim', '1.0.0', '753e19c60999', '24 minutes ago', '178MB'],
      ['registry.cn-qingdao.aliyuncs.com/huzd/test', '1.0.0', '753e19c60999', '24 minutes ago', '178MB'],
      ['huzd/iredis', '1.1.1', 'b292881e118d', '25 hours ago', '109MB'],
      ['hello-world', 'latest', 'feb5d9fea6a5', '8 months ago', '13.3kB'],
    ]
    assert.equal(renderTable(headers, rows),
      'REPOSITORY                                   TAG       IMAGE ID       CREATED          SIZE\n' +
      'ubuntuwithvim                                1.0.0     753e19c60999   24 minutes ago   178MB\n' +
      'registry.cn-qingdao.aliyuncs.com/huzd/test   1.0.0     753e19c60999   24 minutes ago   178MB\n' +
      'huzd/iredis                                  1.1.1     b292881e118d   25 hours ago     109MB\n' +
      'hello-world                                  latest    feb5d9fea6a5   8 months ago     13.3kB\n')
  })

  it('built from raw data: ids, creation times and byte sizes', () => {
    const now = Date.parse('2022-06-10T12:00:00Z')
    const day = 86400_000
    const images = [
      { repo: 'huzd/iredis', tag: '1.1.1', id: 'sha256:b292881e118d0000000000000000000000000000000000000000000000000000', created: now - 25 * 3600_000, size: 109123456 },
      { repo: 'docker/disk-usage-extension', tag: '0.2.4', id: 'sha256:8046bf5117140000000000000000000000000000000000000000000000000000', created: now - 2 * day - 3 * 3600_000, size: 2971234 },
      { repo: 'kartoza/geoserver', tag: '2.20.4', id: 'sha256:2c8bec02cf4e0000000000000000000000000000000000000000000000000000', created: now - 65 * day, size: 1431234567 },
      { repo: 'nginx', tag: 'latest', id: 'sha256:605c77e624dd0000000000000000000000000000000000000000000000000000', created: now - 160 * day, size: 141479488 },
      { repo: 'redis', tag: 'latest', id: 'sha256:7614ae9453d10000000000000000000000000000000000000000000000000000', created: now - 161 * day, size: 112691373 },
      { repo: 'ubuntu', tag: 'latest', id: 'sha256:ba6acccedd290000000000000000000000000000000000000000000000000000', created: now - 250 * day, size: 72776993 },
      { repo: 'hello-world', tag: 'latest', id: 'sha256:feb5d9fea6a50000000000000000000000000000000000000000000000000000', created: now - 255 * day, size: 13256 },
    ]
    const rows = images.map((i) => [i.repo, i.tag, shortId(i.id), ago(i.created, now), humanSize(i.size)])
    assert.equal(renderTable(headers, rows),
      'REPOSITORY                    TAG       IMAGE ID       CREATED        SIZE\n' +
      'huzd/iredis                   1.1.1     b292881e118d   25 hours ago   109MB\n' +
      'docker/disk-usage-extension   0.2.4     8046bf511714   2 days ago     2.97MB\n' +
      'kartoza/geoserver             2.20.4    2c8bec02cf4e   2 months ago   1.43GB\n' +
      'nginx                         latest    605c77e624dd   5 months ago   141MB\n' +
      'redis                         latest    7614ae9453d1   5 months ago   113MB\n' +
      'ubuntu                        latest    ba6acccedd29   8 months ago   72.8MB\n' +
      'hello-world                   latest    feb5d9fea6a5   8 months ago   13.3kB\n')
  })

  it('an empty listing is the header alone, each column at least minwidth', () => {
    assert.equal(renderTable(headers, []), 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n')
  })
})
