// Every kind of request the endpoints take, sent to an open server and to one whose app.close()
// has begun, one table: the closing server's answer (status, code, CORS) and what becomes of the
// session the request names are the open server's, or what docs/protocol.md says a closing server
// answers instead (HTTP errors: from the first moment of Parley's close, the drain included, the
// endpoints are answered before Fastify sees them). Sent directly, and through another node that
// routes each request for the session to its owner.
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeText, PacketType } from '@parley/protocol'
import parley from '@parley/server'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Cluster } from './cluster-adapter.js'
import { closeApp, type Started, startServer, until } from './helpers.js'
import { RawHttp } from './raw-http.js'
import { rawUpgradeHead } from './raw-websocket.js'

const PAGE = 'http://page.test'
const ELSEWHERE = 'http://elsewhere.test'
const MAX_PAYLOAD = 4096
const UNKNOWN_SID = 'nosuchsessionatall000'

const apps: FastifyInstance[] = []
const connections: RawHttp[] = []
/** Lets the owners' closes go on: the open pair's too, which the test never closes itself. */
const releases: (() => void)[] = []
afterEach(async () => {
  for (const release of releases.splice(0)) release()
  for (const connection of connections.splice(0)) connection.destroy()
  for (const app of apps.splice(0)) await closeApp(app)
})

/** What a client can tell of an answer, and what became of the session the request named. */
interface Seen {
  case: string
  status: number
  code: unknown
  allowOrigin: unknown
  /** 'alive', or the reason the session ended with; undefined when the request named none. */
  session?: string
}

type Endpoint = 'poll' | 'sse'

/** What a case sends: an HTTP request, or a WebSocket upgrade (over a bare connection). */
interface Sent {
  path: string
  method?: string
  headers?: Record<string, string>
  body?: string
  upgrade?: true
  /** Headers of a well-formed upgrade left out of it. */
  without?: string[]
}

interface Case {
  name: string
  /** The endpoint of a session opened for the case (by its handshake POST alone), whose sid it names. */
  session?: Endpoint
  /** Also sent through the other node, which routes it to the session's owner. */
  routed?: true
  send: (sid: string) => Sent
  /** What a closing server answers instead, as docs/protocol.md says (status and code). */
  closing?: Partial<Seen>
}

const page = { Origin: PAGE }
const tooLarge = { ...page, 'Content-Length': String(MAX_PAYLOAD + 1) }
const SHUTTING_DOWN = { status: 503, code: 'PARLEY_SERVER_SHUTTING_DOWN' }

