import Testing
@testable import Tensors

@Test func placeholderTensors() {}
