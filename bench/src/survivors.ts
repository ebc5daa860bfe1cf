// Where a server's garbage-collection cost comes from: V8's heap sampler, told to keep only
// the allocations that outlived a young collection. Those are what a scavenge copies and
// promotes; an object that dies young costs nearly nothing. Asked for with
// `PARLEY_BENCH_SURVIVORS=<dir>` (main.ts passes it on to every single-node server): sampling
// starts at the first CPU reading of a measurement and ends with the process, which prints the
// functions that allocated the most surviving bytes and writes the whole profile
// (`<kind>-<pid>.heapprofile`, for Chrome DevTools' Memory panel).
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import path from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children: ProfileNode[]
}

interface SamplingProfile {
  head: ProfileNode
  samples: { size: number; nodeId: number }[]
}

/** Starts sampling; the function returned stops, prints the top `top` and writes the profile. */
export function sampleSurvivors(dir: string, kind: string, top = 12): () => void {
  const session = new Session()
  session.connect()
  // An in-process session answers synchronously, which the exit path relies on.
  const post = (method: string, params?: object): unknown => {
    let answer: unknown
    session.post(method, params, (error, result) => {
      if (error) throw error
      answer = result
    })
    return answer
  }
  post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false,
  })
  return () => {
    const { profile } = post('HeapProfiler.stopSampling') as { profile: SamplingProfile }
    session.disconnect()
    const file = path.join(dir, `${kind}-${process.pid}.heapprofile`)
    writeFileSync(file, JSON.stringify(profile))
    console.log(`survivors of ${kind} (${file}):\n${summary(profile, top)}`)
  }
}

/** The functions that allocated the most surviving bytes, one a line, in MB. */
function summary(profile: SamplingProfile, top: number): string {
  const bytesOf = new Map<number, number>()
  for (const s of profile.samples) bytesOf.set(s.nodeId, (bytesOf.get(s.nodeId) ?? 0) + s.size)
  const byFunction = new Map<string, number>()
  const walk = (node: ProfileNode) => {
    const bytes = bytesOf.get(node.id)
    if (bytes) {
      const { functionName, url, lineNumber } = node.callFrame
      const where = `${functionName || '(anonymous)'} ${path.basename(url)}:${lineNumber + 1}`
      byFunction.set(where, (byFunction.get(where) ?? 0) + bytes)
    }
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  const total = [...bytesOf.values()].reduce((a, b) => a + b, 0)
  const rows = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)
  return [
    `  ${(total / 1e6).toFixed(2)} MB in all`,
    ...rows.map(([where, bytes]) => `  ${(bytes / 1e6).toFixed(2).padStart(6)} ${where}`),
  ].join('\n')
}
