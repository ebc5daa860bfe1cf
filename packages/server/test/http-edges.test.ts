import { request as httpRequest, METHODS } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect as connectTcp } from 'node:net'
import websocket from '@fastify/websocket'
import { encodeText, PacketType, WS_SUBPROTOCOL } from '@parley/protocol'
import parley from '@parley/server'
import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { closedAfterEach } from './closed-after-each.js'
import { closeApp, startServer, until, within } from './helpers.js'
import { rawConnect } from './raw-client.js'
import { head, RawHttp } from './raw-http.js'
import { upgradeStatus } from './upgrade-status.js'

const opened = closedAfterEach()

async function serve(options: Parameters<typeof startServer>[0] = {}) {
  opened.started = await startServer(options)
  return opened.started
}

/** One request over a fresh TCP connection, sent exactly as given; its answer. */
async function rawExchange(method: string, url: string, headers: Record<string, string>, body = '') {
  const { port, pathname, search } = new URL(url)
  const raw = await RawHttp.open(Number(port))
  opened.rawHttp.push(raw)
  raw.write(head(method, `${pathname}${search}`, headers) + body)
  return raw.answer(5000, method === 'HEAD')
}

async function json(res: Response) {
  return { status: res.status, body: (await res.json()) as { code: string; message: string } }
}

