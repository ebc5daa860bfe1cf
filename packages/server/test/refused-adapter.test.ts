// What an `adapter` factory made that the registration refuses (a promise, an object short of
// members) is never used, nor closed with the server: the registration closes it, or what it
// opened (a connection to its store, a timer) could keep the process alive after the failure.
// A registry given with it is left as it was, for the registration that corrects the options.
import parley, { type LocalSockets, MemoryAdapter } from '@parley/server'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { registrationError, until } from './helpers.js'

interface Line {
  level: number
  msg: string
  err?: { message?: string }
}

/** Registers Parley with `options`, its warnings in `lines`; the error the registration failed with. */
function refused(options: unknown, lines: Line[] = [], pluginTimeout?: number): Promise<unknown> {
  return registrationError(options, {
    logger: { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line)) } },
    ...(pluginTimeout === undefined ? {} : { pluginTimeout }),
  })
}

/** The line that says the refused adapter's close failed, once it is logged. */
async function closeFailure(lines: Line[], what: string): Promise<Line | undefined> {
  const failed = (l: Line) => l.msg === 'parley: the adapter did not close cleanly'
  await until(() => lines.some(failed), 2000, what)
  return lines.find(failed)
}

/** An object short of every member but `close`, which counts its calls. */
function shortOne(close: () => unknown = () => undefined) {
  const made = {
    closes: 0,
    close() {
      made.closes++
      return close()
    },
  }
  return made
}

describe('an adapter the registration refuses', () => {
  it('is closed when it is short of members', async () => {
    const made = shortOne()
    const error = await refused({ adapter: () => made })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect(made.closes).toBe(1)
  })

  it('is closed once the promise a factory returned gives it', async () => {
    const made = shortOne()
    const error = await refused({ adapter: async () => made })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect((error as Error).message).toContain('returned a promise')
    await until(() => made.closes === 1, 2000, 'the resolved adapter to be closed')
  })

  it.for([
    [
      'throws',
      () => {
        throw new Error('store gone')
      },
    ],
    ['rejects', () => Promise.reject(new Error('store gone'))],
  ] as const)('keeps the registration error when its close %s, and logs it', async ([, close]) => {
    const lines: Line[] = []
    const made = shortOne(close)
    const error = await refused({ adapter: () => made }, lines)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    const line = await closeFailure(lines, 'the failed close to be logged')
    expect(line).toMatchObject({ level: 40, err: { message: 'store gone' } })
  })

  it('keeps the registration error when the promise a factory returned rejects, and logs it', async () => {
    const lines: Line[] = []
    const error = await refused({ adapter: () => Promise.reject(new Error('store gone')) }, lines)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect((error as Error).message).toContain('returned a promise')
    const line = await closeFailure(lines, 'the rejection to be logged')
    expect(line).toMatchObject({ level: 40, err: { message: 'store gone' } })
  })

  it('leaves the metrics registry as it was: a corrected registration takes it', async () => {
    const registry = new Registry()
    const error = await refused({ adapter: () => shortOne(), metrics: { registry } })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect(registry.getMetricsAsArray()).toEqual([])
    const app = Fastify()
    try {
      await app.register(parley, { metrics: { registry } })
      await app.ready()
      expect(registry.getSingleMetric('parley_sessions')).toBeDefined()
    } finally {
      await app.close()
    }
  })
})

/** A whole adapter that drains (it stores sessions), whose close counts its calls and throws. */
class ClosedBadly extends MemoryAdapter {
  closes = 0
  async handOff(): Promise<boolean> {
    return false
  }
  async claimSession(): Promise<undefined> {
    return undefined
  }
  close(): void {
    this.closes++
    throw new Error('store gone')
  }
}

describe('an adapter the check took, when the registration fails after it', () => {
  it('is closed, its failure logged, the error and the registry kept', async () => {
    const lines: Line[] = []
    const registry = new Registry()
    let made: ClosedBadly | undefined
    const adapter = (sockets: LocalSockets) => {
      made = new ClosedBadly(sockets)
      return made
    }
    // The handoff's bound, read once the server is made: the default 5000 ms do not fit in 3000.
    const error = await refused({ adapter, metrics: { registry } }, lines, 3000)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'handoff' })
    expect(made?.closes).toBe(1)
    const line = lines.find((l) => l.msg === 'parley: the adapter did not close cleanly')
    expect(line).toMatchObject({ level: 40, err: { message: 'store gone' } })
    expect(registry.getMetricsAsArray()).toEqual([])
  })
})

/** The same, but its close never settles (a store's client waiting for a connection that never comes). */
class NeverClosed extends ClosedBadly {
  override close(): Promise<void> {
    this.closes++
    return new Promise(() => {})
  }
}

describe('an adapter the check took whose close never settles', () => {
  it('does not hold the registration: its error comes, not the plugin timeout', async () => {
    let made: NeverClosed | undefined
    const adapter = (sockets: LocalSockets) => {
      made = new NeverClosed(sockets)
      return made
    }
    // Awaited, the close held the registration until Fastify gave up on it (its pluginTimeout),
    // and its "did not start in time" took the place of the option's error.
    const error = await refused({ adapter }, [], 3000)
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'handoff' })
    expect(made?.closes).toBe(1)
  })
})

describe('an adapter whose optional members cannot be read', () => {
  it.for(['handOff', 'claimSession', 'requestHandOff', 'sessionOwner', 'otherNodes'])(
    'is refused, coded, when reading %s throws, and closed',
    async (name) => {
      let closes = 0
      const adapter = (sockets: LocalSockets) =>
        new Proxy(new MemoryAdapter(sockets), {
          get(target, key, receiver) {
            if (key === name) throw new Error('trap')
            if (key === 'close') return () => void closes++
            return Reflect.get(target, key, receiver)
          },
        })
      const error = await refused({ adapter })
      expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
      expect((error as Error).message).toContain(`its ${name} could not be read: trap`)
      expect(closes).toBe(1)
    },
  )
})

describe('an adapter with an optional member that is not a method', () => {
  it.for([
    ['otherNodes', 2, 'otherNodes (2)'],
    ['requestHandOff', 'x', 'requestHandOff ("x")'],
    ['sessionOwner', null, 'sessionOwner (null)'],
    ['routeRequest', Object.create(null), 'routeRequest ([object])'],
  ] as const)('is refused, coded, naming %s, and closed', async ([name, value, named]) => {
    let closes = 0
    const adapter = (sockets: LocalSockets) =>
      Object.assign(new MemoryAdapter(sockets), { [name]: value, close: () => void closes++ })
    const error = await refused({ adapter })
    expect(error).toMatchObject({ code: 'PARLEY_INVALID_OPTION', option: 'adapter' })
    expect((error as Error).message).toContain(`has ${named} where a method goes`)
    expect(closes).toBe(1)
  })

  it('is taken when the member is there but undefined, as when it is left out', async () => {
    const app = Fastify()
    try {
      await app.register(parley, {
        adapter: (sockets) => Object.assign(new MemoryAdapter(sockets), { otherNodes: undefined }),
      })
      await app.ready()
      expect(app.parley).toBeDefined()
    } finally {
      await app.close()
    }
  })
})
