import type { FastifyInstance } from 'fastify'
import { expect } from 'vitest'
import { until } from './helpers.js'
import { type RawClient, rawConnect } from './raw-client.js'

/**
 * Two WebSocket clients of the server at `base`: `live`, connected, and `away`, whose transport
 * went (closed by the client), returned once `app` saw it go: its recovery window runs from no
 * later than then. Both go into `raws`, for the test to close.
 */
export async function awayBesideLive(
  app: FastifyInstance,
  base: string,
  raws: RawClient[],
): Promise<{ live: RawClient; away: RawClient }> {
  const live = await rawConnect('websocket', base)
  raws.push(live)
  const away = await rawConnect('websocket', base)
  raws.push(away)
  away.close()
  await until(() => app.parley.sockets.get(away.id)?.transport === null, 3000, 'the away transport gone')
  return { live, away }
}

/**
 * What the store was given for each (`ttls`, by sid): the whole `window` for `live`, what was
 * left of it, and something, for `away`, whose client had spent at least `spent` of it.
 */
export function expectStoredFor(
  ttls: ReadonlyMap<string, number>,
  { live, away }: { live: RawClient; away: RawClient },
  window: number,
  spent: number,
): void {
  expect(ttls.get(live.sid)).toBe(window)
  const left = ttls.get(away.sid)
  expect(left).toBeGreaterThan(0)
  expect(left).toBeLessThanOrEqual(window - spent)
}
