// A thin Parley client, written from docs/protocol.md alone: bare `ws` for WebSocket, `node:http`
// (a keep-alive Agent per client) for SSE and polling. It speaks the wire format directly, so
// that a row measured with it shows the server's cost without the Parley client's: HELLO and
// OPEN, numbered EVENTs and REPLYs, cumulative ACKs within the protocol's delay (so that the
// server forgets what it keeps for replay), PONG for every PING. What it leaves out, a benchmark
// does not need: it never resumes (a lost transport fails the client), so it keeps no replay
// buffer of its own, and it sends and expects no binary.
import http from 'node:http'
import WebSocket from 'ws'
import type { BenchClient, ClientSettings, Msg } from './clients.ts'
import { closeWebSocket, settledWithin } from './goodbye.ts'
import { exchange, type Origin, stream } from './thin-http.ts'

export type ThinTransport = 'websocket' | 'sse' | 'polling'

// Packet types (docs/protocol.md, Packets).
const OPEN = 0
const CLOSE = 1
const PING = 2
const ACK = 4
const EVENT = 5
const REPLY = 6
const ERROR = 7

const HELLO_LINE = '[8,{}]'
const PONG_LINE = '[3]'
const CLOSE_LINE = '[1,"client disconnect","the benchmark is done"]'

/**
 * The delivery rule (docs/protocol.md, Ordered, exactly-once delivery), paced as the protocol
 * lets a client pace it and as the Parley client does: on WebSocket an ACK at most 1000 ms after
 * the first unacknowledged packet or at once when 32 are waiting; on SSE, where an ACK costs a
 * POST, 5000 ms or 256 packets; with the PONG of every PING. Polling acknowledges in every GET
 * instead.
 */
const ackAfter = (transport: ThinTransport) => (transport === 'sse' ? 256 : 32)
const ackDelayMs = (transport: ThinTransport) => (transport === 'sse' ? 5000 : 1000)

/** How a transport carries packets; the session above it never asks which one it is. */
interface Wire {
  /** Sends one packet line (queued for the next POST on SSE and polling). */
  send(line: string): void
  /** Sends the ACK now, alone or with what is queued. */
  ack(line: string): void
  /** Resolves once a CLOSE sent just before reached the server (bounded), the connections gone. */
  close(): Promise<void>
}

interface Pending {
  resolve(m: Msg): void
  reject(err: Error): void
}