describe('HTTP endpoints', () => {
  it('refuse an unknown sid with 400 PARLEY_UNKNOWN_SESSION', async () => {
    const { base } = await serve()
    for (const path of ['sse', 'poll']) {
      const get = await json(await fetch(`${base}/${path}?v=1&sid=nosuchsession`))
      expect(get).toMatchObject({ status: 400, body: { code: 'PARLEY_UNKNOWN_SESSION' } })
      const post = await json(
        await fetch(`${base}/${path}?v=1&sid=nosuchsession`, { method: 'POST', body: '[3]' }),
      )
      expect(post).toMatchObject({ status: 400, body: { code: 'PARLEY_UNKNOWN_SESSION' } })
    }
  })

  it('refuse other methods with 405', async () => {
    const { base } = await serve()
    for (const [path, method] of [
      ['sse', 'PUT'],
      ['poll', 'DELETE'],
      ['ws', 'POST'],
      ['poll', 'PATCH'],
    ] as const) {
      const res = await fetch(`${base}/${path}?v=1`, { method })
      expect(await json(res)).toMatchObject({ status: 405, body: { code: 'PARLEY_METHOD_NOT_ALLOWED' } })
    }
  })

  it("refuse every other method Node's parser knows with 405, and say which are allowed", async () => {
    const { base } = await serve()
    // CONNECT never reaches a route: Node hands it to the server's 'connect' event.
    const methods = METHODS.filter((method) => method !== 'CONNECT')
    for (const [path, allowed] of [
      ['sse', 'GET, POST, OPTIONS'],
      ['poll', 'GET, POST, OPTIONS'],
      ['ws', 'GET'],
    ] as const) {
      for (const method of methods.filter((m) => !allowed.split(', ').includes(m))) {
        // A QUERY without a Content-Type, which Fastify would refuse with its own 400.
        const answer = await rawExchange(method, `${base}/${path}?v=1`, { 'Content-Length': '0' })
        expect(answer.status, `${method} /${path}`).toBe(405)
        expect(answer.headers.allow, `${method} /${path}`).toBe(allowed)
        if (method !== 'HEAD') {
          expect(JSON.parse(answer.body), `${method} /${path}`).toMatchObject({
            code: 'PARLEY_METHOD_NOT_ALLOWED',
          })
        }
      }
    }
  })

  it('refuse an upgrade by any method but GET with 405, before the upgrade', async () => {
    const { base } = await serve()
    for (const method of ['POST', 'HEAD', 'PUT', 'PROPFIND']) {
      const answer = await rawExchange(method, `${base}/ws?v=1`, {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Protocol': WS_SUBPROTOCOL,
        'Content-Length': '0',
      })
      expect(answer.status, method).toBe(405)
      expect(answer.headers['content-type'], method).toBe('application/json; charset=utf-8')
      if (method !== 'HEAD') {
        expect(JSON.parse(answer.body), method).toMatchObject({ code: 'PARLEY_METHOD_NOT_ALLOWED' })
      }
    }
  })

  it('refuse a missing or other protocol version with 400', async () => {
    const { base } = await serve()
    for (const url of [`${base}/sse`, `${base}/poll?v=2`]) {
      const res = await fetch(url, { method: 'POST', body: '[8,{}]' })
      expect(await json(res)).toMatchObject({ status: 400, body: { code: 'PARLEY_UNSUPPORTED_VERSION' } })
    }
    const ws = base.replace('http', 'ws')
    expect(await upgradeStatus(`${ws}/ws?v=2`)).toBe(400)
    expect(await upgradeStatus(`${ws}/ws?v=1`, ['parley.v2'])).toBe(400)
    expect(await upgradeStatus(`${ws}/ws?v=1`)).toBe(101)
  })

  it('refuse requests for a session attached to another transport', async () => {
    const { base } = await serve()
    const c = await rawConnect('websocket', base)
    opened.clients.push(c)
    const get = await json(await fetch(`${base}/sse?v=1&sid=${c.sid}`))
    expect(get).toMatchObject({ status: 400, body: { code: 'PARLEY_TRANSPORT_MISMATCH' } })
    const p = await rawConnect('polling', base)
    opened.clients.push(p)
    const post = await json(await fetch(`${base}/sse?v=1&sid=${p.sid}`, { method: 'POST', body: '[3]' }))
    expect(post).toMatchObject({ status: 400, body: { code: 'PARLEY_TRANSPORT_MISMATCH' } })
  })

  it('stream SSE without chunked encoding: each event as written, the body ending with the connection', async () => {
    let socket: { emit(event: string, ...args: unknown[]): boolean; disconnect(): unknown } | undefined
    opened.started = await startServer({}, (app) => {
      app.parley.on('connection', (s) => {
        socket = s
      })
    })
    const hello = await fetch(`${opened.started.base}/sse?v=1`, { method: 'POST', body: '[8,{}]' })
    const sid = (JSON.parse(await hello.text()) as [number, { sid: string }])[1].sid
    const stream = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      httpRequest(`${opened.started!.base}/sse?v=1&sid=${sid}`, resolve).on('error', reject).end()
    })
    expect(stream.headers['transfer-encoding']).toBeUndefined()
    expect(stream.headers['content-length']).toBeUndefined()
    expect(stream.headers.connection).toBe('close')
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (text: string) => {
      body += text
    })
    const ended = new Promise((resolve) => stream.on('end', resolve))
    await until(() => socket !== undefined && body.includes('\n\n'))
    socket!.emit('news', 'één')
    opened.started.app.parley.emit('news', 'all')
    await until(() => body.includes('"all"'))
    socket!.disconnect()
    await ended
    const events = body.split('\n\n').filter((e) => e.startsWith('data: '))
    expect(events).toEqual([
      'data: [5,1,"news",["één"],0]',
      'data: [5,2,"news",["all"],0]',
      expect.stringMatching(/^data: \[1,"server disconnect"/),
    ])
  })

  it('take an ACK in a poll: a client that acknowledges only there keeps its session', async () => {
    const reasons: string[] = []
    const sockets: { emit(event: string, ...args: unknown[]): boolean }[] = []
    opened.started = await startServer({ maxBufferedBytes: 8 * 1024 }, (app) => {
      app.parley.on('connection', (s) => {
        sockets.push(s)
        s.on('disconnect', (reason) => reasons.push(reason))
      })
    })
    /** Polls 20 events of 1 KB one by one, acknowledging in each next GET when `withAck`. */
    const pollTwenty = async (withAck: boolean) => {
      const hello = await fetch(`${opened.started!.base}/poll?v=1`, { method: 'POST', body: '[8,{}]' })
      const sid = (JSON.parse(await hello.text()) as [number, { sid: string }])[1].sid
      const socket = sockets.at(-1)!
      let seq = 0
      for (let i = 0; i < 20; i++) {
        socket.emit('news', 'x'.repeat(1000))
        const ack = withAck ? `&ack=${seq}` : ''
        const body = await (await fetch(`${opened.started!.base}/poll?v=1&sid=${sid}${ack}`)).text()
        for (const line of body.split('\n')) {
          const packet = JSON.parse(line) as number[]
          if (packet[0] === PacketType.EVENT) seq = packet[1]!
          if (packet[0] === PacketType.CLOSE) return
        }
      }
    }
    await pollTwenty(true)
    expect(reasons).toEqual([])
    await pollTwenty(false)
    expect(reasons).toEqual(['slow consumer'])
  })

  it('refuse a poll whose ack is not a sequence number, and end its session as for a bad packet', async () => {
    const reasons: string[] = []
    opened.started = await startServer({}, (app) => {
      app.parley.on('connection', (s) => s.on('disconnect', (reason) => reasons.push(reason)))
    })
    const bad = ['ack=-1', 'ack=01', 'ack=1e3', 'ack=x', 'ack=', 'ack=99999999999999999', 'ack=1&ack=2']
    for (const query of bad) {
      const c = await rawConnect('polling', opened.started.base)
      opened.clients.push(c)
      const res = await json(await fetch(`${opened.started.base}/poll?v=1&sid=${c.sid}&${query}`))
      expect(res, query).toMatchObject({ status: 400, body: { code: 'PARLEY_INVALID_PACKET' } })
    }
    await until(() => reasons.length === bad.length)
    expect(new Set(reasons)).toEqual(new Set(['invalid packet']))
  })

  it('refuse an Upgrade header on the SSE and polling endpoints', async () => {
    const { base } = await serve()
    const res = await fetch(`${base}/poll?v=1`, {
      method: 'POST',
      body: '[8,{}]',
      headers: { upgrade: 'h2c' },
    }).catch(() => undefined)
    // fetch may refuse to send the header itself; the WebSocket client sends it for sure.
    if (res)
      expect(await json(res)).toMatchObject({ status: 400, body: { code: 'PARLEY_UNEXPECTED_UPGRADE' } })
    expect(await upgradeStatus(`${base.replace('http', 'ws')}/sse?v=1`)).toBe(400)
  })

  it('answer 409 to a second POST while one is in progress', async () => {
    // Told when a POST of the session reaches its handler (a fixed wait was too short under load:
    // the second POST then came first).
    let reached: () => void = () => {}
    const handling = new Promise<void>((resolve) => {
      reached = resolve
    })
    opened.started = await startServer({}, (app) => {
      app.addHook('preHandler', async (request) => {
        if (request.method === 'POST' && request.url.includes('sid=')) reached()
      })
    })
    const { base } = opened.started
    const c = await rawConnect('polling', base)
    opened.clients.push(c)
    const url = new URL(`${base}/poll?v=1&sid=${c.sid}`)
    // A POST whose body is not finished yet.
    const first = httpRequest(url, { method: 'POST', headers: { 'content-type': 'text/plain' } })
    const firstStatus = new Promise<number>((resolve) =>
      first.on('response', (res) => resolve(res.statusCode!)),
    )
    first.write('[3]\n')
    await handling
    // The handler runs right after its hooks; a turn of the event loop lets it take the POST.
    await new Promise((r) => setImmediate(r))
    const second = await json(await fetch(url, { method: 'POST', body: '[3]' }))
    expect(second).toMatchObject({ status: 409, body: { code: 'PARLEY_REQUEST_IN_PROGRESS' } })
    first.end('[4,0]')
    expect(await firstStatus).toBe(204)
  })

  it('answer 413 before reading a body larger than maxPayload, also when chunked', async () => {
    const { base } = await serve({ maxPayload: 1000 })
    const big = `[8,{"auth":"${'x'.repeat(2000)}"}]`
    const res = await fetch(`${base}/sse?v=1`, { method: 'POST', body: big })
    // The message names the option and its value: the limit to raise.
    expect(await json(res)).toMatchObject({
      status: 413,
      body: { code: 'PARLEY_PAYLOAD_TOO_LARGE', message: 'the body is larger than maxPayload (1000 bytes)' },
    })
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL(`${base}/poll?v=1`), { method: 'POST' }, (r) => {
        r.resume()
        resolve(r.statusCode!)
      })
      req.on('error', reject)
      for (let i = 0; i < 5; i++) req.write('x'.repeat(500))
      req.end()
    })
    expect(chunked).toBe(413)
  })

  it('answer a body that does not decode with 400 and its code', async () => {
    const { base } = await serve()
    const res = await fetch(`${base}/sse?v=1`, { method: 'POST', body: 'hello' })
    expect(await json(res)).toMatchObject({ status: 400, body: { code: 'PARLEY_INVALID_JSON' } })
    const notHello = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[3]' })
    expect(await json(notHello)).toMatchObject({ status: 400, body: { code: 'PARLEY_INVALID_PACKET' } })
    const empty = await fetch(`${base}/poll?v=1`, { method: 'POST' })
    expect(await json(empty)).toMatchObject({ status: 400, body: { code: 'PARLEY_INVALID_PACKET' } })
    const get = await fetch(`${base}/ws?v=1`)
    expect(await json(get)).toMatchObject({ status: 400, body: { code: 'PARLEY_BAD_REQUEST' } })
  })

  it('read a POST body under any Content-Type, one that does not parse as a media type too', async () => {
    const { base } = await serve()
    const c = await rawConnect('polling', base)
    opened.clients.push(c)
    for (const type of ['', ';;;', 'invalid', 'a/b/c', 'text /plain', 'text/plain; charset=utf-8']) {
      const hello = '[8,{}]'
      const handshake = await rawExchange(
        'POST',
        `${base}/sse?v=1`,
        {
          'Content-Type': type,
          'Content-Length': String(hello.length),
        },
        hello,
      )
      expect(handshake.status, `Content-Type: ${type}`).toBe(200)
      expect(JSON.parse(handshake.body)).toEqual([
        PacketType.OPEN,
        expect.objectContaining({ recovered: false }),
      ])
      const upstream = await rawExchange(
        'POST',
        `${base}/poll?v=1&sid=${c.sid}`,
        {
          'Content-Type': type,
          'Content-Length': '3',
        },
        '[3]',
      )
      expect(upstream.status, `Content-Type: ${type}`).toBe(204)
    }
  })

  it('answer 404 for a disabled transport', async () => {
    const { base, app } = await serve({ transports: ['websocket'] })
    const res = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]' })
    expect(await json(res)).toMatchObject({ status: 404, body: { code: 'PARLEY_TRANSPORT_DISABLED' } })
    const c = await rawConnect('websocket', base)
    opened.clients.push(c)
    expect(c.open.transports).toEqual(['websocket'])
    // Marked as another node's relayed goodbye, a POST of a session that is not here meets the
    // 404 all the same; one of a session here is heard (its relay's node may have closed the
    // relay, crossing the goodbye: see relayed-goodbye.ts), and ends it.
    const goodbye = (sid: string) =>
      fetch(`${base}/poll?v=1&sid=${sid}`, {
        method: 'POST',
        headers: { 'x-parley-routed': 'goodbye' },
        body: encodeText({ type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' }),
      })
    const nobody = await goodbye('nobody')
    expect(await json(nobody)).toMatchObject({ status: 404, body: { code: 'PARLEY_TRANSPORT_DISABLED' } })
    expect(c.inbox.some((p) => p.type === PacketType.CLOSE)).toBe(false)
    const own = await goodbye(c.sid)
    await own.arrayBuffer()
    expect(own.status).toBe(204)
    await until(() => app.parley.sessionFor(c.sid) === undefined, 3000, 'the session ended')
  })

  it('name the transports the server offers when one is disabled', async () => {
    const { base } = await serve({ transports: ['polling'] })
    const ws = await fetch(`${base}/ws?v=1`)
    expect(await json(ws)).toMatchObject({
      status: 404,
      body: {
        code: 'PARLEY_TRANSPORT_DISABLED',
        message: 'the websocket transport is disabled: this server offers polling',
      },
    })
    const sse = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]' })
    expect((await json(sse)).body.message).toBe('the sse transport is disabled: this server offers polling')
  })
})

