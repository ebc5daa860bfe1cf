import { ErrorCode } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import {
  type EventMiddleware,
  EventPipeline,
  type EventRefusal,
  hasAppCode,
  MIDDLEWARE_REFUSED,
  refusalOf,
} from './incoming.js'

interface Refused {
  ackId: number
  refusal: EventRefusal
  cause: unknown
}

/** A pipeline whose hooks record what was delivered and refused; `problems` fail the schema. */
function setup(maxWaiting = 8, problems: Record<string, string> = {}) {
  const delivered: { event: string; args: unknown[]; ackId: number }[] = []
  const refused: Refused[] = []
  const pipeline = new EventPipeline(maxWaiting, {
    validate: (event) => problems[event] ?? null,
    deliver: (event, args, ackId) => delivered.push({ event, args, ackId }),
    refuse: (_event, ackId, refusal, cause) => refused.push({ ackId, refusal, cause }),
  })
  const names = () => delivered.map((d) => d.event)
  return { pipeline, delivered, refused, names }
}

/** A promise the test settles. */
function gate() {
  let open!: () => void
  let fail!: (error: unknown) => void
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve
    fail = reject
  })
  return { promise, open, fail }
}

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * A middleware that holds every event until the test releases it by name; `next` functions
 * are kept in arrival order.
 */
function holding() {
  const held = new Map<string, (error?: unknown) => void>()
  const started: string[] = []
  const middleware: EventMiddleware = ([event], next) => {
    started.push(event)
    held.set(event, next)
  }
  const release = (event: string, error?: unknown) => {
    const next = held.get(event)
    if (!next) throw new Error(`${event} is not in the middleware`)
    next(error)
  }
  return { middleware, started, release }
}

class CodedError extends Error {
  constructor(
    readonly code: unknown,
    message: string,
  ) {
    super(message)
  }
}

describe('EventPipeline: order', () => {
  it('delivers at once when there is no middleware', () => {
    const { pipeline, delivered } = setup()
    pipeline.push('hello', [1, 'two'], 3)
    expect(delivered).toEqual([{ event: 'hello', args: [1, 'two'], ackId: 3 }])
    expect(pipeline.waiting).toBe(0)
  })

  it('delivers at once, queueing nothing, when every middleware calls next synchronously', () => {
    const { pipeline, names } = setup()
    pipeline.use((_, next) => next())
    pipeline.use((_, next) => next())
    pipeline.push('a', [], 0)
    expect(names()).toEqual(['a'])
    pipeline.push('b', [], 0)
    expect(names()).toEqual(['a', 'b'])
    expect(pipeline.waiting).toBe(0)
  })

  it('runs middleware in the order they were added and hands on the arguments as they were left', () => {
    const { pipeline, delivered } = setup()
    const ran: string[] = []
    pipeline.use((packet, next) => {
      ran.push('first')
      packet[1] = 'changed'
      next()
    })
    pipeline.use((packet, next) => {
      ran.push('second')
      packet.push('added')
      next()
    })
    pipeline.push('e', ['original'], 5)
    expect(ran).toEqual(['first', 'second'])
    expect(delivered).toEqual([{ event: 'e', args: ['changed', 'added'], ackId: 5 }])
  })

  it('keeps arrival order when an async middleware finishes the earlier event last', async () => {
    const { pipeline, names } = setup()
    const gates = { e1: gate(), e2: gate(), e3: gate() }
    const started: string[] = []
    pipeline.use(async ([event]) => {
      started.push(event)
      await gates[event as keyof typeof gates].promise
    })
    pipeline.push('e1', [], 0)
    pipeline.push('e2', [], 0)
    pipeline.push('e3', [], 0)
    gates.e3.open()
    gates.e2.open()
    await settle()
    // The later events wait: their middleware has not even started.
    expect(started).toEqual(['e1'])
    expect(names()).toEqual([])

    gates.e1.open()
    await settle()
    expect(started).toEqual(['e1', 'e2', 'e3'])
    expect(names()).toEqual(['e1', 'e2', 'e3'])
    expect(pipeline.waiting).toBe(0)
  })

  it('holds later events until a middleware that declares next calls it', () => {
    const { pipeline, names } = setup()
    const held = holding()
    pipeline.use(held.middleware)
    pipeline.push('a', [], 0)
    pipeline.push('b', [], 0)
    expect(held.started).toEqual(['a'])
    held.release('a')
    expect(names()).toEqual(['a'])
    expect(held.started).toEqual(['a', 'b'])
    held.release('b')
    expect(names()).toEqual(['a', 'b'])
  })

  it('waits for next, not for the promise, from an async middleware that declares next', async () => {
    const { pipeline, names } = setup()
    const nexts: (() => void)[] = []
    pipeline.use(async (_, next) => {
      nexts.push(() => next())
    })
    pipeline.push('a', [], 0)
    await settle()
    expect(names()).toEqual([])
    expect(nexts).toHaveLength(1)
    nexts[0]!()
    expect(names()).toEqual(['a'])
  })

  it('runs the middleware after an async one, then delivers', async () => {
    const { pipeline, names } = setup()
    const ran: string[] = []
    const first = gate()
    pipeline.use(async () => {
      ran.push('async')
      await first.promise
    })
    pipeline.use((_, next) => {
      ran.push('sync')
      next()
    })
    pipeline.push('a', [], 0)
    expect(ran).toEqual(['async'])
    first.open()
    await settle()
    expect(ran).toEqual(['async', 'sync'])
    expect(names()).toEqual(['a'])
  })

  it('ignores a second call of next', () => {
    const { pipeline, names, refused } = setup()
    pipeline.use((_, next) => {
      next()
      next()
      next(new Error('too late'))
    })
    pipeline.push('a', [], 0)
    expect(names()).toEqual(['a'])
    expect(refused).toEqual([])
  })

  it('refuses to add a middleware that is not a function', () => {
    const { pipeline } = setup()
    expect(() => pipeline.use('nope' as unknown as EventMiddleware)).toThrow(TypeError)
  })

  it('counts as waiting only the events behind the one in the middleware', () => {
    const { pipeline } = setup(2)
    pipeline.use(holding().middleware)
    pipeline.push('head', [], 0)
    expect(pipeline.waiting).toBe(0)
    pipeline.push('w1', [], 0)
    pipeline.push('w2', [], 0)
    expect(pipeline.waiting).toBe(2)
  })
})

