import { describe, expect, it } from 'vitest'
import { CoalescedRuns } from '../src/coalesced-runs.js'

describe('CoalescedRuns', () => {
  it('runs once more after the run under way for every ask meanwhile, and keys apart', async () => {
    const runs: string[] = []
    const gates: Array<() => void> = []
    const task = (key: string) =>
      new Promise<void>((resolve) => {
        runs.push(key)
        gates.push(resolve)
      })
    const coalesced = new CoalescedRuns(task)
    coalesced.ask('lobby')
    coalesced.ask('lobby')
    coalesced.ask('lobby')
    coalesced.ask('help')
    expect(runs).toEqual(['lobby', 'help'])
    for (const open of gates.splice(0)) open()
    await expect.poll(() => runs).toEqual(['lobby', 'help', 'lobby'])
    // `help` is over: an ask runs it at once; `lobby` runs: an ask waits for that run.
    coalesced.ask('help')
    coalesced.ask('lobby')
    expect(runs).toEqual(['lobby', 'help', 'lobby', 'help'])
  })

  it('goes on after a run that fails', async () => {
    let calls = 0
    const coalesced = new CoalescedRuns(async () => {
      calls++
      throw new Error('no list')
    })
    coalesced.ask('lobby')
    await expect.poll(() => calls).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 0))
    coalesced.ask('lobby')
    expect(calls).toBe(2)
  })
})
