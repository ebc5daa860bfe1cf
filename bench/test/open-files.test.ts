import { describe, expect, it } from 'vitest'
import { clientsForStep, mostClients, socketsPerClient } from '../src/open-files.ts'

describe('open files for the scenarios of steps', () => {
  it('counts two connections per SSE client and per socket.io polling client, one otherwise', () => {
    expect(socketsPerClient('parley-thin-sse')).toBe(2)
    expect(socketsPerClient('parley-sse')).toBe(2)
    expect(socketsPerClient('socketio-thin-polling')).toBe(2)
    expect(socketsPerClient('parley-thin-polling')).toBe(1)
    expect(socketsPerClient('parley-thin-websocket')).toBe(1)
    expect(socketsPerClient('ws')).toBe(1)
  })

  it('fits the most clients under the limit, in hundreds, with room for other files', () => {
    expect(mostClients('ws', 20_000)).toBe(19_800)
    expect(mostClients('parley-thin-sse', 20_000)).toBe(9_900)
    expect(mostClients('ws', Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
  })

  it('opens a step whole when it fits, with no note', () => {
    const notes: string[] = []
    expect(clientsForStep('ws', 5000, 100, 1000, 'connections', notes, 20_000)).toBe(5000)
    expect(notes).toEqual([])
  })

  it('opens the most the limit allows past it, and says so', () => {
    const notes: string[] = []
    expect(clientsForStep('ws', 20_000, 100, 5000, 'connections', notes, 20_000)).toBe(19_700)
    expect(clientsForStep('parley-thin-sse', 20_000, 100, 5000, 'connections', notes, 20_000)).toBe(9_800)
    expect(notes).toHaveLength(2)
    expect(notes[0]).toMatch(
      /^20000 connections: measured with 19700, as 20100 clients need about 20300 open files/,
    )
    expect(notes[1]).toMatch(
      /^20000 connections: measured with 9800, as 20100 clients need about 40400 open files/,
    )
  })

  it('leaves a step out when the limit allows no more than the step before', () => {
    const notes: string[] = []
    expect(clientsForStep('parley-thin-sse', 10_000, 0, 9_900, 'recipients', notes, 20_000)).toBe(0)
    expect(clientsForStep('ws', 20_000, 100, 5000, 'connections', notes, 4000)).toBe(0)
    expect(notes[0]).toMatch(/^10000 recipients not measured: 10000 clients need about 20200 open files/)
    expect(notes[1]).toMatch(/limit here is 4000 \(raise the hard limit/)
  })
})
