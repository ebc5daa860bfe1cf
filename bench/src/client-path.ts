// `pnpm -F @parley/bench client-path`: the Parley client's receive path alone, in one process,
// without I/O: a WebSocket of this file's own answers the HELLO with an OPEN, then each round
// hands the client's `onmessage` a thousand numbered EVENTs like the broadcast scenario's, and
// times (user CPU) what the client does from there to its listener. Beside it, what any client
// does at the least: JSON.parse of the same text (each a new string, as a message is) and a call. It says how much of the client's
// cost per message is its own code, which client-cost.ts cannot tell apart from `ws`'s and the
// kernel's on a busy machine.
//
//   pnpm -F @parley/bench client-path [path/to/other/build/index.js]
import path from 'node:path'
import { pathToFileURL } from 'node:url'

interface ClientModule {
  connect(
    url: string,
    options: Record<string, unknown>,
  ): {
    on(event: string, fn: (m: { n: number }) => void): unknown
    once(event: string, fn: () => void): unknown
  }
}

const given = process.argv[2]
const { connect } = (await import(
  given ? pathToFileURL(path.resolve(given)).href : '@parley/client'
)) as ClientModule

const OPEN = [
  0,
  {
    sid: 's1',
    id: 'i1',
    pingInterval: 25_000,
    pingTimeout: 20_000,
    maxPayload: 1_000_000,
    transports: ['websocket'],
    recovered: false,
    ack: 0,
  },
]
let socket: FakeWebSocket | undefined

/** A WebSocket whose server answers HELLO with OPEN and takes everything else in silence. */
class FakeWebSocket {
  readonly protocol = 'parley.v1'
  binaryType = ''
  onopen: (() => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: (() => void) | null = null
  onerror: (() => void) | null = null
  constructor() {
    socket = this
    setTimeout(() => this.onopen?.())
  }
  send(data: unknown): void {
    if (String(data).startsWith('[8,')) setTimeout(() => this.onmessage?.({ data: JSON.stringify(OPEN) }))
  }
  close(): void {}
}

const client = connect('http://127.0.0.1:1/parley', {
  transports: ['websocket'],
  WebSocket: FakeWebSocket,
  reconnection: false,
  storage: { getItem: () => null, setItem() {}, removeItem() {} },
})
await new Promise<void>((resolve) => client.once('connect', resolve))
let sum = 0
client.on('tick', (m) => {
  sum += m.n
})

const ROUND = 1000
const ROUNDS = 200
const text = (seq: number) =>
  `[5,${seq},"tick",[{"t":123456.789,"n":42,"text":"the quick brown fox jumps over the lazy dog"}],0]`
let seq = 0
console.log('µs/message (user CPU): the client from onmessage to its listener | JSON.parse and a call')
for (let rep = 0; rep < 8; rep++) {
  let start = process.cpuUsage()
  for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < ROUND; i++) socket!.onmessage!({ data: text(++seq) })
  const parley = process.cpuUsage(start).user / (ROUNDS * ROUND)
  start = process.cpuUsage()
  for (let r = 0; r < ROUNDS; r++)
    for (let i = 0; i < ROUND; i++) {
      const packet = JSON.parse(text(i + 1)) as [number, number, string, [{ n: number }]]
      if (packet[0] === 5) sum += packet[3][0].n
    }
  const floor = process.cpuUsage(start).user / (ROUNDS * ROUND)
  console.log(`${parley.toFixed(2)} | ${floor.toFixed(2)}`)
  // The client's timers (its ACK's) get their turn between repetitions.
  await new Promise((resolve) => setTimeout(resolve, 10))
}
if (sum === 0) throw new Error('nothing delivered')
process.exit(0)