export function thinParleyClient(transport: ThinTransport, settings: ClientSettings): BenchClient {
  const base = `${settings.url}/parley`
  const handlers = new Map<string, (m: Msg) => void>()
  const pending = new Map<number, Pending>()
  let inSeq = 0
  let outSeq = 0
  let acked = 0
  let unacked = 0
  let ackTimer: NodeJS.Timeout | undefined
  let nextAckId = 1
  let open = false
  let closed = false
  let maxPayload = 1_000_000
  let settle: { resolve(): void; reject(err: Error): void } | undefined
  const ready = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject }
  })

  const fail = (err: Error) => {
    if (closed) return
    closed = true
    open = false
    clearTimeout(ackTimer)
    settle?.reject(err)
    for (const p of pending.values()) p.reject(err)
    pending.clear()
    void wire.close()
  }

  const ackNow = () => {
    clearTimeout(ackTimer)
    ackTimer = undefined
    unacked = 0
    if (inSeq > acked && !closed) {
      acked = inSeq
      wire.ack(`[${ACK},${inSeq}]`)
    }
  }
  /** A numbered packet received (in order or a duplicate): the ACK it calls for. */
  const received = () => {
    // Polling: the next GET, sent as soon as this answer is read, carries it (`ackInPoll`).
    if (transport === 'polling') return
    if (++unacked >= ackAfter(transport)) ackNow()
    else ackTimer ??= setTimeout(ackNow, ackDelayMs(transport))
  }

  const deliver = (p: unknown[]) => {
    if (p[0] === EVENT) {
      const [, , name, args, ackId] = p as [number, number, string, unknown[], number]
      handlers.get(name)?.(args[0] as Msg)
      // A request of the server's: no handler here, which the protocol answers at once.
      if (ackId > 0) wire.send(JSON.stringify([ERROR, ++outSeq, ackId, 'PARLEY_NO_HANDLER', 'no handler']))
    } else if (p[0] === REPLY) {
      const [, , ackId, args] = p as [number, number, number, unknown[]]
      pending.get(ackId)?.resolve(args[0] as Msg)
      pending.delete(ackId)
    } else {
      const [, , ackId, code, message] = p as [number, number, number, string, string]
      pending.get(ackId)?.reject(new Error(`${code}: ${message}`))
      pending.delete(ackId)
    }
  }

  /** One packet from the server. */
  const receive = (text: string) => {
    let p: unknown
    try {
      p = JSON.parse(text)
    } catch {
      return fail(new Error(`${transport}: a packet that is not JSON: ${text.slice(0, 80)}`))
    }
    if (!Array.isArray(p)) return fail(new Error(`${transport}: a packet that is not an array`))
    switch (p[0]) {
      case OPEN: {
        maxPayload = (p[1] as { maxPayload: number }).maxPayload
        open = true
        settle?.resolve()
        return
      }
      case PING:
        // Over polling, the next GET (sent as soon as this answer is read) is the PONG, and
        // carries the ACK. Elsewhere a PING asks for the ACK owed too: it goes with the PONG (one
        // POST over SSE: both are queued in this tick).
        if (transport === 'polling') return
        ackNow()
        return wire.send(PONG_LINE)
      case ACK:
        return // nothing kept to forget: this client never replays
      case EVENT:
      case REPLY:
      case ERROR: {
        const seq = p[1] as number
        if (seq === 0) {
          // Volatile: delivered, never counted. An ERROR with seq 0 refuses the HELLO.
          if (p[0] === ERROR) return fail(new Error(`refused: ${p[3]}: ${p[4]}`))
          return deliver(p)
        }
        if (seq > inSeq + 1)
          return fail(new Error(`${transport}: a gap in sequence numbers (${inSeq} to ${seq})`))
        if (seq === inSeq + 1) {
          inSeq = seq
          deliver(p)
        }
        return received()
      }
      default:
        // CLOSE ends the session, MOVED this transport: either way this client is done.
        return fail(new Error(`${transport}: ${p[0] === CLOSE ? `closed: ${p[1]}` : 'moved'}`))
    }
  }

  /** The ACK a poll carries (docs/protocol.md: an ACK may ride in a downstream GET), if owed. */
  const ackInPoll = (): number | undefined => {
    if (inSeq <= acked) return undefined
    acked = inSeq
    return inSeq
  }

  const wire: Wire =
    transport === 'websocket'
      ? webSocketWire(base, settings, receive, fail)
      : httpWire(transport, base, settings, receive, fail, () => maxPayload, ackInPoll)
  const timer = setTimeout(
    () => fail(new Error(`thin ${transport}: not connected after ${settings.timeoutMs} ms`)),
    settings.timeoutMs,
  )
  ready.then(
    () => clearTimeout(timer),
    () => clearTimeout(timer),
  )

  const send = (name: string, m: Msg, ackId: number) =>
    wire.send(JSON.stringify([EVENT, ++outSeq, name, [m], ackId]))
  return {
    ready,
    transport: () => (open ? transport : null),
    connected: () => open,
    on: (event, fn) => void handlers.set(event, fn),
    emit: (event, m) => send(event, m, 0),
    request: (m) =>
      new Promise<Msg>((resolve, reject) => {
        const ackId = nextAckId++
        pending.set(ackId, { resolve, reject })
        send('ack', m, ackId)
      }),
    close: () => {
      if (closed) return Promise.resolve()
      if (open) wire.send(CLOSE_LINE)
      closed = true
      open = false
      clearTimeout(ackTimer)
      return wire.close()
    },
  }
}

/** One packet per message, the subprotocol `parley.v1`, HELLO first. */
function webSocketWire(
  base: string,
  settings: ClientSettings,
  receive: (text: string) => void,
  fail: (err: Error) => void,
): Wire {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, 'parley.v1', {
    perMessageDeflate: false,
    localAddress: settings.localAddress,
  })
  ws.on('open', () => {
    if (ws.protocol !== 'parley.v1') return fail(new Error(`subprotocol ${ws.protocol || 'none'} selected`))
    ws.send(HELLO_LINE)
  })
  ws.on('message', (data, isBinary) => {
    if (isBinary) return fail(new Error('websocket: a binary frame, which this client never asked for'))
    receive(String(data))
  })
  ws.on('error', fail)
  ws.on('close', (code) => fail(new Error(`websocket: closed with ${code}`)))
  return {
    send: (line) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(line)
    },
    ack: (line) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(line)
    },
    // After a CLOSE packet (sent just before, when open) the client closes with 1000; the server
    // answers the close frame once it has read what came before it, the CLOSE packet included.
    close: () => closeWebSocket(ws),
  }
}

