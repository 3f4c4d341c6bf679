/// One frame of a parse stack (16 bytes).
struct GrammarFrame: Equatable {
    var kind: UInt8
    var phase: UInt8
    var flag: UInt8 = 0
    var pad: UInt8 = 0
    var node: Int32
    var a: Int32 = 0
    var b: Int32 = 0

    static let value: UInt8 = 0     // a value of `node` not started yet
    static let object: UInt8 = 1    // a: next property index, b: property being read
    static let map: UInt8 = 2
    static let array: UInt8 = 3     // a: items so far
    static let string: UInt8 = 4    // a: code points so far, b: escape/UTF-8 state
    static let number: UInt8 = 5    // a: digits in the current part
    static let literal: UInt8 = 6   // a: literal trie node
    static let pattern: UInt8 = 7   // a: pattern DFA state
}

/// A set of parse stacks (the pushdown recognizer is nondeterministic for
/// anyOf, type lists and optional properties): up to `maxStacks` slots of
/// `maxDepth` frames each; `lens[s] < 0` marks a dead slot, 0 a finished
/// document.
final class GrammarStateSet {
    let maxStacks: Int
    let maxDepth: Int
    let frames: UnsafeMutablePointer<GrammarFrame>
    let lens: UnsafeMutablePointer<Int32>
    var count = 0

    init(maxStacks: Int, maxDepth: Int) {
        self.maxStacks = maxStacks
        self.maxDepth = maxDepth
        // GrammarFrame is a trivial type and a frame is read only after it was
        // written (lens bound every read), so the buffer is left uninitialized:
        // pages of rarely used slots and depths are never touched.
        frames = .allocate(capacity: maxStacks * maxDepth)
        lens = .allocate(capacity: maxStacks)
        lens.initialize(repeating: -1, count: maxStacks)
    }

    deinit {
        frames.deallocate()
        lens.deallocate()
    }

    /// A copy of slot `s` in a new slot, or nil when all slots are used.
    @inline(__always)
    func fork(_ s: Int) -> Int? {
        guard count < maxStacks else { return nil }
        let t = count
        count += 1
        let len = Int(lens[s])
        lens[t] = Int32(len)
        if len > 0 { (frames + t &* maxDepth).update(from: frames + s &* maxDepth, count: len) }
        return t
    }

    /// Appends a copy of `other`'s slot `s`.
    @inline(__always)
    func append(from other: GrammarStateSet, slot s: Int) -> Int? {
        guard count < maxStacks else { return nil }
        let t = count
        count += 1
        let len = Int(other.lens[s])
        lens[t] = Int32(len)
        if len > 0 { (frames + t &* maxDepth).update(from: other.frames + s &* other.maxDepth, count: len) }
        return t
    }

    func copy(from other: GrammarStateSet) {
        if other === self { return }
        count = 0
        for s in 0..<other.count { _ = append(from: other, slot: s) }
    }

    /// Removes dead slots and duplicate stacks.
    func compact() {
        var w = 0
        for r in 0..<count {
            let len = Int(lens[r])
            if len < 0 { continue }
            var duplicate = false
            if w > 0 {
                for q in 0..<w where Int(lens[q]) == len {
                    var same = true
                    let x = frames + q &* maxDepth, y = frames + r &* maxDepth
                    for k in 0..<len where x[k] != y[k] { same = false; break }
                    if same { duplicate = true; break }
                }
            }
            if duplicate { continue }
            if r != w {
                lens[w] = Int32(len)
                if len > 0 { (frames + w &* maxDepth).update(from: frames + r &* maxDepth, count: len) }
            }
            w += 1
        }
        count = w
    }
}

