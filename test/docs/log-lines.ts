// The lines the server writes to the application's log, read from its sources, for the docs
// test that holds docs/errors.md to them: every line at info, warn or error named there, and no
// line named there that the server no longer writes.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './markdown.js'

/** One line the server logs: its message, placeholders as written (`${count}` for how many). */
export interface LogLine {
  file: string
  /** Debug lines are for whoever looks into the server, not for the operator. */
  debug: boolean
  message: string
}

const SOURCES = join(root, 'packages', 'server', 'src')

/** How a message says how many it counts. */
const COUNT = '$' + '{count}'

/** A burst's message: it counts (see `BurstLog`), so it says `${count}`. */
const BURST = /`([^`]*\$\{count\}[^`]*)`/g
/**
 * A line logged as it comes, its level first: `log.warn({ ... }, 'parley: ...')`,
 * `logLine(log, 'warn', { ... }, '...')`.
 */
const DIRECT = [
  /\.(debug|info|warn|error)\(\s*(?:\{[^{}]*\},\s*)?'([^']+)'/g,
  /logLine\(\s*[^,]+,\s*'(debug|info|warn|error)',\s*\{[^{}]*\},\s*'([^']+)'/g,
]

/** Every line the server's sources log (a burst is never at debug: see `BurstLevel`). */
export function serverLogLines(): LogLine[] {
  const lines: LogLine[] = []
  for (const file of readdirSync(SOURCES, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue
    // Without comments, whose examples log lines of an application's.
    const text = readFileSync(join(SOURCES, file), 'utf8')
      .split('\n')
      .filter((line) => !/^\s*(\*|\/\/)/.test(line))
      .join('\n')
    for (const [, message] of text.matchAll(BURST)) lines.push({ file, debug: false, message: message! })
    for (const pattern of DIRECT) {
      for (const [, level, message] of text.matchAll(pattern)) {
        lines.push({ file, debug: level === 'debug', message: message! })
      }
    }
  }
  return lines
}

/**
 * The part of `message` that names it, up to where its details begin (`since the last such
 * line`, a `;`, a ` (`), without the `parley: ` the logger's lines begin with.
 */
export function nameOf(message: string): string {
  const text = message.replace(/^parley: /, '')
  const ends = [' since the last such line', '; ', ' (']
    .map((end) => text.indexOf(end))
    .filter((at) => at >= 0)
  return text.slice(0, Math.min(text.length, ...ends)).replace(/[,:.\s]+$/, '')
}

/** `doc` with its lines joined: a name may be wrapped across two. */
const oneLine = (doc: string) => doc.replace(/\s*\n\s*/g, ' ')

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Whether `doc` names the line: `parley: ` then its name, its count written `N`, any other
 * placeholder as the doc likes (`"<event>"`); or, in a cell that lists several lines of the
 * adapter, `... ` then its name without `the adapter `.
 */
export function namedIn(doc: string, line: LogLine): boolean {
  const pattern = (name: string) =>
    name
      .split(/(\$\{[^}]*\})/)
      .map((part) => (part === COUNT ? 'N' : part.startsWith('${') ? '.*?' : literal(part)))
      .join('')
  const name = nameOf(line.message)
  const short = name.replace(/^the adapter /, '')
  return new RegExp(`\`(?:parley: ${pattern(name)}|\\.\\.\\. ${pattern(short)})`).test(oneLine(doc))
}

/**
 * The lines `doc` names as the server's (`` `parley: ...` ``): each up to its first ` ...`, its
 * count written `N`; `"<event>"` for a part the line fills in. A cell's `... ` shorthand for the
 * next line of a list is not read: those lines are held to the docs by `namedIn`.
 */
export function linesNamedIn(doc: string): string[] {
  const named = [...oneLine(doc).matchAll(/`parley: ([^`]*)`/g)].map(([, text]) =>
    text!.split(' ...')[0]!.trim(),
  )
  return [...new Set(named)].filter((name) => name !== '' && name !== '...')
}

/** Whether `name` (see `linesNamedIn`) begins some line of `lines`. */
export function logged(name: string, lines: readonly LogLine[]): boolean {
  const pattern = new RegExp(
    `^${name
      .split(/("<[^>]+>")/)
      .map((part) => (/^"<[^>]+>"$/.test(part) ? '".*?"' : literal(part).replace(/\bN\b/g, '\\$\\{count\\}')))
      .join('')}`,
  )
  return lines.some(({ message }) => pattern.test(message.replace(/^parley: /, '')))
}
