/**
 * WebSocket close codes, and what each means to a Parley session.
 *
 * The rule: **a close code never ends a session.** Only a CLOSE packet does (sent before the
 * close frame when the sender can, or answering a later resume when it could not). The server's
 * own 1002, 1007 and 1009 say that it ended the session for what the client sent. A WebSocket
 * that closes with any code, or breaks without one, only detaches its transport: the session
 * waits for a resume within its recovery window, on any transport.
 *
 * The codes say why the transport went, for logs and for the peer's choice of what to do next.
 */
export const WsCloseCode = {
  /** This transport is done: after a CLOSE packet, or replaced by another transport (MOVED). */
  NORMAL: 1000,
  /** The server is going away (shutdown; a CLOSE 'server shutdown' precedes it). */
  GOING_AWAY: 1001,
  /**
   * A frame that breaks RFC 6455 (unmasked, a reserved opcode or bit, a bad close frame): the
   * server could not read it, and the session ends with 'invalid packet'.
   */
  PROTOCOL_ERROR: 1002,
  /**
   * A text frame (or a close frame's reason) that is not UTF-8: the session ends with 'invalid
   * packet' (PARLEY_INVALID_JSON), as for text that is not JSON.
   */
  INVALID_DATA: 1007,
  /** The handshake was refused; an unnumbered ERROR packet before it says why. */
  POLICY_VIOLATION: 1008,
  /** A message passed `maxPayload`; the session ends with 'payload too large'. */
  MESSAGE_TOO_BIG: 1009,
  /**
   * The client dropped a transport it can no longer trust (a gap in sequence numbers, no sign of
   * life within pingInterval + pingTimeout, a frame that is not a packet) and resumes elsewhere.
   */
  TRANSPORT_DROPPED: 4000,
} as const

export type WsCloseCode = (typeof WsCloseCode)[keyof typeof WsCloseCode]