/// Per-sequence grammar state: a byte-level pushdown recognizer over the
/// compiled grammar, and the token mask it implies for a vocabulary.
///
/// Typical use per decode step: `maskLogits` on the raw logits, sample, then
/// `accept(token:)` (or use `Sampler.sample(logits:grammar:)`, which does all
/// three). `maskLogits` allocates nothing once every trie depth has been
/// visited; buffers are sized from the vocabulary. Not thread-safe: one
/// matcher per sequence (`copy()` makes another with the same state).
public final class GrammarMatcher {
    public let grammar: Grammar
    public let vocabulary: GrammarVocabulary
    let t: GrammarTables
    let maxDepth: Int
    /// Most parse stacks kept at once; further alternatives are dropped (the
    /// language only gets smaller, every kept stack can still finish).
    public static let maximumStacks = 32
    /// levels[0] is the current state; levels[d] the state after the first d
    /// bytes of the trie path being visited. Allocated on first use.
    var levels: [GrammarStateSet]
    /// Scratch for `accept`.
    let scratchA: GrammarStateSet
    let scratchB: GrammarStateSet
    /// Per-token allowed flag of the last mask.
    let allowed: UnsafeMutablePointer<UInt8>
    private(set) public var isFinished = false
    /// Set when the last `maskLogits` found no allowed token (the vocabulary
    /// cannot continue the document); the end-of-sequence tokens were left
    /// unmasked instead.
    private(set) public var hitDeadEnd = false

    public init(grammar: Grammar, vocabulary: GrammarVocabulary) {
        self.grammar = grammar
        self.vocabulary = vocabulary
        t = grammar.tables
        maxDepth = grammar.tables.maxDepth
        levels = [GrammarStateSet(maxStacks: Self.maximumStacks, maxDepth: maxDepth)]
        scratchA = GrammarStateSet(maxStacks: Self.maximumStacks, maxDepth: maxDepth)
        scratchB = GrammarStateSet(maxStacks: Self.maximumStacks, maxDepth: maxDepth)
        allowed = .allocate(capacity: vocabulary.size)
        allowed.initialize(repeating: 0, count: vocabulary.size)
        reset()
    }

    deinit { allowed.deallocate() }

    /// Back to the start of a document.
    public func reset() {
        let s = levels[0]
        s.count = 1
        s.lens[0] = 1
        s.frames[0] = GrammarFrame(kind: GrammarFrame.value, phase: 0, node: t.root)
        isFinished = false
        hitDeadEnd = false
    }

    /// A matcher with the same grammar, vocabulary and state.
    public func copy() -> GrammarMatcher {
        let m = GrammarMatcher(grammar: grammar, vocabulary: vocabulary)
        m.levels[0].copy(from: levels[0])
        m.isFinished = isFinished
        return m
    }

    /// Whether the bytes so far form a complete document (an end-of-sequence
    /// token is allowed now).
    public var isComplete: Bool { isFinished || Self.complete(levels[0], t) }

    /// Whether any byte can still follow (false once the top-level value is
    /// closed).
    public var canContinue: Bool {
        if isFinished { return false }
        let s = levels[0]
        for k in 0..<s.count where s.lens[k] > 0 { return true }
        return false
    }

    static func complete(_ s: GrammarStateSet, _ t: GrammarTables) -> Bool {
        for k in 0..<s.count {
            let len = s.lens[k]
            if len == 0 { return true }
            if len == 1 && lazilyComplete(s.frames[k &* s.maxDepth], t) { return true }
        }
        return false
    }

    /// A number or literal that is complete but could still be extended.
    @inline(__always)
    static func lazilyComplete(_ f: GrammarFrame, _ t: GrammarTables) -> Bool {
        switch f.kind {
        case GrammarFrame.number: return f.phase == 2 || f.phase == 3 || f.phase == 5 || f.phase == 8
        case GrammarFrame.literal: return t.litTerminal[Int(f.a)]
        default: return false
        }
    }

    // MARK: Accepting tokens and bytes