describe('EventPipeline: refusals', () => {
  const appError = () => new CodedError('NOT_ALLOWED', 'you may not')

  it.each<[string, EventMiddleware]>([
    ['next(error)', (_, next) => next(appError())],
    [
      'a throw',
      () => {
        throw appError()
      },
    ],
    ['a rejection', async () => Promise.reject(appError())],
    ['next(error) after an await', async (_, next) => next(await Promise.resolve(appError()))],
  ])('refuses with the error’s own code and message on %s', async (_, middleware) => {
    const { pipeline, delivered, refused } = setup()
    pipeline.use(middleware)
    pipeline.push('e', [], 9)
    await settle()
    expect(delivered).toEqual([])
    expect(refused).toHaveLength(1)
    expect(refused[0]!.ackId).toBe(9)
    expect(refused[0]!.refusal).toEqual({ code: 'NOT_ALLOWED', message: 'you may not' })
    expect(refused[0]!.cause).toBeInstanceOf(CodedError)
  })

  it.each<[string, EventMiddleware]>([
    ['an Error without a code', (_, next) => next(new Error('connection refused: 10.0.0.5:5432'))],
    ['a code outside A-Z 0-9 _', (_, next) => next(new CodedError('not-allowed', 'lower case'))],
    ['a code that is not a string', (_, next) => next(new CodedError(403, 'numeric'))],
    ['a string', (_, next) => next('go away')],
    [
      'a throw of undefined',
      () => {
        throw undefined
      },
    ],
    ['a rejection with undefined', async () => Promise.reject(undefined)],
  ])('refuses with the generic refusal, not the error’s own message, on %s', async (_, middleware) => {
    const { pipeline, delivered, refused } = setup()
    pipeline.use(middleware)
    pipeline.push('e', [], 1)
    await settle()
    expect(delivered).toEqual([])
    expect(refused.map((r) => r.refusal)).toEqual([
      { code: ErrorCode.HANDLER_ERROR, message: MIDDLEWARE_REFUSED },
    ])
    // The error itself goes to the socket, for its log.
    expect(refused[0]!.cause).toBeDefined()
  })

  it('refuses with the fallback message where an error with an application code has none', async () => {
    const { pipeline, refused } = setup()
    pipeline.use((_, next) => next({ code: 'PLAIN' }))
    pipeline.push('e', [], 1)
    expect(refused.map((r) => r.refusal)).toEqual([{ code: 'PLAIN', message: MIDDLEWARE_REFUSED }])
  })

  it('lets an event through on next(null) and next(undefined)', () => {
    const { pipeline, names, refused } = setup()
    pipeline.use((_, next) => next(null))
    pipeline.use((_, next) => next(undefined))
    pipeline.push('a', [], 0)
    expect(names()).toEqual(['a'])
    expect(refused).toEqual([])
  })

  it('runs no later middleware and no handler after a refusal, and goes on with the next event', async () => {
    const { pipeline, names, refused } = setup()
    const second: string[] = []
    pipeline.use(async ([event]) => {
      if (event === 'bad') throw new CodedError('BAD', 'bad event')
    })
    pipeline.use(([event], next) => {
      second.push(event)
      next()
    })
    pipeline.push('good1', [], 0)
    pipeline.push('bad', [], 2)
    pipeline.push('good2', [], 0)
    await settle()
    expect(second).toEqual(['good1', 'good2'])
    expect(names()).toEqual(['good1', 'good2'])
    expect(refused.map((r) => [r.ackId, r.refusal.code])).toEqual([[2, 'BAD']])
  })

  it('refuses an event that fails its schema with PARLEY_VALIDATION_FAILED before any middleware', () => {
    const { pipeline, names, refused } = setup(8, { typed: 'args[0] must be a string' })
    const seen: string[] = []
    pipeline.use(([event], next) => {
      seen.push(event)
      next()
    })
    pipeline.push('typed', [42], 4)
    pipeline.push('free', [], 0)
    expect(seen).toEqual(['free'])
    expect(names()).toEqual(['free'])
    expect(refused).toEqual([
      {
        ackId: 4,
        refusal: { code: ErrorCode.VALIDATION_FAILED, message: '"typed": args[0] must be a string' },
        cause: undefined,
      },
    ])
  })

  it('checks the schema of a waiting event only when its turn comes, keeping order', () => {
    const { pipeline, names, refused } = setup(8, { typed: 'wrong' })
    const held = holding()
    pipeline.use(held.middleware)
    pipeline.push('first', [], 0)
    pipeline.push('typed', [], 1)
    pipeline.push('last', [], 0)
    expect(refused).toEqual([])
    held.release('first')
    expect(refused.map((r) => r.refusal.code)).toEqual([ErrorCode.VALIDATION_FAILED])
    held.release('last')
    expect(names()).toEqual(['first', 'last'])
  })
})

