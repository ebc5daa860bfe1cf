// A resume (a handshake POST) of a session another node owns, on its way through this node (its
// body read, its owner being looked up) when this node closes and its forwarder with it: nothing
// goes to the owner any more, and the client is told so with the coded 503 it reads as "try again", never a
// connection cut under it (which fails its transport and has it resume at once, with no quiet
// time, as if its network had broken).
import { request as httpRequest } from 'node:http'
import { PacketType } from '@parley/protocol'
import { afterEach, expect, it, vi } from 'vitest'
import { Forwarder } from '../src/http/forward.js'
import { Directory } from './directory-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'

const PAGE = 'http://page.test'

const started: Started[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const node of started.splice(0)) await closeApp(node.app)
})

interface Answer {
  status: number
  code?: unknown
  allowOrigin?: unknown
}

it('answers 503 PARLEY_SERVER_SHUTTING_DOWN to a resume whose owner was found after the forwarder closed', async () => {
  const directory = new Directory()
  const a = await startServer({ adapter: directory.adapter('a'), allowedOrigins: [PAGE] })
  started.push(a)
  // Connections are not cut at close: the request under way is let finish (Fastify's default).
  const b = await startServer({ adapter: directory.adapter('b'), allowedOrigins: [PAGE] }, undefined, {
    forceCloseConnections: 'idle',
  })
  started.push(b)
  const opened = await fetch(`${a.base}/poll?v=1`, { method: 'POST', body: JSON.stringify([8, {}]) })
  const [, open] = JSON.parse(await opened.text()) as [number, { sid: string }]

  let closeForwarder = () => {}
  const forwarderClosed = new Promise<void>((resolve) => {
    closeForwarder = resolve
  })
  const close = Forwarder.prototype.close
  vi.spyOn(Forwarder.prototype, 'close').mockImplementation(function (this: Forwarder) {
    close.call(this)
    closeForwarder()
  })
  // The owner lookup of the resume answers once the forwarder closed (a store slow to answer).
  let lookingUp = false
  const resumeOwner = Forwarder.prototype.resumeOwner
  vi.spyOn(Forwarder.prototype, 'resumeOwner').mockImplementation(async function (this: Forwarder, ...args) {
    lookingUp = true
    const owner = await resumeOwner.apply(this, args)
    await forwarderClosed
    return owner
  })

  const resume = JSON.stringify([PacketType.HELLO, { sid: open.sid, ack: 0 }])
  const answer = new Promise<Answer>((resolve, reject) => {
    const post = httpRequest(
      `${b.base}/poll?v=1`,
      { method: 'POST', headers: { Origin: PAGE, 'content-type': 'text/plain' }, agent: false },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => {
          const body = res.headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : {}
          resolve({
            status: res.statusCode ?? 0,
            code: body.code,
            allowOrigin: res.headers['access-control-allow-origin'],
          })
        })
      },
    )
    post.on('error', reject)
    post.end(resume)
    void until(() => lookingUp, 3000, 'the owner looked up').then(() => b.app.close(), reject)
  })

  expect(await answer).toEqual({ status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN', allowOrigin: PAGE })
  // The session stays its owner's, where the client's next try finds it.
  expect(a.app.parley.sessionFor(open.sid)).toBeDefined()
})