    /// Advances over the bytes of `token`; an end-of-sequence token is
    /// accepted only when the document is complete. On error the state is
    /// unchanged.
    public func accept(token: Int32) throws(GrammarError) {
        guard token >= 0, Int(token) < vocabulary.size else {
            throw .tokenOutOfRange(token: token, vocabularySize: vocabulary.size)
        }
        if isFinished { throw .alreadyFinished }
        if vocabulary.eosTokens.contains(token) {
            guard isComplete else { throw .tokenRejected(token: token) }
            isFinished = true
            return
        }
        let bytes = vocabulary.tokenBytes[Int(token)]
        guard !bytes.isEmpty, advance(bytes) else { throw .tokenRejected(token: token) }
    }

    /// Advances over raw bytes (for tests and prompts already in the output).
    /// Returns false, leaving the state unchanged, if they cannot continue the document.
    @discardableResult
    public func accept(bytes: [UInt8]) -> Bool {
        if isFinished { return false }
        return advance(bytes)
    }

    private func advance(_ bytes: [UInt8]) -> Bool {
        var from = levels[0]
        var into = scratchA
        for c in bytes {
            step(from, c, into)
            if into.count == 0 { return false }
            let next = into === scratchA ? scratchB : scratchA
            from = into
            into = next
        }
        levels[0].copy(from: from)
        return true
    }

    // MARK: Masking

    /// Sets -infinity on every logit whose token cannot continue the document
    /// (ids at or above the vocabulary size too). End-of-sequence tokens stay
    /// only when the document is complete. If no token at all is allowed
    /// (a vocabulary that cannot express the continuation; `check` on the
    /// vocabulary rules this out), the end-of-sequence tokens are left
    /// unmasked and `hitDeadEnd` is set.
    public func maskLogits(_ logits: UnsafeMutablePointer<Float>, count: Int) {
        let v = vocabulary
        let n = v.size
        allowed.update(repeating: 0, count: n)
        var allowedCount = 0
        if isFinished {
            for e in v.eosTokens { allowed[Int(e)] = 1; allowedCount += 1 }
        } else {
            if Self.complete(levels[0], t) {
                for e in v.eosTokens { allowed[Int(e)] = 1; allowedCount += 1 }
            }
            allowedCount += markAllowed()
        }
        hitDeadEnd = allowedCount == 0
        if hitDeadEnd {
            for e in v.eosTokens { allowed[Int(e)] = 1 }
        }
        let m = min(count, n)
        for i in 0..<m where allowed[i] == 0 { logits[i] = -.infinity }
        if count > n {
            for i in n..<count { logits[i] = -.infinity }
        }
    }

    /// The allowed token ids for the current state (for tests; allocates).
    public func allowedTokens() -> [Int32] {
        var logits = [Float](repeating: 0, count: vocabulary.size)
        logits.withUnsafeMutableBufferPointer { p in
            if let base = p.baseAddress { maskLogits(base, count: p.count) }
        }
        return logits.indices.filter { logits[$0] == 0 }.map { Int32($0) }
    }

    /// Marks the allowed tokens; returns how many. When every stack is inside
    /// plain string content, the plain tokens are allowed by their code point
    /// count alone (against the stack with the most room) and only the other
    /// tokens are walked.
    private func markAllowed() -> Int {
        let v = vocabulary
        let s = levels[0]
        var room: Int32 = -1
        for k in 0..<s.count {
            let len = Int(s.lens[k])
            guard len > 0 else { room = -1; break }
            let top = s.frames[k &* s.maxDepth &+ len &- 1]
            guard top.kind == GrammarFrame.string && top.phase == 1 else { room = -1; break }
            let maxLength: Int32 = top.node >= 0 ? t.params[Int(top.node) &* 5 &+ 1] : Int32.max
            room = max(room, maxLength &- top.a)
        }
        guard room >= 0 else { return walkTrie(v.trie) }
        var marked = 0
        for k in 0..<v.plainCount where v.plainCodePoints[k] <= room {
            allowed[Int(v.plainTokens[k])] = 1
            marked &+= 1
        }
        return marked &+ walkTrie(v.specialTrie)
    }

