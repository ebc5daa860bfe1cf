// maxPayload counts the UTF-8 bytes of a packet on the wire, both ways and on every transport:
// a packet of multi-byte text (emoji, CJK) exactly at the limit goes through, one byte more is
// refused where it is made, with a code and a message in bytes, however few characters it is.
// Real client against the real server.
import { ErrorCode, type ParleyError } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { client, closeAll, next, parleyOf, type ServerSocket, startServer, until } from './helpers.js'

afterEach(closeAll)

const LIMIT = 2000
const bytesOf = (text: string) => new TextEncoder().encode(text).length

/** Multi-byte text of exactly `bytes` bytes: emoji (4 bytes each) and CJK (3), then ASCII. */
function text(bytes: number): string {
  const emoji = Math.floor(bytes / 8)
  const cjk = Math.floor((bytes - 4 * emoji) / 3)
  const made = '😀'.repeat(emoji) + '界'.repeat(cjk) + 'a'.repeat(bytes - 4 * emoji - 3 * cjk)
  expect(bytesOf(made)).toBe(bytes)
  return made
}

/** What `emit` throws, or undefined. */
function thrown(emit: () => void): ParleyError<string> | undefined {
  try {
    emit()
  } catch (error) {
    return error as ParleyError<string>
  }
  return undefined
}

/**
 * The bytes a packet adds to its text argument, as `emit` measures it: an emit far past the
 * limit throws with the packet's size and uses no sequence number.
 */
function overhead(emit: (value: string) => void): number {
  const far = text(3 * LIMIT)
  const error = thrown(() => emit(far))
  expect(error?.code).toBe(ErrorCode.PAYLOAD_TOO_LARGE)
  return (error?.details?.size as number) - bytesOf(far)
}

describe.each(['websocket', 'sse', 'polling'] as const)('maxPayload in bytes over %s', (transport) => {
  it('takes multi-byte text up to the limit both ways, and refuses one byte more at the emit', async () => {
    const heard: string[] = []
    let serverSocket: ServerSocket | undefined
    const server = await startServer(
      (app) =>
        parleyOf(app).on('connection', (socket) => {
          serverSocket = socket
          socket.on('up', (value: string) => heard.push(value))
        }),
      { maxPayload: LIMIT },
    )
    const socket = client(server.url, { transports: [transport], upgradeDelay: 60_000 })
    const down: string[] = []
    const errors: string[] = []
    socket.on('down', (value: string) => down.push(value))
    socket.on('error', (error: ParleyError<string>) => errors.push(error.code))
    await next(socket, 'connect')
    await until(() => serverSocket !== undefined, 2000, 'the server socket')
    const from = serverSocket!

    // Server to client: a packet of exactly LIMIT bytes arrives whole; one more byte is refused
    // by the server's emit. Either is far fewer characters than LIMIT.
    const serverPart = LIMIT - overhead((value) => from.emit('down', value))
    const atLimit = text(serverPart)
    expect(atLimit.length).toBeLessThan(LIMIT / 2)
    expect(thrown(() => from.emit('down', atLimit))).toBeUndefined()
    await until(() => down.length === 1, 3000, 'the packet of LIMIT bytes')
    expect(down[0] === atLimit).toBe(true)
    expect(thrown(() => from.emit('down', text(serverPart + 1)))).toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: `event "down": the packet is ${LIMIT + 1} bytes, past maxPayload (${LIMIT} bytes)`,
      details: { size: LIMIT + 1, limit: LIMIT },
    })

    // Client to server: the same, the client's emit refusing.
    const clientPart = LIMIT - overhead((value) => socket.emit('up', value))
    expect(thrown(() => socket.emit('up', text(clientPart)))).toBeUndefined()
    await until(() => heard.length === 1, 3000, 'the packet of LIMIT bytes at the server')
    expect(heard[0] === text(clientPart)).toBe(true)
    expect(thrown(() => socket.emit('up', text(clientPart + 1)))).toMatchObject({
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: `event "up": ${LIMIT + 1} bytes > maxPayload ${LIMIT}`,
    })

    // Nothing refused on the way, and the session lives on.
    socket.emit('up', 'still there')
    await until(() => heard.length === 2, 3000, 'a packet after them')
    expect([heard[1], errors, socket.connected]).toEqual(['still there', [], true])
  })
})
