// The lines the server (and the chat demo) write to the application's Fastify log, read from
// their sources with the TypeScript parser (see ts-messages.ts): a burst's message is often a
// template joined with `+` over lines, which a pattern over the text would cut short.
import { join } from 'node:path'
import ts from 'typescript'
import { COUNT, DEMO, type Logger, type LogLine, SERVER } from './log-lines.js'
import { root } from './markdown.js'
import { declarationOf, handedTo, type Message, messages, sources, walk, where } from './ts-messages.js'

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])

/** What a call hands a log: its level (as written, or read from the code) and its message. */
interface Handed {
  level: string | ts.Expression | undefined
  /** The message, or (`made`) a function that makes it from a count (see `BurstLog`). */
  message: ts.Expression
  made?: true
}

/**
 * A log call: `<log>.warn(fields, message)` or `<log>.warn(message)` on a logger named `log`
 * (`app.log`, `this.#log`, `log?.`), or `logLine(log, 'warn', fields, message)`.
 */
function logCall(node: ts.Node): Handed | undefined {
  if (!ts.isCallExpression(node)) return undefined
  const callee = node.expression
  if (ts.isIdentifier(callee) && callee.text === 'logLine') {
    return { level: node.arguments[1], message: argument(node, 3) }
  }
  if (!ts.isPropertyAccessExpression(callee) || !LEVELS.has(callee.name.text)) return undefined
  const owner = callee.expression
  const name = ts.isPropertyAccessExpression(owner) ? owner.name.text : owner.getText()
  if (name !== 'log' && name !== '#log') return undefined
  return { level: callee.name.text, message: argument(node, node.arguments.length >= 2 ? 1 : 0) }
}

function argument(call: ts.CallExpression | ts.NewExpression, index: number): ts.Expression {
  const found = call.arguments?.[index]
  if (!found) throw new Error(`${where(call)}: a log call without a message`)
  return found
}

/**
 * A logger of the package's that writes the lines others hand it: its own log call writes
 * `fills` (a placeholder of its message) with each message handed to it, and the lines are read
 * where they are handed.
 */
export interface Relay {
  file: string
  fills: string
  handed(node: ts.Node): Handed | undefined
}

/** Where the lines are read from (a package's sources, parsed), and what they begin with. */
export interface Reading {
  files: readonly ts.SourceFile[]
  logger: Logger
  relays: readonly Relay[]
  /** Lines written in another's words, without the prefix: each file's, by how they begin. */
  othersWords: readonly { file: string; begins: string }[]
}

/** A relay's own log call: what its line has around the handed message, and its level. */
interface Frame {
  before: string
  after: string
  level: Handed['level']
}

/**
 * Every line that the sources of `reading` log, each as written, placeholders and all. Throws,
 * saying where, on a message it cannot read.
 */
export function logLines({ files, logger, relays, othersWords }: Reading): LogLine[] {
  const frames = new Map<Relay, Frame>()
  const handed: { node: ts.Node; call: Handed; relay?: Relay }[] = []
  for (const file of files) {
    for (const node of walk(file)) {
      for (const relay of relays) {
        const call = relay.handed(node)
        if (call) handed.push({ node, call, relay })
      }
      const call = logCall(node)
      if (!call) continue
      const placeholder = (relay: Relay) => `$\{${relay.fills}}`
      const own = relays.find(
        (relay) => relay.file === file.fileName && call.message.getText().includes(placeholder(relay)),
      )
      if (!own) {
        handed.push({ node, call })
        continue
      }
      if (frames.has(own))
        throw new Error(`${where(node)}: a second log call that writes ${placeholder(own)}`)
      const [before = '', after = ''] = messages(call.message, files)[0]!.text.split(placeholder(own))
      frames.set(own, { before, after, level: call.level })
    }
  }
  const lines: LogLine[] = []
  for (const { node, call, relay } of handed) {
    const frame = relay ? frames.get(relay) : { before: '', after: '', level: undefined }
    if (!frame) throw new Error(`${relay!.file}: no log call that writes $\{${relay!.fills}}`)
    const written = call.made ? made(call.message, files) : messages(call.message, files)
    for (const level of levels(call.level ?? frame.level, node, files)) {
      for (const { file, text } of written) {
        const message = frame.before + text + frame.after
        if (message.startsWith(logger.prefix)) {
          lines.push({ file, debug: level === 'debug' || level === 'trace', message })
        } else if (!othersWords.some((other) => other.file === file && message.startsWith(other.begins))) {
          throw new Error(`${where(node)}: a line that does not begin with ${logger.prefix.trim()}`)
        }
      }
    }
  }
  return lines
}

