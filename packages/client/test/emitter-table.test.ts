// The emitter's table of listeners must not keep an event once its last listener is gone: an
// application that listens once to one-off names (`once(`result:${id}`)`) would grow it for
// the socket's whole life. The table is private: the inspector reads its size.
import { Session } from 'node:inspector/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Emitter } from '../src/emitter.js'

class Events extends Emitter<Record<string, (n: number) => void>> {
  emitNow(event: string, n: number): boolean {
    return this.fire(event, [n])
  }
}

let inspector: Session
beforeAll(() => {
  inspector = new Session()
  inspector.connect()
})
afterAll(() => inspector.disconnect())

/** What `Runtime.getProperties` answers, as far as this test reads it. */
interface Properties {
  result: { name: string }[]
  privateProperties?: { name: string; value?: { objectId?: string } }[]
  internalProperties?: { name: string; value?: { objectId?: string } }[]
}

const propertiesOf = (objectId: string | undefined) =>
  inspector.post('Runtime.getProperties', {
    objectId: objectId!,
    ownProperties: true,
  }) as unknown as Promise<Properties>

/** How many events the emitter's private table holds. */
async function tableSize(emitter: Events): Promise<number> {
  const holder = globalThis as { inspected?: Events }
  holder.inspected = emitter
  try {
    const { result } = await inspector.post('Runtime.evaluate', { expression: 'globalThis.inspected' })
    const own = await propertiesOf(result.objectId)
    const table = own.privateProperties?.find((p) => p.name === '#listeners')?.value
    const map = await propertiesOf(table?.objectId)
    const entries = map.internalProperties?.find((p) => p.name === '[[Entries]]')?.value
    const list = await propertiesOf(entries?.objectId)
    return list.result.filter((p) => /^\d+$/.test(p.name)).length
  } finally {
    delete holder.inspected
  }
}

describe("the emitter's table", () => {
  it('forgets an event whose last listener went, by once or by off', async () => {
    const events = new Events()
    const kept = () => {}
    events.on('kept', kept)
    for (let id = 0; id < 50; id++) events.once(`result:${id}`, () => {})
    for (let id = 0; id < 50; id++) events.emitNow(`result:${id}`, id)
    const gone = () => {}
    events.on('gone', gone)
    events.off('gone', gone)
    expect(await tableSize(events)).toBe(1)
    // One listener of two removed: the event stays, with the other.
    const a = () => {}
    const b = () => {}
    events.on('pair', a).on('pair', b).off('pair', a)
    expect(events.listenerCount('pair')).toBe(1)
    expect(await tableSize(events)).toBe(2)
  })
})