describe('origins', () => {
  it('refuse a foreign origin by default, on HTTP and on the WebSocket upgrade', async () => {
    const { base } = await serve()
    const headers = { origin: 'http://evil.example' }
    const res = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]', headers })
    expect(await json(res)).toMatchObject({
      status: 403,
      body: { code: 'PARLEY_ORIGIN_FORBIDDEN', message: expect.stringContaining('http://evil.example') },
    })
    // Readable by the refused page (it must learn why and stop), never with credentials.
    expect(res.headers.get('access-control-allow-origin')).toBe('http://evil.example')
    expect(res.headers.get('access-control-allow-credentials')).toBe(null)
    expect(await upgradeStatus(`${base.replace('http', 'ws')}/ws?v=1`, [WS_SUBPROTOCOL], headers)).toBe(403)
    // The page's own origin is fine, and needs no CORS headers.
    const own = new URL(base).origin
    const same = await fetch(`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]', headers: { origin: own } })
    expect(same.status).toBe(200)
    expect(same.headers.get('access-control-allow-origin')).toBe(null)
    expect(
      await upgradeStatus(`${base.replace('http', 'ws')}/ws?v=1`, [WS_SUBPROTOCOL], { origin: own }),
    ).toBe(101)
  })

  it('echo an allowed origin with credentials, and answer preflights', async () => {
    const { base } = await serve({ allowedOrigins: ['https://app.example'] })
    const headers = { origin: 'https://app.example' }
    const res = await fetch(`${base}/poll?v=1`, { method: 'POST', body: '[8,{}]', headers })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(res.headers.get('access-control-allow-credentials')).toBe('true')
    expect(res.headers.get('vary')).toBe('Origin')
    const sid = JSON.parse(await res.text())[1].sid as string
    const poll = await fetch(`${base}/poll?v=1&sid=${sid}`, { method: 'POST', body: '[3]', headers })
    expect(poll.status).toBe(204)
    expect(poll.headers.get('access-control-allow-origin')).toBe('https://app.example')
    const preflight = await fetch(`${base}/sse?v=1`, {
      method: 'OPTIONS',
      headers: {
        ...headers,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST')
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
    const other = await fetch(`${base}/sse?v=1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://other.example' },
    })
    expect(other.status).toBe(403)
  })

  it('let an allowed page read a refusal of its protocol version, as the client stops on it', async () => {
    const { base } = await serve({ allowedOrigins: ['https://app.example'] })
    const headers = { origin: 'https://app.example' }
    // Without the CORS headers a page reads a failed request, which its client tries again for
    // ever, where it stops on PARLEY_UNSUPPORTED_VERSION.
    for (const [url, init] of [
      [`${base}/poll?v=2`, { method: 'POST', body: '[8,{}]', headers }],
      [`${base}/sse?v=2`, { method: 'POST', body: '[8,{}]', headers }],
      [`${base}/sse?sid=x`, { headers }],
    ] as const) {
      const res = await fetch(url, init)
      expect(res.status, url).toBe(400)
      expect(res.headers.get('access-control-allow-origin'), url).toBe('https://app.example')
      expect(res.headers.get('access-control-allow-credentials'), url).toBe('true')
      expect(((await res.json()) as { code: string }).code, url).toBe('PARLEY_UNSUPPORTED_VERSION')
    }
  })

  it('let an allowed page read a disabled transport’s 404 and a method’s 405', async () => {
    const { base } = await serve({
      allowedOrigins: ['https://app.example'],
      transports: ['websocket', 'polling'],
    })
    const headers = { origin: 'https://app.example' }
    // Without the CORS headers a page reads a failed request, where its client steps down from a
    // disabled transport on PARLEY_TRANSPORT_DISABLED. HEAD needs no preflight.
    for (const [url, init, status, code] of [
      [`${base}/sse?v=1`, { method: 'POST', body: '[8,{}]', headers }, 404, 'PARLEY_TRANSPORT_DISABLED'],
      [`${base}/sse?sid=x`, { headers }, 404, 'PARLEY_TRANSPORT_DISABLED'],
      [`${base}/poll?v=1`, { method: 'HEAD', headers }, 405, undefined],
      [`${base}/poll?v=1`, { method: 'PUT', body: '[8,{}]', headers }, 405, 'PARLEY_METHOD_NOT_ALLOWED'],
    ] as const) {
      const res = await fetch(url, init)
      const what = `${init.method ?? 'GET'} ${url}`
      expect(res.status, what).toBe(status)
      expect(res.headers.get('access-control-allow-origin'), what).toBe('https://app.example')
      expect(res.headers.get('access-control-allow-credentials'), what).toBe('true')
      if (code) expect(((await res.json()) as { code: string }).code, what).toBe(code)
    }
  })

  it("answer '*' without credentials, and ask a function", async () => {
    const { base } = await serve({ allowedOrigins: '*' })
    const res = await fetch(`${base}/sse?v=1`, {
      method: 'POST',
      body: '[8,{}]',
      headers: { origin: 'https://x.example' },
    })
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    expect(res.headers.get('access-control-allow-credentials')).toBe(null)
    await opened.started!.app.close()
    const fn = await serve({ allowedOrigins: (origin) => origin.endsWith('.trusted.example') })
    const ok = await fetch(`${fn.base}/sse?v=1`, {
      method: 'POST',
      body: '[8,{}]',
      headers: { origin: 'https://a.trusted.example' },
    })
    expect(ok.status).toBe(200)
    const no = await fetch(`${fn.base}/sse?v=1`, {
      method: 'POST',
      body: '[8,{}]',
      headers: { origin: 'https://a.example' },
    })
    expect(no.status).toBe(403)
  })
})

