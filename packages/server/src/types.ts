import type { IncomingHttpHeaders } from 'node:http'
import type { CloseReason, JsonValue, TransportName } from '@parley/protocol'

/** Lifecycle events of a server-side socket. These names can never arrive from a client. */
export interface SocketReservedEvents {
  /** The session is ending; `socket.rooms` still holds its rooms (they are left right after). */
  disconnecting: (reason: CloseReason) => void
  /**
   * The session ended here, with the reason; the socket is dead and has left every room. With
   * 'server handoff' the session did not end for the client: this node drained and another one
   * took it over (where `app.parley` fires `restored` for it).
   */
  disconnect: (reason: CloseReason) => void
  /**
   * The session's transport changed: a resume, an upgrade or a step down (`now` is the new one),
   * or the transport was lost and the session waits for a resume (`now` is null).
   */
  transport: (now: TransportName | null, before: TransportName | null) => void
}

/**
 * What the server knew about the client when it last attached (every resume updates it). It
 * reads, spreads and serialises as a plain object; `headers` and `query` are made when first
 * read (the same object on every read after), and `time` is `issued` written out.
 */
export interface Handshake {
  /**
   * Headers of the HTTP request that carried the HELLO (the upgrade or the POST); of an upgrade,
   * without those of the upgrade itself (`connection`, `upgrade`, `sec-websocket-*`), which
   * describe the transport and would otherwise be kept for the connection's life.
   */
  headers: IncomingHttpHeaders
  /** Query parameters of that request. */
  query: Record<string, string>
  /** The `auth` value of the HELLO packet. */
  auth: JsonValue | undefined
  /** The client's IP address, as Fastify sees it (honours `trustProxy`). */
  address: string
  /** When the handshake happened, as an ISO date. */
  time: string
  /** When the handshake happened, in ms since the epoch. */
  issued: number
  /** The transport that carried the HELLO. */
  transport: TransportName
  /**
   * The URL of that request as it came, path and query (`/acme/parley/ws?v=1`): under a Fastify
   * prefix, the prefix as the client wrote it.
   */
  url: string
  /**
   * The route parameters of that request, as Fastify's `request.params` gives them: under a
   * prefix with a parameter (`/:tenant`), `{ tenant: 'acme' }` at `/acme/parley`; `{}` without.
   * A session keeps the parameters it opened with: a request or resume of it under others is
   * refused (see the README, "A prefix with a parameter").
   */
  params: Record<string, string>
}