    /// Walks a token trie in preorder, stepping one byte per node from the
    /// parent's state and skipping subtrees whose state is empty; marks the
    /// tokens that end at live nodes. Returns how many were marked.
    private func walkTrie(_ trie: TokenTrie) -> Int {
        let needed = trie.maxDepth + 1
        while levels.count < needed {
            levels.append(GrammarStateSet(maxStacks: Self.maximumStacks, maxDepth: maxDepth))
        }
        var marked = 0
        var i = 0
        let end = trie.nodeCount
        levels.withUnsafeBufferPointer { lv in
            while i < end {
                let d = Int(trie.depth[i])
                let into = lv[d]
                step(lv[d &- 1], trie.byte[i], into)
                if into.count == 0 {
                    i = Int(trie.skip[i])
                    continue
                }
                let c = Int(trie.tokenCount[i])
                if c > 0 {
                    let s = Int(trie.tokenStart[i])
                    for k in 0..<c { allowed[Int(trie.tokens[s &+ k])] = 1 }
                    marked &+= c
                }
                i &+= 1
            }
        }
        return marked
    }

    // MARK: The recognizer

    /// into = every stack of `from` advanced by byte `c`.
    @inline(__always)
    func step(_ from: GrammarStateSet, _ c: UInt8, _ into: GrammarStateSet) {
        into.count = 0
        for s in 0..<from.count {
            guard let slot = into.append(from: from, slot: s) else { break }
            if !feed(into, slot, c) { into.lens[slot] = -1 }
        }
        if into.count > 1 || (into.count == 1 && into.lens[0] < 0) { into.compact() }
    }

    /// Whether `item` (an array frame's next item) may start at stack index `at`.
    @inline(__always)
    private func arrayItem(_ node: Int32, _ index: Int32, at: Int) -> Int32 {
        let p = Int(node) &* 5
        let prefixCount = t.params[p &+ 1]
        let maxItems = t.params[p &+ 4]
        if index >= maxItems { return -1 }
        let item = index < prefixCount ? t.prefixItems[Int(t.params[p] &+ index)] : t.params[p &+ 2]
        if item < 0 { return -1 }
        if index >= t.params[p &+ 3] && at &+ Int(t.minDepth[Int(item)]) > maxDepth { return -1 }
        return item
    }

    /// Whether an object frame at stack index `at` with next property index
    /// `next` has a required property left.
    @inline(__always)
    private func requiredLeft(_ node: Int32, _ next: Int32) -> Bool {
        let start = t.params[Int(node) &* 5], count = t.params[Int(node) &* 5 &+ 1]
        var j = next
        while j < count {
            if t.propRequired[Int(start &+ j)] { return true }
            j &+= 1
        }
        return false
    }

    /// Whether property j of an object may be chosen with its value at stack index `at`.
    @inline(__always)
    private func propertyViable(_ start: Int32, _ j: Int32, at: Int) -> Bool {
        let k = Int(start &+ j)
        return t.propRequired[k] || at &+ Int(t.minDepth[Int(t.propNode[k])]) <= maxDepth
    }

    /// Whether an object frame can take another property (after ',').
    @inline(__always)
    private func moreProperties(_ node: Int32, _ next: Int32, at: Int) -> Bool {
        let start = t.params[Int(node) &* 5], count = t.params[Int(node) &* 5 &+ 1]
        var j = next
        while j < count {
            if propertyViable(start, j, at: at) { return true }
            j &+= 1
        }
        return false
    }

