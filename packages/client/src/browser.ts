/*
 * The script-tag build's entry: defines the global `Parley` with the values `index.ts` exports.
 * Assigning one object here, rather than letting the bundler build a module namespace for the
 * IIFE, spares the bundle the bundler's export helpers (about 190 bytes after gzip).
 * test/size.test.ts checks that the global holds exactly what the module exports.
 */
import { CloseReason, connect, DEFAULTS, ErrorCode, ParleyError, Socket } from './index.js'

;(globalThis as { Parley?: unknown }).Parley = {
  CloseReason,
  connect,
  DEFAULTS,
  ErrorCode,
  ParleyError,
  Socket,
}
