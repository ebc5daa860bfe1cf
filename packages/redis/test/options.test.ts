// redisAdapter() checks its options when it is called, before anything touches Redis.
import { RedisAdapterOptionError, type RedisClient, redisAdapter } from '@parley/redis'
import parley from '@parley/server'
import Fastify from 'fastify'
import { createClient } from 'redis'
import { describe, expect, it, vi } from 'vitest'
import { revoked, trapsThrow, UNSHOWABLE } from '../../../test/support/odd-values.js'

/** Enough of a connected client for option checks: nothing is sent before the server registers. */
function fakeClient(): RedisClient {
  return {
    isOpen: true,
    isReady: true,
    sendCommand: vi.fn(async () => null),
    duplicate: vi.fn(() => {
      throw new Error('not here')
    }),
  }
}

function refusal(options: unknown): RedisAdapterOptionError {
  try {
    redisAdapter(options as Parameters<typeof redisAdapter>[0])
  } catch (err) {
    expect(err).toBeInstanceOf(TypeError)
    expect(err).toBeInstanceOf(RedisAdapterOptionError)
    return err as RedisAdapterOptionError
  }
  throw new Error('no refusal')
}

describe('redisAdapter() options', () => {
  it('accepts a connected client alone, and every option in range, without touching the client', () => {
    const client = fakeClient()
    expect(typeof redisAdapter({ client })).toBe('function')
    const all = {
      client,
      prefix: 'chat:eu',
      address: 'https://node-1.internal:8443/',
      requestTimeout: 1,
      heartbeatInterval: 500,
      log: { warn: () => {} },
    }
    expect(typeof redisAdapter(all)).toBe('function')
    // Fastify's logger fits `log`.
    expect(typeof redisAdapter({ client, log: Fastify().log })).toBe('function')
    expect(client.sendCommand).not.toHaveBeenCalled()
    expect(client.duplicate).not.toHaveBeenCalled()
  })

  it('counts the prefix in characters, as the README does: an emoji is one, half of one is none', () => {
    const client = fakeClient()
    // 100 characters, 200 UTF-16 units: within the bound.
    expect(typeof redisAdapter({ client, prefix: '🦜'.repeat(100) })).toBe('function')
    expect(typeof redisAdapter({ client, prefix: `${'a'.repeat(99)}🦜` })).toBe('function')
    expect(refusal({ client, prefix: '🦜'.repeat(101) }).message).toMatch(/1 to 100 characters \(code points/)
    // Half of a UTF-16 pair is no character: Redis would get U+FFFD in its place, one key for
    // prefixes that differ.
    for (const lone of ['chat\ud83e', '\udd9cchat']) {
      const error = refusal({ client, prefix: lone })
      expect(error.option).toBe('prefix')
      expect(error.code).toBe('PARLEY_INVALID_OPTION')
      expect(error.message).toMatch(/lone surrogate/)
    }
  })

  it.each([
    [undefined, 'options', /must be an object/],
    [{}, 'client', /node-redis client/],
    [{ client: { publish() {} } }, 'client', /node-redis client/],
    [
      { client: createClient() },
      'client',
      /must be open: call client\.connect\(\) first \(no need to await it/,
    ],
    [{ client: 'redis://localhost' }, 'client', /got "redis:\/\/localhost"/],
    [{ client: fakeClient(), pubClient: {} }, 'pubClient', /is not an option/],
    [{ client: fakeClient(), prefix: '' }, 'prefix', /1 to 100 characters/],
    [{ client: fakeClient(), prefix: 'a b' }, 'prefix', /without whitespace \(spaces, tabs, line breaks/],
    [{ client: fakeClient(), prefix: 'a\tb' }, 'prefix', /without whitespace .* got "a\\tb"/],
    [{ client: fakeClient(), prefix: 'a\nb' }, 'prefix', /without whitespace .* got "a\\nb"/],
    [{ client: fakeClient(), prefix: 'a\u00a0b' }, 'prefix', /no-break spaces/],
    [{ client: fakeClient(), prefix: 'p*' }, 'prefix', /got "p\*"/],
    [{ client: fakeClient(), prefix: 7 }, 'prefix', /got 7/],
    [{ client: fakeClient(), address: 'node-1:3000' }, 'address', /http:\/\/ or https:\/\//],
    [{ client: fakeClient(), address: 'ftp://node-1' }, 'address', /got "ftp:\/\/node-1"/],
    [{ client: fakeClient(), address: 'http://node-1/?x=1' }, 'address', /URL/],
    [{ client: fakeClient(), requestTimeout: 0 }, 'requestTimeout', /integer from 1/],
    [{ client: fakeClient(), requestTimeout: 1.5 }, 'requestTimeout', /got 1.5/],
    [{ client: fakeClient(), requestTimeout: 2 ** 31 }, 'requestTimeout', /to 2147483647/],
    [{ client: fakeClient(), heartbeatInterval: 5 }, 'heartbeatInterval', /integer from 10 to 60000/],
    [{ client: fakeClient(), log: console.warn }, 'log', /warn\(details, message\)/],
    [{ client: fakeClient(), log: {} }, 'log', /got an object/],
  ])('refuses %o, naming "%s"', (options, option, message) => {
    const error = refusal(options)
    expect(error.option).toBe(option)
    expect(error.code).toBe('PARLEY_INVALID_OPTION')
    expect(error.message).toContain(`option "${option}"`)
    expect(error.message).toMatch(message)
  })

  it.each([
    ['heartbeatIntervl', 'heartbeatInterval'],
    ['hearbeatInterval', 'heartbeatInterval'],
    ['requestTimout', 'requestTimeout'],
    ['RequestTimeout', 'requestTimeout'],
    ['prefx', 'prefix'],
    ['adress', 'address'],
    ['lgo', 'log'],
  ])('refuses the misspelled %s, with the option it most likely meant (%s)', (given, meant) => {
    const error = refusal({ client: fakeClient(), [given]: 1 })
    expect([error.code, error.option, error.message]).toEqual([
      'PARLEY_INVALID_OPTION',
      given,
      `@parley/redis: option "${given}" is not an option of redisAdapter(): did you mean "${meant}"?`,
    ])
  })

  it('refuses an unknown option with nothing close by its name alone', () => {
    const error = refusal({ client: fakeClient(), pubClient: {} })
    expect(error.message).toBe('@parley/redis: option "pubClient" is not an option of redisAdapter()')
  })

  it.each(UNSHOWABLE)('refuses an option given %s, which no message can show, naming it', (_, make) => {
    for (const name of ['prefix', 'address', 'requestTimeout', 'heartbeatInterval']) {
      const error = refusal({ client: fakeClient(), [name]: make() })
      expect(error.option).toBe(name)
      expect(error.code).toBe('PARLEY_INVALID_OPTION')
    }
    expect(refusal({ client: make() }).code).toBe('PARLEY_INVALID_OPTION')
  })

  it('says what to write when given the client itself, as redisAdapter(redis)', () => {
    const error = refusal(fakeClient())
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'options' })
    expect(error.message).toContain('got a Redis client itself: write redisAdapter({ client })')
  })

  it('says so when given to the server uncalled, as `adapter: redisAdapter`', async () => {
    const app = Fastify()
    try {
      const error = await app.register(parley, { adapter: redisAdapter as never }).then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(error).toBeInstanceOf(RedisAdapterOptionError)
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'options' })
      expect((error as Error).message).toContain('adapter: redisAdapter({ client })')
    } finally {
      await app.close()
    }
  })

  it('refuses options that throw when read, with what they threw as cause', () => {
    const getter = Object.defineProperty({ client: fakeClient() }, 'prefix', {
      enumerable: true,
      get() {
        throw new Error('getter')
      },
    })
    for (const options of [
      trapsThrow(),
      revoked(),
      getter,
      { client: trapsThrow() },
      { client: revoked() },
      { client: fakeClient(), log: trapsThrow() },
    ]) {
      const error = refusal(options)
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'options' })
      expect(error.message).toContain('cannot be read')
      expect(error.cause).toBeDefined()
    }
  })
})