    /// Feeds byte `c` to the stack in slot `s` of `set`, in place. May fork
    /// new slots (each fed `c` too). Returns false if the stack dies.
    private func feed(_ set: GrammarStateSet, _ s: Int, _ c: UInt8) -> Bool {
        let base = set.frames + s &* set.maxDepth
        while true {
            let len = Int(set.lens[s])
            if len == 0 { return false }
            let top = base + (len &- 1)
            switch top.pointee.kind {
            case GrammarFrame.value:
                let node = top.pointee.node
                let kind = t.kind[Int(node)]
                let p = Int(node) &* 5
                switch kind {
                case NodeKind.union:
                    let start = Int(t.params[p]), n = Int(t.params[p &+ 1])
                    var first: Int32 = -1
                    for k in start..<(start &+ n) {
                        let alt = t.alternatives[k]
                        if len &- 1 &+ Int(t.minDepth[Int(alt)]) > maxDepth { continue }
                        if first < 0 { first = alt; continue }
                        guard let f = set.fork(s) else { break }
                        set.frames[f &* set.maxDepth &+ len &- 1] = GrammarFrame(kind: GrammarFrame.value, phase: 0, node: alt)
                        if !feed(set, f, c) { set.lens[f] = -1 }
                    }
                    if first < 0 { return false }
                    top.pointee = GrammarFrame(kind: GrammarFrame.value, phase: 0, node: first)
                case NodeKind.object:
                    top.pointee = GrammarFrame(kind: GrammarFrame.object, phase: 0, node: node)
                case NodeKind.map:
                    top.pointee = GrammarFrame(kind: GrammarFrame.map, phase: 0, node: node)
                case NodeKind.array:
                    top.pointee = GrammarFrame(kind: GrammarFrame.array, phase: 0, node: node)
                case NodeKind.string:
                    top.pointee = GrammarFrame(kind: GrammarFrame.string, phase: 0, node: node)
                case NodeKind.number:
                    top.pointee = GrammarFrame(kind: GrammarFrame.number, phase: 0, node: node)
                case NodeKind.pattern:
                    top.pointee = GrammarFrame(kind: GrammarFrame.pattern, phase: 0, node: node, a: t.params[p])
                default:  // literal
                    top.pointee = GrammarFrame(kind: GrammarFrame.literal, phase: 0, node: node, a: t.params[p])
                }
                continue

            case GrammarFrame.object:
                let node = top.pointee.node
                switch top.pointee.phase {
                case 0:
                    guard c == 0x7B else { return false }  // {
                    top.pointee.phase = 1
                    return true
                case 1, 5:
                    if c == 0x20 && top.pointee.phase == 5 && top.pointee.flag == 0 {
                        top.pointee.flag = 1
                        return true
                    }
                    if c == 0x7D && top.pointee.phase == 1 {  // }
                        guard !requiredLeft(node, top.pointee.a) else { return false }
                        set.lens[s] = Int32(len &- 1)
                        return true
                    }
                    guard c == 0x22 else { return false }  // "
                    guard len < maxDepth else { return false }
                    let start = t.params[Int(node) &* 5], count = t.params[Int(node) &* 5 &+ 1]
                    var first: Int32 = -1
                    var j = top.pointee.a
                    while j < count {
                        let required = t.propRequired[Int(start &+ j)]
                        if propertyViable(start, j, at: len) {
                            if first < 0 {
                                first = j
                            } else if let f = set.fork(s) {
                                let fb = set.frames + f &* set.maxDepth
                                fb[len &- 1].phase = 2
                                fb[len &- 1].a = j &+ 1
                                fb[len &- 1].b = j
                                fb[len] = GrammarFrame(kind: GrammarFrame.literal, phase: 0, node: -1,
                                                       a: t.propKey[Int(start &+ j)])
                                set.lens[f] = Int32(len &+ 1)
                                if !feed(set, f, c) { set.lens[f] = -1 }
                            }
                        }
                        if required { break }
                        j &+= 1
                    }
                    if first < 0 { return false }
                    top.pointee.phase = 2
                    top.pointee.a = first &+ 1
                    top.pointee.b = first
                    base[len] = GrammarFrame(kind: GrammarFrame.literal, phase: 0, node: -1,
                                             a: t.propKey[Int(start &+ first)])
                    set.lens[s] = Int32(len &+ 1)
                    continue
                case 2:
                    guard c == 0x3A else { return false }  // :
                    top.pointee.phase = 3
                    top.pointee.flag = 0
                    return true
                case 3:
                    if c == 0x20 && top.pointee.flag == 0 {
                        top.pointee.flag = 1
                        return true
                    }
                    guard len < maxDepth else { return false }
                    let start = t.params[Int(node) &* 5]
                    top.pointee.phase = 4
                    base[len] = GrammarFrame(kind: GrammarFrame.value, phase: 0,
                                             node: t.propNode[Int(start &+ top.pointee.b)])
                    set.lens[s] = Int32(len &+ 1)
                    continue
                default:  // 4: after a value
                    if c == 0x2C {  // ,
                        guard moreProperties(node, top.pointee.a, at: len) else { return false }
                        top.pointee.phase = 5
                        top.pointee.flag = 0
                        return true
                    }
                    guard c == 0x7D, !requiredLeft(node, top.pointee.a) else { return false }
                    set.lens[s] = Int32(len &- 1)
                    return true
                }

            case GrammarFrame.map:
                let value = t.params[Int(top.pointee.node) &* 5]
                let valueFits = len &+ Int(t.minDepth[Int(value)]) <= maxDepth
                switch top.pointee.phase {
                case 0:
                    guard c == 0x7B else { return false }
                    top.pointee.phase = 1
                    return true
                case 1, 5:
                    if c == 0x20 && top.pointee.phase == 5 && top.pointee.flag == 0 {
                        top.pointee.flag = 1
                        return true
                    }
                    if c == 0x7D && top.pointee.phase == 1 {
                        set.lens[s] = Int32(len &- 1)
                        return true
                    }
                    guard c == 0x22, valueFits, len < maxDepth else { return false }
                    top.pointee.phase = 2
                    base[len] = GrammarFrame(kind: GrammarFrame.string, phase: 0, node: -1)
                    set.lens[s] = Int32(len &+ 1)
                    continue
                case 2:
                    guard c == 0x3A else { return false }
                    top.pointee.phase = 3
                    top.pointee.flag = 0
                    return true
                case 3:
                    if c == 0x20 && top.pointee.flag == 0 {
                        top.pointee.flag = 1
                        return true
                    }
                    guard len < maxDepth else { return false }
                    top.pointee.phase = 4
                    base[len] = GrammarFrame(kind: GrammarFrame.value, phase: 0, node: value)
                    set.lens[s] = Int32(len &+ 1)
                    continue
                default:
                    if c == 0x2C {
                        guard valueFits else { return false }
                        top.pointee.phase = 5
                        top.pointee.flag = 0
                        return true
                    }
                    guard c == 0x7D else { return false }
                    set.lens[s] = Int32(len &- 1)
                    return true
                }

            case GrammarFrame.array:
                let node = top.pointee.node
                let minItems = t.params[Int(node) &* 5 &+ 3]
                switch top.pointee.phase {
                case 0:
                    guard c == 0x5B else { return false }  // [
                    top.pointee.phase = 1
                    return true
                case 1, 3:
                    if c == 0x20 && top.pointee.phase == 3 && top.pointee.flag == 0 {
                        top.pointee.flag = 1
                        return true
                    }
                    if c == 0x5D && top.pointee.phase == 1 {  // ]
                        guard top.pointee.a >= minItems else { return false }
                        set.lens[s] = Int32(len &- 1)
                        return true
                    }
                    let item = arrayItem(node, top.pointee.a, at: len)
                    guard item >= 0, len < maxDepth else { return false }
                    top.pointee.phase = 2
                    top.pointee.a &+= 1
                    base[len] = GrammarFrame(kind: GrammarFrame.value, phase: 0, node: item)
                    set.lens[s] = Int32(len &+ 1)
                    continue
                default:  // 2: after an item
                    if c == 0x2C {
                        guard arrayItem(node, top.pointee.a, at: len) >= 0 else { return false }
                        top.pointee.phase = 3
                        top.pointee.flag = 0
                        return true
                    }
                    guard c == 0x5D, top.pointee.a >= minItems else { return false }
                    set.lens[s] = Int32(len &- 1)
                    return true
                }

            case GrammarFrame.string:
                return feedString(top, set, s, len, c)

            case GrammarFrame.pattern:
                // Raw UTF-8 only (no escapes): the DFA has no edges for '"',
                // backslash or control bytes.
                if top.pointee.phase == 0 {
                    guard c == 0x22 else { return false }
                    top.pointee.phase = 1
                    return true
                }
                let state = Int(top.pointee.a)
                if c == 0x22 {
                    guard t.patternAccepting[state] else { return false }
                    set.lens[s] = Int32(len &- 1)
                    return true
                }
                let nextState = t.patternNext[state &* 256 &+ Int(c)]
                guard nextState >= 0 else { return false }
                top.pointee.a = nextState
                return true

            case GrammarFrame.number:
                switch feedNumber(top, c) {
                case 1: return true
                case 0: return false
                default:  // complete before c: pop and give c to the parent
                    set.lens[s] = Int32(len &- 1)
                    continue
                }

            default:  // literal
                let n = Int(top.pointee.a)
                let es = Int(t.litEdgeStart[n]), ec = Int(t.litEdgeCount[n])
                var target: Int32 = -1
                for e in es..<(es &+ ec) where t.edgeByte[e] == c {
                    target = t.edgeTarget[e]
                    break
                }
                if target >= 0 {
                    top.pointee.a = target
                    if t.litTerminal[Int(target)] && t.litEdgeCount[Int(target)] == 0 {
                        set.lens[s] = Int32(len &- 1)
                    }
                    return true
                }
                guard t.litTerminal[n] else { return false }
                set.lens[s] = Int32(len &- 1)
                continue
            }
        }
    }

