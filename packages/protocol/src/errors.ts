// The names of the codes of `ErrorCode`, grouped by where they arise.
const CODE_NAMES = [
  // Decoding: the packet itself is wrong.
  'INVALID_PACKET',
  'INVALID_JSON',
  'UNKNOWN_PACKET_TYPE',
  'INVALID_EVENT_NAME',
  'RESERVED_EVENT_NAME',
  'INVALID_ACK_ID',
  'INVALID_SEQ',
  'FORBIDDEN_KEY',
  'INVALID_BINARY',
  'TOO_DEEP',
  'PAYLOAD_TOO_LARGE',
  // Encoding: the application handed over something that cannot travel.
  'UNSERIALIZABLE',
  // Handshake and HTTP requests.
  'UNSUPPORTED_VERSION',
  'UNKNOWN_SESSION',
  'UNKNOWN_TRANSPORT',
  'TRANSPORT_DISABLED',
  'TRANSPORT_MISMATCH',
  'ORIGIN_FORBIDDEN',
  'METHOD_NOT_ALLOWED',
  'UNEXPECTED_UPGRADE',
  'REQUEST_IN_PROGRESS',
  'HANDSHAKE_TIMEOUT',
  'BAD_REQUEST',
  'REFUSED',
  'SERVER_SHUTTING_DOWN',
  // The server holds as many sessions as it may (its maxSessions): a new one is refused for now.
  'SERVER_FULL',
  // Acknowledgements and delivery.
  'ACK_TIMEOUT',
  'TOO_MANY_PENDING_ACKS',
  'DISCONNECTED',
  'HANDLER_ERROR',
  // The session moved to another node (a drain with handoff) before a reply could be made.
  'SESSION_MOVED',
  // An event that wants a reply reached a side with no handler for it.
  'NO_HANDLER',
  // An event's arguments did not match the schema the server declared for it.
  'VALIDATION_FAILED',
  // Local to a client: the transport could not be opened or broke; the offline queue is full;
  // nothing answers at the URL (HTTP 404 without a code of Parley's: a wrong URL or path).
  'TRANSPORT_ERROR',
  'QUEUE_FULL',
  'NOT_FOUND',
] as const

/**
 * Every error code that can cross the wire, in one table: `ErrorCode.INVALID_PACKET` is
 * `'PARLEY_INVALID_PACKET'`, and so on. Codes are stable: clients in any language may branch on
 * them. `docs/protocol.md` explains each one, `docs/errors.md` what to do about it. (Built from
 * the list of names, which keeps the browser bundle small; the type spells out every code all
 * the same.)
 *
 * ```ts
 * socket.on('connect_error', (error) => {
 *   if (error.code === ErrorCode.ORIGIN_FORBIDDEN) showHelp('this page may not connect')
 * })
 * ```
 */
export const ErrorCode = Object.freeze(
  Object.fromEntries(CODE_NAMES.map((name) => [name, `PARLEY_${name}`])),
) as { readonly [N in (typeof CODE_NAMES)[number]]: `PARLEY_${N}` }

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/**
 * True for the codes of a node that turns a session away for now (full, or shutting down), not
 * the client: in an ERROR, a 503 or even a 403, the client tries again after its backoff, and the
 * server answers a middleware's refusal with one of them as 503. One rule for both ends.
 *
 * ```ts
 * socket.on('connect_error', (error) => {
 *   if (isBusyCode(error.code)) showBanner('busy, trying again')
 * })
 * ```
 */
export const isBusyCode = (code: unknown): boolean =>
  code === ErrorCode.SERVER_FULL || code === ErrorCode.SERVER_SHUTTING_DOWN

/**
 * An error with a stable `code`; what every Parley package throws or rejects with.
 * `C` is the codes it may carry. Left out, it is any code, Parley's own offered first: an error a
 * socket hands out may carry the application's (a middleware's refusal, an ERROR packet with a
 * code of its own), so a listener typed `(error: ParleyError) => ...` must take those too.
 *
 * ```ts
 * try {
 *   await socket.timeout(5000).emitWithAck('save', doc)
 * } catch (error) {
 *   if (error instanceof ParleyError && error.code === ErrorCode.ACK_TIMEOUT) retryLater()
 * }
 * ```
 */
