import Testing
import CKernels

@Test func placeholderCKernels() {}