describe('WebSocket handshake', () => {
  it('refuses an upgrade that ws would refuse with a coded 400 of its own, before the upgrade', async () => {
    const { base } = await serve()
    const upgrade = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Protocol': WS_SUBPROTOCOL,
    }
    const { 'Sec-WebSocket-Key': _key, ...withoutKey } = upgrade
    for (const [headers, code] of [
      [withoutKey, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, 'Sec-WebSocket-Key': 'not a key' }, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, 'Sec-WebSocket-Version': '99' }, 'PARLEY_BAD_REQUEST'],
      // Read as ws reads it from 8.23.1 on, the text itself, not what the number would be.
      [{ ...upgrade, 'Sec-WebSocket-Version': '13.0' }, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, 'Sec-WebSocket-Version': '+13' }, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, 'Sec-WebSocket-Protocol': `${WS_SUBPROTOCOL}, ,x` }, 'PARLEY_BAD_REQUEST'],
      [
        { ...upgrade, 'Sec-WebSocket-Protocol': `${WS_SUBPROTOCOL}, ${WS_SUBPROTOCOL}` },
        'PARLEY_BAD_REQUEST',
      ],
      [{ ...upgrade, 'Sec-WebSocket-Protocol': `${WS_SUBPROTOCOL} x` }, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, Upgrade: 'h2c' }, 'PARLEY_BAD_REQUEST'],
      [{ ...upgrade, 'Sec-WebSocket-Protocol': 'parley.v2, other' }, 'PARLEY_UNSUPPORTED_VERSION'],
    ] as const) {
      const answer = await rawExchange('GET', `${base}/ws?v=1`, headers)
      const what = JSON.stringify(headers)
      expect(answer.status, what).toBe(400)
      expect(answer.headers['content-type'], what).toBe('application/json; charset=utf-8')
      expect(JSON.parse(answer.body), what).toMatchObject({ code })
    }
    const version = await rawExchange('GET', `${base}/ws?v=1`, { ...upgrade, 'Sec-WebSocket-Version': '8.5' })
    expect(version.headers['sec-websocket-version']).toBe('13')
    // What ws takes, Parley takes too: optional whitespace, other subprotocols beside its own.
    const ok = await rawExchange('GET', `${base}/ws?v=1`, {
      ...upgrade,
      'Sec-WebSocket-Protocol': `x,\t${WS_SUBPROTOCOL} , y`,
    })
    expect(ok.status).toBe(101)
    expect(ok.headers['sec-websocket-protocol']).toBe(WS_SUBPROTOCOL)
    expect(await upgradeStatus(`${base.replace('http', 'ws')}/ws?v=1`, ['x', WS_SUBPROTOCOL, 'y'])).toBe(101)
  })

  it('refuses, with perMessageDeflate, an extensions header ws would refuse with a coded 400', async () => {
    const { base } = await serve({ perMessageDeflate: true })
    const upgrade = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Protocol': WS_SUBPROTOCOL,
    }
    for (const extensions of [
      ';;',
      'permessage-deflate; server_max_window_bits=99',
      'permessage-deflate; client_max_window_bits; client_max_window_bits',
      'permessage-deflate; unknown_parameter',
      'permessage-deflate; server_no_context_takeover=1',
      'x-other, permessage-deflate; client_max_window_bits="1',
    ]) {
      const answer = await rawExchange('GET', `${base}/ws?v=1`, {
        ...upgrade,
        'Sec-WebSocket-Extensions': extensions,
      })
      expect(answer.status, extensions).toBe(400)
      expect(answer.headers['content-type'], extensions).toBe('application/json; charset=utf-8')
      expect(JSON.parse(answer.body), extensions).toMatchObject({ code: 'PARLEY_BAD_REQUEST' })
    }
    // What ws takes, Parley takes too: other extensions beside it, its parameters, quoted values.
    for (const extensions of [
      'permessage-deflate; client_max_window_bits',
      'x-other; a=1, permessage-deflate; server_max_window_bits="10"; client_no_context_takeover',
      'x-other; unknown_parameter=2',
    ]) {
      const ok = await rawExchange('GET', `${base}/ws?v=1`, {
        ...upgrade,
        'Sec-WebSocket-Extensions': extensions,
      })
      expect(ok.status, extensions).toBe(101)
    }
    // By the options of the registration that takes the upgrade: the application's own too.
    const app = Fastify({ forceCloseConnections: true })
    try {
      await app.register(websocket, { options: { perMessageDeflate: true } })
      await app.register(parley)
      await app.listen({ port: 0, host: '127.0.0.1' })
      const { port } = app.server.address() as AddressInfo
      const answer = await rawExchange('GET', `http://127.0.0.1:${port}/parley/ws?v=1`, {
        ...upgrade,
        'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=99',
      })
      expect(answer.status).toBe(400)
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'PARLEY_BAD_REQUEST' })
    } finally {
      await closeApp(app)
    }
  })

  it('refuses a first packet that is not HELLO, and a silent client, with ERROR then 1008', async () => {
    const { base } = await serve({ handshakeTimeout: 50 })
    const url = `${base.replace('http', 'ws')}/ws?v=1`
    for (const first of ['[3]', undefined]) {
      const ws = new WebSocket(url, WS_SUBPROTOCOL)
      const messages: string[] = []
      ws.on('message', (d) => messages.push(d.toString()))
      await within(new Promise((r) => ws.once('open', r)), 5000, 'the WebSocket to open')
      if (first) ws.send(first)
      const code = await within(
        new Promise<number>((r) => ws.once('close', r)),
        5000,
        'the server to close the WebSocket',
      )
      expect(code).toBe(1008)
      expect(JSON.parse(messages[0]!)).toEqual([
        PacketType.ERROR,
        0,
        0,
        first ? 'PARLEY_INVALID_PACKET' : 'PARLEY_HANDSHAKE_TIMEOUT',
        expect.any(String),
      ])
    }
  })
})

