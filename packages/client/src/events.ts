import type { CloseReason, ParleyError, TransportName } from '@parley/protocol'

/** Why a transport was attached: first or new connection, climbing back, stepping down, resuming. */
export type SwitchReason = 'connect' | 'upgrade' | 'downgrade' | 'resume'

/** Events of the socket itself; they can never come from the server (their names are reserved). */
export interface ReservedEvents {
  /** Connected: first time, or again after a `disconnect`. Check `socket.recovered`. */
  connect: () => void
  /** The connection ended (the session may still resume: then `connect` comes with `recovered`). */
  disconnect: (reason: CloseReason, details?: { message: string }) => void
  /**
   * A connection attempt failed, or a transport was lost in a way that makes the client wait
   * before it tries again (the server did not know the session, ...); `error.code` says why, and
   * may be the server's refusal code. `willRetry` says whether the client goes on by itself
   * (false after a refusal, with `reconnection: false`, or when `reconnectionAttempts` ran out:
   * then call `connect()` to try again).
   */
  connect_error: (error: ParleyError<string>, willRetry: boolean) => void
  /**
   * One transport could not be opened (refused, reset, timed out, or opened but silent), or was
   * lost once attached, however long it had been up (closed, ended, a request failed or timed
   * out, the heartbeat timed out, a sequence gap); the client goes on with the next one, or
   * resumes (when it cannot, `disconnect` follows). Says why a session ended up on SSE or
   * polling, and why it resumed: once per loss, before the `transport` event of the resume or
   * the `disconnect` of a session that cannot resume; never for a switch of the client's own
   * (upgrade, probe), a CLOSE, or `disconnect()`.
   */
  transport_error: (transport: TransportName, error: ParleyError<string>) => void
  /**
   * The session moved to another transport without the application losing anything: `downgrade`
   * whenever a resume lands after `before` in `transports` (a loss, a handoff, a probe lost), and
   * `resume` when it lands on `before` or a better one: `upgrade` is only the client's own probe,
   * which nothing forced. (An attach for `connect` fires `connect`: the session was down then.)
   */
  transport: (now: TransportName, before: TransportName, why: Exclude<SwitchReason, 'connect'>) => void
  /** A reconnection attempt (1, 2, ...) starts. */
  reconnect_attempt: (attempt: number) => void
  /** Connected again after `attempt` failed attempts. */
  reconnect: (attempt: number) => void
  /** `reconnectionAttempts` ran out; call `connect()` to try again. */
  reconnect_failed: () => void
  /**
   * An error that answers no request of ours: an ERROR from the server with ackId 0, or a packet
   * from the server that this client refused (its code says why; `details.seq` is its number).
   * A refused numbered packet is acknowledged and dropped, never delivered, never asked for again.
   * Or a message emitted before the first OPEN turned out larger than the server's maxPayload
   * and was not sent (PARLEY_PAYLOAD_TOO_LARGE; its reply, if it wanted one, rejects with it).
   * Or the `auth` function failed an upgrade probe (PARLEY_REFUSED, or PARLEY_HANDSHAKE_TIMEOUT
   * when it never settled): the session goes on, on its transport. Or the client's answer to a
   * server's request (PARLEY_NO_HANDLER, PARLEY_HANDLER_ERROR) could not be sent: its code says
   * why (PARLEY_PAYLOAD_TOO_LARGE); it is dropped, and the server's wait ends with its timeout.
   * (One that finds the queue full is dropped unheard: a failing listener may have filled it.)
   */
  error: (error: ParleyError<string>) => void
}
