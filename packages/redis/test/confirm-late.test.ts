// A claim whose confirm could not be sent (its node's queue full, MAX_QUEUED_COMMANDS waiting) is
// confirmed late, sent again until Redis takes it (see `Claims.#confirmLate` in src/claim.ts):
// how often it is tried while its node stays busy, and what the client's next try finds once
// the answer says the old node ended the session, or kept it. Over a real Redis; the nodes are
// real adapters over fake sockets (see handoff-support.ts), since a real server cannot be held
// at the moment between its read of the tail and its confirm.
import { createHash } from 'node:crypto'
import { type ClosePacket, PacketType } from '@parley/protocol'
import type { EndedSession, SessionClaim } from '@parley/server'
import { afterEach, describe, expect, it, type MockInstance, vi } from 'vitest'
import { skipRedisSuites } from '../../../test/support/redis-server.js'
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js'
import { sleep, until, within } from '../../server/test/helpers.js'
import { stepWallClock } from '../../server/test/wall-clock.js'
import { HandOffStore } from '../src/handoff.js'
import { queueFullOn } from './burst.js'
import { claimedBeforeTakeBack, handOff, open, takeOver, watchSealWaits } from './handoff-steps.js'
import { type FakeCluster, type FakeNode, fakeClusterSuite, won } from './handoff-support.js'

/** How a session ended on its old node, as its server records it. */
const close: ClosePacket = { type: PacketType.CLOSE, reason: 'server disconnect', message: 'bye' }
const ENDING: EndedSession = { close, ack: 3 }
/** The server's recovery window: how long an ended session's record is kept. */
const ENDED_TTL = 120_000

/**
 * How long the claimer is held busy while its confirm waits: well below its requestTimeout (5 s),
 * so that none of its held commands goes overdue, and the confirm is refused as busy throughout.
 */
const BUSY_MS = 1500

