/// A tokenizer of any concrete type behind one type, so generic helpers such as
/// `StreamingDecoder` can be used with a tokenizer chosen at run time.
public struct AnyTokenizer: Tokenizer {
    public let base: any Tokenizer

    public init(_ base: any Tokenizer) {
        if let already = base as? AnyTokenizer { self.base = already.base } else { self.base = base }
    }

    public var vocabularySize: Int { base.vocabularySize }
    public var bosTokenID: Int32? { base.bosTokenID }
    public var eosTokenID: Int32? { base.eosTokenID }
    public var eotTokenID: Int32? { base.eotTokenID }
    public var paddingTokenID: Int32? { base.paddingTokenID }
    public var addsBOS: Bool { base.addsBOS }
    public var addsEOS: Bool { base.addsEOS }
    public func isControl(_ id: Int32) -> Bool { base.isControl(id) }
    public func encode(bytes: [UInt8]) throws(TokenizerError) -> [Int32] { try base.encode(bytes: bytes) }
    public func encode(bytes: [UInt8], options: EncodeOptions) throws(TokenizerError) -> [Int32] {
        try base.encode(bytes: bytes, options: options)
    }
    public func decode(_ ids: [Int32]) throws(TokenizerError) -> [UInt8] { try base.decode(ids) }
    public func tokenBytes(_ id: Int32) -> [UInt8]? { base.tokenBytes(id) }
    public func appendDecoded(_ id: Int32, to out: inout [UInt8]) throws(TokenizerError) {
        try base.appendDecoded(id, to: &out)
    }
}
