/// Node kinds of a compiled grammar.
enum NodeKind {
    /// Object with listed properties in order: p0 = first property index, p1 = count.
    static let object: UInt8 = 1
    /// Object with any keys: p0 = value node.
    static let map: UInt8 = 2
    /// Array: p0 = first prefix item index, p1 = prefix count, p2 = items node
    /// (-1: no items after the prefix), p3 = minItems, p4 = maxItems.
    static let array: UInt8 = 3
    /// String: p0 = minLength, p1 = maxLength (code points).
    static let string: UInt8 = 4
    /// Number: p0 = 1 for integers.
    static let number: UInt8 = 5
    /// One of a set of literal byte strings: p0 = literal trie root.
    static let literal: UInt8 = 6
    /// Any of the alternatives: p0 = first index in `alternatives`, p1 = count
    /// (flattened: no alternative is itself a union).
    static let union: UInt8 = 7
    /// String constrained by a pattern DFA: p0 = start state (global index
    /// into the pattern tables).
    static let pattern: UInt8 = 8
}

/// The compiled form of a grammar, immutable after construction and shared
/// by every matcher that uses it. The tables are plain buffers so that the
/// matcher's inner loop reads them without reference counting.
final class GrammarTables: @unchecked Sendable {
    // Safety: every buffer is written only in init and read-only afterwards.
    let nodeCount: Int
    let kind: UnsafeMutablePointer<UInt8>
    /// 5 parameters per node (see NodeKind).
    let params: UnsafeMutablePointer<Int32>
    /// Fewest stack frames a finished value of the node needs (including its
    /// own frame); Int32.max / 2 when no finite value exists.
    let minDepth: UnsafeMutablePointer<Int32>
    let propKey: UnsafeMutablePointer<Int32>
    let propNode: UnsafeMutablePointer<Int32>
    let propRequired: UnsafeMutablePointer<Bool>
    let prefixItems: UnsafeMutablePointer<Int32>
    let alternatives: UnsafeMutablePointer<Int32>
    /// Literal tries: per trie node, its edges edgeStart ..< edgeStart + edgeCount
    /// (bytes ascending) and whether a literal ends there.
    let litEdgeStart: UnsafeMutablePointer<Int32>
    let litEdgeCount: UnsafeMutablePointer<Int32>
    let litTerminal: UnsafeMutablePointer<Bool>
    let edgeByte: UnsafeMutablePointer<UInt8>
    let edgeTarget: UnsafeMutablePointer<Int32>
    /// Pattern DFAs of all pattern nodes: patternNext[state * 256 + byte] is
    /// the next state or -1.
    let patternNext: UnsafeMutablePointer<Int32>
    let patternAccepting: UnsafeMutablePointer<Bool>
    /// Every byte that appears in a literal, key or pattern transition.
    let literalBytes: [Bool]
    let root: Int32
    let maxDepth: Int

    static let unreachable: Int32 = Int32.max / 2

    init(builder b: GrammarBuilder, root: Int32, maxDepth: Int) {
        func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
            a.withUnsafeBufferPointer { src in
                if let base = src.baseAddress { p.initialize(from: base, count: a.count) }
            }
            return p
        }
        nodeCount = b.kind.count
        kind = copy(b.kind)
        params = copy(b.params)
        minDepth = copy(b.minDepth)
        propKey = copy(b.propKey)
        propNode = copy(b.propNode)
        propRequired = copy(b.propRequired)
        prefixItems = copy(b.prefixItems)
        alternatives = copy(b.flatAlternatives)
        var starts: [Int32] = [], counts: [Int32] = [], bytes: [UInt8] = [], targets: [Int32] = []
        var seen = [Bool](repeating: false, count: 256)
        for children in b.litChildren {
            starts.append(Int32(bytes.count))
            counts.append(Int32(children.count))
            for (byte, target) in children.sorted(by: { $0.key < $1.key }) {
                bytes.append(byte)
                targets.append(target)
                seen[Int(byte)] = true
            }
        }
        for (k, t) in b.patternNext.enumerated() where t >= 0 { seen[k & 255] = true }
        patternNext = copy(b.patternNext)
        patternAccepting = copy(b.patternAccepting)
        litEdgeStart = copy(starts)
        litEdgeCount = copy(counts)
        litTerminal = copy(b.litTerminal)
        edgeByte = copy(bytes)
        edgeTarget = copy(targets)
        literalBytes = seen
        self.root = root
        self.maxDepth = maxDepth
    }

    deinit {
        kind.deallocate(); params.deallocate(); minDepth.deallocate()
        propKey.deallocate(); propNode.deallocate(); propRequired.deallocate()
        prefixItems.deallocate(); alternatives.deallocate()
        litEdgeStart.deallocate(); litEdgeCount.deallocate(); litTerminal.deallocate()
        edgeByte.deallocate(); edgeTarget.deallocate()
        patternNext.deallocate(); patternAccepting.deallocate()
    }

    @inline(__always) func param(_ node: Int32, _ k: Int) -> Int32 { params[Int(node) &* 5 &+ k] }
}

