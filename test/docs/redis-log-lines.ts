// The warnings @parley/redis writes to its `log`, read from its sources with the TypeScript
// parser: a message there is often a template spread over lines, a choice of two (`a ? b : c`),
// or a list another function returns, which a pattern over the text would miss.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { type LogLine, REDIS } from './log-lines.js'
import { root } from './markdown.js'

const SOURCES = join(root, 'packages', 'redis', 'src')

/** Each source file of the adapter, parsed. */
function sources(): ts.SourceFile[] {
  return readdirSync(SOURCES)
    .filter((file) => file.endsWith('.ts'))
    .map((file) =>
      ts.createSourceFile(file, readFileSync(join(SOURCES, file), 'utf8'), ts.ScriptTarget.Latest, true),
    )
}

function* walk(node: ts.Node): Generator<ts.Node> {
  yield node
  for (const child of node.getChildren()) yield* walk(child)
}

const where = (node: ts.Node) => {
  const file = node.getSourceFile()
  return `${file.fileName}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
}

/** A message as written, and the file it is written in. */
interface Message {
  file: string
  text: string
}

/**
 * The messages `expression` can be: a string as written (a template's placeholders as
 * `${...}`), either side of a `?:`, what a local constant holds, or, for one a `for ... of`
 * walks, the strings the method it came from returns or pushes (`Nodes.stop`: each step of the
 * goodbye that did not go through). Throws on anything else, so that a message never goes unread.
 */
function messages(expression: ts.Expression, files: readonly ts.SourceFile[]): Message[] {
  const file = expression.getSourceFile().fileName
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) {
    return [{ file, text: expression.text }]
  }
  if (ts.isTemplateExpression(expression)) return [{ file, text: expression.getText().slice(1, -1) }]
  if (ts.isParenthesizedExpression(expression) || ts.isAwaitExpression(expression)) {
    return messages(expression.expression, files)
  }
  if (ts.isConditionalExpression(expression)) {
    return [...messages(expression.whenTrue, files), ...messages(expression.whenFalse, files)]
  }
  if (ts.isIdentifier(expression)) {
    const declaration = declarationOf(expression)
    if (declaration?.initializer) return messages(declaration.initializer, files)
    const loop = declaration?.parent.parent
    if (loop && ts.isForOfStatement(loop)) return messages(loop.expression, files)
  }
  if (ts.isCallExpression(expression) && ts.isPropertyAccessExpression(expression.expression)) {
    return returnedStrings(expression.expression.name.text, files)
  }
  throw new Error(`${where(expression)}: a warning's message the docs test cannot read`)
}

/** The declaration of a local name, in the function around it. */
function declarationOf(name: ts.Identifier): ts.VariableDeclaration | undefined {
  for (let scope: ts.Node | undefined = name.parent; scope; scope = scope.parent) {
    for (const node of walk(scope)) {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === name.text)
        return node
    }
    if (ts.isFunctionLike(scope)) return undefined
  }
  return undefined
}

/** The strings that a method `name` typed to return strings (`string[]`) returns in a list or pushes. */
function returnedStrings(name: string, files: readonly ts.SourceFile[]): Message[] {
  const found: Message[] = []
  for (const file of files) {
    for (const node of walk(file)) {
      if (!ts.isMethodDeclaration(node) || node.name.getText() !== name || !node.body) continue
      if (!/\bstring\[\]/.test(node.type?.getText() ?? '')) continue
      for (const inner of walk(node.body)) {
        if (
          ts.isReturnStatement(inner) &&
          inner.expression &&
          ts.isArrayLiteralExpression(inner.expression)
        ) {
          for (const element of inner.expression.elements) found.push(...messages(element, files))
        }
        if (
          ts.isCallExpression(inner) &&
          ts.isPropertyAccessExpression(inner.expression) &&
          inner.expression.name.text === 'push'
        ) {
          for (const argument of inner.arguments) found.push(...messages(argument, files))
        }
      }
    }
  }
  if (found.length === 0) throw new Error(`no method ${name}() that returns the messages of a warning`)
  return found
}

/**
 * Every warning the adapter's sources can write, as logged: the message of each
 * `warnings.warn(kind, message, details)`, with the `@parley/redis: ` that `Warnings` puts in
 * front of it (it logs them all at warn).
 */
export function redisLogLines(): LogLine[] {
  const files = sources()
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
