import { describe, expect, it } from 'vitest'
import { goodbyeEndpoint, goodbyePath } from './relayed-goodbye.js'

describe('goodbyePath', () => {
  it("puts the goodbye's endpoint in place of the WebSocket one, the path before it kept as sent", () => {
    expect(
      [
        '/parley/ws?v=1',
        '/acme/parley/ws?v=1',
        '/acme/parley/ws/?v=1',
        '/api/parley/%77s#v=1',
        'http://example.com/acme/parley/ws?v=1',
        '//acme//parley//ws',
      ].map((upgrade) => goodbyePath(upgrade, 'poll')),
    ).toEqual([
      '/parley/poll?v=1',
      '/acme/parley/poll?v=1',
      '/acme/parley/poll?v=1',
      '/api/parley/poll?v=1',
      '/acme/parley/poll?v=1',
      '//acme//parley//poll?v=1',
    ])
  })

  it('goes to polling, or to SSE when it is the only HTTP transport offered', () => {
    expect(
      [['websocket'], ['websocket', 'sse'], ['sse', 'polling']].map((list) =>
        goodbyeEndpoint(list as ('websocket' | 'sse' | 'polling')[]),
      ),
    ).toEqual(['poll', 'sse', 'poll'])
  })
})