/** The levels a call logs at: as written, or what the code gives it (a constant, either side of a `?:`). */
function levels(level: Handed['level'], node: ts.Node, files: readonly ts.SourceFile[]): string[] {
  if (level === undefined) throw new Error(`${where(node)}: a log call without a level`)
  const found = typeof level === 'string' ? [level] : messages(level, files).map(({ text }) => text)
  for (const name of found) if (!LEVELS.has(name)) throw new Error(`${where(node)}: no log level ${name}`)
  return found
}

/**
 * The messages a burst's function makes (`(count, first) => ...`), its first parameter, the
 * count, written `${count}` whatever its name (see `BurstLog`).
 */
function made(maker: ts.Expression, files: readonly ts.SourceFile[]): Message[] {
  if (ts.isArrowFunction(maker) || ts.isFunctionExpression(maker)) {
    const count = maker.parameters[0]?.name.getText()
    const bodies = ts.isBlock(maker.body)
      ? [...walk(maker.body)]
          .filter(ts.isReturnStatement)
          .flatMap((r) => (r.expression ? [r.expression] : []))
      : [maker.body]
    return bodies
      .flatMap((body) => messages(body, files))
      .map(({ file, text }) => ({ file, text: count ? text.replaceAll(`$\{${count}}`, COUNT) : text }))
  }
  if (ts.isIdentifier(maker)) {
    const declaration = declarationOf(maker)
    if (declaration && ts.isParameter(declaration))
      return handedTo(declaration).flatMap((given) => made(given, files))
    if (declaration?.initializer) return made(declaration.initializer, files)
  }
  throw new Error(`${where(maker)}: a burst's message the docs test cannot read`)
}

/**
 * Every line the server's sources log, `parley: ` first. Two of its loggers write lines handed
 * to them: `BurstLog`, the message its `new BurstLog(log, level, (count, first) => ...)` makes;
 * and the `warn` of a session's config, which has no log of its own. The 404 line under
 * Parley's path is in Fastify's words, as Fastify writes it (see not-found.ts).
 */
export function serverLogLines(): LogLine[] {
  return logLines({
    files: sources(join(root, 'packages', 'server', 'src')),
    logger: SERVER,
    relays: [
      {
        file: 'burst-log.ts',
        fills: 'this.#message(count, example)',
        handed: (node) =>
          ts.isNewExpression(node) && node.expression.getText() === 'BurstLog'
            ? { level: node.arguments?.[1], message: argument(node, 2), made: true }
            : undefined,
      },
      {
        file: 'server.ts',
        fills: 'message',
        handed: (node) =>
          ts.isCallExpression(node) &&
          ts.isPropertyAccessExpression(node.expression) &&
          node.expression.name.text === 'warn' &&
          /(^|\.)#?config$/.test(node.expression.expression.getText())
            ? { level: undefined, message: argument(node, 0) }
            : undefined,
      },
    ],
    othersWords: [{ file: join('http', 'not-found.ts'), begins: 'Route ' }],
  })
}

/** Every line the chat demo's server logs, `chat: ` first. */
export function demoLogLines(): LogLine[] {
  return logLines({
    files: sources(join(root, 'apps', 'chat-demo', 'src')),
    logger: DEMO,
    relays: [],
    othersWords: [],
  })
}
