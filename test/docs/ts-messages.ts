// The messages a package's sources hand to a log, read with the TypeScript parser, shared by the
// readers of the server's lines (server-log-lines.ts) and of @parley/redis's (redis-log-lines.ts):
// a message there is often a template spread over lines, joined with `+`, a choice of two
// (`a ? b : c`), a local constant, or a function's parameter, which a pattern over the text
// would cut short or miss.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'

/** Each source file under `folder` (its tests left out), parsed, named relative to it. */
export function sources(folder: string): ts.SourceFile[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.endsWith('.d.ts'))
    .map((file) =>
      ts.createSourceFile(file, readFileSync(join(folder, file), 'utf8'), ts.ScriptTarget.Latest, true),
    )
}

export function* walk(node: ts.Node): Generator<ts.Node> {
  yield node
  for (const child of node.getChildren()) yield* walk(child)
}

/** `file:line` of a node, for the error of a message that cannot be read. */
export const where = (node: ts.Node): string => {
  const file = node.getSourceFile()
  return `${file.fileName}:${file.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
}

/** A message as written, and the file it is written in. */
export interface Message {
  file: string
  text: string
}

/**
 * A template's texts with their escapes read, each placeholder as written (`${count}`), but for a
 * parameter typed as a choice of strings (`what: 'join' | 'message'`): a text for each.
 */
function templateTexts(template: ts.TemplateExpression): string[] {
  return template.templateSpans.reduce(
    (texts, span) =>
      texts.flatMap((text) =>
        (choices(span.expression) ?? [`$\{${span.expression.getText()}}`]).map(
          (choice) => `${text}${choice}${span.literal.text}`,
        ),
      ),
    [template.head.text],
  )
}

/** The strings a parameter typed as a union of string literals can be; undefined for any other. */
function choices(expression: ts.Expression): string[] | undefined {
  if (!ts.isIdentifier(expression)) return undefined
  const declaration = declarationOf(expression)
  const type = declaration && ts.isParameter(declaration) ? declaration.type : undefined
  if (!type || !ts.isUnionTypeNode(type)) return undefined
  const strings = type.types.flatMap((member) =>
    ts.isLiteralTypeNode(member) && ts.isStringLiteral(member.literal) ? [member.literal.text] : [],
  )
  return strings.length === type.types.length ? strings : undefined
}

/**
 * The messages `expression` can be: a string as written (a template's placeholders as `${...}`,
 * but for a choice of strings: see `templateTexts`), each way of joining the parts of a `+`,
 * either side of a `?:`, what a local constant holds, what the callers of a local function give
 * its parameter, or, for one a `for ... of` walks, the strings the method it came from returns
 * or pushes (`Nodes.stop` of @parley/redis: each step of the goodbye that did not go through).
 * Throws on anything else, saying where, so that a message never goes unread.
 */
export function messages(expression: ts.Expression, files: readonly ts.SourceFile[]): Message[] {
  const file = expression.getSourceFile().fileName
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) {
    return [{ file, text: expression.text }]
  }
  if (ts.isTemplateExpression(expression)) return templateTexts(expression).map((text) => ({ file, text }))
  if (ts.isParenthesizedExpression(expression) || ts.isAwaitExpression(expression)) {
    return messages(expression.expression, files)
  }
  if (ts.isBinaryExpression(expression) && expression.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const right = messages(expression.right, files)
    return messages(expression.left, files).flatMap((left) =>
      right.map((end) => ({ file, text: left.text + end.text })),
    )
  }
  if (ts.isConditionalExpression(expression)) {
    return [...messages(expression.whenTrue, files), ...messages(expression.whenFalse, files)]
  }
  if (ts.isIdentifier(expression)) {
    const declaration = declarationOf(expression)
    if (declaration && ts.isParameter(declaration)) {
      return handedTo(declaration).flatMap((given) => messages(given, files))
    }
    if (declaration?.initializer) return messages(declaration.initializer, files)
    const loop = declaration?.parent.parent
    if (loop && ts.isForOfStatement(loop)) return messages(loop.expression, files)
  }
  if (ts.isCallExpression(expression) && ts.isPropertyAccessExpression(expression.expression)) {
    return returnedStrings(expression.expression.name.text, files)
  }
  throw new Error(`${where(expression)}: a log message the docs test cannot read`)
}

/**
 * The declaration of a local name, in the function around it (a constant, a loop's variable, a
 * parameter of that function or of one around it).
 */
export function declarationOf(
  name: ts.Identifier,
): ts.VariableDeclaration | ts.ParameterDeclaration | undefined {
  for (let scope: ts.Node | undefined = name.parent; scope; scope = scope.parent) {
    if (ts.isFunctionLike(scope)) {
      const parameter = scope.parameters.find((p) => ts.isIdentifier(p.name) && p.name.text === name.text)
      if (parameter) return parameter
    }
    for (const node of walk(scope)) {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.name.text === name.text)
        return node
    }
    if (ts.isFunctionLike(scope) && !ts.isArrowFunction(scope)) return undefined
  }
  return undefined
}

/**
 * What the calls of a local function give `parameter` (the message of
 * `const warn = (message) => new BurstLog(log, 'warn', message)`: each `warn(...)` beside it).
 * Throws when its function is no local constant, or nothing calls it.
 */
export function handedTo(parameter: ts.ParameterDeclaration): ts.Expression[] {
  const fn = parameter.parent
  const index = fn.parameters.indexOf(parameter)
  const holder = fn.parent
  if (!ts.isVariableDeclaration(holder) || !ts.isIdentifier(holder.name)) {
    throw new Error(`${where(parameter)}: a log message given by callers the docs test cannot find`)
  }
  const name = holder.name.text
  const given: ts.Expression[] = []
  // The calls are in the block the constant is declared in (a function's body, or the file).
  for (const node of walk(holder.parent.parent.parent)) {
    if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === name) {
      const argument = node.arguments[index]
      if (argument) given.push(argument)
    }
  }
  if (given.length === 0) throw new Error(`${where(parameter)}: nothing calls ${name}() with a message`)
  return given
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
