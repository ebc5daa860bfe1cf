// A loopback TCP proxy that misbehaves at random, from a seed: it cuts connections at random
// moments (between chunks, or in the middle of what the server sends), stalls one direction of a
// connection for a while, and answers every WebSocket upgrade with 400. The same seed draws the
// same fate for the n-th connection; when connections come still depends on the machine, so a
// run is bounded, not replayed. Listens on 127.0.0.1 only.
import net from 'node:net'

/** A small seeded generator (mulberry32): numbers in [0, 1), the same ones for the same seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What the proxy did so far: a run that did none of it proved nothing. */
export interface ChaosCounts {
  connections: number
  /** Connections cut at a drawn moment. */
  cuts: number
  /** Connections cut in the middle of a chunk from the server (part of it passed). */
  torn: number
  /** Stalls of one direction. */
  stalls: number
  /** Upgrades answered 400. */
  refusedUpgrades: number
}

export interface ChaosProxy {
  /** `http://127.0.0.1:<port>` */
  url: string
  readonly counts: ChaosCounts
  /**
   * Ends the chaos: faults still to come are dropped, stalled bytes go on, and later
   * connections pass untouched (upgrades are still answered 400).
   */
  calm(): void
  close(): Promise<void>
}

const UPGRADE = /^upgrade:\s*websocket\s*$/im
const REFUSAL = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'

export async function startChaosProxy(targetPort: number, seed: number): Promise<ChaosProxy> {
  const fates = seeded(seed)
  const counts: ChaosCounts = { connections: 0, cuts: 0, torn: 0, stalls: 0, refusedUpgrades: 0 }
  let calm = false
  /** Each live connection's way to end its faults (calm) and to close (close). */
  const live = new Map<net.Socket, { settle(): void; destroy(): void }>()
  const clients = new Set<net.Socket>()

  const server = net.createServer((client) => {
    counts.connections++
    clients.add(client)
    client.on('close', () => clients.delete(client))
    client.on('error', () => {})
    // Each connection draws from a generator of its own, seeded in the order connections come:
    // its fate does not hang on when the others' bytes came.
    const random = seeded(fates() * 2 ** 32)
    const between = (min: number, max: number) => min + Math.floor(random() * (max - min))
    // Tearing draws as chunks come, from a generator of its own: the faults' draws stay put.
    const tearing = seeded(random() * 2 ** 32)
    const tearChance = random() < 0.3 ? 0.05 : 0

    // The request's head decides: an upgrade is refused, anything else goes to the server.
    let head = Buffer.alloc(0)
    const readHead = (data: Buffer) => {
      head = Buffer.concat([head, data])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0 && head.length < 16_384) return
      client.off('data', readHead)
      if (UPGRADE.test(head.subarray(0, end < 0 ? head.length : end).toString('latin1'))) {
        counts.refusedUpgrades++
        client.end(REFUSAL)
        return
      }
      pipe(head)
    }
    client.on('data', readHead)

    const pipe = (first: Buffer) => {
      const upstream = net.connect(targetPort, '127.0.0.1')
      upstream.on('error', () => {})
      const timers: ReturnType<typeof setTimeout>[] = []
      /** Bytes held back while a direction stalls: up (to the server) and down. */
      let heldUp: Buffer[] | undefined
      let heldDown: Buffer[] | undefined
      const destroy = () => {
        for (const timer of timers) clearTimeout(timer)
        live.delete(client)
        client.destroy()
        upstream.destroy()
      }
      const flush = () => {
        for (const chunk of heldUp ?? []) upstream.write(chunk)
        for (const chunk of heldDown ?? []) client.write(chunk)
        heldUp = heldDown = undefined
      }
      const settle = () => {
        for (const timer of timers) clearTimeout(timer)
        flush()
      }
      live.set(client, { settle, destroy })
      client.on('close', destroy)
      upstream.on('close', destroy)
      upstream.write(first)
      client.on('data', (data: Buffer) => {
        if (heldUp) heldUp.push(data)
        else upstream.write(data)
      })
      const chaotic = !calm
      upstream.on('data', (data: Buffer) => {
        if (heldDown) heldDown.push(data)
        else if (chaotic && !calm && data.length > 1 && tearing() < tearChance) {
          // Part of what the server sent (half a line, half a frame), then nothing.
          counts.torn++
          client.write(data.subarray(0, 1 + Math.floor(tearing() * (data.length - 1))))
          destroy()
        } else client.write(data)
      })
      // Faults one after another, at random moments, for as long as the connection lives.
      const fault = () => {
        const draw = random()
        if (draw < 0.3) {
          counts.cuts++
          destroy()
          return
        }
        if (draw < 0.6) {
          counts.stalls++
          if (random() < 0.5) heldUp = []
          else heldDown = []
          timers.push(
            setTimeout(
              () => {
                flush()
                later()
              },
              between(200, 3000),
            ),
          )
          return
        }
        later()
      }
      const later = () => timers.push(setTimeout(fault, between(50, 1500)))
      if (chaotic) later()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    calm() {
      calm = true
      for (const connection of live.values()) connection.settle()
    },
    close() {
      for (const connection of [...live.values()]) connection.destroy()
      for (const client of clients) client.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