export class ParleyError<C extends string = ErrorCode | (string & {})> extends Error {
  override readonly name = 'ParleyError'
  // `declare`: the constructor sets them, with no field declaration before it (fewer bytes).
  declare readonly code: C
  /** Extra facts for the caller: the HTTP status, the limit that was passed, ... */
  declare readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: C, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    // Error reads `cause` from the options (only when the key is there) and ignores `details`.
    super(message, options)
    this.code = code
    this.details = options?.details
  }

  /**
   * `error instanceof ParleyError` holds for an error of any copy of this package: two installs
   * in one app (a server patched, an adapter on the release before), or in one page (the script
   * tag beside a bundled copy, two versions of the client) each have their class, and the
   * prototype chain alone would tell one's errors from the other's. Every copy's prototype
   * carries the brand, under a symbol of the global registry (the same in every copy and every
   * frame): not enumerated, serialised, or copied by a spread. A subclass tests as classes do.
   * In the browser builds too, since a page may hold two copies (about 65 bytes after gzip).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this`: the class on the right of `instanceof`, this one or a subclass; `super`: the
    // prototype-chain test every other class has.
    // biome-ignore lint/complexity/noThisInStatic: the class named by `instanceof` is what is tested
    return this === ParleyError ? !!(value as Branded)?.[BRAND] : super[Symbol.hasInstance](value)
  }
}

/** The same symbol in every copy of this package: the global registry's. */
const BRAND = Symbol.for('parley.error')

/** What carries the brand: the prototype of every copy's ParleyError. */
type Branded = { [BRAND]?: true } | null | undefined

// On the prototype, not in the class body: a member there would be part of the class's type.
;(ParleyError.prototype as Branded & object)[BRAND] = true

// The reasons of `CloseReason`, each with what it means.
const CLOSE_REASONS = [
  /** The client called `disconnect()`. */
  'client disconnect',
  /** The server called `socket.disconnect()`. */
  'server disconnect',
  /** The server is shutting down; the client should reconnect (to it or another node). */
  'server shutdown',
  /**
   * The server is draining and handed the session to the cluster: it did not end. The client
   * keeps it and resumes (HELLO with its sid) after `retryAfter`, through any node.
   */
  'server handoff',
  /** No packet arrived within the heartbeat window. */
  'ping timeout',
  /** The transport closed and no other took over within the recovery window. */
  'transport close',
  /** The peer sent a packet that does not decode. */
  'invalid packet',
  /** The peer sent a packet larger than `maxPayload`. */
  'payload too large',
  /** The peer does not read fast enough and its outgoing buffer passed the hard limit. */
  'slow consumer',
  /** The client asked to resume a session the server no longer has. */
  'session expired',
] as const

/** `'payload too large'` -> `'PAYLOAD_TOO_LARGE'`. */
type ReasonKey<S extends string> = S extends `${infer Word} ${infer Rest}`
  ? `${Uppercase<Word>}_${ReasonKey<Rest>}`
  : Uppercase<S>

/**
 * Why a session ended. A closed union: the CLOSE packet carries one of these, the server's and
 * the client's `disconnect` events report one of these, and nothing else. The table's keys are
 * the reasons in capitals (`CloseReason.PING_TIMEOUT` is `'ping timeout'`); built from the list,
 * which keeps the browser bundle small, like `ErrorCode`. `docs/errors.md` says what to do
 * about each.
 *
 * ```ts
 * socket.on('disconnect', (reason) => {
 *   if (reason === CloseReason.SERVER_DISCONNECT) showLogin() // the client does not come back by itself
 * })
 * ```
 */
// PURE: a bundle that never reads the table (the client's own code does not) can leave it out.
export const CloseReason = /* @__PURE__ */ Object.freeze(
  /* @__PURE__ */ Object.fromEntries(
    /* @__PURE__ */ CLOSE_REASONS.map((reason) => [reason.toUpperCase().replace(/ /g, '_'), reason]),
  ),
) as { readonly [R in (typeof CLOSE_REASONS)[number] as ReasonKey<R>]: R }

export type CloseReason = (typeof CLOSE_REASONS)[number]

/**
 * True for one of the reasons of `CloseReason`: a check for a reason read from the wire. An arrow:
 * the client's bundle writes it in fewer bytes than a function declaration.
 */
export const isCloseReason = (value: unknown): value is CloseReason =>
  (CLOSE_REASONS as readonly unknown[]).includes(value)
