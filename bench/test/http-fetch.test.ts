// The load generator's node:http fetch does what the Parley client relies on: a streamed body
// (SSE), abort at every stage, POST bodies and headers, statuses with and without a body, and
// connections kept alive in its own pool.
import { getEventListeners } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { httpFetch, type OwnFetch } from '../src/http-fetch.ts'

let server: http.Server
let base: string
let client: OwnFetch
/** Requests the server received, and the TCP connections they came on. */
let seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[]
let connections: number
/** The answer of the current test; the default echoes what was received as JSON. */
let handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void

beforeEach(async () => {
  seen = []
  connections = 0
  handler = (req, res, body) =>
    res.end(JSON.stringify({ method: req.method, body, type: req.headers['content-type'] }))
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      handler(req, res, body)
    })
  })
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  client = httpFetch()
})

afterEach(async () => {
  client.close()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

describe('httpFetch', () => {
  it('sends method, headers and a string body, and gives status, headers and text back', async () => {
    handler = (_req, res, body) => {
      res.writeHead(201, 'Made', { 'x-length': String(body.length), 'content-type': 'text/plain' })
      res.end(`got ${body}`)
    }
    const res = await client.fetch(`${base}/post?v=1`, {
      method: 'POST',
      body: 'héllo',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    })
    expect(res.status).toBe(201)
    expect(res.statusText).toBe('Made')
    expect(res.ok).toBe(true)
    expect(res.headers.get('x-length')).toBe('5')
    expect(await res.text()).toBe('got héllo')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/post?v=1', body: 'héllo' })
    expect(seen[0]!.headers['content-type']).toBe('text/plain;charset=UTF-8')
    expect(seen[0]!.headers['content-length']).toBe(String(Buffer.byteLength('héllo')))
  })

  it('sends the path and query the URL parser gives, escapes and dot segments included', async () => {
    // The plain URL the client sends, then what only the parser can read right.
    const urls = [
      `${base}/parley?v=1&transport=polling&sid=a-b_c.d~e&ack=7`,
      `${base}/a b/"q"?x=<y>&z='w'#frag`,
      `${base}/a/./b/../c?d=1`,
      `${base}/a/%2e%2E/c`,
      new URL(`${base}/from/object?k=v`),
    ]
    for (const url of urls) await (await client.fetch(url)).text()
    expect(seen.map((r) => r.url)).toEqual([
      '/parley?v=1&transport=polling&sid=a-b_c.d~e&ack=7',
      '/a%20b/%22q%22?x=%3Cy%3E&z=%27w%27',
      '/a/c?d=1',
      '/c',
      '/from/object?k=v',
    ])
  })

  it('sends headers in every form fetch takes, names in lower case', async () => {
    const forms: HeadersInit[] = [
      { 'X-Plain': 'one' },
      new Headers({ 'X-Plain': 'two' }),
      [['X-Plain', 'three']],
    ]
    for (const headers of forms) await (await client.fetch(base, { headers })).text()
    expect(seen.map((r) => r.headers['x-plain'])).toEqual(['one', 'two', 'three'])
  })

  it('refuses a URL with credentials, as fetch does, sending nothing', async () => {
    await expect(client.fetch(base.replace('//', '//user:secret@'))).rejects.toThrow(TypeError)
    expect(connections).toBe(0)
  })

  it('errors the body when the connection goes before its end', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('part')
      setImmediate(() => res.destroy())
    }
    const streamed = await client.fetch(base)
    const reader = streamed.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('part')
    // Not done: a body cut short is no whole body (the connection's reset, or fetch's TypeError).
    await expect(reader.read()).rejects.toBeInstanceOf(Error)
    await expect((await client.fetch(base)).text()).rejects.toBeInstanceOf(Error)
  })

  it('sends a byte body as it is', async () => {
    const res = await client.fetch(base, { method: 'PUT', body: new Uint8Array([104, 105]) })
    expect(await res.json()).toEqual({ method: 'PUT', body: 'hi' })
  })

  it('reports error statuses with their body, and 204 with none', async () => {
    handler = (req, res) => {
      if (req.url === '/missing') {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end('{"code":"NOT_FOUND","message":"no such session"}')
      } else {
        res.writeHead(204)
        res.end()
      }
    }
    const missing = await client.fetch(`${base}/missing`)
    expect(missing.status).toBe(404)
    expect(missing.ok).toBe(false)
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND', message: 'no such session' })
    const empty = await client.fetch(`${base}/empty`, { method: 'POST', body: 'x' })
    expect(empty.status).toBe(204)
    expect(empty.body).toBeNull()
  })

  it('streams the body: a chunk arrives before the response ends', async () => {
    let open: http.ServerResponse | undefined
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n')
      open = res
    }
    const res = await client.fetch(`${base}/sse`)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toBe('data: one\n\n')
    expect(open!.writableEnded).toBe(false)
    open!.end('data: two\n\n')
    let rest = ''
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value)
    expect(rest).toBe('data: two\n\n')
  })

  it('rejects with the reason when aborted before the answer, and the server sees the request end', async () => {
    const closed = new Promise<void>((resolve) => {
      handler = (_req, res) => res.on('close', () => resolve())
    })
    const ctl = new AbortController()
    const pending = client.fetch(`${base}/hold`, { signal: ctl.signal })
    await new Promise<void>((resolve) => server.once('request', () => resolve()))
    ctl.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    await closed
  })

  it('errors the body stream when aborted while streaming', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n')
    }
    const ctl = new AbortController()
    const res = await client.fetch(`${base}/sse`, { signal: ctl.signal })
    const reader = res.body!.getReader()
    await reader.read()
    ctl.abort()
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('rejects at once when the signal is already aborted, sending nothing', async () => {
    const ctl = new AbortController()
    ctl.abort()
    await expect(client.fetch(base, { signal: ctl.signal })).rejects.toMatchObject({ name: 'AbortError' })
    expect(connections).toBe(0)
  })

  it('leaves no abort listener on a long-lived signal once a request is over', async () => {
    const ctl = new AbortController()
    for (let i = 0; i < 3; i++) await (await client.fetch(base, { signal: ctl.signal })).text()
    await new Promise((resolve) => setImmediate(resolve))
    expect(getEventListeners(ctl.signal, 'abort')).toHaveLength(0)
  })

  it('keeps one connection alive across requests, also when a read body is cancelled', async () => {
    for (let i = 0; i < 3; i++) await (await client.fetch(base)).text()
    const res = await client.fetch(base, { method: 'POST', body: 'x' })
    await res.body?.cancel()
    await (await client.fetch(base)).text()
    expect(seen).toHaveLength(5)
    expect(connections).toBe(1)
  })

  it('rejects with a TypeError when nothing listens', async () => {
    // A port that was just free: a server of our own, closed before the request.
    const gone = http.createServer()
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve))
    const port = (gone.address() as AddressInfo).port
    await new Promise((resolve) => gone.close(resolve))
    await expect(client.fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow(TypeError)
  })

  it('refuses what it does not implement with a TypeError', async () => {
    await expect(client.fetch(new Request(base))).rejects.toThrow(TypeError)
    await expect(client.fetch('https://127.0.0.1:1/')).rejects.toThrow(TypeError)
    await expect(client.fetch(base, { method: 'POST', body: new Blob(['x']) })).rejects.toThrow(TypeError)
    expect(connections).toBe(0)
  })
})
