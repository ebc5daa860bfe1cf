import { parleyPlugin } from './plugin.js'

// What applications need of the wire, so that nobody depends on @parley/protocol directly.
export type {
  AckReply,
  ArgsWithoutAck,
  BroadcastAckCallback,
  BroadcastArgs,
  ClosePacket,
  DefaultEventsMap,
  EmitArgs,
  ErrorOnlyArgs,
  ErrorPacket,
  EventNames,
  EventsFromSchemas,
  EventsMap,
  JsonValue,
  PreparedEvent,
  ReplyPacket,
  SchemaType,
  Settle,
  SplitText,
  TimedAck,
  TimedArgs,
  TimeoutAckCallback,
  TransportName,
  TypedArgumentsSchema,
  TypedSchema,
  WireValue,
} from '@parley/protocol'
export { CloseReason, ErrorCode, ParleyError, WsCloseCode } from '@parley/protocol'
export type {
  Adapter,
  AdapterFactory,
  BroadcastMessage,
  BroadcastOptions,
  BroadcastReply,
  EndedSession,
  LocalSocket,
  LocalSockets,
  NodeAddress,
  Room,
  RoutedRequest,
  RoutedResponse,
  SessionOwnerAnswer,
  SocketDescription,
} from './adapter/adapter.js'
export type {
  Adoption,
  AdoptionAsk,
  ClaimAnswer,
  ClaimMissed,
  ClaimStanding,
  HandOffTail,
  SessionClaim,
  SessionSnapshot,
} from './adapter/handoff.js'
export { MemoryAdapter } from './adapter/memory.js'
export { argumentError } from './argument-error.js'
export { BroadcastOperator, MAX_ROOM_NAME_LENGTH } from './broadcast.js'
export { MAX_ENDED_SESSIONS } from './ended-sessions.js'
export { ExpiringSet } from './expiring-set.js'
export type { HandshakeRequest } from './handshake.js'
export type { Middleware } from './handshake-middleware.js'
export type {
  EventMiddleware,
  EventRefusal,
  IncomingEvent,
  NextFunction,
} from './incoming.js'
export type {
  AllowedOrigins,
  CertificateAuthority,
  LogLevel,
  MetricsRegistry,
  ParleyServerOptions,
  ResolvedOptions,
} from './options.js'
export { defaults, ParleyOptionError } from './options.js'
export type { Refusal } from './refusals.js'
export { ParleyServer } from './server.js'
export type { SocketEmitter, TimeoutEmitter } from './socket.js'
export { ServerSocket } from './socket.js'
export type { Handshake, SocketReservedEvents } from './types.js'
export type { EventSchema, EventSchemas } from './validation.js'
export { parleyPlugin }
export default parleyPlugin
