// What each of `n` clients added to a server's heap, by owner: `pnpm -F @parley/bench heap-diff
// <before.heapsnapshot> <after.heapsnapshot> <n>`, the two snapshots taken of one process (with
// `PARLEY_BENCH_HEAP_SNAPSHOTS=<dir>`, server.ts), the second after `n` more clients came. The
// objects of the second that the first did not have (V8 keeps an object's id from one snapshot
// to the next) are counted under the nearest object that alone keeps them alive (their
// dominator) and is new itself: a socket, a held response, a session. Sizes are per client.
// Then, for the owners of the most bytes, where one of them puts its bytes, two levels down.
// A snapshot of thousands of clients is a large JSON file: give Node room to read it
// (`NODE_OPTIONS=--max-old-space-size=8192`).
import { readFileSync } from 'node:fs'

interface RawSnapshot {
  snapshot: {
    meta: {
      node_fields: string[]
      node_types: [string[], ...unknown[]]
      edge_fields: string[]
      edge_types: [string[], ...unknown[]]
    }
  }
  nodes: number[]
  edges: number[]
  strings: string[]
}

/** A snapshot's graph, read once: node `i`'s fields at `i * nodeFields` of `nodes`. */
interface Graph {
  raw: RawSnapshot
  nodeFields: number
  edgeFields: number
  nodeTypes: string[]
  edgeTypes: string[]
  count: number
  /** Node `i`'s edges are `edges[firstEdge[i]]` up to `edges[firstEdge[i + 1]]`. */
  firstEdge: Uint32Array
}

// Field offsets V8 has used since snapshots carry `detachedness` (and before).
const TYPE = 0
const NAME = 1
const ID = 2
const SELF_SIZE = 3
const EDGE_COUNT = 4
const EDGE_TYPE = 0
const EDGE_NAME = 1
const EDGE_TO = 2

function read(file: string): Graph {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot
  const { meta } = raw.snapshot
  const nodeFields = meta.node_fields.length
  const edgeFields = meta.edge_fields.length
  const count = raw.nodes.length / nodeFields
  const firstEdge = new Uint32Array(count + 1)
  for (let i = 0, edge = 0; i < count; i++) {
    firstEdge[i] = edge
    edge += raw.nodes[i * nodeFields + EDGE_COUNT]! * edgeFields
    firstEdge[i + 1] = edge
  }
  return {
    raw,
    nodeFields,
    edgeFields,
    nodeTypes: meta.node_types[0],
    edgeTypes: meta.edge_types[0],
    count,
    firstEdge,
  }
}

const field = (g: Graph, node: number, at: number): number => g.raw.nodes[node * g.nodeFields + at]!

/** An object by its constructor, a closure by its function; strings, arrays, code by their kind. */
function label(g: Graph, node: number): string {
  const type = g.nodeTypes[field(g, node, TYPE)]!
  const name = g.raw.strings[field(g, node, NAME)]!
  return ['object', 'closure', 'synthetic', 'native'].includes(type) ? `${type} ${name.slice(0, 48)}` : type
}

/**
 * The immediate dominator of every node reachable from the root (node 0), -1 for the others,
 * and the reverse postorder it was computed in (Cooper, Harvey and Kennedy's iteration). Weak
 * edges keep nothing alive; shortcuts repeat a path that exists anyway.
 */
