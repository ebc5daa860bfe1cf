// The log lines of the code, as the docs tests hold the docs to them: docs/errors.md names every
// line the server writes at info, warn or error, and no line the server no longer writes
// (server-log-lines.ts reads them); the same for the warnings of @parley/redis
// (redis-log-lines.ts), which begin with a prefix of their own. The chat demo's lines
// (server-log-lines.ts too) begin with one more.

/** One line a package logs: its message, placeholders as written (`${count}` for how many). */
export interface LogLine {
  file: string
  /** Debug lines are for whoever looks into the server, not for the operator. */
  debug: boolean
  message: string
}

/** Whose lines: what each begins with in the log, and where its details begin (see `nameOf`). */
export interface Logger {
  prefix: string
  ends: readonly string[]
}

/** The server's lines: `parley: `, then a name, then details after `; ` or ` (`. */
export const SERVER: Logger = { prefix: 'parley: ', ends: [' since the last such line', '; ', ' ('] }

/**
 * The warnings of @parley/redis: `@parley/redis: `, then a name; their details also come after
 * a `: ` (`a broadcast could not reach the other nodes: <why>`).
 */
export const REDIS: Logger = { prefix: '@parley/redis: ', ends: ['; ', ': ', ' ('] }

/** The chat demo's lines: `chat: `, then what went wrong; details after a `: ` too. */
export const DEMO: Logger = { prefix: 'chat: ', ends: ['; ', ': ', ' ('] }

/** How a message says how many it counts. */
export const COUNT = '$' + '{count}'

/**
 * The part of `message` that names it, up to where its details begin (for the server's,
 * `since the last such line`, a `;`, a ` (`), without the prefix the logger's lines begin with.
 */
export function nameOf(message: string, logger: Logger = SERVER): string {
  const text = message.startsWith(logger.prefix) ? message.slice(logger.prefix.length) : message
  const ends = logger.ends.map((end) => text.indexOf(end)).filter((at) => at >= 0)
  return text.slice(0, Math.min(text.length, ...ends)).replace(/[,:.\s]+$/, '')
}

/** `doc` with its lines joined: a name may be wrapped across two. */
const oneLine = (doc: string) => doc.replace(/\s*\n\s*/g, ' ')

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A name as a pattern: its count written `N`, any other placeholder as the doc likes. */
const pattern = (name: string) =>
  name
    .split(/(\$\{[^}]*\})/)
    .map((part) => (part === COUNT ? 'N' : part.startsWith('${') ? '.*?' : literal(part)))
    .join('')

/**
 * Whether `doc` names the line: its logger's prefix (`parley: `) then its name, its count
 * written `N`, any other placeholder as the doc likes (`"<event>"`, `redis://10.0.0.5:6379`).
 */
export function namedIn(doc: string, line: LogLine, logger: Logger = SERVER): boolean {
  const name = nameOf(line.message, logger)
  return new RegExp(`\`${literal(logger.prefix)}${pattern(name)}`).test(oneLine(doc))
}

/**
 * The lines `doc` names as the logger's (`` `parley: ...` `` for the server's): each up to its
 * first ` ...`, its count written `N`; `"<event>"` for a part the line fills in.
 */
export function linesNamedIn(doc: string, logger: Logger = SERVER): string[] {
  const named = [...oneLine(doc).matchAll(new RegExp(`\`${literal(logger.prefix)}([^\`]*)\``, 'g'))].map(
    ([, text]) => text!.split(' ...')[0]!.trim(),
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

/**
 * Whether `named` (see `linesNamedIn`), as a doc writes a line of the logger's whose placeholders
 * it fills in with examples (`redis://10.0.0.5:6379`, `N`), is the name of some line of `lines`:
 * that name, then nothing or where its details begin (a `;` or `:` may end the text before
 * its ` ...`).
 */
export function loggedAs(named: string, lines: readonly LogLine[], logger: Logger): boolean {
  const after = ['$', ...logger.ends.map((end) => literal(end.trimEnd()))].join('|')
  return lines.some((line) => new RegExp(`^${pattern(nameOf(line.message, logger))}(?:${after})`).test(named))
}