describe('EventPipeline: limits and close', () => {
  it('lets maxWaiting events wait behind the one in the middleware and refuses more with PARLEY_QUEUE_FULL', () => {
    const { pipeline, names, refused } = setup(2)
    const held = holding()
    pipeline.use(held.middleware)
    pipeline.push('head', [], 0)
    pipeline.push('w1', [], 0)
    pipeline.push('w2', [], 0)
    expect(refused).toEqual([])
    pipeline.push('over', [], 7)
    expect(refused).toHaveLength(1)
    expect(refused[0]!.ackId).toBe(7)
    expect(refused[0]!.refusal.code).toBe(ErrorCode.QUEUE_FULL)
    expect(refused[0]!.refusal.message).toContain('"over"')

    held.release('head')
    held.release('w1')
    held.release('w2')
    expect(names()).toEqual(['head', 'w1', 'w2'])
    // Room again once the queue drained.
    pipeline.push('again', [], 0)
    held.release('again')
    expect(names()).toEqual(['head', 'w1', 'w2', 'again'])
  })

  it('drops waiting events on close() and ignores middleware that finishes later', async () => {
    const { pipeline, delivered, refused } = setup()
    const held = holding()
    const late = gate()
    pipeline.use(async ([event], next) => {
      if (event === 'async') {
        await late.promise
        next()
      } else held.middleware([event], next)
    })
    pipeline.push('async', [], 0)
    pipeline.push('waiting', [], 0)
    pipeline.close()
    late.open()
    await settle()
    expect(held.started).toEqual([])
    expect(delivered).toEqual([])
    expect(pipeline.waiting).toBe(0)

    pipeline.push('after', [], 0)
    await settle()
    expect(delivered).toEqual([])
    expect(refused).toEqual([])
  })

  it('ignores a refusal that comes after close()', () => {
    const { pipeline, delivered, refused } = setup()
    const held = holding()
    pipeline.use(held.middleware)
    pipeline.push('a', [], 3)
    pipeline.close()
    held.release('a', new CodedError('LATE', 'too late'))
    expect(delivered).toEqual([])
    expect(refused).toEqual([])
  })
})

