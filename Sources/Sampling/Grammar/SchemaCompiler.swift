/// JSON Schema subset -> grammar nodes. See docs/GRAMMAR.md for the subset.
struct SchemaCompiler {
    let root: OrderedJSON
    var builder = GrammarBuilder()
    /// `$ref` target -> node (reserved before the target is compiled, so
    /// recursion resolves to it).
    var refs: [String: Int32] = [:]

    static let maximumSchemaDepth = 64

    /// Keywords that only describe and never change the output.
    static let ignored: Set<String> = [
        "title", "description", "examples", "example", "$schema", "default", "$id", "$comment",
        "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "format", "$anchor",
        "contentEncoding", "contentMediaType",
    ]
    /// Keywords this compiler implements.
    static let handled: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "prefixItems",
        "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "nullable",
        "minLength", "maxLength", "uniqueItems", "pattern",
    ]
    /// Keywords that would change the output and are not implemented (an
    /// error rather than silently unconstrained output). Other unknown
    /// keywords are annotations and are ignored, as validators do.
    static let unsupported: Set<String> = [
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "allOf", "not", "if", "then", "else", "patternProperties", "propertyNames",
        "minProperties", "maxProperties", "contains", "minContains", "maxContains",
        "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties",
        "unevaluatedItems", "additionalItems", "$dynamicRef", "$recursiveRef", "contentSchema",
        "$dynamicAnchor", "$recursiveAnchor",
    ]
    static let typeNames = ["object", "array", "string", "number", "integer", "boolean", "null"]

    init(root: OrderedJSON) { self.root = root }

    static func escapePointer(_ s: String) -> String {
        s.replacingOccurrences("~", "~0").replacingOccurrences("/", "~1")
    }

    func nonNegativeInt(_ v: OrderedJSON?, _ keyword: String, _ path: String) throws(GrammarError) -> Int32? {
        guard let v else { return nil }
        guard case let .number(_, x) = v, x >= 0, x == x.rounded() else {
            throw .invalidSchema(path: path + "/" + keyword, message: "expected a non-negative integer")
        }
        return x >= Double(Int32.max) ? Int32.max : Int32(x)
    }

    mutating func compile(_ schema: OrderedJSON, path: String, depth: Int) throws(GrammarError) -> Int32 {
        guard depth <= Self.maximumSchemaDepth else { throw .tooDeep(path: path, limit: Self.maximumSchemaDepth) }
        guard builder.kind.count < Grammar.maximumNodeCount else { throw .tooLarge(limit: Grammar.maximumNodeCount) }
        let members: [(key: String, value: OrderedJSON)]
        switch schema {
        case let .bool(b):
            if b { return builder.anyNode() }
            return builder.union([])  // matches nothing; only an error if required
        case let .object(m):
            members = m
        default:
            throw .invalidSchema(path: path, message: "expected a schema object or boolean")
        }
        for (key, _) in members {
            if Self.unsupported.contains(key) { throw .unsupportedKeyword(keyword: key, path: path) }
        }
        if case let .bool(unique)? = schema["uniqueItems"], unique {
            throw .unsupportedKeyword(keyword: "uniqueItems", path: path)
        }
        var nullable = false
        if let n = schema["nullable"] {
            guard case let .bool(b) = n else { throw .invalidSchema(path: path + "/nullable", message: "expected a boolean") }
            nullable = b
        }
        func withNull(_ id: Int32) -> Int32 {
            nullable ? builder.union([id, builder.literal([Array("null".utf8)])]) : id
        }
        let constraining = members.map(\.key).filter { Self.handled.contains($0) && $0 != "nullable" }

        if let ref = schema["$ref"] {
            if let other = constraining.first(where: { $0 != "$ref" }) {
                throw .unsupportedKeyword(keyword: other, path: path + " (alongside $ref)")
            }
            guard case let .string(r) = ref else { throw .invalidSchema(path: path + "/$ref", message: "expected a string") }
            return withNull(try resolve(r, path: path + "/$ref", depth: depth))
        }

        if let e = schema["enum"] ?? schema["const"] {
            if let other = constraining.first(where: { $0 != "enum" && $0 != "const" && $0 != "type" }) {
                throw .unsupportedKeyword(keyword: other, path: path + " (alongside enum/const)")
            }
            var values: [OrderedJSON]
            if schema["enum"] != nil {
                guard case let .array(items) = e else { throw .invalidSchema(path: path + "/enum", message: "expected an array") }
                values = items
                if let c = schema["const"] { values = values.filter { $0 == c } }
            } else {
                values = [e]
            }
            if nullable { values.append(.null) }
            guard !values.isEmpty else { throw .unsatisfiable(path: path + "/enum", message: "no allowed value") }
            return builder.literal(values.map(\.compactBytes))
        }

        for keyword in ["anyOf", "oneOf"] {
            guard let list = schema[keyword] else { continue }
            if let other = constraining.first(where: { $0 != keyword }) {
                throw .unsupportedKeyword(keyword: other, path: path + " (alongside \(keyword))")
            }
            guard case let .array(alts) = list, !alts.isEmpty else {
                throw .invalidSchema(path: path + "/" + keyword, message: "expected a non-empty array of schemas")
            }
            var ids: [Int32] = []
            for (i, alt) in alts.enumerated() {
                ids.append(try compile(alt, path: path + "/\(keyword)/\(i)", depth: depth + 1))
            }
            if nullable { ids.append(builder.literal([Array("null".utf8)])) }
            let id = builder.reserveNode()
            builder.setUnion(id, ids)
            return id
        }

        // Types: explicit, or inferred from the keywords present.
        var types: [String] = []
        switch schema["type"] {
        case let .string(t)?:
            types = [t]
        case let .array(list)?:
            for (i, t) in list.enumerated() {
                guard case let .string(name) = t else {
                    throw .invalidSchema(path: path + "/type/\(i)", message: "expected a type name")
                }
                types.append(name)
            }
            guard !types.isEmpty else { throw .invalidSchema(path: path + "/type", message: "empty type list") }
        case nil:
            let keys = Set(members.map(\.key))
            if !keys.isDisjoint(with: ["properties", "required", "additionalProperties"]) { types.append("object") }
            if !keys.isDisjoint(with: ["items", "prefixItems", "minItems", "maxItems"]) { types.append("array") }
            if !keys.isDisjoint(with: ["minLength", "maxLength", "pattern"]) { types.append("string") }
            if types.isEmpty { return withNull(builder.anyNode()) }
        default:
            throw .invalidSchema(path: path + "/type", message: "expected a string or an array of strings")
        }
        if nullable && !types.contains("null") { types.append("null") }

        var ids: [Int32] = []
        for t in types {
            switch t {
            case "object": ids.append(try object(schema, path: path, depth: depth))
            case "array": ids.append(try array(schema, path: path, depth: depth))
            case "string":
                if let p = schema["pattern"] {
                    guard case let .string(text) = p else {
                        throw .invalidSchema(path: path + "/pattern", message: "expected a string")
                    }
                    if schema["minLength"] != nil || schema["maxLength"] != nil {
                        throw .unsupportedKeyword(keyword: "pattern", path: path + " (together with minLength/maxLength)")
                    }
                    ids.append(builder.pattern(try PatternCompiler.compile(text, path: path + "/pattern")))
                    continue
                }
                let minL = try nonNegativeInt(schema["minLength"], "minLength", path) ?? 0
                let maxL = try nonNegativeInt(schema["maxLength"], "maxLength", path) ?? Int32.max
                guard minL <= maxL else {
                    throw .unsatisfiable(path: path, message: "minLength \(minL) > maxLength \(maxL)")
                }
                ids.append(builder.add(NodeKind.string, [minL, maxL, 0, 0, 0]))
            case "number": ids.append(builder.add(NodeKind.number, [0, 0, 0, 0, 0]))
            case "integer": ids.append(builder.add(NodeKind.number, [1, 0, 0, 0, 0]))
            case "boolean": ids.append(builder.literal([Array("true".utf8), Array("false".utf8)]))
            case "null": ids.append(builder.literal([Array("null".utf8)]))
            default:
                throw .invalidSchema(path: path + "/type", message: "unknown type \"\(t)\"; expected one of \(Self.typeNames.joined(separator: ", "))")
            }
        }
        return builder.union(ids)
    }

    mutating func object(_ schema: OrderedJSON, path: String, depth: Int) throws(GrammarError) -> Int32 {
        var required: [String] = []
        if let r = schema["required"] {
            guard case let .array(list) = r else { throw .invalidSchema(path: path + "/required", message: "expected an array of strings") }
            for (i, x) in list.enumerated() {
                guard case let .string(s) = x else {
                    throw .invalidSchema(path: path + "/required/\(i)", message: "expected a string")
                }
                required.append(s)
            }
        }
        let additional = schema["additionalProperties"]
        guard let props = schema["properties"] else {
            // No properties: any keys, values per additionalProperties.
            if case .bool(false)? = additional {
                if let r = required.first {
                    throw .unsatisfiable(path: path + "/required", message: "\"\(r)\" is required but no property is allowed")
                }
                return builder.add(NodeKind.object, [Int32(builder.propKey.count), 0, 0, 0, 0])
            }
            if !required.isEmpty {
                throw .unsupportedKeyword(keyword: "required", path: path + " (without properties)")
            }
            let value = try additional.map { (a: OrderedJSON) throws(GrammarError) -> Int32 in
                try compile(a, path: path + "/additionalProperties", depth: depth + 1)
            } ?? builder.anyNode()
            return builder.add(NodeKind.map, [value, 0, 0, 0, 0])
        }
        switch additional {
        case nil, .bool(false)?: break
        default:
            throw .unsupportedKeyword(keyword: "additionalProperties", path: path + " (only false is supported together with properties)")
        }
        guard case let .object(list) = props else {
            throw .invalidSchema(path: path + "/properties", message: "expected an object")
        }
        for r in required where !list.contains(where: { $0.key == r }) {
            throw .unsatisfiable(path: path + "/required", message: "\"\(r)\" is required but not among the properties and additionalProperties is false")
        }
        var seen = Set<String>()
        var compiled: [(key: Int32, node: Int32, required: Bool)] = []
        for (name, sub) in list {
            guard seen.insert(name).inserted else {
                throw .invalidSchema(path: path + "/properties", message: "duplicate property \"\(name)\"")
            }
            let node = try compile(sub, path: path + "/properties/" + Self.escapePointer(name), depth: depth + 1)
            var keyBytes: [UInt8] = []
            OrderedJSON.serializeString(Array(name.utf8), into: &keyBytes)
            compiled.append((builder.literalTrie([keyBytes]), node, required.contains(name)))
        }
        let start = Int32(builder.propKey.count)
        for c in compiled {
            builder.propKey.append(c.key)
            builder.propNode.append(c.node)
            builder.propRequired.append(c.required)
        }
        return builder.add(NodeKind.object, [start, Int32(compiled.count), 0, 0, 0])
    }

    mutating func array(_ schema: OrderedJSON, path: String, depth: Int) throws(GrammarError) -> Int32 {
        var prefix: [Int32] = []
        var prefixSchemas: [OrderedJSON] = []
        var prefixPath = path + "/prefixItems"
        if let p = schema["prefixItems"] {
            guard case let .array(list) = p else { throw .invalidSchema(path: prefixPath, message: "expected an array of schemas") }
            prefixSchemas = list
        }
        var items: Int32 = -1
        switch schema["items"] {
        case nil:
            // Without prefixItems: any items. After prefixItems: none (stricter
            // than JSON Schema, which would allow any further items).
            if schema["prefixItems"] == nil { items = builder.anyNode() }
        case .bool(false)?:
            items = -1
        case let .array(list)?:
            // Draft 4-2019 tuple form.
            guard schema["prefixItems"] == nil else {
                throw .invalidSchema(path: path + "/items", message: "an array of schemas together with prefixItems")
            }
            prefixSchemas = list
            prefixPath = path + "/items"
        case let s?:
            items = try compile(s, path: path + "/items", depth: depth + 1)
        }
        for (i, s) in prefixSchemas.enumerated() {
            prefix.append(try compile(s, path: prefixPath + "/\(i)", depth: depth + 1))
        }
        let minItems = try nonNegativeInt(schema["minItems"], "minItems", path) ?? 0
        let maxItems = try nonNegativeInt(schema["maxItems"], "maxItems", path) ?? Int32.max
        guard minItems <= maxItems else {
            throw .unsatisfiable(path: path, message: "minItems \(minItems) > maxItems \(maxItems)")
        }
        if items < 0 && Int(minItems) > prefix.count {
            throw .unsatisfiable(path: path, message: "minItems \(minItems) but only \(prefix.count) items are allowed")
        }
        let start = Int32(builder.prefixItems.count)
        builder.prefixItems += prefix
        return builder.add(NodeKind.array, [start, Int32(prefix.count), items, minItems, maxItems])
    }

    mutating func resolve(_ ref: String, path: String, depth: Int) throws(GrammarError) -> Int32 {
        if let id = refs[ref] { return id }
        let target: OrderedJSON
        if ref == "#" {
            target = root
        } else {
            let parts = ref.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, parts[0] == "#", parts[1] == "$defs" || parts[1] == "definitions" else {
                throw .unresolvedReference(ref: ref, path: path)
            }
            let name = parts[2].replacingOccurrences("~1", "/").replacingOccurrences("~0", "~")
            guard let t = root[parts[1]]?[name] else { throw .unresolvedReference(ref: ref, path: path) }
            target = t
        }
        let id = builder.reserveNode()
        refs[ref] = id
        let body = try compile(target, path: ref, depth: depth + 1)
        builder.setUnion(id, [body])
        return id
    }
}

extension String {
    /// Plain substring replacement (Foundation-free).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[rest.startIndex..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
