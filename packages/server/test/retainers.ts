// What keeps an object alive, read from a heap snapshot of this process (through the inspector,
// as DevTools does): for the tests that hold the server to what an idle client costs it
// (docs/benchmarks.md, the heap per idle client), by who holds what rather than by bytes.
import { Session } from 'node:inspector/promises'

/** One direct retainer of an object: what it is, and the edge from it. */
export interface Retainer {
  /** The snapshot's node type: `object`, `array`, `closure`, `native`, ... */
  type: string
  /** Its constructor's name (for objects), or what the snapshot calls it. */
  name: string
  /** The edge's name (a property, a symbol's description) or, for an element, its index. */
  edge: string
  /** This retainer's own retainers that are a `Map` or `Set` holding it as its table. */
  tableOf: string[]
}

interface Snapshot {
  snapshot: {
    meta: { node_fields: string[]; edge_fields: string[]; node_types: [string[]]; edge_types: [string[]] }
  }
  nodes: number[]
  edges: number[]
  strings: string[]
}

/**
 * The direct retainers of `target` (weak edges left out), after a full collection. A `Map` or
 * `Set` keeps its entries in a table of its own (an `array` node): such a retainer lists the
 * collections it is the table of in `tableOf`.
 */
export async function retainersOf(target: object): Promise<Retainer[]> {
  const session = new Session()
  session.connect()
  const key = `__retainersOf${process.hrtime.bigint()}`
  const global = globalThis as Record<string, unknown>
  global[key] = target
  try {
    await session.post('HeapProfiler.enable')
    // V8 follows an object's id across the collector's moves only while it tracks them: the
    // snapshot taken as the tracking stops finds it by the id given meanwhile.
    await session.post('HeapProfiler.startTrackingHeapObjects', { trackAllocations: false })
    const { result } = await session.post('Runtime.evaluate', { expression: `globalThis.${key}` })
    const { heapSnapshotObjectId } = await session.post('HeapProfiler.getHeapObjectId', {
      objectId: result.objectId!,
    })
    await session.post('Runtime.releaseObject', { objectId: result.objectId! })
    delete global[key]
    const chunks: string[] = []
    session.on('HeapProfiler.addHeapSnapshotChunk', (message) => chunks.push(message.params.chunk))
    await session.post('HeapProfiler.stopTrackingHeapObjects', { reportProgress: false })
    return retainersIn(JSON.parse(chunks.join('')) as Snapshot, Number(heapSnapshotObjectId))
  } finally {
    delete global[key]
    await session.post('HeapProfiler.disable').catch(() => {})
    session.disconnect()
  }
}

function retainersIn(snapshot: Snapshot, id: number): Retainer[] {
  const { meta } = snapshot.snapshot
  const { nodes, edges, strings } = snapshot
  const nodeFields = meta.node_fields.length
  const edgeFields = meta.edge_fields.length
  const nodeTypes = meta.node_types[0]
  const edgeTypes = meta.edge_types[0]
  const typeAt = meta.node_fields.indexOf('type')
  const nameAt = meta.node_fields.indexOf('name')
  const idAt = meta.node_fields.indexOf('id')
  const countAt = meta.node_fields.indexOf('edge_count')
  const edgeTypeAt = meta.edge_fields.indexOf('type')
  const edgeNameAt = meta.edge_fields.indexOf('name_or_index')
  const toAt = meta.edge_fields.indexOf('to_node')
  const weak = edgeTypes.indexOf('weak')
  const numbered = new Set([edgeTypes.indexOf('element'), edgeTypes.indexOf('hidden')])
  let targetNode = -1
  for (let node = 0; node < nodes.length && targetNode < 0; node += nodeFields)
    if (nodes[node + idAt] === id) targetNode = node
  if (targetNode < 0) throw new Error('the object is not in the heap snapshot')
  /** The strong edges into the nodes of `to`, each as its node and edge index. */
  const into = (to: ReadonlySet<number>) => {
    const found: { from: number; to: number; edge: number }[] = []
    for (let node = 0, edge = 0; node < nodes.length; node += nodeFields) {
      const end = edge + nodes[node + countAt]! * edgeFields
      for (; edge < end; edge += edgeFields) {
        const target = edges[edge + toAt]!
        if (to.has(target) && edges[edge + edgeTypeAt] !== weak) found.push({ from: node, to: target, edge })
      }
    }
    return found
  }
  const edgeName = (edge: number) =>
    numbered.has(edges[edge + edgeTypeAt]!)
      ? String(edges[edge + edgeNameAt])
      : strings[edges[edge + edgeNameAt]!]!
  const describe = (node: number) => ({
    type: nodeTypes[nodes[node + typeAt]!]!,
    name: strings[nodes[node + nameAt]!]!,
  })
  const direct = into(new Set([targetNode]))
  const tables = into(new Set(direct.map((retainer) => retainer.from))).filter(
    (holder) => edgeName(holder.edge) === 'table',
  )
  return direct.map(({ from, edge }) => ({
    ...describe(from),
    edge: edgeName(edge),
    tableOf: tables
      .filter((holder) => holder.to === from)
      .map((holder) => describe(holder.from).name)
      .filter((name) => name === 'Map' || name === 'Set'),
  }))
}
