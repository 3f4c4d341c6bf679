import GGUF
import Tensors

/// Everything that can be wrong with a model file, a state or a request to a model. Each
/// case names the file, key or tensor and says what was expected and what was found.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The GGUF container itself is broken or unreadable.
    case file(GGUFError)
    /// general.architecture names no architecture Roost runs.
    case unsupportedArchitecture(found: String?)
    /// A metadata key is missing or has an unusable value.
    case badMetadata(key: String, expected: String, found: String)
    case missingTensor(name: String)
    /// A tensor's shape (ggml order, ne0 first) is not what the architecture needs.
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    /// A tensor's element type is one Roost cannot compute with (or not for this use).
    case unsupportedType(tensor: String, type: String)
    /// The selected kernel path cannot multiply this weight type.
    case noKernel(tensor: String, type: String, path: String)
    case tensor(name: String, TensorError)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(token: Int32, vocabulary: Int)
    /// More tokens in one call than the workspace was sized for.
    case tooManyTokens(count: Int, maximum: Int)
    /// A state that belongs to another model, architecture or format.
    case stateMismatch(String)
    /// A serialized state that is truncated or corrupt.
    case corruptState(String)
    /// A batched step whose size, states or workspace do not fit (empty, larger than the
    /// workspace, token and state counts that differ, one state twice).
    case invalidBatch(String)
    /// A sequence would hold `count` tokens, more than the model's context length `limit`.
    case contextFull(count: Int, limit: Int)
    /// The model's heads cannot be kept in a KV cache of this type (Q8_0 needs head sizes
    /// that are multiples of 32).
    case kvCacheUnsupported(type: String, headSize: Int)

    public var description: String {
        switch self {
        case let .file(e): e.description
        case let .unsupportedArchitecture(found):
            "unsupported architecture \(found.map { "'\($0)'" } ?? "(general.architecture missing)"); supported: "
                + Architecture.allCases.map(\.rawValue).joined(separator: ", ")
        case let .badMetadata(key, expected, found): "metadata \(key): expected \(expected), found \(found)"
        case let .missingTensor(name): "tensor \(name) is missing"
        case let .wrongShape(tensor, expected, found):
            "tensor \(tensor): expected shape \(expected), found \(found)"
        case let .unsupportedType(tensor, type): "tensor \(tensor): type \(type) is not supported here"
        case let .noKernel(tensor, type, path): "tensor \(tensor): the \(path) kernels cannot multiply \(type) weights"
        case let .tensor(name, e): "tensor \(name): \(e.description)"
        case let .tokenOutOfRange(token, vocabulary): "token \(token) is outside the vocabulary 0..<\(vocabulary)"
        case let .tooManyTokens(count, maximum): "\(count) tokens in one call; the workspace holds \(maximum)"
        case let .stateMismatch(what): "state does not fit this model: \(what)"
        case let .corruptState(what): "state is corrupt: \(what)"
        case let .invalidBatch(what): "invalid batch: \(what)"
        case let .contextFull(count, limit): "\(count) tokens exceed the context length \(limit)"
        case let .kvCacheUnsupported(type, headSize):
            "a \(type) KV cache needs head sizes that are multiples of 32; this model's is \(headSize)"
        }
    }
}
