import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { describe, expect, it } from 'vitest'
import { atCloseStart, clientAddress, refusesWhileClosing, routedUrl } from './fastify-closing.js'

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

// Fastify does its part of a close in an onClose callback of avvio's: this holds Parley's way of
// running before it to the Fastify installed, so that one which closes otherwise fails here
// rather than leaving the endpoints to Fastify's bare 503 while an application's hook runs.
describe('running at the first moment of app.close()', () => {
  it("runs before the preClose hooks, one the application added first included, given from an encapsulated instance's onReady hook", async () => {
    const app = Fastify()
    const order: string[] = []
    app.addHook('preClose', async () => {
      order.push('preClose')
    })
    const child = await encapsulated(app)
    let given: boolean | undefined
    child.addHook('onReady', async () => {
      given = atCloseStart(child, () => order.push('begin'))
    })
    await app.ready()
    order.push('close')
    await app.close()
    expect(given).toBe(true)
    expect(order).toEqual(['close', 'begin', 'preClose'])
  })

  it('rejects the close with what it throws, rather than end the process', async () => {
    const app = Fastify()
    app.addHook('onReady', async () => {
      atCloseStart(app, () => {
        throw new Error('it failed')
      })
    })
    await app.ready()
    await expect(app.close()).rejects.toThrow('it failed')
  })

  it('says it could not for an object that is not a Fastify instance', () => {
    expect(atCloseStart({} as FastifyInstance, () => {})).toBe(false)
  })
})

// Fastify keeps rewriteUrl to itself too: the URL Parley answers at close must be the one the
// router read while open.
describe("reading Fastify's rewriteUrl", () => {
  const req = (url: string) => ({ url, headers: {} }) as IncomingMessage

  it('gives the URL as the rewrite makes it, called on the root instance, from an encapsulated one too', async () => {
    let self: unknown
    const app = Fastify({
      rewriteUrl(raw) {
        self = this
        return (raw.url ?? '/').replace(/^\/rt\b/, '/parley')
      },
    })
    try {
      expect(routedUrl(await encapsulated(app))(req('/rt/poll?v=1'))).toBe('/parley/poll?v=1')
      expect(self).toBe(app)
    } finally {
      await app.close()
    }
  })

  it('gives the URL as written without a rewrite, or when it throws or gives no string', async () => {
    const plain = Fastify()
    const throwing = Fastify({
      rewriteUrl: () => {
        throw new Error('no')
      },
    })
    const odd = Fastify({ rewriteUrl: () => 42 as unknown as string })
    try {
      for (const app of [plain, throwing, odd]) expect(routedUrl(app)(req('/rt/poll'))).toBe('/rt/poll')
      expect(routedUrl({} as FastifyInstance)(req('/rt/poll'))).toBe('/rt/poll')
    } finally {
      await Promise.all([plain.close(), throwing.close(), odd.close()])
    }
  })
})

// Fastify keeps trustProxy to itself too, with the getter of request.ip that reads it: the
// address of a request no route took must be the one a route's request.ip gives.
describe("reading a client's address as Fastify's request.ip does", () => {
  it.each<[string, FastifyServerOptions]>([
    ['left out', {}],
    ['true', { trustProxy: true }],
    ['a function', { trustProxy: (address: string) => address === '127.0.0.1' }],
    ['a list of addresses', { trustProxy: '127.0.0.1' }],
    ['a list without the proxy', { trustProxy: '10.0.0.1' }],
  ])('with trustProxy %s, from an encapsulated instance too', async (_name, options) => {
    const app = Fastify(options)
    const seen: [string | undefined, string | undefined, string | undefined][] = []
    const child = await encapsulated(app)
    app.get('/', async (request) => {
      seen.push([request.ip, clientAddress(app)(request.raw), clientAddress(child)(request.raw)])
      return ''
    })
    try {
      for (const forwarded of [undefined, '203.0.113.7', '198.51.100.1, 203.0.113.7']) {
        const headers = forwarded === undefined ? {} : { 'x-forwarded-for': forwarded }
        await app.inject({ url: '/', headers, remoteAddress: '127.0.0.1' })
      }
    } finally {
      await app.close()
    }
    expect(seen).toHaveLength(3)
    for (const [ip, raw, encapsulatedRaw] of seen) {
      expect(raw).toBe(ip)
      expect(encapsulatedRaw).toBe(ip)
    }
    if (options.trustProxy === true) expect(seen[2]![0]).toBe('198.51.100.1')
  })

  it("gives the connection's address for an object that is not a Fastify instance", () => {
    const req = { socket: { remoteAddress: '192.0.2.1' }, headers: { 'x-forwarded-for': '203.0.113.7' } }
    expect(clientAddress({} as FastifyInstance)(req as unknown as IncomingMessage)).toBe('192.0.2.1')
  })
})

describe("reading a client's address with an application's trustProxy that throws", () => {
  it("gives the connection's address, where a header of the client's made the function throw", async () => {
    // proxy-addr hands the function the addresses X-Forwarded-For names, as the client wrote
    // them, but the first (the client's own).
    const trustProxy = (address: string) => {
      if (!isIP(address)) throw new Error(`not an address: ${address}`)
      return true
    }
    const app = Fastify({ trustProxy })
    const seen: (string | undefined)[] = []
    app.get('/', async (request) => {
      seen.push(clientAddress(app)(request.raw))
      return ''
    })
    try {
      const headers = { 'x-forwarded-for': '203.0.113.7, not-an-address' }
      await app.inject({ url: '/', headers, remoteAddress: '127.0.0.1' })
    } finally {
      await app.close()
    }
    expect(seen).toEqual(['127.0.0.1'])
  })
})
