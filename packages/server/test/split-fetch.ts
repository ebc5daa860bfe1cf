// A `fetch` for the real client that splits its requests between two nodes: the handshake goes
// where the client points (the session's owner), every request after it to another node, which
// forwards it to the owner. What no balancer does on purpose, and round-robin does by chance.

/** Changes the init of a request sent to the other node (a slow body, say); undefined: as is. */
export type Change = (init: RequestInit | undefined) => RequestInit | undefined

/**
 * The fetch; `other()`: the other node's base URL. `sent` records each request, in order:
 * `'handshake'`, or `'GET forwarded'` / `'POST forwarded'`.
 */
export function splitFetch(other: () => string, sent: string[] = [], change?: Change): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (!url.searchParams.has('sid')) {
      sent.push('handshake')
      return fetch(url, init)
    }
    url.port = new URL(other()).port
    sent.push(`${init?.method ?? 'GET'} forwarded`)
    return fetch(url, change?.(init) ?? init)
  }
}

/**
 * A fetch whose bodies come in two parts, the rest only once the answer came: a body that
 * outlasts any time limit of the server's, however late a loaded machine runs its timer. (A
 * fixed delay races that timer, which starts only when the request arrives: on a busy machine,
 * after most of the delay has gone, and the whole body may then come in time.)
 */
export const bodyAfterAnswer: typeof fetch = (input, init) => {
  let answered = () => {}
  const answer = new Promise<void>((resolve) => {
    answered = resolve
  })
  const response = fetch(
    input,
    heldBody(init, () => answer),
  )
  response.then(answered, answered)
  return response
}

/** A copy of `init` whose string body comes in two parts, the rest once `rest()` settles. */
export function heldBody(init: RequestInit | undefined, rest: () => Promise<unknown>): RequestInit {
  const text = String(init?.body ?? '')
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(encoder.encode(text.slice(0, 2)))
      await rest()
      controller.enqueue(encoder.encode(text.slice(2)))
      controller.close()
    },
  })
  // `duplex` is what Node's fetch needs for a streamed body; the DOM's RequestInit lacks it.
  return { ...init, body, duplex: 'half' } as RequestInit
}
