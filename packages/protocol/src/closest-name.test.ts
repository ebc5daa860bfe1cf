import { describe, expect, it } from 'vitest'
import { closestName } from './closest-name.js'

const OPTIONS = ['client', 'prefix', 'address', 'requestTimeout', 'heartbeatInterval', 'log']

describe('closestName', () => {
  it.each([
    ['heartbeatIntervl', 'heartbeatInterval', 'a character dropped'],
    ['heartbeatIntervall', 'heartbeatInterval', 'one added'],
    ['heartbeatIntarval', 'heartbeatInterval', 'one changed'],
    ['heatrbeatInterval', 'heartbeatInterval', 'two neighbours swapped'],
    ['hartbeatIntrval', 'heartbeatInterval', 'two edits'],
    ['HeartbeatInterval', 'heartbeatInterval', 'letter case'],
    ['requesttimeout', 'requestTimeout', 'letter case only'],
    ['lgo', 'log', 'a short name, one swap'],
    ['adress', 'address', 'a letter dropped'],
  ])('offers %s -> %s (%s)', (given, offered) => {
    expect(closestName(given, OPTIONS)).toBe(offered)
  })

  it.each([
    ['hrtbtInterval', 'three edits'],
    ['foo', 'a short name two edits from one (log)'],
    ['x'.repeat(10_000), 'a long name'],
    ['', 'nothing'],
    ['log', 'a name of the list itself'],
  ])('offers nothing for %#: %s', (given) => {
    expect(closestName(given, OPTIONS)).toBeUndefined()
  })

  it('offers the first of the closest', () => {
    expect(closestName('maxPendingAck', ['maxPendingAcks', 'maxPendingAcks2'])).toBe('maxPendingAcks')
    expect(closestName('pingTimeou', ['pingInterval', 'pingTimeout', 'pingTimeouts'])).toBe('pingTimeout')
  })
})