const CASES: Case[] = [
  // Judged by the request's line and headers: the same at any time.
  {
    name: 'a preflight',
    send: () => ({
      path: 'poll?v=1',
      method: 'OPTIONS',
      headers: { ...page, 'Access-Control-Request-Method': 'POST' },
    }),
  },
  {
    name: 'a preflight from a page not allowed',
    send: () => ({ path: 'poll?v=1', method: 'OPTIONS', headers: { Origin: ELSEWHERE } }),
  },
  { name: 'a method /poll does not serve', send: () => ({ path: 'poll?v=1', method: 'PUT', headers: page }) },
  { name: 'a method /ws does not serve', send: () => ({ path: 'ws?v=1', method: 'DELETE', headers: page }) },
  { name: 'another protocol version', send: () => ({ path: `sse?v=2&sid=${UNKNOWN_SID}`, headers: page }) },
  {
    name: 'a page not allowed',
    send: () => ({ path: `poll?v=1&sid=${UNKNOWN_SID}`, headers: { Origin: ELSEWHERE } }),
  },
  { name: 'a GET without sid', send: () => ({ path: 'poll?v=1', headers: page }) },
  {
    name: 'sid given twice',
    send: () => ({ path: 'poll?v=1&sid=a&sid=b', method: 'POST', headers: page, body: '[3]' }),
  },
  { name: 'an upgrade on /poll', send: () => ({ path: 'poll?v=1', headers: page, upgrade: true }) },
  { name: 'an upgrade on /sse', send: () => ({ path: 'sse?v=1', headers: page, upgrade: true }) },
  { name: 'an upgrade of another version', send: () => ({ path: 'ws?v=2', headers: page, upgrade: true }) },
  {
    name: 'an upgrade from a page not allowed',
    send: () => ({ path: 'ws?v=1', headers: { Origin: ELSEWHERE }, upgrade: true }),
  },
  {
    name: 'an upgrade without Sec-WebSocket-Key',
    send: () => ({ path: 'ws?v=1', headers: page, upgrade: true, without: ['Sec-WebSocket-Key'] }),
  },
  {
    name: 'an upgrade of a WebSocket version the server does not speak',
    send: () => ({
      path: 'ws?v=1',
      headers: { ...page, 'Sec-WebSocket-Version': '12' },
      upgrade: true,
      without: ['Sec-WebSocket-Version'],
    }),
  },
  {
    name: 'an upgrade that does not offer the subprotocol',
    send: () => ({ path: 'ws?v=1', headers: page, upgrade: true, without: ['Sec-WebSocket-Protocol'] }),
  },
  {
    name: 'an upgrade whose extensions ws refuses',
    send: () => ({
      path: 'ws?v=1',
      headers: { ...page, 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=99' },
      upgrade: true,
    }),
  },
  { name: 'a GET on /ws without an upgrade', send: () => ({ path: 'ws?v=1', headers: page }) },
  // Taken while the server drains, as by the route: only its HELLO tells a resume the server
  // relays to another node from a new session it refuses (websocket-across-close.test.ts).
  { name: 'an upgrade', send: () => ({ path: 'ws?v=1', headers: page, upgrade: true }) },
  // Bodies past maxPayload, judged by their head alone (their session's fate too).
  {
    name: 'a handshake past maxPayload',
    send: () => ({ path: 'poll?v=1', method: 'POST', headers: tooLarge }),
  },
  {
    name: 'a POST past maxPayload for an unknown session',
    send: () => ({ path: `poll?v=1&sid=${UNKNOWN_SID}`, method: 'POST', headers: tooLarge }),
  },
  ...(['poll', 'sse'] as const).flatMap((endpoint): Case[] => [
    {
      name: `a POST past maxPayload of the session's transport (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, method: 'POST', headers: tooLarge }),
    },
    {
      name: `a POST past maxPayload of a transport the session is not on (/${endpoint})`,
      session: endpoint === 'poll' ? 'sse' : 'poll',
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, method: 'POST', headers: tooLarge }),
    },
  ]),
  // A live session's requests on its own transport: its GET served as by the route (its stream,
  // its held poll, which carry the session's CLOSE when it comes), its ack taken, or refused; its
  // POST read and its packets used, a body that does not decode ending the session, a goodbye
  // ending it with 'client disconnect'.
  ...(['poll', 'sse'] as const).flatMap((endpoint): Case[] => [
    {
      name: `the session's POST (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, method: 'POST', headers: page, body: '[3]' }),
    },
    {
      name: `a POST that does not decode (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, method: 'POST', headers: page, body: '[3' }),
    },
    {
      name: `the client's goodbye (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({
        path: `${endpoint}?v=1&sid=${sid}`,
        method: 'POST',
        headers: page,
        body: '[1,"client disconnect",""]',
      }),
    },
    {
      name: `the session's GET (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, headers: page }),
    },
    {
      name: `a GET whose ack is no number (/${endpoint})`,
      session: endpoint,
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}&ack=x`, headers: page }),
    },
  ]),
  // A relayed client's late goodbye (see relayed-goodbye.ts) of a session here on another
  // transport: the node that relayed its WebSocket closed the relay, crossing the goodbye. It ends
  // the session with 'client disconnect' whatever transport that is on. (Through another node it
  // would lose its mark: no such case.)
  {
    name: "a relayed client's goodbye of a session on another transport",
    session: 'sse',
    send: (sid) => ({
      path: `poll?v=1&sid=${sid}`,
      method: 'POST',
      headers: { ...page, 'x-parley-routed': 'goodbye' },
      body: '[1,"client disconnect",""]',
    }),
  },
  // What a closing server no longer serves: a coded 503, "try again" (another server, or the
  // same later), and the session stays as it was for the drain to hand it off.
  {
    name: 'a handshake',
    send: () => ({ path: 'poll?v=1', method: 'POST', headers: page, body: '[8,{}]' }),
    closing: SHUTTING_DOWN,
  },
  {
    name: 'a handshake whose body is no HELLO',
    send: () => ({ path: 'sse?v=1', method: 'POST', headers: page, body: '[3]' }),
    closing: SHUTTING_DOWN,
  },
  {
    name: 'a resume',
    session: 'poll',
    send: (sid) => ({
      path: 'poll?v=1',
      method: 'POST',
      headers: page,
      body: JSON.stringify([8, { sid, ack: 0 }]),
    }),
    closing: SHUTTING_DOWN,
  },
  {
    name: 'a GET for an unknown session',
    send: () => ({ path: `sse?v=1&sid=${UNKNOWN_SID}`, headers: page }),
    closing: SHUTTING_DOWN,
  },
  {
    name: 'a POST for an unknown session',
    send: () => ({ path: `poll?v=1&sid=${UNKNOWN_SID}`, method: 'POST', headers: page, body: '[3]' }),
    closing: SHUTTING_DOWN,
  },
  ...(['poll', 'sse'] as const).flatMap((endpoint): Case[] => [
    {
      name: `a POST of a transport the session is not on (/${endpoint})`,
      session: endpoint === 'poll' ? 'sse' : 'poll',
      routed: true,
      send: (sid) => ({ path: `${endpoint}?v=1&sid=${sid}`, method: 'POST', headers: page, body: '[3]' }),
      closing: SHUTTING_DOWN,
    },
  ]),
]