describe('the Fastify application', () => {
  it('runs its onRequest hooks for every transport request', async () => {
    const seen: string[] = []
    opened.started = await startServer({}, (app) => {
      app.addHook('onRequest', async (request) => {
        seen.push(`${request.method} ${request.url.split('?')[0]}`)
      })
    })
    for (const t of ['websocket', 'sse', 'polling'] as const) {
      const c = await rawConnect(t, opened.started.base)
      opened.clients.push(c)
      await c.send({ type: PacketType.PONG })
    }
    await until(() => seen.includes('GET /parley/poll') && seen.includes('GET /parley/sse'))
    expect(seen).toEqual(
      expect.arrayContaining([
        'GET /parley/ws',
        'POST /parley/sse',
        'GET /parley/sse',
        'POST /parley/poll',
        'GET /parley/poll',
      ]),
    )
  })

  it('closes without waiting for spare or keep-alive connections, and lets a request in flight finish', async () => {
    const app = Fastify()
    await app.register(parley, { path: '/rt' })
    let slowStarted = false
    app.get('/slow', async () => {
      slowStarted = true
      await new Promise((r) => setTimeout(r, 300))
      return { done: true }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    // A spare connection, as browsers and undici open them, and one carrying a slow request.
    const spare = connectTcp(port)
    await within(new Promise((r) => spare.once('connect', r)), 5000, 'the spare connection')
    const spareClosed = new Promise((r) => spare.once('close', r))
    // A keep-alive request still running when the server closes: Node alone would then keep
    // its connection open for keep-alive, like the spare one, until its timeouts.
    const slow = fetch(`http://127.0.0.1:${port}/slow`).then((res) => res.json())
    await until(() => slowStarted, 2000, 'the slow request reached its handler')
    const closed = await Promise.race([
      app.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still open after 10 s'), 10_000)),
    ])
    expect(closed).toBe('closed')
    await within(spareClosed, 5000, 'the close to end the spare connection')
    expect(await slow).toEqual({ done: true })
  })

  it('closes a connection with pipelined requests only once its last answer went out', async () => {
    const app = Fastify()
    await app.register(parley, { path: '/rt' })
    let started = 0
    app.get('/slow/:n', async (request) => {
      started++
      await new Promise((r) => setTimeout(r, 300))
      return { n: (request.params as { n: string }).n }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const raw = await RawHttp.open((app.server.address() as { port: number }).port)
    try {
      // Two requests on one connection, the second behind the first: Node runs both handlers
      // and sends their answers in order. Ended after the first, the connection would lose the
      // second; left open, it would hold the close until Node's timeouts.
      raw.write(head('GET', '/slow/1') + head('GET', '/slow/2'))
      await until(() => started === 2, 2000, 'both handlers running')
      const closing = app.close()
      await within(raw.closed, 5000, 'the connection ended after its answers')
      await within(closing, 5000, 'the close')
      expect(raw.received.match(/HTTP\/1\.1 200/g)).toHaveLength(2)
      expect(raw.received).toContain('{"n":"1"}')
      expect(raw.received).toContain('{"n":"2"}')
    } finally {
      raw.destroy()
    }
  })

  it('closes promptly with a live stream and a held poll (default Fastify options)', async () => {
    const app = Fastify()
    await app.register(parley, { path: '/rt' })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const base = `http://127.0.0.1:${port}/rt`
    const a = await rawConnect('sse', base)
    const b = await rawConnect('polling', base)
    const w = await rawConnect('websocket', base)
    await new Promise((r) => setTimeout(r, 50))
    const t0 = performance.now()
    await app.close()
    expect(performance.now() - t0).toBeLessThan(1000)
    for (const c of [a, b, w]) {
      expect(c.received.find((p) => p.type === PacketType.CLOSE)).toMatchObject({ reason: 'server shutdown' })
      c.close()
    }
  })
})
