/// GGUF metadata value type ids.
public enum GGUFValueType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case uint8 = 0
    case int8 = 1
    case uint16 = 2
    case int16 = 3
    case uint32 = 4
    case int32 = 5
    case float32 = 6
    case bool = 7
    case string = 8
    case array = 9
    case uint64 = 10
    case int64 = 11
    case float64 = 12

    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }

    /// Encoded size of a scalar of this type, nil for string and array.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type takes in a file.
    var minimumEncodedSize: Int {
        switch self {
        case .string: 8
        case .array: 12
        default: fixedSize ?? 1
        }
    }
}

/// A typed array: its element type (also kept when it is empty) and its values.
public struct GGUFArray: Sendable, Equatable {
    public var elementType: GGUFValueType
    public var values: [GGUFValue]

    public init(elementType: GGUFValueType, values: [GGUFValue]) {
        self.elementType = elementType
        self.values = values
    }

    public var count: Int { values.count }
}

/// One metadata value.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// Any integer type, when the value is non-negative.
    public var uint64: UInt64? {
        switch self {
        case let .uint8(v): UInt64(v)
        case let .uint16(v): UInt64(v)
        case let .uint32(v): UInt64(v)
        case let .uint64(v): v
        case let .int8(v): UInt64(exactly: v)
        case let .int16(v): UInt64(exactly: v)
        case let .int32(v): UInt64(exactly: v)
        case let .int64(v): UInt64(exactly: v)
        default: nil
        }
    }

    /// Any integer type, when the value fits in an Int64.
    public var int64: Int64? {
        switch self {
        case let .uint8(v): Int64(v)
        case let .uint16(v): Int64(v)
        case let .uint32(v): Int64(v)
        case let .uint64(v): Int64(exactly: v)
        case let .int8(v): Int64(v)
        case let .int16(v): Int64(v)
        case let .int32(v): Int64(v)
        case let .int64(v): v
        default: nil
        }
    }

    /// Any integer type, when the value fits in an Int.
    public var int: Int? { int64.flatMap { Int(exactly: $0) } }

    /// float32 or float64.
    public var double: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: nil
        }
    }

    /// float32 or float64 as a Float.
    public var float: Float? {
        switch self {
        case let .float32(v): v
        case let .float64(v): Float(v)
        default: nil
        }
    }

    public var bool: Bool? {
        if case let .bool(v) = self { return v }
        return nil
    }

    public var string: String? {
        if case let .string(v) = self { return v }
        return nil
    }

    /// The elements of an array value.
    public var array: [GGUFValue]? {
        if case let .array(a) = self { return a.values }
        return nil
    }

    /// An array value with its element type.
    public var typedArray: GGUFArray? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// Type name as written in errors and `inspect`: "uint32", "array[string]", ...
    public var typeName: String {
        if case let .array(a) = self { return "array[\(a.elementType)]" }
        return type.description
    }

    public var description: String {
        switch self {
        case let .uint8(v): "\(v)"
        case let .int8(v): "\(v)"
        case let .uint16(v): "\(v)"
        case let .int16(v): "\(v)"
        case let .uint32(v): "\(v)"
        case let .int32(v): "\(v)"
        case let .float32(v): "\(v)"
        case let .bool(v): "\(v)"
        case let .string(v): v
        case let .array(a): "[" + a.values.map(\.description).joined(separator: ", ") + "]"
        case let .uint64(v): "\(v)"
        case let .int64(v): "\(v)"
        case let .float64(v): "\(v)"
        }
    }
}

/// Metadata key/value pairs in file order, with lookup by key.
public struct GGUFMetadata: Sendable, Equatable {
    public private(set) var keys: [String] = []
    public private(set) var values: [String: GGUFValue] = [:]

    public init() {}

    public var count: Int { keys.count }

    public subscript(key: String) -> GGUFValue? { values[key] }

    /// Appends a pair; returns false (and changes nothing) when the key exists.
    @discardableResult
    mutating func insert(_ key: String, _ value: GGUFValue) -> Bool {
        if values[key] != nil { return false }
        keys.append(key)
        values[key] = value
        return true
    }

    /// Pairs in file order.
    public var pairs: [(key: String, value: GGUFValue)] {
        keys.compactMap { k in values[k].map { (k, $0) } }
    }

    /// An integer of any width that fits in an Int.
    public func requireInt(_ key: String) throws(GGUFError) -> Int {
        guard let v = values[key] else { throw .missingKey(key: key) }
        guard v.int64 != nil || v.uint64 != nil else {
            throw .wrongType(key: key, expected: "an integer", found: v.typeName)
        }
        guard let i = v.int else {
            throw .valueOutOfRange(key: key, expected: "an integer in Int range", found: v.description)
        }
        return i
    }

    /// A float of either width, or an integer (converted).
    public func requireFloat(_ key: String) throws(GGUFError) -> Double {
        guard let v = values[key] else { throw .missingKey(key: key) }
        if let d = v.double { return d }
        if let i = v.int64 { return Double(i) }
        if let u = v.uint64 { return Double(u) }
        throw .wrongType(key: key, expected: "a float", found: v.typeName)
    }

    public func requireString(_ key: String) throws(GGUFError) -> String {
        guard let v = values[key] else { throw .missingKey(key: key) }
        guard let s = v.string else { throw .wrongType(key: key, expected: "string", found: v.typeName) }
        return s
    }

    public func requireBool(_ key: String) throws(GGUFError) -> Bool {
        guard let v = values[key] else { throw .missingKey(key: key) }
        guard let b = v.bool else { throw .wrongType(key: key, expected: "bool", found: v.typeName) }
        return b
    }

    public func requireArray(_ key: String) throws(GGUFError) -> GGUFArray {
        guard let v = values[key] else { throw .missingKey(key: key) }
        guard let a = v.typedArray else { throw .wrongType(key: key, expected: "array", found: v.typeName) }
        return a
    }
}