/** One request on a connection of its own: what its answer's head says, and its code. */
function exchange(url: string, { method = 'GET', headers = {}, body = '' }: Sent): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const seen = (code: unknown): Seen => ({
        case: '',
        status: res.statusCode ?? 0,
        code,
        allowOrigin: res.headers['access-control-allow-origin'],
      })
      // A stream, or a held poll's answer: its head says enough.
      if (!res.headers['content-type']?.startsWith('application/json')) {
        res.destroy()
        resolve(seen(undefined))
        return
      }
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve(seen((JSON.parse(text) as { code?: unknown }).code)))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function upgrade(port: number, { path, headers = {}, without = [] }: Sent): Promise<Seen> {
  const connection = await RawHttp.open(port)
  connections.push(connection)
  // The well-formed head, less `without`, then `headers` (before the blank line that ends it).
  const kept = rawUpgradeHead(`/parley/${path}`)
    .split('\r\n')
    .filter((line) => !without.some((name) => line.startsWith(`${name}:`)))
  const added = Object.entries(headers).map(([name, value]) => `${name}: ${value}`)
  connection.write([...kept.slice(0, -2), ...added, '', ''].join('\r\n'))
  const answer = await connection.answer()
  connection.destroy()
  const json = answer.headers['content-type']?.startsWith('application/json')
  const code = json ? (JSON.parse(answer.body) as { code?: unknown }).code : undefined
  return { case: '', status: answer.status, code, allowOrigin: answer.headers['access-control-allow-origin'] }
}

/**
 * A session opened by its handshake POST alone on `endpoint` (no GET of its client waits yet):
 * its sid, and its socket's id.
 */
async function sessionOn(base: string, endpoint: Endpoint): Promise<{ sid: string; id: string }> {
  const res = await fetch(`${base}/${endpoint}?v=1`, { method: 'POST', body: '[8,{}]' })
  const decoded = decodeText(await res.text())
  if (!decoded.ok || decoded.packet.type !== PacketType.OPEN) throw new Error('no OPEN')
  return { sid: decoded.packet.sid, id: decoded.packet.id }
}

/**
 * How the owner closes: `drain`, with handoff, its sessions stored one at a time by a store slow
 * to answer (the requests come while the first waits, the others still live), the other node
 * reaching it over the network; `held`, without handoff, its close held by a hook of the
 * application's (added before the plugin: Fastify refuses every request and inject, while the
 * sessions are all live, and Parley answers its endpoints in Fastify's place from the close's first
 * moment), the other node reaching it through the adapter (`routeRequest`).
 */
type Mode = 'drain' | 'held'

/** A node that owns the sessions and one that routes requests for them to it. */
interface Pair {
  owner: Started
  router: Started
  cluster: Cluster
  /** The reason each of the owner's sessions ended with, by socket id. */
  ended: Map<string, string>
  /** Begins the owner's close; resolves once it is under way. `finish` lets it end. */
  close(): Promise<{ finish(): Promise<void> }>
}