describe('refusalOf', () => {
  it('takes the code and message of an error whose code is A-Z 0-9 _, at most 64 long', () => {
    expect(refusalOf(new CodedError('MY_CODE_2', 'why'), 'FALLBACK', 'fallback')).toEqual({
      code: 'MY_CODE_2',
      message: 'why',
    })
    expect(refusalOf(new CodedError('X'.repeat(64), 'm'), 'FALLBACK', 'f').code).toBe('X'.repeat(64))
    expect(refusalOf(new CodedError('X'.repeat(65), 'm'), 'FALLBACK', 'f').code).toBe('FALLBACK')
    expect(refusalOf(new CodedError('', 'm'), 'FALLBACK', 'f').code).toBe('FALLBACK')
  })

  it('falls back for an empty message, null and non-errors', () => {
    expect(refusalOf(new Error(''), 'FALLBACK', 'fallback')).toEqual({
      code: 'FALLBACK',
      message: 'fallback',
    })
    expect(refusalOf(null, 'FALLBACK', 'fallback')).toEqual({ code: 'FALLBACK', message: 'fallback' })
    expect(refusalOf(42, 'FALLBACK', 'fallback')).toEqual({ code: 'FALLBACK', message: 'fallback' })
  })

  it('cuts a long message to 1024 characters', () => {
    expect(refusalOf(new Error('m'.repeat(5000)), 'FALLBACK', 'f').message).toHaveLength(1024)
  })

  it('cuts it at a code point’s edge: an emoji across 1024 is left out whole', () => {
    expect(refusalOf(new Error(`${'m'.repeat(1023)}😀 and more`), 'FALLBACK', 'f').message).toBe(
      'm'.repeat(1023),
    )
    expect(refusalOf(`${'m'.repeat(1022)}😀 and more`, 'FALLBACK', 'f').message).toBe(`${'m'.repeat(1022)}😀`)
  })

  it('agrees with hasAppCode on which codes the application chose', () => {
    expect(hasAppCode(new CodedError('APP', 'm'))).toBe(true)
    expect(hasAppCode(new CodedError('app', 'm'))).toBe(false)
    expect(hasAppCode(new Error('m'))).toBe(false)
    expect(hasAppCode(undefined)).toBe(false)
  })
})

describe('the wait for the events in the pipeline (a closing server)', () => {
  it('counts what is in it and resolves once the last of them reached the handlers', async () => {
    const { pipeline, names } = setup()
    const { middleware, release } = holding()
    pipeline.use(middleware)
    let idle = false
    void pipeline.through().then(() => {
      idle = true
    })
    await settle()
    expect(idle).toBe(true)
    pipeline.push('a', [], 1)
    pipeline.push('b', [], 2)
    expect(pipeline.pending).toBe(2)
    let through = false
    void pipeline.through().then(() => {
      through = true
    })
    release('a')
    await settle()
    expect(through).toBe(false)
    expect(pipeline.pending).toBe(1)
    release('b')
    await settle()
    expect(names()).toEqual(['a', 'b'])
    expect(through).toBe(true)
    expect(pipeline.pending).toBe(0)
  })

  it('resolves when the session ends with events still in it, which count no more', async () => {
    const { pipeline } = setup()
    const { middleware } = holding()
    pipeline.use(middleware)
    pipeline.push('a', [], 1)
    const through = pipeline.through()
    pipeline.close()
    await through
    expect(pipeline.pending).toBe(0)
  })
})
