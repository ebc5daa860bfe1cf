export { toBase64, fromBase64 } from './base64.js'
export { BinaryKind, hasBinary, isBinary } from './binary.js'
export { decodeBatch, decodeFrame, decodeText, isSid } from './decode.js'
export type { DecodeBatchResult, DecodeOptions, DecodeResult } from './decode.js'
export { encodeFrame, encodeText } from './encode.js'
export { CloseReason, ErrorCode, ParleyError, isCloseReason } from './errors.js'
export {
  PROTOCOL_VERSION,
  PacketType,
  RESERVED_EVENTS,
  TRANSPORTS,
  WS_SUBPROTOCOL,
  WireLimits,
  isNumbered,
  isTransportName,
} from './packets.js'
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
