// The browser client served by the server itself, so that a page needs no build step.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { closeApp, type Started, startServer } from './helpers.js'

const bundle = fileURLToPath(new URL('../../client/dist/parley.min.js', import.meta.url))

let started: Started | undefined

afterEach(async () => {
  await closeApp(started?.app)
  started = undefined
})

describe('serveClient', () => {
  it('serves parley.min.js under the mount path, revalidated by its ETag', async () => {
    started = await startServer({})
    const res = await fetch(`${started.base}/parley.min.js`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('public, max-age=0, must-revalidate')
    expect(await res.text()).toBe(readFileSync(bundle, 'utf8'))
    const etag = res.headers.get('etag')!
    expect(etag).toMatch(/^"[\w-]+"$/)
    const again = await fetch(`${started.base}/parley.min.js`, { headers: { 'if-none-match': etag } })
    expect(again.status).toBe(304)
  })

  it('answers 304 to an If-None-Match that names its ETag weakly, in a list, or as *', async () => {
    started = await startServer({})
    const url = `${started.base}/parley.min.js`
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
    started = await startServer({ serveClient: false })
    expect((await fetch(`${started.base}/parley.min.js`)).status).toBe(404)
  })
})
