import { checkEventName, cutText } from '@parley/protocol'
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv'
import formatsModule from 'ajv-formats'
import { argumentError, INVALID_ARGUMENT } from './argument-error.js'
import { isInstance, readKey, shown } from './thrown.js'

// Both packages are CommonJS with an ES-style `default` export; this reaches it the same way
// under Node's ESM loader and under bundlers.
const Ajv = AjvModule.default
const addFormats = formatsModule.default

/**
 * A JSON Schema (draft-07, the dialect of Fastify's validator) for the **arguments array** of
 * one event, without the trailing ack function. For an event sent as `emit('chat', msg)`:
 * `{ type: 'array', items: [msgSchema], minItems: 1, maxItems: 1 }`.
 */
export type EventSchema = boolean | { readonly [keyword: string]: unknown }

/** Event name -> schema of its arguments. */
export type EventSchemas<Names extends string = string> = { readonly [K in Names]?: EventSchema }

/** Messages are cut to this length: Ajv quotes schema values, which an application may not mind. */
const MAX_MESSAGE = 1024

/**
 * The compiled schemas of a server's events. Each schema is compiled once, when it is added;
 * checking an event is one call of the compiled function. One private Ajv instance (Ajv 8, as
 * Fastify 5 uses, with `ajv-formats`) and its defaults: no type coercion, no defaults filled
 * in, no properties removed, stop at the first error. A payload that passes is exactly what
 * the client sent.
 */
export class EventValidators {
  #ajv: InstanceType<typeof Ajv> | undefined
  readonly #byEvent = new Map<string, ValidateFunction>()
  /** The schema in force for each event (see `#compile`). */
  readonly #schemaOf = new Map<string, EventSchema>()

  /** How many events have a schema. */
  get size(): number {
    return this.#byEvent.size
  }

  /**
   * Compiles and adds schemas (an event's new schema replaces its old one). Throws a TypeError
   * naming the event when a name is reserved, or a schema does not compile or is asynchronous
   * (`$async`); then none of the given schemas is added.
   */
  add(schemas: EventSchemas): void {
    try {
      this.#add(schemas)
    } catch (error) {
      if (isInstance(error, TypeError) && readKey(error, 'code') === INVALID_ARGUMENT) throw error
      // What was given threw when read (a Proxy whose traps throw, a getter that throws).
      throw argumentError('schemas cannot be read: reading them threw', { cause: error })
    }
  }

  #add(schemas: EventSchemas): void {
    if (schemas === null || typeof schemas !== 'object' || Array.isArray(schemas)) {
      throw argumentError('schemas must be an object: event name -> JSON Schema of its arguments')
    }
    const compiled: [string, ValidateFunction, EventSchema][] = []
    for (const [event, schema] of Object.entries(schemas)) {
      if (schema === undefined) continue
      if (checkEventName(event)) {
        throw argumentError(`schemas: "${event}" is not an event name a client can send`)
      }
      if (typeof schema !== 'boolean' && (schema === null || typeof schema !== 'object')) {
        throw argumentError(`schemas: the schema of "${event}" must be a JSON Schema object or a boolean`)
      }
      const notArguments = topLevelMistake(schema)
      if (notArguments) {
        throw argumentError(
          `schemas: the schema of "${event}" must describe its arguments array ` +
            `({ type: 'array', items: [...] }), but ${notArguments}`,
        )
      }
      let validate: ValidateFunction
      try {
        validate = this.#compile(event, schema, compiled)
      } catch (error) {
        throw argumentError(
          `schemas: the schema of "${event}" does not compile: ${shown(readKey(error, 'message') ?? error)}`,
          {
            cause: error,
          },
        )
      }
      // Ajv compiles `$async: true` into a function that returns a promise, always truthy to
      // `check`, and whose rejection for an invalid event nobody would catch.
      if ((validate as { $async?: unknown }).$async === true) {
        throw argumentError(
          `schemas: the schema of "${event}" is asynchronous ($async); events are checked synchronously`,
        )
      }
      compiled.push([event, validate, schema])
    }
    for (const [event, validate, schema] of compiled) {
      this.#byEvent.set(event, validate)
      this.#schemaOf.set(event, schema)
    }
  }

  /**
   * Compiles `event`'s new schema. Ajv keeps every schema with an `$id` it compiled under that
   * id, and refuses another one under it: so a new version of an event's schema with the same
   * `$id` (a reload, a second declaration) would not compile, nor a schema of a batch refused
   * before (see `add`) given again. The id is freed first when no schema in force for another
   * event, nor one compiled earlier in this batch (`batch`), holds it: the compiled functions
   * in force keep working without it. Two events' schemas under one id still clash, as a
   * `$ref` to it would be ambiguous.
   */
  #compile(
    event: string,
    schema: EventSchema,
    batch: readonly [string, unknown, EventSchema][],
  ): ValidateFunction {
    const ajv = this.#compiler()
    const id = idOf(schema)
    if (typeof id === 'string' && ajv.getSchema(id)?.schema !== schema) {
      const held = (other: EventSchema) => other !== schema && idOf(other) === id
      const inForce = [...this.#schemaOf].some(([name, other]) => name !== event && held(other))
      if (!inForce && !batch.some(([, , other]) => held(other))) ajv.removeSchema(id)
    }
    return ajv.compile(schema)
  }

  /** Null when the arguments pass (or the event has no schema), else what is wrong with them. */
  check(event: string, args: readonly unknown[]): string | null {
    const validate = this.#byEvent.get(event)
    if (!validate || validate(args)) return null
    // Never half an emoji: the path holds the client's keys, and the client reads the message.
    return cutText(describe(validate.errors), MAX_MESSAGE)
  }

  #compiler(): InstanceType<typeof Ajv> {
    if (!this.#ajv) {
      // allErrors stays off: collecting every error of a hostile payload costs unbounded time.
      // Unknown keywords still throw (a typo must not silently accept everything); tuples
      // without maxItems are the normal way to describe optional trailing arguments.
      this.#ajv = new Ajv({ allErrors: false, strictTuples: false })
      addFormats(this.#ajv)
    }
    return this.#ajv
  }
}

/**
 * Why a schema cannot be one of an arguments array, or undefined: its top level names another
 * type, or describes an object's properties (the schema of the first argument, given alone).
 */
function topLevelMistake(schema: EventSchema): string | undefined {
  if (typeof schema === 'boolean') return undefined
  const type = schema.type
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type]
  if (types.length > 0 && !types.includes('array')) return `its top level is of type ${JSON.stringify(type)}`
  if (types.length === 0 && ('properties' in schema || 'required' in schema)) {
    return 'its top level describes an object (properties, required)'
  }
  return undefined
}

/** The `$id` a schema names itself by, if any. */
function idOf(schema: EventSchema): unknown {
  return typeof schema === 'object' ? schema.$id : undefined
}

/** Ajv's errors as one line, paths rooted at `args`: `args/0/text must be string`. */
function describe(errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'the arguments do not match the schema'
  return errors.map((e) => `args${e.instancePath} ${e.message ?? 'is invalid'}`).join('; ')
}
