// Every type that a package's public signatures name, of its own or of @parley/protocol (which
// applications need not depend on), is exported from its index, so that an application can name
// it too (a helper that takes a socket's emit arguments, options built apart from the register
// call, an adapter's members). Read with the TypeScript checker: from each export, the types its
// public members name, and theirs in turn.
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * Types named in public signatures that an application has no need to name, each with why: the
 * steps of a conditional type (its result is exported), and what is spelled out without them.
 */
/** Those of @parley/protocol, for either package. */
const unnamedOfProtocol: Record<string, string> = {
  Listener: 'a step of EventsFromSchemas',
  ReasonKey: 'a step of CloseReason',
  Args: 'a step of EmitArgs, AckReply, ...',
  Last: 'a step of AckReply, TimedArgs, ...',
  TakesAnything: 'a step of EmitArgs, TimedArgs, ...',
  UntypedArgs: 'a step of EmitArgs, TimedArgs, ...',
  AnyValue: 'a step of UntypedArgs',
}

const unnamed: Record<string, Record<string, string>> = {
  client: {
    Emitter: "the base class of Socket: its methods are the socket's",
    Fetch: '`typeof fetch`',
  },
  server: {
    Rooms: '`Room | readonly Room[]`, spelled out in the docs of to, except, ...',
  },
}

/** The packages whose exported classes an application may construct itself. */
const constructedByApps = ['redis']

/**
 * The names of the types of `pkg`'s sources, or of @parley/protocol's, that its exports' public
 * members name, unexported.
 */
function unexportedTypes(pkg: string): string[] {
  const entry = `${root}packages/${pkg}/src/index.ts`
  // The protocol as the package sees it: its build's declarations, through the workspace link.
  const own = [`${root}packages/${pkg}/src/`, `${root}packages/protocol/`]
  const program = ts.createProgram([entry], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
  })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(entry)
  const module = source && checker.getSymbolAtLocation(source)
  if (!module) throw new Error(`cannot read ${entry}`)
  const target = (symbol: ts.Symbol) =>
    symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
  const exported = new Set(checker.getExportsOfModule(module).map(target))
  const missing = new Set<string>()
  const seen = new Set<ts.Node>()

  /** Whether a declaration stays out of the published types, or out of what users call. */
  const hidden = (node: ts.Node) =>
    ts.getJSDocTags(node).some((tag) => tag.tagName.text === 'internal') ||
    // Applications never construct the client's or the server's classes (the plugin and
    // `connect` do). The adapter's they may: `RedisAdapter` is the class `redisAdapter` makes,
    // exported for a factory of their own, so its constructor's parameters are named too.
    (ts.isConstructorDeclaration(node) && !constructedByApps.includes(pkg)) ||
    // The implementation of overloads: not in the published types, only the overloads are.
    (ts.isMethodDeclaration(node) &&
      node.body !== undefined &&
      (checker.getSymbolAtLocation(node.name)?.declarations?.length ?? 1) > 1) ||
    ((ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isAccessor(node)) &&
      (ts.isPrivateIdentifier(node.name) ||
        (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Private) !== 0))

  const visit = (node: ts.Node): void => {
    if (seen.has(node) || hidden(node) || ts.isBlock(node)) return
    seen.add(node)
    if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node)) {
      const name = ts.isTypeReferenceNode(node) ? node.typeName : node.expression
      const symbol = checker.getSymbolAtLocation(name)
      const named = symbol && target(symbol)
      const declarations = named?.declarations ?? []
      if (
        named &&
        !(named.flags & ts.SymbolFlags.TypeParameter) &&
        !exported.has(named) &&
        declarations.some((d) => own.some((folder) => d.getSourceFile().fileName.startsWith(folder)))
      ) {
        missing.add(named.name)
        for (const declaration of declarations) visit(declaration)
      }
    }
    ts.forEachChild(node, visit)
  }
  for (const symbol of exported) for (const declaration of symbol.declarations ?? []) visit(declaration)
  return [...missing].filter((name) => !(name in (unnamed[pkg] ?? {})) && !(name in unnamedOfProtocol)).sort()
}

describe.each(['client', 'server', 'redis'])('the public types of @parley/%s', (pkg) => {
  it('are each exported from its index', () => {
    expect(unexportedTypes(pkg)).toEqual([])
  })
})
