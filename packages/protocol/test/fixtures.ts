// Wire examples shared by every codec's tests: the protocol's own, and any other implementation
// (such as the client's lean codec), which must agree with them.
import { type Packet, PacketType } from '../src/packets.js'

// The binary example of docs/protocol.md: the event `file` with `{name: "a.bin", body: <01 02 03>}`.
export const docFileEvent: Packet = {
  type: PacketType.EVENT,
  seq: 9,
  name: 'file',
  args: [{ name: 'a.bin', body: new Uint8Array([1, 2, 3]) }],
  ackId: 0,
}

// The literal examples of docs/protocol.md, each with the packet it stands for.
export const wireFixtures: Array<[string, Packet]> = [
  [
    '[0,{"sid":"V1StGXR8_Z5jdHi6B-myT","id":"Uakgb_J5m9g-0JDMbcJqL","pingInterval":20000,"pingTimeout":15000,"maxPayload":1000000,"transports":["websocket","sse","polling"],"recovered":false,"ack":0}]',
    {
      type: PacketType.OPEN,
      sid: 'V1StGXR8_Z5jdHi6B-myT',
      id: 'Uakgb_J5m9g-0JDMbcJqL',
      pingInterval: 20000,
      pingTimeout: 15000,
      maxPayload: 1000000,
      transports: ['websocket', 'sse', 'polling'],
      recovered: false,
      ack: 0,
    },
  ],
  ['[8,{"auth":{"token":"abc"}}]', { type: PacketType.HELLO, auth: { token: 'abc' } }],
  [
    '[8,{"auth":{"token":"abc"},"sid":"V1StGXR8_Z5jdHi6B-myT","ack":41}]',
    { type: PacketType.HELLO, auth: { token: 'abc' }, sid: 'V1StGXR8_Z5jdHi6B-myT', ack: 41 },
  ],
  [
    '[5,1,"chat",[{"text":"hello"}],0]',
    { type: PacketType.EVENT, seq: 1, name: 'chat', args: [{ text: 'hello' }], ackId: 0 },
  ],
  [
    '[5,2,"chat",[{"text":"hello"}],7]',
    { type: PacketType.EVENT, seq: 2, name: 'chat', args: [{ text: 'hello' }], ackId: 7 },
  ],
  ['[6,3,7,[{"ok":true}]]', { type: PacketType.REPLY, seq: 3, ackId: 7, args: [{ ok: true }] }],
  [
    '[7,4,7,"PARLEY_HANDLER_ERROR","the handler failed"]',
    { type: PacketType.ERROR, seq: 4, ackId: 7, code: 'PARLEY_HANDLER_ERROR', message: 'the handler failed' },
  ],
  [
    '[7,0,0,"AUTH_EXPIRED","token expired"]',
    { type: PacketType.ERROR, seq: 0, ackId: 0, code: 'AUTH_EXPIRED', message: 'token expired' },
  ],
  ['[5,0,"cursor",[10,20],0]', { type: PacketType.EVENT, seq: 0, name: 'cursor', args: [10, 20], ackId: 0 }],
  ['[4,41]', { type: PacketType.ACK, ack: 41 }],
  ['[2]', { type: PacketType.PING }],
  ['[3]', { type: PacketType.PONG }],
  ['[9]', { type: PacketType.MOVED }],
  [
    '[1,"server shutdown","the server is restarting",1000]',
    {
      type: PacketType.CLOSE,
      reason: 'server shutdown',
      message: 'the server is restarting',
      retryAfter: 1000,
    },
  ],
  ['[1,"client disconnect","bye"]', { type: PacketType.CLOSE, reason: 'client disconnect', message: 'bye' }],
]

