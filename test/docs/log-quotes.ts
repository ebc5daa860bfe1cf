// The log lines the docs quote in running text, held to the lines the code logs (read by
// server-log-lines.ts and redis-log-lines.ts). A quote is an inline code span that begins with
// its logger's prefix, as the line does in the log: `parley: ...` for the server's,
// `@parley/redis: ...` for the adapter's warnings, `chat: ...` for the chat demo's. What follows is the line's own words, where
//   - `...` stands for words left out (the line's details, or a part of its middle),
//   - an example stands for a part the line fills in, written without spaces (`N` for a count,
//     `<id>`, `"<event>"`, `redis://10.0.0.5:6379`), but for the details that end a line
//     (`${why}`), which an example may give in words,
// and a quote may stop where a part of the line ends (before its `;`, `:`, `,`, `.` or ` (`,
// or the server's ` since the last such line`).
import type { Logger, LogLine } from './log-lines.js'
import { prose } from './markdown.js'

/** The inline code spans of the text, outside fenced blocks, each on one line. */
export function codeSpans(text: string): string[] {
  const spans: string[] = []
  // A span opens with a run of backticks and closes with the next run of as many.
  for (const [, , body] of prose(text).matchAll(/(?<!`)(`+)(?!`)([\s\S]*?[^`])\1(?!`)/g)) {
    spans.push(body!.replace(/\s*\n\s*/g, ' ').trim())
  }
  return spans
}

/** The log lines of `logger` that `text` quotes: each span that begins with its prefix, without it. */
export function quotesIn(text: string, logger: Logger): string[] {
  return codeSpans(text)
    .filter((span) => span.startsWith(logger.prefix))
    .map((span) => span.slice(logger.prefix.length))
}

/** A quote's `...`, and a line's placeholder, as one character each (neither is in a line). */
const ELIDED = '\u0000'
const FILLED = '\u0001'

/**
 * Where a quote may stop short of the end of the line: before a part of it ends, or where the
 * logger's details begin (for the server's, ` since the last such line`).
 */
const PART_ENDS = /^(?:[;:,.]| \()/

/** The words of `message` as logged, without the logger's prefix, each placeholder `FILLED`. */
function wordsOf(message: string, logger: Logger): string {
  const text = message.startsWith(logger.prefix) ? message.slice(logger.prefix.length) : message
  return text
    .replace(/\$\{[^}]*\}/g, FILLED)
    .replaceAll('\\`', '`')
    .replace(/\s+/g, ' ')
    .trim()
}

/** `quote` (see above) with each `...` as `ELIDED`, the spaces around it let go. */
function quoteWords(quote: string): string {
  return quote
    .replace(/\s*\.\.\.\s*/g, ELIDED)
    .replace(/\s+/g, ' ')
    .trim()
}

/**
 * Whether `quote` (without its prefix) quotes `line`: read from the line's beginning, each `...`
 * covering any part of it, each of the line's placeholders an example without spaces, the quote
 * ending where the line does, where one of its parts ends, or with `...`.
 */
export function quotes(quote: string, line: LogLine, logger: Logger): boolean {
  const q = quoteWords(quote)
  const m = wordsOf(line.message, logger)
  const memo = new Map<number, boolean>()
  const from = (i: number, j: number): boolean => {
    const key = i * (m.length + 1) + j
    let known = memo.get(key)
    if (known === undefined) {
      known = step(i, j)
      memo.set(key, known)
    }
    return known
  }
  const step = (i: number, j: number): boolean => {
    if (i === q.length) {
      const rest = m.slice(j)
      return rest === '' || PART_ENDS.test(rest) || logger.ends.some((end) => rest.startsWith(end))
    }
    if (q[i] === ELIDED) return from(i + 1, j) || (j < m.length && from(i, j + 1))
    if (j === m.length) return false
    if (m[j] === FILLED) {
      // Last, the placeholder is the line's free details (`${why}`): an example may say anything,
      // once the quote has come to them through the line's own words, not over a `...`.
      if (j === m.length - 1 && i > 0 && q[i - 1] !== ELIDED) return true
      // Else the example that fills it in: one or more characters, up to a space.
      for (let k = i; k < q.length && q[k] !== ' ' && q[k] !== ELIDED; k++) {
        if (from(k + 1, j + 1)) return true
      }
      return false
    }
    return q[i] === m[j] && from(i + 1, j + 1)
  }
  return from(0, 0)
}

/** Whether `quote` quotes some line of `lines` (see `quotes`). */
export function quotesSome(quote: string, lines: readonly LogLine[], logger: Logger): boolean {
  return lines.some((line) => quotes(quote, line, logger))
}

/**
 * Whether `text` is words of some line of `lines` as written there, from anywhere in it
 * (`sessions were not claimed before the timeout`): a quote from within a line, without what
 * it fills in.
 */
export function withinSome(text: string, lines: readonly LogLine[], logger: Logger): boolean {
  const words = text.replace(/\s+/g, ' ').trim()
  return lines.some((line) => wordsOf(line.message, logger).includes(words))
}