    @inline(__always)
    private func feedString(_ top: UnsafeMutablePointer<GrammarFrame>, _ set: GrammarStateSet, _ s: Int,
                            _ len: Int, _ c: UInt8) -> Bool {
        let node = top.pointee.node
        let minLength: Int32 = node >= 0 ? t.params[Int(node) &* 5] : 0
        let maxLength: Int32 = node >= 0 ? t.params[Int(node) &* 5 &+ 1] : Int32.max
        switch top.pointee.phase {
        case 0:
            guard c == 0x22 else { return false }
            top.pointee.phase = 1
            return true
        case 1:
            if c == 0x22 {
                guard top.pointee.a >= minLength else { return false }
                set.lens[s] = Int32(len &- 1)
                return true
            }
            guard top.pointee.a < maxLength else { return false }
            if c < 0x80 {
                if c < 0x20 { return false }
                if c == 0x5C { top.pointee.phase = 2 }  // backslash
                top.pointee.a &+= 1
                return true
            }
            var rest: Int32, lo: Int32 = 0x80, hi: Int32 = 0xBF
            switch c {
            case 0xC2...0xDF: rest = 1
            case 0xE0: rest = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: rest = 2
            case 0xED: rest = 2; hi = 0x9F
            case 0xF0: rest = 3; lo = 0x90
            case 0xF1...0xF3: rest = 3
            case 0xF4: rest = 3; hi = 0x8F
            default: return false
            }
            top.pointee.phase = 4
            top.pointee.b = rest | lo << 8 | hi << 16
            top.pointee.a &+= 1
            return true
        case 2:  // after a backslash
            switch c {
            case 0x22, 0x5C, 0x2F, 0x62, 0x66, 0x6E, 0x72, 0x74:  // " \ / b f n r t
                top.pointee.phase = 1
                return true
            case 0x75:  // u
                top.pointee.phase = 3
                top.pointee.b = 0
                return true
            default:
                return false
            }
        case 3:  // \u hex digits; b = digits << 16 | value
            let d: Int32
            switch c {
            case 0x30...0x39: d = Int32(c) - 0x30
            case 0x61...0x66: d = Int32(c) - 0x61 + 10
            case 0x41...0x46: d = Int32(c) - 0x41 + 10
            default: return false
            }
            let digits = (top.pointee.b >> 16) &+ 1
            let value = (top.pointee.b & 0xFFFF) << 4 | d
            // No surrogates: each escape is one code point on its own.
            if digits == 2 && value >= 0xD8 && value <= 0xDF { return false }
            if digits == 4 {
                top.pointee.phase = 1
                top.pointee.b = 0
            } else {
                top.pointee.b = digits << 16 | value
            }
            return true
        default:  // 4: UTF-8 continuation; b = rest | lo << 8 | hi << 16
            let b = top.pointee.b
            let lo = (b >> 8) & 0xFF, hi = (b >> 16) & 0xFF
            guard Int32(c) >= lo && Int32(c) <= hi else { return false }
            let rest = (b & 0xFF) &- 1
            if rest == 0 {
                top.pointee.phase = 1
                top.pointee.b = 0
            } else {
                top.pointee.b = rest | 0x80 << 8 | 0xBF << 16
            }
            return true
        }
    }

