// Sees, on the client's side of the wire, the moment a CLOSE 'server handoff' arrives: the
// application never hears it (the session resumes quietly), yet the time from that CLOSE to
// the OPEN on another node is what a rolling restart costs each client. And each HELLO that asks
// to resume a session as it leaves: within the quiet time after a handoff, a try whose HELLO no
// node answered in time is dropped without a word to the application, though the node that
// took it may restore the session after all.
import { createRequire } from 'node:module'
// By path, not by name: the bench (bench/src/rolling.ts) runs this file too.
import type { ClientOptions } from '../../packages/client/src/index.js'

// The client's own `ws` (the package the client loads in Node), wrapped to watch messages.
const require = createRequire(new URL('../../packages/client/package.json', import.meta.url))
const WS = require('ws') as typeof import('ws')

/** How a CLOSE 'server handoff' starts on the wire (docs/protocol.md: `[1, reason, ...]`). */
const HANDOFF = '[1,"server handoff"'

/**
 * In the message of the CLOSE 'server handoff' that a node which relays the session to its node
 * sends when it closes (the session did not move: see `Forwarder.close`).
 */
const RELAYING = 'the node relaying this session is closing'

/** True for the text of a HELLO that asks to resume a session (`[8, {sid, ...}]`). */
function isResumeHello(text: string): boolean {
  if (!text.startsWith('[8,')) return false
  try {
    const packet: unknown = JSON.parse(text)
    return Array.isArray(packet) && typeof (packet[1] as { sid?: unknown } | undefined)?.sid === 'string'
  } catch {
    return false
  }
}

/**
 * A client's `WebSocket` and `fetch` options that call `seen()` when a handoff CLOSE arrives,
 * `relayed` true when it came from a node that relayed the session (one that did not move), and
 * `resuming()` as each HELLO that asks to resume a session goes (over WebSocket, or as the body
 * of an SSE or polling handshake).
 */
export function handoffSniffer(
  seen: (relayed: boolean) => void,
  resuming: () => void = () => {},
): Pick<ClientOptions, 'WebSocket' | 'fetch'> {
  const look = (text: string) => {
    const at = text.indexOf(HANDOFF)
    if (at >= 0) seen(text.includes(RELAYING, at))
  }
  const sending = (data: unknown) => {
    if (typeof data === 'string' && isResumeHello(data.trim())) resuming()
  }
  class Watched extends WS.WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      this.on('message', (data: Buffer, binary: boolean) => {
        if (!binary) look(data.toString('utf8'))
      })
      const send = this.send.bind(this)
      this.send = ((data: unknown, ...rest: unknown[]) => {
        sending(data)
        return (send as (...args: unknown[]) => void)(data, ...rest)
      }) as typeof this.send
    }
  }
  const watchedFetch: typeof fetch = async (input, init) => {
    sending(init?.body)
    const response = await fetch(input, init)
    if (!response.body) return response
    // Read a copy of the body as it streams (an SSE stream, a poll's batch), line by line.
    const [mine, theirs] = response.body.tee()
    void (async () => {
      const decoder = new TextDecoder()
      let text = ''
      try {
        for await (const chunk of mine as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true })
          // Whole lines: the last one may go on in the next chunk (a CLOSE's message with it).
          const whole = text.lastIndexOf('\n') + 1
          look(text.slice(0, whole))
          text = text.slice(whole)
        }
        // A poll's answer ends without a line feed.
        look(text)
      } catch {
        // The client aborted its request: the copy ends with it.
      }
    })()
    return new Response(theirs, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }
  return { WebSocket: Watched, fetch: watchedFetch }
}
