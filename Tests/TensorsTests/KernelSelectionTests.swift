import Testing
@testable import Tensors

@Suite struct KernelSelectionTests {
    @Test func unsetOrEmptyMeansBest() throws {
        #expect(try Kernels.select(environment: [:]).path == KernelPath.best)
        #expect(try Kernels.select(environment: ["ROOST_KERNELS": ""]).path == KernelPath.best)
    }

    @Test func everyAvailablePathCanBeForced() throws {
        #expect(KernelPath.available.contains(.ref))
        for path in KernelPath.available {
            #expect(try Kernels.select(environment: ["ROOST_KERNELS": path.name]).path == path)
        }
    }

    @Test func unknownNameIsRefused() {
        #expect(throws: KernelSelectionError.unknownPath(value: "sse9", available: KernelPath.available)) {
            try Kernels.select(environment: ["ROOST_KERNELS": "sse9"])
        }
    }

    @Test func unavailablePathIsRefused() throws {
        let missing = KernelPath.allCases.filter { !$0.isAvailable }
        // x86 machines lack neon and ARM machines lack avx2: some path is always missing.
        let path = try #require(missing.first)
        #expect(throws: KernelSelectionError.unavailable(path: path, available: KernelPath.available)) {
            try Kernels.select(environment: ["ROOST_KERNELS": path.name])
        }
    }

    @Test func bestIsTheWidestAvailable() {
        let f = CPUFeatures.current
        if f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.avx2 && f.fma && f.f16c {
            #expect(KernelPath.best == .avx512)
        } else if f.avx2 && f.fma && f.f16c {
            #expect(KernelPath.best == .avx2)
        } else if f.neon {
            #expect(KernelPath.best == .neon)
        } else {
            #expect(KernelPath.best == .ref)
        }
    }

    @Test(arguments: QuantType.allCases)
    func everyPathSupportsEveryType(_ type: QuantType) throws {
        for path in KernelPath.available {
            let k = try Kernels(path: path)
            #expect(k.supports(type), "\(path) cannot multiply \(type)")
            #expect(k.dequantize(type) != nil, "\(path) cannot dequantize \(type)")
            #expect(k.hasNativeGemv(type),
                    "\(path) falls back to the ref gemv for \(type)")
        }
    }
}
