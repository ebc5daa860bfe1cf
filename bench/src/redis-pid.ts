import { readdirSync, readFileSync } from 'node:fs'

/**
 * The PID of the redis-server listening on `port`: redis-server rewrites its command line to
 * `redis-server 127.0.0.1:<port>`.
 */
export function redisPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmdline.includes('redis-server') && cmdline.includes(`:${port}`)) return Number(entry)
    } catch {}
  }
  return undefined
}
