import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import { refusesWhileClosing } from './fastify-closing.js'

/** An instance encapsulated in `app`, as a plugin without fastify-plugin gets it. */
async function encapsulated(app: FastifyInstance): Promise<FastifyInstance> {
  let child: FastifyInstance | undefined
  await app.register(async (instance) => {
    child = instance
  })
  if (!child) throw new Error('no child instance')
  return child
}

// Fastify keeps the option to itself: this holds the reading of it to the Fastify installed, so
// that one which keeps it elsewhere fails here rather than leaving its closing 503 uncoded.
describe("reading Fastify's return503OnClosing", () => {
  it.each([
    ['left out', {}, true],
    ['true', { return503OnClosing: true }, true],
    ['false', { return503OnClosing: false }, false],
  ])('reads it %s as Fastify does, from an encapsulated instance too', async (_name, options, refuses) => {
    const app = Fastify(options)
    try {
      expect(refusesWhileClosing(app)).toBe(refuses)
      expect(refusesWhileClosing(await encapsulated(app))).toBe(refuses)
    } finally {
      await app.close()
    }
  })

  it('says it does not know for an object that is not a Fastify instance', () => {
    expect(refusesWhileClosing({} as FastifyInstance)).toBeUndefined()
  })
})
