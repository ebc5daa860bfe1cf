// How the docs tests read the log lines of the code (server-log-lines.ts, ts-messages.ts): each
// line whole, however its message is put together, or an error that says where it could not.
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { DEMO, SERVER } from './log-lines.js'
import { quotesSome } from './log-quotes.js'
import { demoLogLines, logLines, type Relay, serverLogLines } from './server-log-lines.js'

/** A placeholder, as a template in the sources writes it and a line read from them keeps it. */
const $ = (name: string) => `$\{${name}}`

/** A source file of the given lines, parsed as the readers parse the package's. */
const source = (name: string, ...lines: string[]) =>
  ts.createSourceFile(name, lines.join('\n'), ts.ScriptTarget.Latest, true)

/** A logger like `BurstLog`: `new Burst(log, level, (count) => message)`, written `parley: ...`. */
const burst: Relay = {
  file: 'burst.ts',
  fills: 'this.make(n)',
  handed: (node) =>
    ts.isNewExpression(node) && node.expression.getText() === 'Burst'
      ? { level: node.arguments?.[1], message: node.arguments![2]!, made: true }
      : undefined,
}

const read = (...files: ts.SourceFile[]) =>
  logLines({ files, logger: SERVER, relays: [burst], othersWords: [] }).map(
    ({ debug, message }) => `${debug ? 'debug' : 'shown'} ${message}`,
  )

const burstFile = source(
  'burst.ts',
  `class Burst { line(n) { logLine(this.log, this.level, {}, \`parley: ${$('this.make(n)')}\`) } }`,
)

describe('the log lines read from the sources', () => {
  it('are read whole: templates joined with +, either side of a ?:, local constants', () => {
    const lines = read(
      burstFile,
      source(
        'a.ts',
        'const word = "sealed"',
        'function f(log, alone) {',
        `  log.warn({ n: 1 }, 'parley: drain: ' + \`sessions were not claimed; their tails are ${$('word')}\`)`,
        "  log.info(alone ? 'parley: alone' : 'parley: not alone')",
        "  logLine(log, 'debug', {}, 'parley: at debug')",
        '}',
      ),
    )
    expect(lines).toEqual([
      `shown parley: drain: sessions were not claimed; their tails are ${$('word')}`,
      'shown parley: alone',
      'shown parley: not alone',
      'debug parley: at debug',
    ])
  })

  it('are read where a logger is handed them, through a helper, its count named count', () => {
    const lines = read(
      burstFile,
      source(
        'b.ts',
        "const warn = (message) => new Burst(log, 'warn', message)",
        `const a = warn((n) => \`refused ${$('n')} request(s) since the last such line (the first: \` +`,
        "  'x): use the same major version')",
        `const b = new Burst(log, 'error', (count, first) => \`${$('count')} failed\`)`,
      ),
    )
    expect(lines).toEqual([
      `shown parley: refused ${$('count')} request(s) since the last such line (the first: x): use the same major version`,
      `shown parley: ${$('count')} failed`,
    ])
  })

  it('throw, saying where, on a message they cannot read', () => {
    const unread = source('c.ts', 'function f(log) {', '  log.warn({}, messageOf(f))', '}')
    expect(() => read(burstFile, unread)).toThrow(/^c\.ts:2: /)
    const unprefixed = source('d.ts', "log.error('drain failed')")
    expect(() => read(burstFile, unprefixed)).toThrow(/^d\.ts:1: .* parley:/)
  })

  it('throw when a logger that writes what it is handed no longer does', () => {
    const renamed = source(
      'burst.ts',
      `class Burst { line(n) { logLine(this.log, this.level, {}, \`parley: ${$('this.made(n)')}\`) } }`,
    )
    expect(() => read(renamed, source('e.ts', "new Burst(log, 'warn', () => 'x')"))).toThrow(/^burst\.ts/)
  })
})

describe("the server's lines", () => {
  const lines = serverLogLines()

  it('are read to their end, past a burst message joined over lines', () => {
    expect(
      quotesSome(
        'refused N request(s) since the last such line for another protocol version (the first: ...): ' +
          'this server speaks v=1, over WebSocket with the subprotocol parley.v1. ' +
          'Use client and server packages of the same major version; a proxy must pass Sec-WebSocket-Protocol on',
        lines,
        SERVER,
      ),
    ).toBe(true)
    const origin = (proxy: string) =>
      `refused a request from origin ... ${proxy}, set trustProxy and forward X-Forwarded-Host and X-Forwarded-Proto`
    expect(quotesSome(origin('Behind a proxy that changes Host'), lines, SERVER)).toBe(true)
    expect(quotesSome(origin('Behind a proxy'), lines, SERVER)).toBe(false)
  })

  it("include the warnings a session hands the server's log", () => {
    expect(quotesSome('an event sent while the session was taken over ...', lines, SERVER)).toBe(true)
  })
})

describe("the chat demo's lines", () => {
  const lines = demoLogLines()

  it('are read with each word a parameter typed as a choice of words can be', () => {
    const failed = (what: string) => `a ${what} taken over from another node failed`
    expect(quotesSome(failed('join'), lines, DEMO)).toBe(true)
    expect(quotesSome(failed('message'), lines, DEMO)).toBe(true)
    expect(quotesSome(failed('joins'), lines, DEMO)).toBe(false)
  })
})
