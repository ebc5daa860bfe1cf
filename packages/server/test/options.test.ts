import { readFileSync } from 'node:fs'
import parley, { defaults, type ParleyServerOptions } from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { revoked, trapsThrow, UNSHOWABLE } from '../../../test/support/odd-values.js'

async function register(options: unknown) {
  const app = Fastify()
  try {
    await app.register(parley, options as ParleyServerOptions)
    await app.ready()
    return app.parley.options
  } finally {
    await app.close()
  }
}

describe('options', () => {
  it('fill in the defaults', async () => {
    const resolved = await register({})
    expect(resolved).toMatchObject({
      path: '/parley',
      transports: ['websocket', 'sse', 'polling'],
      pingInterval: defaults.pingInterval,
      pingTimeout: defaults.pingTimeout,
      maxPayload: 1_000_000,
      maxBufferedBytes: 8 * 1024 * 1024,
      highWaterMark: 1024 * 1024,
      maxPendingAcks: 1000,
      maxWaitingEvents: 1000,
      recoveryWindow: 120_000,
      handshakeTimeout: 10_000,
      maxSessions: Number.POSITIVE_INFINITY,
      perMessageDeflate: false,
      pollingCompression: { threshold: 1024 },
      closeIdleSseUpstream: false,
    })
  })

  it('accept every valid form', async () => {
    const resolved = await register({
      path: '/rt/',
      transports: ['polling', 'sse'],
      recovery: false,
      perMessageDeflate: { threshold: 64 },
      allowedOrigins: ['https://App.Example:443'],
    })
    expect(resolved).toMatchObject({
      path: '/rt',
      transports: ['polling', 'sse'],
      recoveryWindow: 0,
      perMessageDeflate: { threshold: 64 },
      allowedOrigins: ['https://app.example'],
    })
    expect((await register({ perMessageDeflate: true })).perMessageDeflate).toEqual({ threshold: 1024 })
    expect((await register({ pollingCompression: false })).pollingCompression).toBe(false)
    expect((await register({ maxSessions: 50_000 })).maxSessions).toBe(50_000)
    expect((await register({ maxSessions: Number.POSITIVE_INFINITY })).maxSessions).toBe(
      Number.POSITIVE_INFINITY,
    )
    expect((await register({ sseUpstream: 'close-when-idle' })).closeIdleSseUpstream).toBe(true)
    expect((await register({ sseUpstream: 'keep-alive' })).closeIdleSseUpstream).toBe(false)
    expect((await register({ pollingCompression: { threshold: 0 } })).pollingCompression).toEqual({
      threshold: 0,
    })
  })

  it('resolve the shutdown hint: 1000 ms, spread over another 1000, unless told otherwise', async () => {
    expect((await register({})).shutdown).toEqual({ retryAfter: 1000, retrySpread: 1000 })
    expect((await register({ shutdown: { retrySpread: 5000 } })).shutdown).toEqual({
      retryAfter: 1000,
      retrySpread: 5000,
    })
    expect((await register({ shutdown: { retryAfter: 0 } })).shutdown).toEqual({
      retryAfter: 0,
      retrySpread: 1000,
    })
  })

  it.each([
    [{ shutdown: 1000 }, 'shutdown', /must be \{ retryAfter, retrySpread \}/],
    [{ shutdown: null }, 'shutdown', /must be \{ retryAfter, retrySpread \}/],
    [{ shutdown: { retryAfter: -1 } }, 'shutdown.retryAfter', /integer from 0/],
    [{ shutdown: { retryAfter: 1.5 } }, 'shutdown.retryAfter', /integer from 0/],
    [{ shutdown: { retrySpread: '1s' } }, 'shutdown.retrySpread', /integer from 0/],
    [{ shutdown: { spread: 100 } }, 'shutdown', /unknown key "spread"/],
    [{ shutdown: { constructor: 100 } }, 'shutdown', /unknown key "constructor"/],
    [{ shutdown: { retryAfter: 2 ** 31 - 1, retrySpread: 1 } }, 'shutdown', /at most 2147483647 ms/],
    [{ successor: 'yes' }, 'successor', /must be a boolean, got "yes"/],
  ])('refuse %j naming %s, and say why', async (options, name, why) => {
    const error = await register(options).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: name })
    expect((error as Error).message).toMatch(why)
  })

  it.each([
    [{ pingIntervl: 100 }, 'pingIntervl', 'is not a known option: did you mean "pingInterval"?'],
    [{ PingTimeout: 100 }, 'PingTimeout', 'is not a known option: did you mean "pingTimeout"?'],
    [{ maxPendingAck: 10 }, 'maxPendingAck', 'is not a known option: did you mean "maxPendingAcks"?'],
    [{ allowedOrigin: '*' }, 'allowedOrigin', 'is not a known option: did you mean "allowedOrigins"?'],
    [{ recovery: { windw: 1000 } }, 'recovery', 'has an unknown key "windw": did you mean "window"?'],
    [{ handoff: { timout: 1000 } }, 'handoff', 'has an unknown key "timout": did you mean "timeout"?'],
    [
      { shutdown: { retryAftr: 10 } },
      'shutdown',
      'has an unknown key "retryAftr": did you mean "retryAfter"?',
    ],
    [
      { pollingCompression: { treshold: 10 } },
      'pollingCompression',
      'has an unknown key "treshold": did you mean "threshold"?',
    ],
    [{ forwarding: { cas: [] } }, 'forwarding', 'has an unknown key "cas": did you mean "ca"?'],
    [{ metrics: { registy: {} } }, 'metrics', 'has an unknown key "registy": did you mean "registry"?'],
    // Nothing close: the name alone.
    [{ heartbeat: 100 }, 'heartbeat', 'is not a known option'],
    [{ recovery: { ttl: 1000 } }, 'recovery', 'has an unknown key "ttl"'],
  ])(
    'refuse the misspelled %j naming %s, and the option it most likely meant',
    async (options, name, why) => {
      const error = await register(options).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: name })
      expect((error as Error).message).toBe(`@parley/server: option "${name}" ${why}`)
    },
  )

  it('take the CAs trusted for https:// nodes, as Node reads them', async () => {
    const cert = readFileSync(new URL('./fixtures/node-tls.crt', import.meta.url), 'utf8')
    expect((await register({})).forwarding).toEqual({ ca: undefined })
    expect((await register({ forwarding: {} })).forwarding).toEqual({ ca: undefined })
    expect((await register({ forwarding: { ca: cert } })).forwarding).toEqual({ ca: [cert] })
    const bytes = Buffer.from(cert)
    expect((await register({ forwarding: { ca: [cert, bytes] } })).forwarding).toEqual({ ca: [cert, bytes] })
  })

  it.each([
    [{ forwarding: true }, 'forwarding', /must be \{ ca \}/],
    [{ forwarding: { tls: {} } }, 'forwarding', /unknown key "tls"/],
    [{ forwarding: { ca: 42 } }, 'forwarding.ca', /must be a certificate/],
    [{ forwarding: { ca: [] } }, 'forwarding.ca', /must be a certificate/],
    [{ forwarding: { ca: '' } }, 'forwarding.ca', /must be a certificate/],
    [{ forwarding: { ca: 'not a certificate' } }, 'forwarding.ca', /one cannot be read/],
    [
      { forwarding: { ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' } },
      'forwarding.ca',
      /one cannot be read/,
    ],
  ])('refuse %j naming %s, and say why', async (options, name, why) => {
    const error = await register(options).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: name })
    expect((error as Error).message).toMatch(why)
  })

  it('keep highWaterMark at or below maxBufferedBytes', async () => {
    expect((await register({ maxBufferedBytes: 4096 })).highWaterMark).toBe(4096)
    expect((await register({ highWaterMark: 0 })).highWaterMark).toBe(0)
    const error = await register({ maxBufferedBytes: 4096, highWaterMark: 8192 }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'highWaterMark' })
  })

  it.each([
    [{ path: 'parley' }, 'path'],
    [{ path: 42 }, 'path'],
    [{ transports: [] }, 'transports'],
    [{ transports: ['websocket', 'carrier-pigeon'] }, 'transports'],
    [{ transports: ['sse', 'sse'] }, 'transports'],
    [{ pingInterval: 0 }, 'pingInterval'],
    [{ pingTimeout: 1.5 }, 'pingTimeout'],
    [{ maxPayload: '1MB' }, 'maxPayload'],
    [{ maxBufferedBytes: -1 }, 'maxBufferedBytes'],
    [{ highWaterMark: 1.5 }, 'highWaterMark'],
    [{ maxPendingAcks: 0 }, 'maxPendingAcks'],
    [{ maxWaitingEvents: 0 }, 'maxWaitingEvents'],
    [{ allowedOrigins: 5 }, 'allowedOrigins'],
    [{ allowedOrigins: ['app.example'] }, 'allowedOrigins'],
    [{ allowedOrigins: ['https://app.example/path'] }, 'allowedOrigins'],
    [{ allowedOrigins: ['https://*.app.example'] }, 'allowedOrigins'],
    [{ recovery: true }, 'recovery'],
    [{ recovery: { window: 0 } }, 'recovery.window'],
    [{ recovery: { windw: 10 } }, 'recovery'],
    [{ handshakeTimeout: 2 ** 40 }, 'handshakeTimeout'],
    [{ maxSessions: 0 }, 'maxSessions'],
    [{ maxSessions: 2.5 }, 'maxSessions'],
    [{ maxSessions: '1000' }, 'maxSessions'],
    [{ perMessageDeflate: 'yes' }, 'perMessageDeflate'],
    [{ perMessageDeflate: { threshold: -5 } }, 'perMessageDeflate.threshold'],
    [{ pollingCompression: 'gzip' }, 'pollingCompression'],
    [{ pollingCompression: { level: 9 } }, 'pollingCompression'],
    [{ pollingCompression: { threshold: 1.5 } }, 'pollingCompression.threshold'],
    [{ sseUpstream: 'close' }, 'sseUpstream'],
    [{ sseUpstream: true }, 'sseUpstream'],
    [{ pingIntervall: 10 }, 'pingIntervall'],
  ])('refuse %j naming %s', async (options, name) => {
    const error = await register(options).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: name })
    expect((error as Error).message).toContain(`"${name}"`)
  })

  it.each(UNSHOWABLE)('name an option given %s, which no message can show, as [object]', async (_, make) => {
    for (const name of ['path', 'pingInterval']) {
      const error = await register({ [name]: make() }).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: name })
      expect((error as Error).message).toMatch(/, got \[object\]$/)
    }
  })

  it("point '*' given in a list to the option's own '*'", async () => {
    const error = await register({ allowedOrigins: ['*'] }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'allowedOrigins' })
    expect((error as Error).message).toContain("write '*' alone, not in a list")
  })

  it('point a single origin given as a string to the list form', async () => {
    const error = await register({ allowedOrigins: 'https://app.example' }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'allowedOrigins' })
    expect((error as Error).message).toContain('got "https://app.example": put one origin in a list')
  })

  it.each<[string, () => unknown, string]>([
    ['nothing', () => undefined, 'returned undefined'],
    ['a promise', async () => ({}), 'returned a promise'],
    [
      'an object short of members',
      () => ({ addAll() {}, broadcast() {} }),
      'has no del, delAll, socketRooms,',
    ],
  ])('refuse an adapter factory that makes %s, saying so', async (_, adapter, says) => {
    const error = await register({ adapter }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TypeError)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect((error as Error).message).toContain(says)
  })

  it('refuse options that throw when read, with what they threw as cause', async () => {
    for (const options of [trapsThrow(), revoked(), { recovery: trapsThrow() }, { shutdown: revoked() }]) {
      const error = await register(options).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(TypeError)
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'options' })
      expect((error as Error).cause).toBeDefined()
    }
  })
})
