// A loopback TCP proxy whose live connections can be frozen: bytes stop in both directions but
// nothing is closed, as when a link goes half-open (a NAT forgets the flow, a laptop sleeps).
// Connections opened after a freeze pass as usual. A connection can also be cut at a given
// answer of the server, or right after a given request (the request went through and runs, its
// answer is lost with the link). Or the link can go down: every connection cut, new ones
// refused, until it is up again. Listens on 127.0.0.1 only.
import net from 'node:net'

export interface TcpProxy {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Stops every open connection without closing it; later connections work. */
  freeze(): void
  /**
   * Stops passing on what the clients of the open connections send, without closing anything,
   * as a server that stops reading would: their bytes pile up in the clients' buffers once the
   * system's are full. What the server sends still passes. The function returned lets the
   * clients' bytes go on.
   */
  holdUpstream(): () => void
  /**
   * Stops passing on what the server sends on the open connections, without closing anything,
   * as a client too busy to read would see it: the bytes wait in the proxy. The function
   * returned passes them on, in order, and lets later ones through.
   */
  holdDownstream(): () => void
  /**
   * Cuts the next connection whose server sends bytes that contain `answer`: those bytes are
   * not passed on, and both sides are closed. Resolves once it did; later connections work.
   */
  cutAt(answer: string): Promise<void>
  /**
   * Cuts the client's side of the next connection whose client sends bytes that contain
   * `request`, once they are passed on: the server side stays open until `close()`, so that
   * the server runs them, and what it answers is dropped. Resolves once it did.
   */
  cutAfter(request: string): Promise<void>
  /**
   * While true, the link is down: every live connection is cut (both sides) when it is set, and
   * every new one is closed at once, as when a host cannot reach the server. False: up again.
   */
  offline: boolean
  /** Connections accepted so far. */
  readonly accepted: number
  close(): Promise<void>
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>()
  let accepted = 0
  let cut: { answer: string; done: () => void } | undefined
  let cutAfter: { request: string; done: () => void } | undefined
  let offline = false
  /** Pairs cut after a request: the server's side stays open, unheard. */
  const severed = new Set<[net.Socket, net.Socket]>()
  /** What the server sent on pairs held downstream, waiting to be passed on. */
  const heldDown = new Map<[net.Socket, net.Socket], Buffer[]>()
  const server = net.createServer((client) => {
    accepted++
    if (offline) {
      client.destroy()
      return
    }
    const upstream = net.connect(targetPort, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    client.pipe(upstream)
    // After the pipe's own listener: the bytes are on their way to the server.
    client.on('data', (data: Buffer) => {
      if (!cutAfter || !data.includes(cutAfter.request)) return
      severed.add(pair)
      cutAfter.done()
      cutAfter = undefined
      end()
    })
    upstream.on('data', (data: Buffer) => {
      if (severed.has(pair)) return
      if (cut && data.includes(cut.answer)) {
        cut.done()
        cut = undefined
        end()
      } else {
        const waiting = heldDown.get(pair)
        if (waiting) waiting.push(data)
        else client.write(data)
      }
    })
    const end = () => {
      client.destroy()
      if (severed.has(pair)) return
      pairs.delete(pair)
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted
    },
    get offline() {
      return offline
    },
    set offline(down) {
      offline = down
      if (!down) return
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
    },
    cutAt(answer) {
      return new Promise((resolve) => {
        cut = { answer, done: resolve }
      })
    },
    cutAfter(request) {
      return new Promise((resolve) => {
        cutAfter = { request, done: resolve }
      })
    },
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream)
        upstream.unpipe(client)
        client.pause()
        upstream.pause()
      }
      // Frozen for good: the test ends them at close().
    },
    holdUpstream() {
      const held = [...pairs]
      for (const [client, upstream] of held) {
        client.unpipe(upstream)
        client.pause()
      }
      return () => {
        for (const [client, upstream] of held) client.pipe(upstream)
      }
    },
    holdDownstream() {
      const held = [...pairs]
      for (const pair of held) heldDown.set(pair, [])
      return () => {
        for (const pair of held) {
          const waiting = heldDown.get(pair) ?? []
          heldDown.delete(pair)
          for (const data of waiting) pair[0].write(data)
        }
      }
    },
    async close() {
      for (const [client, upstream] of pairs) {
        client.destroy()
        upstream.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