describe.skipIf(skipRedisSuites())('a claim confirmed late', () => {
  const suite = fakeClusterSuite()
  const proxies: TcpProxy[] = []
  afterEach(async () => {
    vi.restoreAllMocks()
    for (const proxy of proxies.splice(0)) await proxy.close()
  })

  const keyOf = (cluster: FakeCluster, kind: 'session' | 'handoff', sid: string) =>
    `${cluster.prefix}:${kind}:${createHash('sha256').update(sid).digest('base64url')}`

  /**
   * a hands `sid` off, loses Redis, and the session ends there, as its server ends one: how it
   * ended recorded first (`ending`), then the snapshot withdrawn; both wait for Redis. b claims
   * the session, stops waiting for a seal that cannot come, and reads the tail unsealed.
   */
  async function endedWhileClaimed(sid: string, ending?: EndedSession) {
    const cluster = suite.cluster()
    const [b] = await cluster.start(1)
    const proxy = await startTcpProxy(suite.redis().port)
    proxies.push(proxy)
    const a = await cluster.node(`redis://127.0.0.1:${new URL(proxy.url).port}`)
    await until(() => b!.adapter.liveNodes.includes(a.adapter.node), 3000, 'a live')
    const socket = await open(a, sid, 's1')
    expect(await handOff(a, socket, sid)).toBe(true)
    proxy.offline = true
    await until(() => !a.redis.isReady, 3000, 'a cut off from Redis')
    if (ending) a.adapter.sessionEnded(sid, ending, ENDED_TTL)
    a.sockets.sessions.delete(sid)
    await a.adapter.withdrawHandOff(sid)
    const claim = won(await b!.adapter.claimSession(sid))
    const waits = watchSealWaits('at once')
    expect(await takeOver(b!, claim).done).toMatchObject({ complete: false })
    waits.stop()
    /** a reaches Redis again: what it kept goes first, and marks the claimed handoff ended. */
    const back = async () => {
      proxy.offline = false
      await until(() => a.redis.isReady, 5000, 'a reaches Redis again')
      const hash = keyOf(cluster, 'handoff', sid)
      await expect.poll(() => b!.redis.hGet(hash, 'ended'), { timeout: 5000 }).toBe('1')
    }
    return { cluster, b: b!, claim, back }
  }

  /**
   * b's confirm of `claim` refused as busy (every command of b's held, MAX_QUEUED_COMMANDS
   * waiting their turn): the server goes on with the session, and the confirm is sent late.
   * Resolves with the burst to release.
   */
  async function confirmRefused(b: FakeNode, claim: SessionClaim) {
    const burst = await queueFullOn(b)
    try {
      expect(await within(claim.confirm!(), 5000, 'the confirm')).toBe('taken')
      const late = b.warnings.filter((line) => line.includes('it is confirmed once Redis takes it'))
      expect(late).toHaveLength(1)
    } catch (err) {
      await burst.release()
      throw err
    }
    return burst
  }

  /**
   * b claims `sid` while a is cut off, and b's confirm is refused as busy; `meanwhile` runs with
   * the spy on the confirm's tries. Then a reaches Redis again, Redis takes b's commands: the
   * confirm goes within the longest pause, and says the session ended on a, so b's copy ends.
   */
  async function confirmedOnceBack(sid: string, meanwhile: (tries: MockInstance) => Promise<void>) {
    const { b, claim, back } = await endedWhileClaimed(sid)
    const ended: string[] = []
    b.sockets.takenOver = (ending) => ended.push(ending)
    const tries = vi.spyOn(HandOffStore.prototype, 'confirm')
    const burst = await confirmRefused(b, claim)
    let released = false
    try {
      await meanwhile(tries)
      await back()
      released = true
      await burst.release()
      await until(() => ended.length > 0, 5000, 'b’s copy ended')
      expect(ended).toEqual([sid])
    } finally {
      if (!released) await burst.release()
    }
  }

  it('tries a confirm refused as busy again after a pause that grows, not every few milliseconds', async () => {
    await confirmedOnceBack('sid-late-busy', async (tries) => {
      // b stays busy a while: each try is refused at once, and the next waits its pause.
      await sleep(BUSY_MS)
      // The first try is the server's own. A try every 20 ms made some 70 in that time; pauses
      // of 20, 40, 80 ... up to 1250 ms (a quarter of requestTimeout) make 7.
      expect(tries.mock.calls.length).toBeGreaterThanOrEqual(3)
      expect(tries.mock.calls.length).toBeLessThanOrEqual(12)
    })
  })

  it('goes on trying while the claim stands when the wall clock steps past its end', async () => {
    await confirmedOnceBack('sid-late-step', async (tries) => {
      // NTP steps the wall clock an hour on, far past the claim's 30 s: the claim still stands
      // on Redis (its keys' PX), so the tries go on, each after its pause.
      stepWallClock(60 * 60 * 1000)
      const before = tries.mock.calls.length
      await until(() => tries.mock.calls.length >= before + 3, 5000, 'three tries after the step')
    })
  })

  it('has the client’s next try find how the session ended, once a confirm sent late says its old node ended it', async () => {
    const sid = 'sid-late-ended'
    const { cluster, b, claim, back } = await endedWhileClaimed(sid, ENDING)
    const ended: string[] = []
    // As the server ends a copy taken over elsewhere: its session ends, and its owner record
    // with it (`sessionClosed`), kept for no resume.
    b.sockets.takenOver = (ending) => {
      ended.push(ending)
      b.sockets.sessions.delete(ending)
      b.adapter.sessionClosed(ending)
    }
    const burst = await confirmRefused(b, claim)
    let released = false
    try {
      await back()
      released = true
      await burst.release()
      await until(() => ended.length > 0, 5000, 'b’s copy ended')
      expect(b.warnings.filter((line) => line.includes('found its session ended'))).toHaveLength(1)
      // No node holds the session, and every node finds how it ended on a, which a could not
      // record while Redis was away from it: the client's next try, wherever it lands, gets that
      // CLOSE, not a new session.
      await expect.poll(() => b.redis.get(keyOf(cluster, 'session', sid)), { timeout: 5000 }).toBeNull()
      expect(await b.adapter.sessionOwner(sid)).toBe('unknown')
      expect(await b.adapter.endedSession(sid)).toEqual(ENDING)
    } finally {
      if (!released) await burst.release()
    }
  })

  it('leaves the owner record to the copy of a server without takenOver, which goes on, when a confirm sent late says its old node kept the session', async () => {
    const cluster = suite.cluster()
    const sid = 'sid-late-kept-no-hook'
    // a's write is held, and given up: its take-back (which keeps the session at a) waits behind
    // it, and b claims the write in between, and reads the tail unsealed.
    const { b, slow, answer, claim, tail } = await claimedBeforeTakeBack(cluster, sid)
    expect(tail).toMatchObject({ complete: false })
    // b's server has no `takenOver`: it cannot end its copy, whatever the confirm says.
    expect(b.sockets.takenOver).toBeUndefined()
    const burst = await confirmRefused(b, claim)
    let released = false
    try {
      // a's take-back lands meanwhile: the claim is revoked, and the session kept at a.
      await slow.runAll()
      expect(await answer).toBe(false)
      released = true
      await burst.release()
      await until(
        () => b.warnings.some((line) => line.includes('this server cannot end the copy taken over here')),
        5000,
        'the late confirm’s answer',
      )
      // The client is with b's copy, which goes on: every node sends its requests there, not to
      // a's copy, which no client resumes (it ends with its recovery window).
      expect(await b.redis.get(keyOf(cluster, 'session', sid))).toBe(b.adapter.node)
      expect(b.sockets.hasSession(sid)).toBe(true)
    } finally {
      if (!released) await burst.release()
    }
  })
})
