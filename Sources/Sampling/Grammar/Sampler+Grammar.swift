extension Sampler {
    /// Samples one token under a grammar: masks the logits with
    /// `grammar.maskLogits` first (so the penalties, filters and logprobs see
    /// only allowed tokens), samples as `sample(logits:accept:)` does, and with
    /// `accept` (the default) advances the grammar over the chosen token as
    /// well as recording it in the sampler's history.
    public func sample(logits: UnsafeMutablePointer<Float>, grammar: GrammarMatcher,
                       accept: Bool = true) throws(GrammarError) -> SampledToken {
        grammar.maskLogits(logits, count: vocabularySize)
        let result = sample(logits: logits, accept: false)
        if accept {
            try grammar.accept(token: result.token)
            self.accept(result.token)
        }
        return result
    }

    /// Array form of `sample(logits:grammar:accept:)`.
    public func sample(logits: inout [Float], grammar: GrammarMatcher,
                       accept: Bool = true) throws(GrammarError) -> SampledToken {
        precondition(logits.count == vocabularySize, "logits.count != vocabularySize")
        return try logits.withUnsafeMutableBufferPointer { (p) throws(GrammarError) -> SampledToken in
            guard let base = p.baseAddress else { throw GrammarError.invalidVocabulary(message: "empty logits") }
            return try sample(logits: base, grammar: grammar, accept: accept)
        }
    }
}
