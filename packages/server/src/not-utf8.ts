import { ErrorCode, ParleyError } from '@parley/protocol'

/**
 * Why bytes that are not UTF-8 are refused, on every transport: as a packet that is not JSON
 * (JSON text is UTF-8), with the same status, code and end of the session. Decoding them would
 * replace the bad bytes with U+FFFD and hand on a packet the client never sent.
 */
export function notUtf8(): ParleyError {
  return new ParleyError(ErrorCode.INVALID_JSON, 'packet is not valid JSON: its bytes are not UTF-8')
}
