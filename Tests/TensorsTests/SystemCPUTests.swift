import Testing
@testable import Tensors

@Suite struct SystemCPUTests {
    @Test func cpuLists() {
        #expect(SystemCPU.parseCPUList("0-3,8,10-11") == 7)
        #expect(SystemCPU.parseCPUList("0\n") == 1)
        #expect(SystemCPU.parseCPUList("3-1") == nil)
        #expect(SystemCPU.parseCPUList("x") == nil)
        #expect(SystemCPU.parseCPUList("") == nil)
    }

    @Test func cgroupQuotas() {
        #expect(SystemCPU.parseCPUMax("150000 100000\n") == 2)
        #expect(SystemCPU.parseCPUMax("100000 100000") == 1)
        #expect(SystemCPU.parseCPUMax("max 100000") == nil)
        #expect(SystemCPU.parseCPUMax("-1 100000") == nil)
    }

    @Test func cacheSizes() {
        #expect(SystemCPU.parseCacheSize("32768K\n") == 32 << 20)
        #expect(SystemCPU.parseCacheSize("1M") == 1 << 20)
        #expect(SystemCPU.parseCacheSize("512") == 512)
        #expect(SystemCPU.parseCacheSize("K") == nil)
        #expect(SystemCPU.parseCacheSize("") == nil)
        #expect(SystemCPU.parseCacheSize("-4K") == nil)
    }

    @Test func usableCountIsPositive() {
        #expect(SystemCPU.usableCount >= 1)
        #expect(SystemCPU.usableCount <= SystemCPU.onlineCount)
    }
}
