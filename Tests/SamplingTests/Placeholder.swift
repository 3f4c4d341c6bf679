import Testing
@testable import Sampling

@Test func samplingPlaceholder() { _ = SamplingPlaceholder.self }