/// A compiled grammar for constrained decoding: a JSON Schema subset or
/// "any JSON object". Build once per request (or cache per schema) and hand
/// it to one `GrammarMatcher` per sequence. See docs/GRAMMAR.md.
public struct Grammar: Sendable {
    let tables: GrammarTables

    /// Default limit on nesting, in matcher stack frames: objects, arrays
    /// and the innermost scalar each take one frame, so at most 31 nested
    /// containers.
    public static let defaultMaxDepth = 32
    /// Largest allowed `maxDepth`.
    public static let maximumMaxDepth = 128
    /// Most nodes a compiled schema may have.
    public static let maximumNodeCount = 20_000

    init(tables: GrammarTables) { self.tables = tables }

    /// Compiles a JSON Schema given as raw JSON bytes.
    public static func jsonSchema(_ schema: [UInt8], maxDepth: Int = defaultMaxDepth) throws(GrammarError) -> Grammar {
        try jsonSchema(try OrderedJSONParser.parse(schema), maxDepth: maxDepth)
    }

    /// Compiles a parsed JSON Schema.
    public static func jsonSchema(_ schema: OrderedJSON, maxDepth: Int = defaultMaxDepth) throws(GrammarError) -> Grammar {
        guard maxDepth >= 2, maxDepth <= maximumMaxDepth else {
            throw .invalidSchema(path: "#", message: "maxDepth \(maxDepth) is outside 2...\(maximumMaxDepth)")
        }
        var compiler = SchemaCompiler(root: schema)
        let root = try compiler.compile(schema, path: "#", depth: 0)
        compiler.builder.finish()
        let need = compiler.builder.minDepth[Int(root)]
        if need >= GrammarTables.unreachable {
            throw .unsatisfiable(path: "#", message: "no finite JSON value matches")
        }
        if Int(need) > maxDepth {
            throw .tooDeep(path: "#", limit: maxDepth)
        }
        return Grammar(tables: GrammarTables(builder: compiler.builder, root: root, maxDepth: maxDepth))
    }

    /// OpenAI's `json_object` mode: any JSON value whose top level is an object.
    public static func jsonObject(maxDepth: Int = defaultMaxDepth) -> Grammar {
        var b = GrammarBuilder()
        let anyValue = b.anyNode()
        let root = Int32(b.kind.count)
        b.add(NodeKind.map, [anyValue, 0, 0, 0, 0])
        let depth = min(max(maxDepth, 2), maximumMaxDepth)
        b.finish()
        return Grammar(tables: GrammarTables(builder: b, root: root, maxDepth: depth))
    }

    /// Number of compiled nodes (for diagnostics).
    public var nodeCount: Int { tables.nodeCount }
}

/// Mutable tables while compiling.
struct GrammarBuilder {
    var kind: [UInt8] = []
    var params: [Int32] = []
    var unionAlternatives: [Int: [Int32]] = [:]
    var flatAlternatives: [Int32] = []
    var minDepth: [Int32] = []
    var propKey: [Int32] = []
    var propNode: [Int32] = []
    var propRequired: [Bool] = []
    var prefixItems: [Int32] = []
    var litChildren: [[UInt8: Int32]] = []
    var litTerminal: [Bool] = []
    var anyID: Int32?
    var patternNext: [Int32] = []
    var patternAccepting: [Bool] = []

    /// Appends a pattern DFA to the tables; returns a pattern node.
    mutating func pattern(_ dfa: PatternDFA) -> Int32 {
        let base = Int32(patternAccepting.count)
        patternNext += dfa.next.map { $0 >= 0 ? $0 + base : -1 }
        patternAccepting += dfa.accepting
        return add(NodeKind.pattern, [base + dfa.start, 0, 0, 0, 0])
    }

    @discardableResult
    mutating func add(_ k: UInt8, _ p: [Int32]) -> Int32 {
        let id = Int32(kind.count)
        kind.append(k)
        params += p
        return id
    }

    mutating func reserveNode() -> Int32 { add(NodeKind.union, [0, 0, 0, 0, 0]) }

