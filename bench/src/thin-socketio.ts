// A thin socket.io client, written from the public Engine.IO 4 / socket.io 5 protocol: bare `ws`
// for WebSocket, `node:http` (a keep-alive Agent per client) for long-polling. It is to
// socket.io's rows what thin-parley.ts is to Parley's: the server's cost without
// socket.io-client's. The main namespace only, text only, no upgrade, no reconnection.
//
// Engine.IO packets are a type digit and data: 0 open (JSON), 1 close, 2 ping, 3 pong,
// 4 message, 6 noop. A polling body joins packets with the record separator (0x1e). A message
// holds a socket.io packet: a type digit (0 connect, 1 disconnect, 2 event, 3 ack,
// 4 connect error), an optional ack id, then JSON (`2` + `12["ack",{...}]`).
import http from 'node:http'
import WebSocket from 'ws'
import type { BenchClient, ClientSettings, Msg } from './clients.ts'
import { closeWebSocket, settledWithin } from './goodbye.ts'
import { exchange, type Origin } from './thin-http.ts'

export type ThinSocketIoTransport = 'websocket' | 'polling'

const SEPARATOR = '\x1e'

interface Wire {
  send(packet: string): void
  /** Resolves once a disconnect sent just before reached the server (bounded), the connections gone. */
  close(): Promise<void>
}

export function thinSocketIoClient(transport: ThinSocketIoTransport, settings: ClientSettings): BenchClient {
  const query = `${settings.url}/socket.io/?EIO=4&transport=${transport}`
  const handlers = new Map<string, (m: Msg) => void>()
  const pending = new Map<number, (m: Msg) => void>()
  let nextAckId = 1
  let connected = false
  let closed = false
  let settle: { resolve(): void; reject(err: Error): void } | undefined
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject }
  })
  const fail = (err: Error) => {
    if (closed) return
    closed = true
    connected = false
    settle?.reject(err)
    void wire.close()
  }

  /** One socket.io packet (the data of an Engine.IO message). */
  const onMessage = (data: string) => {
    const type = data.charCodeAt(0) - 48
    if (type === 0) {
      connected = true
      settle?.resolve()
      return
    }
    if (type === 2 || type === 3) {
      let at = 1
      while (at < data.length && data.charCodeAt(at) >= 48 && data.charCodeAt(at) <= 57) at++
      const id = at > 1 ? Number(data.slice(1, at)) : 0
      const args = JSON.parse(data.slice(at)) as unknown[]
      if (type === 2) handlers.get(args[0] as string)?.(args[1] as Msg)
      else {
        pending.get(id)?.(args[0] as Msg)
        pending.delete(id)
      }
      return
    }
    fail(new Error(`socket.io: ${type === 4 ? `connect error ${data.slice(1)}` : 'disconnected'}`))
  }
  /** One Engine.IO packet. */
  const onPacket = (packet: string) => {
    switch (packet[0]) {
      case '0': // open: the session id (polling) is read by the wire; the namespace comes next
        return wire.send('40')
      case '2':
        return wire.send('3')
      case '4':
        return onMessage(packet.slice(1))
      case '6':
        return
      default:
        fail(new Error(`engine.io: ${packet[0] === '1' ? 'closed' : `packet ${packet.slice(0, 20)}`}`))
    }
  }

  const wire =
    transport === 'websocket'
      ? webSocketWire(query, settings, onPacket, fail)
      : pollingWire(query, settings, onPacket, fail)
  const timer = setTimeout(
    () => fail(new Error(`thin socket.io ${transport}: not connected after ${settings.timeoutMs} ms`)),
    settings.timeoutMs,
  )
  ready.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  )
  return {
    ready,
    transport: () => (connected ? transport : null),
    connected: () => connected,
    on: (event, fn) => void handlers.set(event, fn),
    emit: (event, m) => wire.send(`42${JSON.stringify([event, m])}`),
    request: (m) =>
      new Promise<Msg>((resolve) => {
        const id = nextAckId++
        pending.set(id, resolve)
        wire.send(`42${id}${JSON.stringify(['ack', m])}`)
      }),
    close: () => {
      if (closed) return Promise.resolve()
      if (connected) wire.send('41')
      closed = true
      connected = false
      return wire.close()
    },
  }
}

function webSocketWire(
  query: string,
  settings: ClientSettings,
  onPacket: (packet: string) => void,
  fail: (err: Error) => void,
): Wire {
  const ws = new WebSocket(query.replace(/^http/, 'ws'), {
    perMessageDeflate: false,
    localAddress: settings.localAddress,
  })
  ws.on('message', (data) => onPacket(String(data)))
  ws.on('error', fail)
  ws.on('close', (code) => fail(new Error(`websocket: closed with ${code}`)))
  return {
    send: (packet) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(packet)
    },
    close: () => closeWebSocket(ws),
  }
}

/** The handshake GET answers open; then a GET always outstanding and one POST at a time. */
function pollingWire(
  query: string,
  settings: ClientSettings,
  onPacket: (packet: string) => void,
  fail: (err: Error) => void,
): Wire {
  const origin: Origin = {
    agent: new http.Agent({ keepAlive: true, maxSockets: 2 }),
    localAddress: settings.localAddress,
  }
  let sid = ''
  let closed = false
  const queue: string[] = []
  let posting = false
  let scheduled = false
  let gone: Promise<void> | undefined
  const url = () => `${query}&sid=${sid}`

  const post = () => {
    scheduled = false
    if (posting || closed || !sid || queue.length === 0) return
    posting = true
    const body = queue.splice(0).join(SEPARATOR)
    exchange(origin, 'POST', url(), body).then((answer) => {
      posting = false
      if (answer.status !== 200)
        return fail(new Error(`polling: POST answered ${answer.status} ${answer.body}`))
      schedule()
    }, fail)
  }
  const schedule = () => {
    if (scheduled || posting) return
    scheduled = true
    setImmediate(post)
  }
  const receive = (body: string) => {
    for (const packet of body.split(SEPARATOR)) if (packet.length > 0) onPacket(packet)
  }
  const poll = () => {
    if (closed) return
    exchange(origin, 'GET', url()).then((answer) => {
      if (closed) return
      if (answer.status !== 200)
        return fail(new Error(`polling: GET answered ${answer.status} ${answer.body}`))
      receive(answer.body)
      poll()
    }, fail)
  }

  exchange(origin, 'GET', query).then((answer) => {
    if (closed) return
    if (answer.status !== 200 || answer.body[0] !== '0')
      return fail(new Error(`polling: handshake answered ${answer.status} ${answer.body.slice(0, 100)}`))
    sid = (JSON.parse(answer.body.slice(1)) as { sid: string }).sid
    receive(answer.body)
    poll()
  }, fail)

  return {
    send: (packet) => {
      queue.push(packet)
      schedule()
    },
    close: () => {
      if (gone) return gone
      closed = true
      // A disconnect queued just before goes out alone, with Engine.IO's close (as
      // socket.io-client sends them), then the connections go.
      const goodbye =
        queue.at(-1) === '41' && sid
          ? settledWithin(exchange(origin, 'POST', url(), `41${SEPARATOR}1`))
          : Promise.resolve()
      gone = goodbye.then(() => origin.agent.destroy())
      return gone
    },
  }
}
