// What crosses a server's HTTP port, counted in the server's process: requests by method, the
// packets of each POST body and each GET answer by type, their bytes, and the bytes of every
// connection. Counts, not times: the same exchange gives the same counts however busy the
// machine, as long as the clients batch alike (poll-count.ts reads them for the echo over
// long-polling). It listens beside the server's own handlers and changes nothing they see.
import type http from 'node:http'
import type { Socket } from 'node:net'

/** Packets by type number (`[type,...` of each line), as docs/protocol.md numbers them. */
export type PacketCounts = Record<string, number>

export interface WireCounts {
  gets: number
  posts: number
  /** GETs whose URL carried `ack=`, and those of them with a number above 0. */
  getsWithAck: number
  getsWithAckAbove0: number
  /** GET answers with no packet (the server released the GET). */
  emptyAnswers: number
  /** Answers by status, every method. */
  statuses: Record<string, number>
  /** How many POST bodies, and GET answers, held each number of packets (empty answers left out). */
  postSizes: Record<string, number>
  answerSizes: Record<string, number>
  /** Packets in POST bodies, and in GET answers. */
  upPackets: PacketCounts
  downPackets: PacketCounts
  /** Body bytes of POSTs and of GET answers (headers not included). */
  upBodyBytes: number
  downBodyBytes: number
  /** Request header bytes as received (names and values), and their count. */
  requestHeaderBytes: number
  requestHeaders: number
  /** Bytes read from and written to every connection (headers, bodies, framing). */
  bytesRead: number
  bytesWritten: number
  connections: number
}

export interface WireCounter {
  read(): WireCounts
  /** Starts counting from zero (connections still open count only what they move from now). */
  reset(): void
}

const empty = (): WireCounts => ({
  gets: 0,
  posts: 0,
  getsWithAck: 0,
  getsWithAckAbove0: 0,
  emptyAnswers: 0,
  statuses: {},
  postSizes: {},
  answerSizes: {},
  upPackets: {},
  downPackets: {},
  upBodyBytes: 0,
  downBodyBytes: 0,
  requestHeaderBytes: 0,
  requestHeaders: 0,
  bytesRead: 0,
  bytesWritten: 0,
  connections: 0,
})

/** Adds the packets of an HTTP body (one packet a line) to `into`, and its size to `sizes`. */
function countLines(text: string, into: PacketCounts, sizes: Record<string, number>): void {
  if (text.length === 0) return
  const lines = text.split('\n')
  sizes[lines.length] = (sizes[lines.length] ?? 0) + 1
  for (const line of lines) {
    const type = /^\[(\d+)/.exec(line)?.[1] ?? 'other'
    into[type] = (into[type] ?? 0) + 1
  }
}

/** Counts the traffic of `server` from now on. */
export function countWire(server: http.Server): WireCounter {
  let counts = empty()
  /** Each open connection's bytes when the counts were last reset. */
  const sockets = new Map<Socket, { read: number; written: number }>()
  server.on('connection', (socket: Socket) => {
    counts.connections++
    sockets.set(socket, { read: 0, written: 0 })
    socket.once('close', () => {
      const from = sockets.get(socket)
      sockets.delete(socket)
      if (!from) return
      counts.bytesRead += socket.bytesRead - from.read
      counts.bytesWritten += socket.bytesWritten - from.written
    })
  })
  // First of the request listeners, so that it sees each request before the server's own.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Requests count where they arrive; bodies and answers where they end (see below).
    const c = counts
    for (let i = 0; i < req.rawHeaders.length; i++) c.requestHeaderBytes += req.rawHeaders[i]!.length
    c.requestHeaders += req.rawHeaders.length / 2
    if (req.method === 'GET') {
      c.gets++
      const ack = /[?&]ack=(\d+)/.exec(req.url ?? '')?.[1]
      if (ack !== undefined) {
        c.getsWithAck++
        if (Number(ack) > 0) c.getsWithAckAbove0++
      }
    } else if (req.method === 'POST') {
      c.posts++
      // The body as the server's reader takes it: a listener of our own would set the stream
      // flowing before that reader is there, and the chunks would go by it.
      const chunks: Buffer[] = []
      const emit = req.emit
      req.emit = function (this: http.IncomingMessage, event: string | symbol, ...args: unknown[]) {
        if (event === 'data') chunks.push(args[0] as Buffer)
        else if (event === 'end') {
          const body = Buffer.concat(chunks)
          counts.upBodyBytes += body.length
          countLines(body.toString('utf8'), counts.upPackets, counts.postSizes)
        }
        return emit.call(this, event, ...args)
      } as typeof req.emit
    }
    const end = res.end
    res.end = function (this: http.ServerResponse, ...args: unknown[]) {
      // Counted when it goes: a GET held since before a reset brings packets of the count.
      const c = counts
      const status = String(res.statusCode)
      c.statuses[status] = (c.statuses[status] ?? 0) + 1
      const body = args[0]
      if (req.method === 'GET' && (typeof body === 'string' || Buffer.isBuffer(body))) {
        const text = typeof body === 'string' ? body : body.toString('utf8')
        c.downBodyBytes += Buffer.byteLength(text)
        if (text.length === 0) c.emptyAnswers++
        countLines(text, c.downPackets, c.answerSizes)
      } else if (req.method === 'GET' && res.statusCode === 200) c.emptyAnswers++
      return end.apply(this, args as Parameters<typeof end>)
    } as typeof res.end
  })
  return {
    read() {
      // Open connections count what they moved since the reset, read now.
      const c = structuredClone(counts)
      for (const [socket, from] of sockets) {
        c.bytesRead += socket.bytesRead - from.read
        c.bytesWritten += socket.bytesWritten - from.written
      }
      return c
    },
    reset() {
      counts = empty()
      for (const [socket, from] of sockets) {
        from.read = socket.bytesRead
        from.written = socket.bytesWritten
      }
    },
  }
}