async function pair(mode: Mode): Promise<Pair> {
  const cluster = new Cluster({ handoff: mode === 'drain' })
  const ended = new Map<string, string>()
  // With permessage-deflate, ws reads an upgrade's extensions too.
  const options = { allowedOrigins: [PAGE], maxPayload: MAX_PAYLOAD, perMessageDeflate: true }
  const app = Fastify({ forceCloseConnections: true })
  apps.push(app)
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  releases.push(release)
  // A store that holds its answer (drain), or a hook that holds the close (held), until released.
  if (mode === 'drain') cluster.storeAnswersAfter = released
  let entered = false
  app.addHook('preClose', async () => {
    entered = true
    if (mode === 'held') await released
  })
  await app.register(parley, {
    ...options,
    adapter: cluster.adapter('owner'),
    ...(mode === 'drain' && { handoff: { timeout: 5000, batchSize: 1 } }),
  })
  app.parley.on('connection', (socket) => {
    // Something to answer the first GET with at once.
    socket.emit('welcome')
    socket.on('disconnect', (reason) => ended.set(socket.id, reason))
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const owner = { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/parley` }
  // The first session, which the drain stores first (and holds there).
  await sessionOn(owner.base, 'poll')
  const router = await startServer({ ...options, adapter: cluster.adapter('router') })
  apps.push(router.app)
  const close = async () => {
    const closing = app.close()
    if (mode === 'drain')
      await until(() => cluster.handOffSids.length === 1, 2000, 'the drain storing the first session')
    else await until(() => entered, 2000, "the application's close hook")
    return {
      finish: async () => {
        // The sessions still live are the test's alone: ended, the drain has none left to store.
        for (const socket of [...app.parley.sockets.values()]) socket.disconnect()
        release()
        await closing
      },
    }
  }
  return { owner, router, cluster, ended, close }
}

/** One send of a case: the case, and whether it goes through the router. */
interface Send {
  test: Case
  routed: boolean
  /** The case's session, if it has one. */
  session?: { sid: string; id: string }
}

/**
 * Opens each case's session on the owner; the sends, in the table's order: each case directly, and
 * those marked `routed` through the other node too. While an application's hook holds the close
 * (`held`), the endpoints' answers are Parley's already, before Fastify's bare 503.
 */
async function prepare({ owner }: Pair): Promise<Send[]> {
  const sends: Send[] = []
  for (const test of CASES) {
    const routes = test.routed ? [false, true] : [false]
    for (const routed of routes) {
      const session = test.session ? await sessionOn(owner.base, test.session) : undefined
      sends.push({ test, routed, ...(session && { session }) })
    }
  }
  return sends
}

async function run({ owner, router, ended }: Pair, sends: Send[]): Promise<Seen[]> {
  const seen: Seen[] = []
  for (const { test, routed, session } of sends) {
    const base = routed ? router.base : owner.base
    const sent = test.send(session?.sid ?? '')
    const answer = sent.upgrade
      ? await upgrade(Number(new URL(base).port), sent)
      : await exchange(`${base}/${sent.path}`, sent)
    const name = `${test.name}${routed ? ', routed' : ''}`
    const fate = session && (owner.app.parley.sessionFor(session.sid) ? 'alive' : ended.get(session.id))
    seen.push({ ...answer, case: name, ...(session && { session: fate }) })
  }
  return seen
}

describe.each(['drain', 'held'] as const)(
  'what a closing server answers (%s), request by request',
  (mode) => {
    it('is what an open one answers, or the closing answer docs/protocol.md gives', async () => {
      const open = await pair(mode)
      const opened = await run(open, await prepare(open))
      // The table's cases as an open server answers them: reached, coded where they fail.
      expect(opened.find((seen) => seen.case === 'an upgrade')?.status).toBe(101)
      const fate = (name: string) => opened.find((seen) => seen.case === name)?.session
      expect(fate("the client's goodbye (/poll), routed")).toBe('client disconnect')
      expect(fate("a POST past maxPayload of the session's transport (/sse), routed")).toBe(
        'payload too large',
      )

      const closing = await pair(mode)
      const sends = await prepare(closing)
      const { finish } = await closing.close()
      try {
        const answers = await run(closing, sends)
        expect(answers).toEqual(opened.map((seen, i) => ({ ...seen, ...sends[i]!.test.closing })))
        expect(closing.owner.app.parley.closed).toBe(false)
      } finally {
        await finish()
      }
    })
  },
)
