// The log lines the docs quote in their text (`parley: ...`, `@parley/redis: ...`, the chat
// demo's `chat: ...`) are lines the code logs, word for word but for what they leave out (see
// log-quotes.ts): a line whose words change in the code changes in every doc that quotes it.
// docs/errors.md names every line of the packages (errors.test.ts); the READMEs and the other
// docs quote them where they tell what happens.
import { describe, expect, it } from 'vitest'
import { DEMO, type Logger, type LogLine, REDIS, SERVER } from './log-lines.js'
import { codeSpans, quotes, quotesIn, quotesSome, withinSome } from './log-quotes.js'
import { read, userDocs } from './markdown.js'
import { redisLogLines } from './redis-log-lines.js'
import { demoLogLines, serverLogLines } from './server-log-lines.js'

/** Whose lines, read how, and how many quotes of them the docs have at least. */
const loggers: readonly [string, Logger, () => LogLine[], number][] = [
  ['the server', SERVER, serverLogLines, 20],
  ['@parley/redis', REDIS, redisLogLines, 20],
  ['the chat demo', DEMO, demoLogLines, 1],
]

/** A placeholder as a message is read from the sources: `${name}`. */
const filled = (name: string) => `$\{${name}}`

describe('a quote of a log line', () => {
  const line: LogLine = {
    file: 'x.ts',
    debug: false,
    message: `@parley/redis: heartbeat failed at ${filled('address')}; the next one goes in ${filled('ms')} ms: ${filled('why')}`,
  }
  const quoted = (quote: string) => quotes(quote, line, REDIS)

  it('is the line, its placeholders filled in with examples without spaces', () => {
    expect(quoted('heartbeat failed at redis://10.0.0.5:6379; the next one goes in 2000 ms: x')).toBe(true)
    expect(quoted('heartbeat failed at <address>; the next one goes in N ms')).toBe(true)
  })

  it('may leave words out with ... and stop where a part of the line ends', () => {
    expect(quoted('heartbeat failed at ...')).toBe(true)
    expect(quoted('heartbeat failed at ...; the next one goes in ...')).toBe(true)
    expect(quoted('... the next one goes in N ms ...')).toBe(true)
    expect(quoted('heartbeat failed at redis://10.0.0.5:6379')).toBe(true)
  })

  it('may give the details that end the line in words', () => {
    expect(quoted('heartbeat failed at ...: Redis at redis://10.0.0.5:6379 is not reachable (...)')).toBe(
      true,
    )
  })

  it('of the server may stop where its burst says since when it counts', () => {
    const burst: LogLine = {
      file: 'x.ts',
      debug: false,
      message: `${filled('count')} session(s) claimed since the last such line`,
    }
    expect(quotes('N session(s) claimed', burst, SERVER)).toBe(true)
    expect(quotes('N session(s)', burst, SERVER)).toBe(false)
  })

  it('is not a line whose words differ, nor one cut within a part', () => {
    expect(quoted('heartbeat failed on ...')).toBe(false)
    expect(quoted('heartbeats failed at ...')).toBe(false)
    expect(quoted('heartbeat failed at ...; the next one goes')).toBe(false)
    expect(quoted('heartbeat failed at two nodes; the next one goes in N ms')).toBe(false)
    expect(quoted('failed at ...')).toBe(false)
  })
})

describe('words from within a line', () => {
  const line: LogLine = {
    file: 'x.ts',
    debug: false,
    message: 'parley: drain: sessions were not claimed; sealed',
  }

  it('are found as written, and only so', () => {
    expect(withinSome('sessions were not claimed', [line], SERVER)).toBe(true)
    expect(withinSome('sessions were not   claimed', [line], SERVER)).toBe(true)
    expect(withinSome('sessions were never claimed', [line], SERVER)).toBe(false)
  })
})

describe.each(loggers)('the lines of %s the docs quote', (_, logger, lines, least) => {
  const logged = lines()

  it('are read from the docs', () => {
    // Finding none would mean the reading broke, not that the docs quote nothing.
    expect(userDocs.flatMap((doc) => quotesIn(read(doc), logger)).length).toBeGreaterThanOrEqual(least)
  })

  it.each(userDocs)('%s: quotes only lines the code logs', (doc) => {
    const drifted = quotesIn(read(doc), logger).filter((quote) => !quotesSome(quote, logged, logger))
    expect(drifted.map((quote) => `${logger.prefix}${quote}`)).toEqual([])
  })
})

/** How many words a span has, but its `...`: fewer than three may be anything (`auth: ...`). */
const words = (span: string) => span.split(/\s+/).filter((word) => word.replace(/\.\.\.|[^\w]/g, '') !== '')

describe('the docs', () => {
  const all = loggers.map(([, logger, lines]) => [logger, lines()] as const)

  it.each(userDocs)('%s: quote each log line with its prefix, so that it is held to the code', (doc) => {
    const unmarked = codeSpans(read(doc)).filter(
      (span) =>
        words(span).length >= 3 &&
        all.every(([logger]) => !span.startsWith(logger.prefix)) &&
        // From a line's beginning, or words from within it (`sessions were not claimed ...`).
        all.some(([logger, lines]) => quotesSome(span, lines, logger) || withinSome(span, lines, logger)),
    )
    expect(unmarked).toEqual([])
  })
})