/**
 * SSE and polling: the handshake POST answers OPEN; downstream is an event stream (SSE) or a
 * GET always outstanding (polling); upstream packets go in POSTs, one at a time (a second one
 * would be answered 409), batched, each body under maxPayload bytes, with the ACK riding along.
 */
function httpWire(
  transport: 'sse' | 'polling',
  base: string,
  settings: ClientSettings,
  receive: (text: string) => void,
  fail: (err: Error) => void,
  maxPayload: () => number,
  ackInPoll: () => number | undefined,
): Wire {
  const origin: Origin = {
    agent: new http.Agent({ keepAlive: true, maxSockets: 2 }),
    localAddress: settings.localAddress,
  }
  const endpoint = `${base}/${transport === 'sse' ? 'sse' : 'poll'}?v=1`
  let sid = ''
  let closed = false
  const queue: string[] = []
  let ackLine: string | undefined
  let posting = false
  let scheduled = false
  let gone: Promise<void> | undefined

  const post = () => {
    scheduled = false
    if (posting || closed || !sid || (queue.length === 0 && !ackLine)) return
    const lines: string[] = []
    let bytes = 0
    if (ackLine) {
      lines.push(ackLine)
      bytes = ackLine.length + 1
      ackLine = undefined
    }
    while (queue.length > 0) {
      const size = Buffer.byteLength(queue[0]!) + 1
      if (lines.length > 0 && bytes + size > maxPayload() + 1) break
      lines.push(queue.shift()!)
      bytes += size
    }
    posting = true
    exchange(origin, 'POST', `${endpoint}&sid=${sid}`, lines.join('\n')).then((answer) => {
      posting = false
      if (answer.status !== 204)
        return fail(new Error(`${transport}: POST answered ${answer.status} ${answer.body}`))
      schedule()
    }, fail)
  }
  const schedule = () => {
    if (scheduled || posting) return
    scheduled = true
    setImmediate(post)
  }

  // Polling: a GET always outstanding; its answer is packet lines, or empty.
  const poll = () => {
    if (closed) return
    const ack = ackInPoll()
    const url = `${endpoint}&sid=${sid}${ack === undefined ? '' : `&ack=${ack}`}`
    exchange(origin, 'GET', url).then((answer) => {
      if (closed) return
      if (answer.status !== 200)
        return fail(new Error(`polling: GET answered ${answer.status} ${answer.body}`))
      if (answer.body.length > 0) for (const line of answer.body.split('\n')) receive(line)
      poll()
    }, fail)
  }

  // SSE: events end with a blank line; a `data:` line holds the packet, `:` lines are comments.
  const events = () => {
    let buffer = ''
    let from = 0
    const onText = (text: string) => {
      buffer += text
      for (;;) {
        const end = buffer.indexOf('\n\n', from)
        if (end < 0) {
          from = Math.max(0, buffer.length - 1)
          return
        }
        const event = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        from = 0
        for (const line of event.split('\n'))
          if (line.startsWith('data:')) receive(line.slice(line.startsWith('data: ') ? 6 : 5))
      }
    }
    let ended = false
    const onEnd = (err?: Error) => {
      if (ended) return
      ended = true
      fail(err ?? new Error('sse: the stream ended'))
    }
    stream(origin, `${endpoint}&sid=${sid}`, onText, onEnd).then((status) => {
      if (status !== 200) fail(new Error(`sse: GET answered ${status}`))
    }, fail)
  }

  exchange(origin, 'POST', endpoint, HELLO_LINE).then((answer) => {
    if (closed) return
    if (answer.status !== 200)
      return fail(new Error(`${transport}: handshake answered ${answer.status} ${answer.body}`))
    const open = JSON.parse(answer.body) as [number, { sid: string }]
    sid = open[0] === OPEN ? open[1].sid : ''
    receive(answer.body)
    if (!sid) return
    if (transport === 'sse') events()
    else poll()
    schedule()
  }, fail)

  return {
    send: (line) => {
      queue.push(line)
      schedule()
    },
    ack: (line) => {
      ackLine = line
      schedule()
    },
    close: () => {
      if (gone) return gone
      closed = true
      // A CLOSE packet queued just before goes out alone (after a POST still in flight: the
      // Agent has a socket for POSTs beside the stream or held GET), then the connections go.
      const goodbye =
        queue.at(-1) === CLOSE_LINE && sid
          ? settledWithin(exchange(origin, 'POST', `${endpoint}&sid=${sid}`, CLOSE_LINE))
          : Promise.resolve()
      gone = goodbye.then(() => origin.agent.destroy())
      return gone
    },
  }
}
