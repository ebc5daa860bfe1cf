// A loopback proxy in front of a test server that misbehaves on demand, the way networks do: it
// refuses or drops WebSocket upgrades, swallows them or passes them on late, buffers, blocks or
// replaces event streams (or writes their content type in other letter case), swallows a
// session's POSTs or their answers or passes them on late, cuts the answer to a HELLO the server
// took, answers everything 502 or 503 as a balancer with no node to offer, cuts connections, or
// goes offline. Every mode can be changed at any time, and takes effect for the next connection
// or response. Everything listens on 127.0.0.1 only.
import http from 'node:http'
import net from 'node:net'

/**
 * pass: proxy the WebSocket; reject: answer the upgrade 400; destroy: reset the connection;
 * hang: accept the TCP connection and never answer; mute: let the upgrade through (101) but
 * drop everything the server sends after it (a WebSocket that opens and then says nothing).
 */
export type WsMode = 'pass' | 'reject' | 'destroy' | 'hang' | 'mute'
/**
 * pass: proxy event streams; buffer: hold the stream's body until it ends (a buffering proxy);
 * block: reset the connection as soon as the server answers with an event stream (a filter
 * that bans them); page: answer in its place 200 with an HTML page (a filter's block page);
 * recase: proxy them, their content type written in other letter case (`Text/Event-Stream`), as
 * media types are case-insensitive and a proxy may rewrite them so.
 */
export type SseMode = 'pass' | 'buffer' | 'block' | 'page' | 'recase'
/**
 * What happens to a session's POSTs (those with a `sid`: the upstream, not the handshake). pass:
 * proxy them; hang: read them and never answer nor forward them (a proxy that swallows them);
 * mute: forward them, and drop the server's answer (the server has the packets, the client never
 * hears so); slow: read them whole and forward them `slowBy` ms later, unless their client went
 * meanwhile (a slow way up: a request the browser cancels before its bytes crossed, as it cancels
 * a page's requests but those with `keepalive` when the page goes, never reaches the server).
 */
export type PostMode = 'pass' | 'hang' | 'mute' | 'slow'
/**
 * What happens to handshake POSTs (those without a `sid`: a HELLO, new or resuming). pass: proxy
 * them; cut: forward them, and reset the client's connection once the server answers (the server
 * took the HELLO, the client never hears its answer); cut once: so for the next one alone, then
 * pass again (a try that follows at once is not cut too); late: forward them, and hold the server's
 * answer for `lateBy` ms before passing it on (a slow server or network: the server took the
 * HELLO, the client may give up on it first).
 */
export type HelloMode = 'pass' | 'cut' | 'cut once' | 'late'

export interface FaultProxy {
  /** The proxy's base URL, `http://127.0.0.1:<port>`. */
  url: string
  /** What happens to WebSocket upgrades from now on. */
  ws: WsMode
  /** What happens to event-stream responses from now on. */
  sse: SseMode
  /** What happens to a session's POSTs from now on. */
  posts: PostMode
  /** What happens to handshake POSTs from now on. */
  hellos: HelloMode
  /**
   * How long (ms) an upgrade that `ws` passes (or mutes) is held before it goes on to the server,
   * unless its client went meanwhile: the upgrade's answer comes that much later (a slow network,
   * or a balancer slow to reach a node). 0: at once.
   */
  upgradeLateBy: number
  /** Number of handshake POSTs `hellos` cut. */
  cutHellos: number
  /** How long (ms) `hellos: 'late'` holds the answer to a handshake POST. */
  lateBy: number
  /** Number of handshake POSTs `hellos` held back. */
  lateHellos: number
  /** How long (ms) `posts: 'slow'` holds a session's POST before passing it on. */
  slowBy: number
  /** Number of a session's POSTs `posts: 'slow'` dropped, their client gone before they crossed. */
  lost: number
  /** While true, every new connection is reset at once (with `cut('all')`: a network outage). */
  offline: boolean
  /**
   * While not 0, every new request and upgrade is answered at once with this HTTP status and an
   * empty body, none reaching the server: a balancer whose nodes are all draining or restarting
   * (503, or 502 when it found none to connect to).
   */
  unavailable: 0 | 502 | 503
  /**
   * While set, every new request and upgrade is answered at once with this HTTP status and this
   * JSON body (`application/json`), none reaching the server: a proxy, or another service in
   * front, whose error answers are JSON of its own (`{"code": "rate_limited", ...}`).
   */
  answer: { status: number; body: string } | undefined
  /** Number of requests and upgrades `unavailable` or `answer` answered. */
  refused: number
  /** Destroys the open connections of one kind (a network cut). */
  cut(kind: 'websocket' | 'http' | 'all'): void
  /** Number of upgrade requests seen. */
  upgrades: number
  /** Number of event-stream answers seen (passed, buffered or blocked). */
  streams: number
  /** Number of a session's POSTs `posts` kept from an answer: swallowed (hang) or muted. */
  unanswered: number
  /**
   * Holds what the server sends to the client on WebSockets (after the upgrade's answer) and in
   * answers to GETs (event streams, polls), open ones and those opened meanwhile, until the
   * function it returns is called: a slow way down to the client. Answers to POSTs pass.
   */
  hold(): () => void
  close(): Promise<void>
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const wsSockets = new Set<net.Socket>()
  const httpSockets = new Set<net.Socket>()
  const agent = new http.Agent({ keepAlive: false })
  /** The ways down to the client that hold() stops: each stops, or goes on, once per call. */
  const downstreams = new Set<{ stop(): void; go(): void }>()
  let holding = false
  /** Adds a way down, stopped at once while holding; `done` takes it off. */
  function downstream(stop: () => void, go: () => void, done: (fn: () => void) => void): void {
    let stopped = false
    const flow = {
      stop() {
        if (!stopped) stop()
        stopped = true
      },
      go() {
        if (stopped) go()
        stopped = false
      },
    }
    downstreams.add(flow)
    done(() => downstreams.delete(flow))
    if (holding) flow.stop()
  }

