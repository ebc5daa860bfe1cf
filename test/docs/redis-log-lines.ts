// The warnings @parley/redis writes to its `log`, read from its sources with the TypeScript
// parser (see ts-messages.ts): a message there is often a template spread over lines, a choice
// of two (`a ? b : c`), or a list another function returns, which a pattern over the text would
// miss.
import { join } from 'node:path'
import ts from 'typescript'
import { type LogLine, REDIS } from './log-lines.js'
import { root } from './markdown.js'
import { messages, sources, walk, where } from './ts-messages.js'

const SOURCES = join(root, 'packages', 'redis', 'src')

/**
 * Every warning the adapter's sources can write, as logged: the message of each
 * `warnings.warn(kind, message, details)`, with the `@parley/redis: ` that `Warnings` puts in
 * front of it (it logs them all at warn).
 */
export function redisLogLines(): LogLine[] {
  const files = sources(SOURCES)
  const lines: LogLine[] = []
  for (const file of files) {
    for (const node of walk(file)) {
      if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) continue
      const { name, expression: owner } = node.expression
      if (name.text !== 'warn' || !/warnings$/.test(owner.getText())) continue
      const message = node.arguments[1]
      if (!message) throw new Error(`${where(node)}: a warning without a message`)
      for (const { file, text } of messages(message, files)) {
        lines.push({ file, debug: false, message: `${REDIS.prefix}${text}` })
      }
    }
  }
  return lines
}
