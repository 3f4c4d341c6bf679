import Testing
@testable import Tokenizers

@Test func placeholderTokenizers() {}
