export { aboutEvent, eventNameAtHead, namedAfterEvent } from './about-event.js'
export type { Settle } from './acks.js'
export { AckTable, awaitedReplies, farAckId, isAckId, MAX_ACK_ID, MAX_TIMER_MS } from './acks.js'
export { fromBase64, toBase64 } from './base64.js'
export { BinaryKind, hasBinary, isBinary } from './binary.js'
export { WsCloseCode } from './close-codes.js'
export { closestName } from './closest-name.js'
export { cutText } from './cut.js'
export type { DecodeBatchResult, DecodeOptions, DecodeResult } from './decode.js'
export { checkEncoded, decodeBatch, decodeFrame, decodeLines, decodeText, isSid } from './decode.js'
export type { PreparedEvent, SplitText } from './encode.js'
export { encodeFrame, encodeText, encodeTextTelling, prepareEvent } from './encode.js'
export { CloseReason, ErrorCode, isBusyCode, isCloseReason, ParleyError } from './errors.js'
export type {
  AckReply,
  ArgsWithoutAck,
  BroadcastAckCallback,
  BroadcastArgs,
  DefaultEventsMap,
  EmitArgs,
  ErrorOnlyArgs,
  EventNames,
  EventsMap,
  TimedAck,
  TimedArgs,
  TimeoutAckCallback,
} from './event-map.js'
export { checkEventName, isForbiddenKey } from './event-name.js'
export type {
  AckPacket,
  ClosePacket,
  ErrorPacket,
  EventPacket,
  HelloPacket,
  JsonValue,
  MovedPacket,
  NumberedPacket,
  OpenPacket,
  Packet,
  PingPacket,
  PongPacket,
  ReplyPacket,
  TransportName,
  WireValue,
} from './packets.js'
export {
  isNumbered,
  isTransportName,
  PacketType,
  PROTOCOL_VERSION,
  RESERVED_EVENTS,
  TRANSPORTS,
  WireLimits,
  WS_SUBPROTOCOL,
} from './packets.js'
export type {
  EventsFromSchemas,
  SchemaType,
  TypedArgumentsSchema,
  TypedSchema,
} from './schema-events.js'
export type { ArrayPacketType, CheckedFields, Field, FieldCheck } from './shapes.js'
export {
  ARGS,
  arityCode,
  BINS,
  HELLO_FIELDS,
  isCount,
  isPositive,
  isWireCode,
  OPEN_FIELDS,
  PACKET_BUILDERS,
  PACKET_SHAPES,
} from './shapes.js'
