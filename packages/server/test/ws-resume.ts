// A resume over a bare WebSocket whose HELLO the server has read: for tests that line up two
// resumes of one session.
import { decodeText, type Packet } from '@parley/protocol'
import WebSocket from 'ws'
import { until, within } from './helpers.js'

/**
 * A resume of `sid` over a bare WebSocket, its HELLO taken by the server when this resolves:
 * ws answers a ping after the frames before it, and the server handles a HELLO as it reads it
 * (up to the first await), so the pong says the HELLO is in.
 */
export async function resumeOverWebSocket(base: string, sid: string, name: string) {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?v=1`, 'parley.v1')
  ws.on('error', () => {})
  const answers: Packet[] = []
  ws.on('message', (data: Buffer) => {
    const decoded = decodeText(data.toString())
    if (decoded.ok) answers.push(decoded.packet)
  })
  await within(new Promise((resolve) => ws.once('open', resolve)), 5000, 'the WebSocket to open')
  ws.send(JSON.stringify([8, { auth: { name }, sid, ack: 0 }]))
  const ponged = new Promise((resolve) => ws.once('pong', resolve))
  ws.ping()
  await within(ponged, 5000, 'the pong: the server read the HELLO before it')
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  return {
    /** The first packet the server answers the HELLO with: OPEN, ERROR or CLOSE (its type). */
    answer: () => until(() => answers.length > 0).then(() => answers[0]!),
    close: () => {
      ws.terminate()
      return within(closed, 5000, 'the terminated WebSocket to close')
    },
  }
}
