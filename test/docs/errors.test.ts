// docs/errors.md (what a user does about each error) and docs/protocol.md (what each means on
// the wire) hold every error code and close reason the packages have, and none they do not.
import { connect } from '@parley/client'
import { CloseReason, ErrorCode } from '@parley/protocol'
import { RedisAdapterOptionError, RedisErrorCode } from '@parley/redis'
import { ParleyOptionError } from '@parley/server'
import { describe, expect, it } from 'vitest'
import { INVALID_ARGUMENT } from '../../packages/server/src/argument-error.js'
import { linesNamedIn, logged, loggedAs, namedIn, nameOf, REDIS } from './log-lines.js'
import { prose, read, tableRows, tableUnder, userDocs } from './markdown.js'
import { redisLogLines } from './redis-log-lines.js'
import { serverLogLines } from './server-log-lines.js'
import { allCode } from './sources.js'

/** The code the client's own misuse errors carry (it exports no constant for it). */
function clientMisuseCode(): unknown {
  try {
    connect('http://127.0.0.1:9', { autoConnect: false, noSuchOption: true } as never)
  } catch (error) {
    return (error as { code?: unknown }).code
  }
  throw new Error('an unknown option did not throw')
}

/** Every code an error of the packages can carry: the wire's, and those that stay local. */
const knownCodes = new Set<unknown>([
  ...Object.values(ErrorCode),
  ...Object.values(RedisErrorCode),
  new ParleyOptionError('x', 'y').code,
  new RedisAdapterOptionError('x', 'y').code,
  INVALID_ARGUMENT,
  clientMisuseCode(),
])
const reasons = Object.values(CloseReason)
const codesIn = (text: string) => new Set(prose(text).match(/\bPARLEY_[A-Z0-9_]+/g) ?? [])
const named = (code: string) => (row: string[]) => (row[0] ?? '').includes(`\`${code}\``)

describe.each([
  ['docs/errors.md', 'Close reasons (`disconnect`)'],
  ['docs/protocol.md', 'Errors and close reasons'],
])('%s', (doc, reasonsHeading) => {
  const text = read(doc)

  it('gives every ErrorCode a row of its own', () => {
    const rows = tableRows(text)
    expect(Object.values(ErrorCode).filter((code) => !rows.some(named(code)))).toEqual([])
  })

  it('names no code the packages do not have', () => {
    expect([...codesIn(text)].filter((code) => !knownCodes.has(code))).toEqual([])
  })

  it('gives every close reason a row in its table, and no other', () => {
    const [, ...rows] = tableUnder(text, reasonsHeading)
    const shown = rows.map((row) => /^`([^`]+)`$/.exec(row[0] ?? '')?.[1] ?? row[0])
    expect(shown.sort()).toEqual(reasons.sort())
  })
})

/** Each table of the text: its header row, then its rows. */
function tables(text: string): string[][][] {
  const found: string[][][] = []
  let current: string[][] | undefined
  for (const line of prose(text).split('\n')) {
    if (!/^\s*\|.*\|\s*$/.test(line)) {
      current = undefined
      continue
    }
    if (!current) {
      current = []
      found.push(current)
    }
    if (!/^[\s|:-]+$/.test(line)) current.push(tableRows(line)[0] ?? [])
  }
  return found
}

describe('docs/errors.md', () => {
  it('says what to do about every code, reason and log line its tables list', () => {
    const silent: string[] = []
    for (const [header = [], ...rows] of tables(read('docs/errors.md'))) {
      if (header[0] !== 'code' && header[0] !== 'reason' && header[0] !== 'log line') continue
      const column = header.findIndex((cell) => cell.startsWith('what to do'))
      for (const row of rows) if (column < 0 || !row[column]) silent.push(`${row[0]}: ${header.join(' | ')}`)
    }
    expect(silent).toEqual([])
  })

  it('names every line the server logs at info, warn or error', () => {
    const doc = read('docs/errors.md')
    const lines = serverLogLines().filter((line) => !line.debug)
    // The sources are read as text: finding none would mean the reading broke, not the docs.
    expect(lines.length).toBeGreaterThan(40)
    const missing = lines.filter((line) => !namedIn(doc, line))
    expect(missing.map((line) => `${line.file}: ${nameOf(line.message)}`)).toEqual([])
  })

  it('names no line as the server’s that it no longer logs', () => {
    const lines = serverLogLines()
    expect(linesNamedIn(read('docs/errors.md')).filter((name) => !logged(name, lines))).toEqual([])
  })

  it('names every warning @parley/redis logs', () => {
    const doc = read('docs/errors.md')
    const lines = redisLogLines()
    // As for the server's: finding none would mean the reading broke, not the docs.
    expect(lines.length).toBeGreaterThan(30)
    const missing = lines.filter((line) => !namedIn(doc, line, REDIS))
    expect(missing.map((line) => `${line.file}: ${nameOf(line.message, REDIS)}`)).toEqual([])
  })

  it('names no warning as @parley/redis’s that it no longer logs', () => {
    const lines = redisLogLines()
    expect(
      linesNamedIn(read('docs/errors.md'), REDIS).filter((name) => !loggedAs(name, lines, REDIS)),
    ).toEqual([])
  })

  it('tells what to do about the codes of @parley/redis and the local ones', () => {
    const rows = tableRows(read('docs/errors.md'))
    const local = [...knownCodes].filter((code) => !(Object.values(ErrorCode) as unknown[]).includes(code))
    expect(local.filter((code) => !rows.some(named(String(code))))).toEqual([])
  })
})

describe('packages/client/README.md', () => {
  it('names every close reason in its disconnect event', () => {
    const row = tableRows(read('packages/client/README.md')).find(([event]) => event === '`disconnect`')
    expect(reasons.filter((reason) => !row?.join(' ').includes(`\`${reason}\``))).toEqual([])
  })
})

describe('the other docs', () => {
  it.each(userDocs)('%s: each PARLEY_ name is a code of the packages, or one their code reads', (doc) => {
    const code = allCode()
    const unknown = [...codesIn(read(doc))].filter(
      (name) => !knownCodes.has(name) && !new RegExp(`\\b${name}\\b`).test(code),
    )
    expect(unknown).toEqual([])
  })
})