  const server = http.createServer((req, res) => {
    if (proxy.unavailable) {
      proxy.refused++
      req.resume()
      res.writeHead(proxy.unavailable, { connection: 'close', 'content-length': 0 }).end()
      return
    }
    if (proxy.answer) {
      proxy.refused++
      req.resume()
      const { status, body } = proxy.answer
      res
        .writeHead(status, {
          connection: 'close',
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        })
        .end(body)
      return
    }
    const posts = req.method === 'POST' && req.url?.includes('sid=') ? proxy.posts : 'pass'
    const hello = req.method === 'POST' && !req.url?.includes('sid=') ? proxy.hellos : 'pass'
    if (hello === 'cut once') proxy.hellos = 'pass'
    if (posts === 'hang') {
      proxy.unanswered++
      req.resume()
      return
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        if (hello === 'late') {
          proxy.lateHellos++
          // Read, so that the server is done with it; passed on whole once the delay is over.
          const chunks: Buffer[] = []
          answer.on('data', (c: Buffer) => chunks.push(c))
          // Unref'd: a proxy closed meanwhile must not keep the test's process up for `lateBy`.
          answer.on('end', () =>
            setTimeout(() => {
              if (res.destroyed) return
              res.writeHead(answer.statusCode ?? 502, answer.headers)
              res.end(Buffer.concat(chunks))
            }, proxy.lateBy).unref(),
          )
          return
        }
        if (posts === 'mute') {
          proxy.unanswered++
          answer.resume()
          return
        }
        if (hello === 'cut' || hello === 'cut once') {
          proxy.cutHellos++
          answer.resume()
          res.destroy()
          return
        }
        const isStream = String(answer.headers['content-type'] ?? '').startsWith('text/event-stream')
        if (isStream) proxy.streams++
        if (isStream && proxy.sse === 'block') {
          answer.destroy()
          res.destroy()
          return
        }
        if (isStream && proxy.sse === 'page') {
          answer.destroy()
          res.writeHead(200, { 'content-type': 'text/html' }).end(BLOCK_PAGE)
          return
        }
        if (isStream && proxy.sse === 'buffer') {
          // A buffering proxy: nothing reaches the client until the whole body is there.
          const chunks: Buffer[] = []
          answer.on('data', (c: Buffer) => chunks.push(c))
          answer.on('end', () => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            res.end(Buffer.concat(chunks))
          })
          return
        }
        const type = answer.headers['content-type']
        res.writeHead(answer.statusCode ?? 502, {
          ...answer.headers,
          ...(isStream &&
            proxy.sse === 'recase' && {
              'content-type': type!.replace('text/event-stream', 'Text/Event-Stream'),
            }),
        })
        answer.pipe(res)
        if (req.method === 'GET')
          downstream(
            () => answer.unpipe(res),
            () => answer.pipe(res),
            (fn) => res.on('close', fn),
          )
      },
    )
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    if (posts !== 'slow') {
      req.pipe(upstream)
      return
    }
    // Nothing reaches the server before the body is written: the request's head waits for it.
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () =>
      setTimeout(() => {
        if (upstream.destroyed) proxy.lost++
        else upstream.end(Buffer.concat(chunks))
      }, proxy.slowBy).unref(),
    )
  })
  server.on('connection', (socket) => {
    if (proxy.offline) {
      socket.destroy()
      return
    }
    httpSockets.add(socket)
    socket.on('close', () => httpSockets.delete(socket))
  })

  server.on('upgrade', (req, socket: net.Socket, head) => {
    proxy.upgrades++
    httpSockets.delete(socket)
    wsSockets.add(socket)
    socket.on('close', () => wsSockets.delete(socket))
    socket.on('error', () => {})
    if (proxy.unavailable) {
      proxy.refused++
      socket.end(`HTTP/1.1 ${proxy.unavailable} ${http.STATUS_CODES[proxy.unavailable]}\r\n${EMPTY}`)
      return
    }
    if (proxy.answer) {
      proxy.refused++
      const { status, body } = proxy.answer
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
      return
    }
    switch (proxy.ws) {
      case 'reject':
        socket.end(`HTTP/1.1 400 Bad Request\r\n${EMPTY}`)
        return
      case 'destroy':
        socket.destroy()
        return
      case 'hang':
        return
      case 'pass':
      case 'mute': {
        const mute = proxy.ws === 'mute'
        if (proxy.upgradeLateBy === 0) return forward(req, socket, head, mute)
        // Unref'd: a proxy closed meanwhile (which destroys the socket) must not keep the test's
        // process up for `upgradeLateBy`.
        setTimeout(() => {
          if (!socket.destroyed) forward(req, socket, head, mute)
        }, proxy.upgradeLateBy).unref()
        return
      }
    }
  })

  /** Passes an upgrade on to the server, and the WebSocket after it (`mute`: see WsMode). */
  function forward(req: http.IncomingMessage, socket: net.Socket, head: Buffer, mute: boolean): void {
    const target = net.connect(targetPort, '127.0.0.1', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`]
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
      target.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (head.length > 0) target.write(head)
      socket.pipe(target)
      let headersDone = false
      // What hold() keeps back, while it holds.
      let held: Buffer[] | undefined
      downstream(
        () => {
          held = []
        },
        () => {
          for (const chunk of held ?? []) socket.write(chunk)
          held = undefined
        },
        (fn) => socket.on('close', fn),
      )
      target.on('data', (data: Buffer) => {
        let chunk = data
        if (!headersDone) {
          const end = chunk.indexOf('\r\n\r\n')
          if (end < 0) {
            socket.write(chunk)
            return
          }
          headersDone = true
          socket.write(chunk.subarray(0, end + 4))
          chunk = chunk.subarray(end + 4)
        }
        if (mute || chunk.length === 0) return
        if (held) held.push(chunk)
        else socket.write(chunk)
      })
    })
    target.on('error', () => socket.destroy())
    target.on('close', () => socket.destroy())
    socket.on('close', () => target.destroy())
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo

  const proxy: FaultProxy = {
    url: `http://127.0.0.1:${port}`,
    ws: 'pass',
    sse: 'pass',
    posts: 'pass',
    hellos: 'pass',
    upgradeLateBy: 0,
    cutHellos: 0,
    lateBy: 0,
    lateHellos: 0,
    slowBy: 0,
    lost: 0,
    offline: false,
    unavailable: 0,
    answer: undefined,
    refused: 0,
    upgrades: 0,
    streams: 0,
    unanswered: 0,
    hold() {
      holding = true
      for (const flow of downstreams) flow.stop()
      return () => {
        holding = false
        for (const flow of downstreams) flow.go()
      }
    },
    cut(kind) {
      if (kind !== 'http') for (const s of wsSockets) s.destroy()
      if (kind !== 'websocket') for (const s of httpSockets) s.destroy()
    },
    close() {
      proxy.cut('all')
      agent.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
  return proxy
}

/** The rest of an answer to an upgrade that refuses it: no body, and the connection ends. */
const EMPTY = 'Connection: close\r\nContent-Length: 0\r\n\r\n'

/** What a filter answers in place of an event stream it bans. */
const BLOCK_PAGE =
  '<!doctype html>\n<title>Blocked</title>\n<p>This content is blocked by your network.</p>\n'