    mutating func set(_ id: Int32, _ k: UInt8, _ p: [Int32]) {
        kind[Int(id)] = k
        for j in 0..<5 { params[Int(id) * 5 + j] = p[j] }
    }

    mutating func setUnion(_ id: Int32, _ alts: [Int32]) {
        set(id, NodeKind.union, [0, 0, 0, 0, 0])
        unionAlternatives[Int(id)] = alts
    }

    mutating func union(_ alts: [Int32]) -> Int32 {
        if alts.count == 1 { return alts[0] }
        let id = reserveNode()
        unionAlternatives[Int(id)] = alts
        return id
    }

    /// A trie over `literals`; returns its root.
    mutating func literalTrie(_ literals: [[UInt8]]) -> Int32 {
        let root = Int32(litChildren.count)
        litChildren.append([:])
        litTerminal.append(false)
        for lit in literals {
            var n = root
            for byte in lit {
                if let next = litChildren[Int(n)][byte] {
                    n = next
                } else {
                    let next = Int32(litChildren.count)
                    litChildren.append([:])
                    litTerminal.append(false)
                    litChildren[Int(n)][byte] = next
                    n = next
                }
            }
            litTerminal[Int(n)] = true
        }
        return root
    }

    mutating func literal(_ literals: [[UInt8]]) -> Int32 {
        let root = literalTrie(literals)
        return add(NodeKind.literal, [root, 0, 0, 0, 0])
    }

    /// Any JSON value (created once).
    mutating func anyNode() -> Int32 {
        if let id = anyID { return id }
        let id = reserveNode()
        anyID = id
        let object = add(NodeKind.map, [id, 0, 0, 0, 0])
        let array = add(NodeKind.array, [Int32(prefixItems.count), 0, id, 0, Int32.max])
        let string = add(NodeKind.string, [0, Int32.max, 0, 0, 0])
        let number = add(NodeKind.number, [0, 0, 0, 0, 0])
        let words = literal([Array("true".utf8), Array("false".utf8), Array("null".utf8)])
        unionAlternatives[Int(id)] = [object, array, string, number, words]
        return id
    }

    /// Flattens unions and computes minDepth.
    mutating func finish() {
        let n = kind.count
        // Flattened alternatives: every non-union node reachable through unions.
        var flat: [[Int32]] = Array(repeating: [], count: n)
        for id in 0..<n where kind[id] == NodeKind.union {
            var seen = Set<Int32>()
            var out: [Int32] = []
            var work: [Int32] = [Int32(id)]
            while let x = work.popLast() {
                guard seen.insert(x).inserted else { continue }
                if kind[Int(x)] == NodeKind.union {
                    work += (unionAlternatives[Int(x)] ?? []).reversed()
                } else {
                    out.append(x)
                }
            }
            flat[id] = out
        }
        flatAlternatives = []
        for id in 0..<n where kind[id] == NodeKind.union {
            params[id * 5] = Int32(flatAlternatives.count)
            params[id * 5 + 1] = Int32(flat[id].count)
            flatAlternatives += flat[id]
        }
        // minDepth by fixpoint iteration.
        let inf = GrammarTables.unreachable
        minDepth = Array(repeating: inf, count: n)
        var changed = true
        while changed {
            changed = false
            for id in 0..<n {
                let p = id * 5
                var d: Int32
                switch kind[id] {
                case NodeKind.string, NodeKind.number, NodeKind.literal, NodeKind.pattern:
                    d = 1
                case NodeKind.map:
                    d = 2
                case NodeKind.object:
                    d = 2
                    for j in Int(params[p])..<Int(params[p] + params[p + 1]) where propRequired[j] {
                        d = max(d, min(inf, 1 + minDepth[Int(propNode[j])]))
                    }
                case NodeKind.array:
                    d = 2
                    let prefixStart = Int(params[p]), prefixCount = Int(params[p + 1])
                    let items = params[p + 2], minItems = Int(params[p + 3])
                    for k in 0..<minItems {
                        let item: Int32 = k < prefixCount ? prefixItems[prefixStart + k] : items
                        if item < 0 { d = inf; break }
                        d = max(d, min(inf, 1 + minDepth[Int(item)]))
                        if k >= prefixCount { break }  // the rest are the same node
                    }
                default:  // union
                    d = inf
                    for x in flat[id] { d = min(d, minDepth[Int(x)]) }
                }
                if d < minDepth[id] {
                    minDepth[id] = d
                    changed = true
                }
            }
        }
    }
}
