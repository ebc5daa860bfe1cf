// The schema-first path: one TypeBox declaration of an event's arguments is both the JSON Schema
// that the server's `app.parley.schemas()` checks at run time and the event map that both ends
// compile against (re-exported by @parley/server and @parley/client).
//
// Types only: nothing here runs, and nothing here imports @sinclair/typebox. A TypeBox schema
// carries its TypeScript type in a member that exists only for the compiler (`static`); reading
// it the way TypeBox's own `Static<T>` does keeps TypeBox an optional peer, with no cost (not
// even a module to resolve in the published types) for applications that do not use it.

/**
 * A schema that carries the TypeScript type it describes, as TypeBox's do: `static` is there for
 * the compiler only (absent at run time). Every `Type.*` of `@sinclair/typebox` 0.34 is one.
 */
export interface TypedSchema {
  readonly static: unknown
}

/** A typed schema of an arguments array: `Type.Tuple([...])`, `Type.Array(...)`. */
export interface TypedArgumentsSchema extends TypedSchema {
  readonly static: readonly unknown[]
}

/** The type a typed schema describes: what TypeBox's `Static<T>` gives. */
export type SchemaType<T extends TypedSchema> = (T & { params: [] })['static']

/** The listener of an event with these arguments; with a reply (`[type]`), the ack comes last. */
type Listener<Args extends readonly unknown[], Reply extends [unknown] | []> = Reply extends [infer R]
  ? (...args: [...Args, ack: (reply: R) => void]) => void
  : (...args: [...Args]) => void

/**
 * The event map that schemas declare: for each event, the schema of its **arguments array**
 * (`Type.Tuple([...])`, the same schema `schemas()` checks) and, for the events that want a
 * reply, the schema of the reply (types only: a reply is sent, not received, by the side that
 * declares it).
 *
 * ```ts no-check
 * const fromClient = { chat: Type.Tuple([Type.Object({ text: Type.String() })]) }
 * const replies = { chat: Type.Object({ ok: Type.Boolean() }) }
 * type FromClient = EventsFromSchemas<typeof fromClient, typeof replies>
 * //   { chat: (args_0: { text: string }, ack: (reply: { ok: boolean }) => void) => void }
 * ```
 *
 * A schema whose type is not an array (the first argument's schema given alone) does not
 * compile here, as `schemas()` refuses it at run time; nor does a reply for an unknown event.
 */
export type EventsFromSchemas<
  Args extends { readonly [K in keyof Args]: TypedArgumentsSchema },
  Replies extends { readonly [K in keyof Replies]: K extends keyof Args ? TypedSchema : never } = Record<
    never,
    never
  >,
> = {
  [K in keyof Args & string]: Listener<
    SchemaType<Args[K]>,
    K extends keyof Replies ? (Replies[K] extends TypedSchema ? [SchemaType<Replies[K]>] : []) : []
  >
}
