// A socket's reply on its way back to the node that broadcast with acks: what JSON cannot carry
// fails there with a coded error that names the event it answers.
import { ErrorCode } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { fromReply } from '../src/remote.js'

describe('fromReply', () => {
  it('names the event a reply JSON cannot carry answers', () => {
    // A client's reply is decoded from JSON and always crosses: a value only a server-side
    // reply could hold stands in for one that cannot.
    expect(fromReply({ ok: true, value: 10n }, 'quote')).toEqual({
      k: 'reply',
      ok: false,
      code: ErrorCode.UNSERIALIZABLE,
      message: 'reply to "quote": payload cannot be serialised to JSON; the reply cannot cross nodes',
    })
  })

  it('lets a reply JSON carries cross as it is', () => {
    expect(fromReply({ ok: true, value: { price: 3 } }, 'quote')).toMatchObject({ k: 'reply', ok: true })
  })
})
