import type { WireLimits as Protocol } from '@parley/protocol'

/*
 * The protocol's wire limits, one constant each and typed against its `WireLimits`, so they
 * cannot drift. The client imports them as `WireLimits` in its place: the bundler writes these
 * constants as their numbers, where `WireLimits.maxDepth` would cost the bundle the object too.
 */
export const maxEventNameLength: typeof Protocol.maxEventNameLength = 256
export const maxDepth: typeof Protocol.maxDepth = 64
export const defaultMaxPayload: typeof Protocol.defaultMaxPayload = 1_000_000
