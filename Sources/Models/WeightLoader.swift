import GGUF
import Tensors

/// Float vectors a model keeps (norm weights, mixing coefficients, biases), allocated once
/// at load and freed with the model. Pointers stay valid for the arena's lifetime.
///
/// `@unchecked Sendable`: written only while the model loads, read-only afterwards.
public final class FloatArena: @unchecked Sendable {
    private var blocks: [UnsafeMutablePointer<Float>] = []
    public private(set) var floatCount = 0

    public init() {}

    deinit { for b in blocks { b.deallocate() } }

    /// `count` zeroed floats.
    public func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        blocks.append(p)
        floatCount += count
        return p
    }
}

/// Looks up a model's tensors by llama.cpp's names and checks them against the shapes the
/// architecture needs: matrices as views into the mapped file, small vectors dequantized
/// into a `FloatArena`.
struct WeightLoader {
    let file: GGUFFile
    let kernels: Kernels
    let arena: FloatArena

    func info(_ name: String) throws(ModelError) -> GGUFTensorInfo {
        guard let t = file.tensorInfo(named: name) else { throw .missingTensor(name: name) }
        return t
    }

    func has(_ name: String) -> Bool { file.tensorInfo(named: name) != nil }

    /// Dims without trailing ones (ggml pads shapes with 1s).
    static func trimmed(_ dims: [Int]) -> [Int] {
        var d = dims
        while d.count > 1, d.last == 1 { d.removeLast() }
        return d
    }

    func quantType(_ t: GGUFTensorInfo) throws(ModelError) -> QuantType {
        guard let q = QuantType(ggmlType: t.type.rawValue) else {
            throw .unsupportedType(tensor: t.name, type: t.type.name)
        }
        return q
    }

    /// A weight matrix applied as y = W x with x: [inputs], y: [outputs]; the tensor's
    /// shape is (inputs, outputs) in ggml order.
    func matrix(_ name: String, inputs: Int, outputs: Int) throws(ModelError) -> WeightMatrix {
        let t = try info(name)
        guard WeightLoader.trimmed(t.dims) == WeightLoader.trimmed([inputs, outputs]) else {
            throw .wrongShape(tensor: name, expected: [inputs, outputs], found: t.dims)
        }
        return try view(t, inputs: inputs, outputs: outputs, offset: 0)
    }

    /// The `count` matrices of a 3-D tensor of shape (inputs, outputs, count).
    func matrices(_ name: String, inputs: Int, outputs: Int, count: Int) throws(ModelError) -> [WeightMatrix] {
        let t = try info(name)
        guard t.dims == [inputs, outputs, count] else {
            throw .wrongShape(tensor: name, expected: [inputs, outputs, count], found: t.dims)
        }
        var out: [WeightMatrix] = []
        for i in 0..<count {
            out.append(try view(t, inputs: inputs, outputs: outputs, offset: i * outputs * t.rowByteCount))
        }
        return out
    }

    private func view(_ t: GGUFTensorInfo, inputs: Int, outputs: Int, offset: Int) throws(ModelError) -> WeightMatrix {
        let type = try quantType(t)
        guard kernels.supports(type) else {
            throw .noKernel(tensor: t.name, type: type.name, path: kernels.path.name)
        }
        let data = file.data(of: t)
        guard let base = data.baseAddress else { throw .missingTensor(name: t.name) }
        do {
            return try WeightMatrix(type: type, rows: outputs, cols: inputs, region: base, available: data.count,
                                    offset: offset, name: t.name, owner: file)
        } catch {
            throw .tensor(name: t.name, error)
        }
    }

    /// A tensor of `count` elements (any shape with that many) as floats in the arena.
    func vector(_ name: String, count: Int) throws(ModelError) -> UnsafeMutablePointer<Float> {
        let t = try info(name)
        guard t.elementCount == count else {
            throw .wrongShape(tensor: name, expected: [count], found: t.dims)
        }
        let type = try quantType(t)
        guard let dq = kernels.dequantize(type) else { throw .unsupportedType(tensor: name, type: type.name) }
        let out = arena.allocate(count)
        guard let base = file.data(of: t).baseAddress else { throw .missingTensor(name: name) }
        dq(base, out, Int64(count))
        for i in 0..<count where !out[i].isFinite {
            throw .badMetadata(key: name, expected: "finite values", found: "\(out[i]) at element \(i)")
        }
        return out
    }

    /// A tensor of `count` elements when present, else nil.
    func optionalVector(_ name: String, count: Int) throws(ModelError) -> UnsafeMutablePointer<Float>? {
        has(name) ? try vector(name, count: count) : nil
    }

    // MARK: metadata

    func int(_ key: String) throws(ModelError) -> Int {
        guard let v = file.metadata[key] else { throw .badMetadata(key: key, expected: "an integer", found: "nothing") }
        guard let i = v.int else { throw .badMetadata(key: key, expected: "an integer", found: v.typeName) }
        return i
    }

    func positiveInt(_ key: String) throws(ModelError) -> Int {
        let i = try int(key)
        guard i > 0 else { throw .badMetadata(key: key, expected: "a positive integer", found: "\(i)") }
        return i
    }

    func float(_ key: String) throws(ModelError) -> Float {
        guard let v = file.metadata[key] else { throw .badMetadata(key: key, expected: "a number", found: "nothing") }
        guard let d = v.double, d.isFinite else { throw .badMetadata(key: key, expected: "a finite number", found: v.description) }
        return Float(d)
    }

    func optionalInt(_ key: String) throws(ModelError) -> Int? {
        file.metadata[key] == nil ? nil : try int(key)
    }

    func optionalFloat(_ key: String) throws(ModelError) -> Float? {
        file.metadata[key] == nil ? nil : try float(key)
    }
}