function dominators(g: Graph): { idom: Int32Array; postorder: number[] } {
  const skipped = new Set([g.edgeTypes.indexOf('weak'), g.edgeTypes.indexOf('shortcut')])
  const { edges } = g.raw
  const targets = (node: number, visit: (to: number) => void) => {
    for (let e = g.firstEdge[node]!; e < g.firstEdge[node + 1]!; e += g.edgeFields) {
      if (!skipped.has(edges[e + EDGE_TYPE]!)) visit(edges[e + EDGE_TO]! / g.nodeFields)
    }
  }
  const order = new Int32Array(g.count).fill(-1)
  const postorder: number[] = []
  const next = Uint32Array.from(g.firstEdge.subarray(0, g.count))
  const stack = [0]
  order[0] = -2
  while (stack.length > 0) {
    const node = stack[stack.length - 1]!
    let descended = false
    while (next[node]! < g.firstEdge[node + 1]!) {
      const e = next[node]!
      next[node] = e + g.edgeFields
      if (skipped.has(edges[e + EDGE_TYPE]!)) continue
      const to = edges[e + EDGE_TO]! / g.nodeFields
      if (order[to] !== -1) continue
      order[to] = -2
      stack.push(to)
      descended = true
      break
    }
    if (descended) continue
    stack.pop()
    order[node] = postorder.length
    postorder.push(node)
  }
  const predecessors: number[][] = Array.from({ length: g.count }, () => [])
  for (const node of postorder) targets(node, (to) => predecessors[to]!.push(node))
  const idom = new Int32Array(g.count).fill(-1)
  idom[0] = 0
  const meet = (a: number, b: number) => {
    while (a !== b) {
      while (order[a]! < order[b]!) a = idom[a]!
      while (order[b]! < order[a]!) b = idom[b]!
    }
    return a
  }
  for (let changed = true; changed; ) {
    changed = false
    for (let at = postorder.length - 2; at >= 0; at--) {
      const node = postorder[at]!
      let dom = -1
      for (const p of predecessors[node]!) if (idom[p] !== -1) dom = dom === -1 ? p : meet(p, dom)
      if (dom !== -1 && idom[node] !== dom) {
        idom[node] = dom
        changed = true
      }
    }
  }
  return { idom, postorder }
}

function main(): void {
  const [beforeFile, afterFile, clients] = process.argv.slice(2)
  const n = Number(clients)
  if (!beforeFile || !afterFile || !(n > 0)) {
    console.error('usage: heap-diff <before.heapsnapshot> <after.heapsnapshot> <clients added>')
    process.exit(2)
  }
  const before = read(beforeFile)
  const old = new Set<number>()
  for (let i = 0; i < before.count; i++) old.add(field(before, i, ID))
  const g = read(afterFile)
  const isNew = (node: number) => !old.has(field(g, node, ID))
  const { idom, postorder } = dominators(g)
  const retained = new Float64Array(g.count)
  for (const node of postorder) {
    retained[node]! += field(g, node, SELF_SIZE)
    if (node !== 0) retained[idom[node]!]! += retained[node]!
  }
  const owners = new Map<string, { count: number; bytes: number; sample: number }>()
  const children = new Map<number, number[]>()
  for (const node of postorder) {
    if (node === 0) continue
    const dom = idom[node]!
    if (!children.has(dom)) children.set(dom, [])
    children.get(dom)!.push(node)
    if (!isNew(node) || isNew(dom)) continue
    const key = label(g, node)
    const owner = owners.get(key) ?? { count: 0, bytes: 0, sample: node }
    owner.count++
    owner.bytes += retained[node]!
    owners.set(key, owner)
  }
  const perClient = (bytes: number) => (bytes / n).toFixed(0).padStart(6)
  const ranked = [...owners].sort((a, b) => b[1].bytes - a[1].bytes)
  const total = ranked.reduce((sum, [, owner]) => sum + owner.bytes, 0)
  console.log(`new objects: ${(total / n / 1024).toFixed(2)} KB per client (${n} clients)`)
  console.log('  B/client  owners/client  owner')
  for (const [key, owner] of ranked) {
    if (owner.bytes / n < 8) break
    console.log(`  ${perClient(owner.bytes)}  ${(owner.count / n).toFixed(2).padStart(13)}  ${key}`)
  }
  const edgeName = (from: number, to: number) => {
    const { edges, strings } = g.raw
    for (let e = g.firstEdge[from]!; e < g.firstEdge[from + 1]!; e += g.edgeFields) {
      if (edges[e + EDGE_TO]! / g.nodeFields !== to) continue
      const type = g.edgeTypes[edges[e + EDGE_TYPE]!]
      const name = edges[e + EDGE_NAME]!
      return type === 'element' || type === 'hidden' ? `[${name}]` : strings[name]!
    }
    return '?'
  }
  const show = (node: number, depth: number, indent: string) => {
    const kids = (children.get(node) ?? []).sort((a, b) => retained[b]! - retained[a]!)
    for (const kid of kids) {
      if (retained[kid]! < 24) break
      console.log(`${indent}${String(retained[kid]).padStart(5)}  .${edgeName(node, kid)}: ${label(g, kid)}`)
      if (depth > 1) show(kid, depth - 1, `${indent}    `)
    }
  }
  for (const [key, owner] of ranked.slice(0, 6)) {
    console.log(`\none ${key}: ${retained[owner.sample]} B`)
    show(owner.sample, 2, '  ')
  }
}

main()
