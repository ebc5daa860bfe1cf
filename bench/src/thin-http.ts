// The few HTTP exchanges the thin clients need (thin-parley.ts, thin-socketio.ts), straight on
// `node:http` with the keep-alive Agent each client owns: a request with a text body answered
// with a whole text body, and a GET whose body is read as a stream (SSE).
import http from 'node:http'

export interface Answer {
  status: number
  body: string
}

/** Where a client's requests come from: its own pool, and (many connections) a source address. */
export interface Origin {
  agent: http.Agent
  localAddress: string | undefined
}

/** Rejects after `ms` unless settled; the request is destroyed then. */
const TIMEOUT_MS = 60_000

/** One request, its whole answer read as UTF-8 text. */
export function exchange(
  origin: Origin,
  method: 'GET' | 'POST',
  url: string,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> =
      body === undefined
        ? {}
        : { 'content-type': 'text/plain;charset=UTF-8', 'content-length': String(Buffer.byteLength(body)) }
    const req = http.request(url, { method, headers, agent: origin.agent, localAddress: origin.localAddress })
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`${method} got no answer in ${TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.once('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      )
      res.once('error', reject)
    })
    req.end(body)
  })
}

/**
 * A GET whose body is handed to `onText` as it arrives (decoded as UTF-8 across chunk
 * boundaries). Resolves with the status once the answer starts; `onEnd` when the body ends or
 * breaks.
 */
export function stream(
  origin: Origin,
  url: string,
  onText: (text: string) => void,
  onEnd: (err?: Error) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: origin.agent, localAddress: origin.localAddress })
    req.on('error', (err) => {
      reject(err)
      onEnd(err)
    })
    req.once('response', (res) => {
      res.setEncoding('utf8')
      res.on('data', onText)
      res.once('end', () => onEnd())
      res.once('error', onEnd)
      resolve(res.statusCode ?? 0)
    })
    req.end()
  })
}
