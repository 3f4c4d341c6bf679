import Testing
@testable import APITypes

@Test func apiTypesPlaceholder() { _ = APITypesPlaceholder.self }