/** Malformed text packets, each with the code the protocol's decoder refuses it with. */
export const malformed: Array<[string, string]> = [
  ['', 'PARLEY_INVALID_JSON'],
  ['[5,1,"chat",[{"text":"hel', 'PARLEY_INVALID_JSON'],
  ['{"type":5}', 'PARLEY_INVALID_PACKET'],
  ['[]', 'PARLEY_INVALID_PACKET'],
  ['"hello"', 'PARLEY_INVALID_PACKET'],
  ['null', 'PARLEY_INVALID_PACKET'],
  ['[42]', 'PARLEY_UNKNOWN_PACKET_TYPE'],
  ['["5",1,"chat",[],0]', 'PARLEY_UNKNOWN_PACKET_TYPE'],
  ['[2,1]', 'PARLEY_INVALID_PACKET'],
  ['[5,1,42,[],0]', 'PARLEY_INVALID_EVENT_NAME'],
  ['[5,1,"",[],0]', 'PARLEY_INVALID_EVENT_NAME'],
  ['[5,1,null,[],0]', 'PARLEY_INVALID_EVENT_NAME'],
  [`[5,1,"${'x'.repeat(257)}",[],0]`, 'PARLEY_INVALID_EVENT_NAME'],
  ['[5,1,"disconnect",[],0]', 'PARLEY_RESERVED_EVENT_NAME'],
  ['[5,1,"connect",[],0]', 'PARLEY_RESERVED_EVENT_NAME'],
  ['[5,1,"chat",{"0":1},0]', 'PARLEY_INVALID_PACKET'],
  ['[5,1,"chat",[],1.5]', 'PARLEY_INVALID_ACK_ID'],
  ['[5,1,"chat",[],-1]', 'PARLEY_INVALID_ACK_ID'],
  ['[5,1,"chat",[],9007199254740993]', 'PARLEY_INVALID_ACK_ID'],
  ['[5,1,"chat",[],"1"]', 'PARLEY_INVALID_ACK_ID'],
  ['[5,-1,"chat",[],0]', 'PARLEY_INVALID_SEQ'],
  ['[5,1e300,"chat",[],0]', 'PARLEY_INVALID_SEQ'],
  ['[5,1,"chat",[]]', 'PARLEY_INVALID_PACKET'],
  ['[5,1,"chat",[],0,[],9]', 'PARLEY_INVALID_PACKET'],
  ['[6,0,1,[]]', 'PARLEY_INVALID_SEQ'],
  ['[6,1,0,[]]', 'PARLEY_INVALID_ACK_ID'],
  ['[7,1,1,"",""]', 'PARLEY_INVALID_PACKET'],
  ['[7,1,1,"X",5]', 'PARLEY_INVALID_PACKET'],
  ['[4]', 'PARLEY_INVALID_SEQ'],
  ['[4,"3"]', 'PARLEY_INVALID_SEQ'],
  ['[1,"bored","bye"]', 'PARLEY_INVALID_PACKET'],
  ['[1,"client disconnect",7]', 'PARLEY_INVALID_PACKET'],
  ['[1,"client disconnect","bye",-5]', 'PARLEY_INVALID_PACKET'],
  ['[8,null]', 'PARLEY_INVALID_PACKET'],
  ['[8,{"sid":"../../etc"}]', 'PARLEY_INVALID_PACKET'],
  ['[8,{"sid":"abc","ack":-1}]', 'PARLEY_INVALID_SEQ'],
  ['[0,{"sid":"abc"}]', 'PARLEY_INVALID_PACKET'],
  [
    '[0,{"sid":"abc","pingInterval":1,"pingTimeout":1,"maxPayload":1,"transports":[],"recovered":false,"ack":0}]',
    'PARLEY_INVALID_PACKET',
  ],
  [
    '[0,{"sid":"abc","id":"a b","pingInterval":1,"pingTimeout":1,"maxPayload":1,"transports":[],"recovered":false,"ack":0}]',
    'PARLEY_INVALID_PACKET',
  ],
  ['[5,1,"chat",[{"__proto__":{"admin":true}}],0]', 'PARLEY_FORBIDDEN_KEY'],
  ['[5,1,"chat",[{"a":[{"constructor":{"prototype":{}}}]}],0]', 'PARLEY_FORBIDDEN_KEY'],
  ['[5,1,"chat",[{"\\u005f_proto__":1}],0]', 'PARLEY_FORBIDDEN_KEY'],
  ['[8,{"auth":{"__proto__":{"admin":true}}}]', 'PARLEY_FORBIDDEN_KEY'],
  [`[5,1,"deep",${'['.repeat(70)}${']'.repeat(70)},0]`, 'PARLEY_TOO_DEEP'],
  ['['.repeat(200_000), 'PARLEY_TOO_DEEP'],
  ['[5,1,"f",[null],0,[[[0],0,"AQ="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[null],0,[[[0],2,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[1],0,[[[0],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[null],0,[[[1],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[{"a":null}],0,[[[0,"b"],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[{"a":null}],0,[[[0,"toString"],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[null],0,[]]', 'PARLEY_INVALID_BINARY'],
  ['[5,1,"f",[null],0,[[[],0,"AQ=="]]]', 'PARLEY_INVALID_BINARY'],
]
