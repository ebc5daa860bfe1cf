import type http from 'node:http'
import { ErrorCode } from '@parley/protocol'
import type { HeaderBag } from '../transports/http.js'
import type { HttpTransportName } from '../transports/registry.js'
import { clientLeft } from './client-left.js'
import { closingConnection } from './connection-close.js'
import { answerHeaders } from './forward-headers.js'
import type { ForwardedRequest } from './forwarded-request.js'
import { closeAnswer } from './handoff-close.js'
import { codedError, readAnswer } from './owner-answers.js'
import { closingClient } from './routing.js'

/** The client's side of a forwarded request, as the answers a forwarding node gives itself need it. */
export interface ClientSide {
  request: ForwardedRequest
  res: http.ServerResponse
  /** The CORS headers the endpoints give the request's page. */
  cors(): HeaderBag
}

/**
 * `503 PARLEY_SERVER_SHUTTING_DOWN` with the page's CORS headers and `message`: the client tries
 * again, through the balancer. `close`: its connection closes after the answer.
 */
export function tryAgain({ request, res, cors }: ClientSide, message: string, close: boolean): void {
  const text = JSON.stringify({ code: ErrorCode.SERVER_SHUTTING_DOWN, message })
  const headers = closingClient(
    request,
    {
      ...cors(),
      'cache-control': 'no-store',
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    } as Record<string, string>,
    close,
  )
  res.writeHead(503, headers)
  res.end(text)
}

/**
 * The owner's error answer (`status` 400 or more) for the client: as it is when it carries a
 * code (Parley's, or an application hook's), else `503 PARLEY_SERVER_SHUTTING_DOWN` with the
 * page's CORS headers, a try again that names the status. An uncoded one comes from before
 * the owner's routes (its headers past Node's 16 KiB once this node added its own: 431;
 * Fastify's bare 503 while it closes; a proxy's), and would tell the client nothing it can
 * act on, nor reach a page on another origin at all (it has no CORS headers). The client's
 * next try may reach the owner directly, as a relayed WebSocket's does (see forward-ws.ts).
 * `close`: the client's connection closes after the answer.
 */
export function errorAnswer(
  client: ClientSide,
  upstream: http.ClientRequest,
  answer: http.IncomingMessage,
  status: number,
  close: boolean,
): void {
  const { res } = client
  readAnswer(answer, (body, whole) => {
    // Read to its end, the connection to the owner goes back to the agent; else it goes.
    if (!whole) upstream.destroy()
    if (clientLeft(res)) return
    const coded = whole ? codedError(body) : undefined
    if (coded) {
      codedAnswer(client, answer, status, body, close)
      return
    }
    tryAgain(
      client,
      `the node of this session answered the forwarded request with HTTP ${status}: try again`,
      close,
    )
  })
}

/** The owner's coded error answer (see `errorAnswer`), read whole as `body`, for the client. */
export function codedAnswer(
  { request, res }: ClientSide,
  answer: http.IncomingMessage,
  status: number,
  body: string,
  close: boolean,
): void {
  res.writeHead(status, closingClient(request, answerHeaders(answer.headers), close))
  res.end(body)
}

/**
 * The answer a closing node gives a GET it forwarded that the owner has not answered yet (a
 * held poll; a stream, in the moment before its owner answers it): `close` alone, as the stream's
 * one event or the poll's one line, as the owner would have sent a CLOSE of its own. An HTTP/1.1
 * connection ends with it, but one a successor at the path serves next (see `closingConnection`).
 */
export function handoffAnswer(
  res: http.ServerResponse,
  kind: HttpTransportName,
  cors: HeaderBag,
  close: string,
): void {
  const { type, body } = closeAnswer(kind, close)
  res.writeHead(200, {
    ...cors,
    'cache-control': 'no-store',
    'content-type': type,
    'content-length': String(Buffer.byteLength(body)),
    ...closingConnection(res.req),
  })
  res.end(body)
}

/** True for the content type of an event stream (`text/event-stream`, any case, any parameters). */
export function isEventStream(type: string | undefined): boolean {
  return type !== undefined && /^text\/event-stream\s*(;|$)/i.test(type)
}
