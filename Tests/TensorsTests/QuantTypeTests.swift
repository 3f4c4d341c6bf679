import CKernels
import Testing
@testable import Tensors

@Suite struct QuantTypeTests {
    @Test(arguments: QuantType.allCases)
    func layoutMatchesCTraits(_ type: QuantType) throws {
        let t = try #require(type.traits, "C traits missing for \(type)")
        #expect(Int(t.block_size) == type.blockSize)
        #expect(Int(t.type_size) == type.bytesPerBlock)
        #expect(t.vec_dot_type == type.activationFormat.ggmlType)
        #expect(String(cString: t.name) == type.name)
        #expect(QuantType(ggmlType: type.ggmlType) == type)
        #expect(QuantType(name: type.name.uppercased()) == type)
    }

    @Test(arguments: ActivationFormat.allCases)
    func activationLayoutMatchesCTraits(_ format: ActivationFormat) throws {
        let t = try #require(roost_type_traits_get(format.ggmlType)?.pointee)
        #expect(Int(t.block_size) == format.blockSize)
        #expect(Int(t.type_size) == format.bytesPerBlock)
        #expect(ActivationFormat.maxRowBytes(4096) >= format.rowBytes(4096))
    }

    @Test func unknownIdsAreRejected() {
        #expect(QuantType(ggmlType: 9) == nil)  // q8_1: activation format only
        #expect(QuantType(ggmlType: 15) == nil) // q8_K
        #expect(QuantType(ggmlType: 20) == nil) // iq4_nl
        #expect(QuantType(name: "q9_9") == nil)
    }

    @Test func rowBytes() throws {
        #expect(try QuantType.q4_0.rowBytes(4096) == 128 * 18)
        #expect(try QuantType.q6_K.rowBytes(512) == 2 * 210)
        #expect(try QuantType.f16.rowBytes(3) == 6)
        #expect(throws: TensorError.notBlockMultiple(type: .q4_K, elements: 300, blockSize: 256)) {
            try QuantType.q4_K.rowBytes(300)
        }
        #expect(throws: TensorError.notBlockMultiple(type: .q8_0, elements: -32, blockSize: 32)) {
            try QuantType.q8_0.rowBytes(-32)
        }
        let message = TensorError.notBlockMultiple(type: .q4_K, elements: 300, blockSize: 256).description
        #expect(message.contains("q4_K") && message.contains("300") && message.contains("256"))
    }
}
