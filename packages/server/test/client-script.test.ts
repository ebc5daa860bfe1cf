// The browser client served by the server itself, so that a page needs no build step.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { serveClientScript } from '../src/http/client-script.js'
import { closedAfterEach } from './closed-after-each.js'
import { startServer } from './helpers.js'

const bundle = fileURLToPath(new URL('../../client/dist/parley.min.js', import.meta.url))

const opened = closedAfterEach()

describe('serveClient', () => {
  it('serves parley.min.js under the mount path, revalidated by its ETag', async () => {
    opened.started = await startServer({})
    const res = await fetch(`${opened.started.base}/parley.min.js`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('public, max-age=0, must-revalidate')
    expect(await res.text()).toBe(readFileSync(bundle, 'utf8'))
    const etag = res.headers.get('etag')!
    expect(etag).toMatch(/^"[\w-]+"$/)
    const again = await fetch(`${opened.started.base}/parley.min.js`, { headers: { 'if-none-match': etag } })
    expect(again.status).toBe(304)
  })

  it('answers 304 to an If-None-Match that names its ETag weakly, in a list, or as *', async () => {
    opened.started = await startServer({})
    const url = `${opened.started.base}/parley.min.js`
    const etag = (await fetch(url)).headers.get('etag')!
    const statusFor = async (ifNoneMatch: string) => {
      const res = await fetch(url, { headers: { 'if-none-match': ifNoneMatch } })
      await res.arrayBuffer()
      return res.status
    }
    for (const field of [`W/${etag}`, `"an-older-one", ${etag}`, `W/"an-older-one", W/${etag}`, '*']) {
      expect(await statusFor(field), field).toBe(304)
    }
    for (const field of ['"an-older-one"', `W/"an-older-one", ${etag.slice(0, -2)}"`]) {
      expect(await statusFor(field), field).toBe(200)
    }
  })

  it('can be turned off', async () => {
    opened.started = await startServer({ serveClient: false })
    expect((await fetch(`${opened.started.base}/parley.min.js`)).status).toBe(404)
  })

  it('warns at startup only when set to true, when the client is installed nowhere', async () => {
    const notInstalled = () => {
      throw Object.assign(new Error("Cannot find module '@parley/client/parley.min.js'"), {
        code: 'MODULE_NOT_FOUND',
      })
    }
    const linesFor = async (asked: boolean) => {
      const lines: { level: number; msg: string; err?: { code?: string } }[] = []
      const logger = {
        level: 'debug',
        stream: { write: (line: string) => void lines.push(JSON.parse(line)) },
      }
      const app = Fastify({ logger })
      try {
        expect(serveClientScript(app, '/parley', () => {}, asked, notInstalled)).toBeUndefined()
        // Nothing there: a page that loads it gets 404.
        expect((await app.inject('/parley/parley.min.js')).statusCode).toBe(404)
      } finally {
        await app.close()
      }
      return lines.filter(({ msg }) => msg.includes('@parley/client'))
    }
    // Left to its default: a server of Node clients, or of a bundler's build, never needs it.
    expect(await linesFor(false)).toMatchObject([
      { level: 20, msg: 'parley: @parley/client is not installed; not serving parley.min.js' },
    ])
    expect(await linesFor(true)).toMatchObject([
      {
        level: 40,
        msg: 'parley: serveClient is true but @parley/client is not installed; parley.min.js is not served (a page that loads it gets 404): install @parley/client beside @parley/server, or leave serveClient out',
        err: { code: 'MODULE_NOT_FOUND' },
      },
    ])
  })

  it('says nothing when set to true and the client is installed', async () => {
    const lines: { level: number; msg: string }[] = []
    const logger = { level: 'debug', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } }
    opened.started = await startServer({ serveClient: true }, undefined, { logger })
    expect((await fetch(`${opened.started.base}/parley.min.js`)).status).toBe(200)
    expect(lines.filter(({ msg }) => msg.includes('@parley/client'))).toEqual([])
  })
})
