// The chat demo's README lists every line the demo's server logs (`chat: ...`), in the table of
// its "What it logs", each with what to do: an operator reads there what a line means. That each
// line it quotes is one the code logs, word for word, is log-quotes.test.ts's.
import { describe, expect, it } from 'vitest'
import { DEMO, namedIn, nameOf } from './log-lines.js'
import { read, tableUnder } from './markdown.js'
import { demoLogLines } from './server-log-lines.js'

describe('apps/chat-demo/README.md', () => {
  const [header = [], ...rows] = tableUnder(read('apps/chat-demo/README.md'), 'What it logs')

  it('names every line the chat demo logs in its table of log lines', () => {
    const lines = demoLogLines().filter((line) => !line.debug)
    // The sources are read as text: finding few would mean the reading broke, not the README.
    expect(lines.length).toBeGreaterThanOrEqual(5)
    const named = rows.map((row) => row[0] ?? '').join('\n')
    const missing = lines.filter((line) => !namedIn(named, line, DEMO))
    expect(missing.map((line) => `${line.file}: ${nameOf(line.message, DEMO)}`)).toEqual([])
  })

  it('says what to do about each line of that table', () => {
    expect(header[0]).toBe('log line')
    const column = header.findIndex((cell) => cell.startsWith('what to do'))
    expect(column).toBeGreaterThan(0)
    expect(rows.filter((row) => !row[column]).map((row) => row[0])).toEqual([])
  })
})
