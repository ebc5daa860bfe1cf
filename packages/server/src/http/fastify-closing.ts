import type { FastifyInstance } from 'fastify'

/** What Fastify keeps the options it was created with under (a symbol of its own, not registered). */
const OPTIONS_SYMBOL = 'fastify.options'

/**
 * Whether Fastify answers every request itself, from the first moment of `app.close()`, with a
 * bare 503 (no code, no CORS headers), before any route or hook runs: its `return503OnClosing`,
 * on unless the app was created with it false. Fastify keeps the option to itself
 * (`initialConfig` leaves it out), and what a closing plugin must do depends on it: with it on,
 * no route of Parley's can answer until Fastify has closed; with it off, the routes keep serving
 * the drain. So it is read from the options the instance keeps, as Fastify reads it.
 * Undefined when they cannot be found (a Fastify that keeps them elsewhere): the caller then
 * assumes nothing. A test holds this to the Fastify installed.
 */
export function refusesWhileClosing(app: FastifyInstance): boolean | undefined {
  // An encapsulated instance inherits them from the root's.
  for (let object: object | null = app; object !== null; object = Object.getPrototypeOf(object)) {
    const key = Object.getOwnPropertySymbols(object).find((symbol) => symbol.description === OPTIONS_SYMBOL)
    if (key === undefined) continue
    const options: unknown = (object as Record<symbol, unknown>)[key]
    if (typeof options !== 'object' || options === null) return undefined
    return Object.hasOwn(options, 'return503OnClosing')
      ? Boolean((options as { return503OnClosing?: unknown }).return503OnClosing)
      : true
  }
  return undefined
}