    static let maxIntegerDigits: Int32 = 15
    static let maxFractionDigits: Int32 = 15
    static let maxExponentDigits: Int32 = 3

    /// JSON number: 1 consumed, 0 rejected, 2 complete before c (pop).
    /// Phases: 0 start, 1 after '-', 2 integer digits, 3 after a leading 0,
    /// 4 after '.', 5 fraction digits, 6 after 'e', 7 after the exponent
    /// sign, 8 exponent digits. Complete in 2, 3, 5 and 8.
    @inline(__always)
    private func feedNumber(_ top: UnsafeMutablePointer<GrammarFrame>, _ c: UInt8) -> Int {
        let isDigit = c >= 0x30 && c <= 0x39
        let integer = t.params[Int(top.pointee.node) &* 5] != 0
        let phase = top.pointee.phase
        switch phase {
        case 0, 1:
            if c == 0x2D && phase == 0 { top.pointee.phase = 1; return 1 }
            guard isDigit else { return 0 }
            top.pointee.phase = c == 0x30 ? 3 : 2
            top.pointee.a = 1
            return 1
        case 2, 3:
            if isDigit {
                guard phase == 2, top.pointee.a < Self.maxIntegerDigits else { return 0 }
                top.pointee.a &+= 1
                return 1
            }
            if !integer && c == 0x2E { top.pointee.phase = 4; top.pointee.a = 0; return 1 }
            if !integer && (c == 0x65 || c == 0x45) { top.pointee.phase = 6; top.pointee.a = 0; return 1 }
            return 2
        case 4, 5:
            if isDigit {
                guard top.pointee.a < Self.maxFractionDigits else { return 0 }
                top.pointee.phase = 5
                top.pointee.a &+= 1
                return 1
            }
            if phase == 4 { return 0 }
            if c == 0x65 || c == 0x45 { top.pointee.phase = 6; top.pointee.a = 0; return 1 }
            return 2
        case 6, 7:
            if (c == 0x2B || c == 0x2D) && phase == 6 { top.pointee.phase = 7; return 1 }
            guard isDigit else { return 0 }
            top.pointee.phase = 8
            top.pointee.a = 1
            return 1
        default:  // 8
            if isDigit {
                guard top.pointee.a < Self.maxExponentDigits else { return 0 }
                top.pointee.a &+= 1
                return 1
            }
            return 2
        }
    }
}
