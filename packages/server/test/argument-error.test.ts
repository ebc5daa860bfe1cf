// The error every API call throws for an argument it cannot take, exported for adapters: theirs
// refuse in the same shape, with the same code.
import parley, { argumentError } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'

describe('argumentError', () => {
  it('is the shape the server throws for an argument it cannot take', async () => {
    const app = Fastify()
    try {
      await app.register(parley, {})
      let thrown: unknown
      try {
        app.parley.on('connection', 42 as never)
      } catch (err) {
        thrown = err
      }
      const made = argumentError('made')
      expect(thrown).toBeInstanceOf(TypeError)
      expect(made).toBeInstanceOf(TypeError)
      expect(made).toMatchObject({ name: 'TypeError', message: 'made', code: 'PARLEY_INVALID_ARGUMENT' })
      expect(Object.keys(made)).toEqual(Object.keys(thrown as object))
      expect((thrown as { code?: unknown }).code).toBe(made.code)
    } finally {
      await app.close()
    }
  })

  it('makes a RangeError for a number out of range, and keeps a cause', () => {
    const cause = new Error('why')
    const made = argumentError('out of range', { range: true, cause })
    expect(made).toBeInstanceOf(RangeError)
    expect(made).toMatchObject({ code: 'PARLEY_INVALID_ARGUMENT', cause })
  })
})
