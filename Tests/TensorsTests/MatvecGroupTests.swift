import Testing
@testable import Tensors

@Suite struct MatvecGroupTests {
    /// Products of mixed types and shapes in one group give bitwise what matvec gives.
    @Test func groupEqualsSeparateMatvecs() throws {
        let shapes: [(QuantType, Int, Int)] = [(.q8_0, 37, 256), (.f32, 5, 96), (.q4_K, 20, 512), (.f16, 64, 33),
                                              (.q5_1, 3, 64), (.bf16, 17, 256)]
        let ws = try shapes.enumerated().map { i, s in try makeMatrix(s.0, rows: s.1, cols: s.2, seed: UInt64(40 + i)) }
        let xs = shapes.enumerated().map { i, s in randomVector(s.2, seed: UInt64(90 + i)) }
        for threads in [1, 2, 3] {
            let pool = WorkerPool(threads: threads)
            for kernels in availablePaths {
                let expected = try zip(ws, xs).map { try runMatvec($0, $1, pool: pool, kernels: kernels) }
                let scratch = try MatScratch(maxCols: 512, maxBatch: 8, threads: pool.threads)
                let group = MatvecGroup(capacity: 8)
                var outs = shapes.map { [Float](repeating: .nan, count: $0.1) }
                // Keep the inputs and outputs alive and unmoved while the group holds pointers.
                let xp = xs.map { x -> UnsafeMutablePointer<Float> in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                    p.initialize(from: x, count: x.count)
                    return p
                }
                let yp = outs.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
                for i in 0..<ws.count { group.add(ws[i], x: xp[i], y: yp[i], scratch: scratch, kernels: kernels) }
                group.run(pool: pool)
                for i in 0..<ws.count {
                    outs[i] = Array(UnsafeBufferPointer(start: yp[i], count: outs[i].count))
                    let same = bitsEqual(outs[i], expected[i])
                    #expect(same, "\(kernels.path) threads \(threads): product \(i) (\(shapes[i].0)) differs from matvec")
                }
                // The group is empty again after run.
                group.run(pool: pool)
                xp.forEach { $0.deallocate() }
                yp.forEach { $0.deallocate() }
            }
        }
    }

    /// Batched products (1 to 6 activation rows, strided) in one group give bitwise what
    /// matvec gives for each row.
    @Test func batchedGroupEqualsMatvecPerRow() throws {
        let shapes: [(QuantType, Int, Int, Int)] = [(.q8_0, 48, 256, 4), (.f32, 37, 96, 3), (.q4_K, 32, 512, 6),
                                                   (.f16, 64, 64, 2), (.q4_0, 19, 64, 1), (.q6_K, 16, 256, 5)]
        let ws = try shapes.enumerated().map { i, s in try makeMatrix(s.0, rows: s.1, cols: s.2, seed: UInt64(140 + i)) }
        let pool = WorkerPool(threads: 2)
        for kernels in availablePaths {
            let scratch = try MatScratch(maxCols: 512, maxBatch: 21, threads: pool.threads)
            let group = MatvecGroup(capacity: 8)
            // x rows `cols + 3` apart, y rows `rows + 5` apart.
            let xs = shapes.enumerated().map { i, s in randomVector((s.2 + 3) * s.3, seed: UInt64(190 + i)) }
            let xp = xs.map { x -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                p.initialize(from: x, count: x.count)
                return p
            }
            let yp = shapes.map { UnsafeMutablePointer<Float>.allocate(capacity: ($0.1 + 5) * $0.3) }
            for (i, s) in shapes.enumerated() {
                group.add(ws[i], x: xp[i], xStride: s.2 + 3, batch: s.3, y: yp[i], yStride: s.1 + 5, scratch: scratch,
                          kernels: kernels)
            }
            group.run(pool: pool)
            for (i, s) in shapes.enumerated() {
                for c in 0..<s.3 {
                    let x = Array(xs[i][(c * (s.2 + 3))..<(c * (s.2 + 3) + s.2)])
                    let want = try runMatvec(ws[i], x, pool: pool, kernels: kernels)
                    let got = Array(UnsafeBufferPointer(start: yp[i] + c * (s.1 + 5), count: s.1))
                    #expect(bitsEqual(got, want), "\(kernels.path): product \(i) (\(s.0)), row \(c) differs from matvec")
                }
            }
            xp.forEach { $0.deallocate() }
            yp.forEach { $0.deallocate() }
        }
    }

    /// Products with the same input share one quantized copy (the scratch holds the rows
    /// of one batch only), and a batch of 8 or more rows is quantized on the pool: the
    /// outputs are still bitwise what matvec gives for each row.
    @Test func sharedInputGivesMatvecBits() throws {
        let cols = 256, batch = 9
        let types: [QuantType] = [.q8_0, .q4_0, .q4_K]
        for (i, type) in types.enumerated() {
            let wa = try makeMatrix(type, rows: 40, cols: cols, seed: UInt64(300 + i))
            let wb = try makeMatrix(type, rows: 24, cols: cols, seed: UInt64(310 + i))
            let x = randomVector(cols * batch, seed: UInt64(320 + i))
            for threads in [1, 2] {
                let pool = WorkerPool(threads: threads)
                for kernels in availablePaths {
                    let scratch = try MatScratch(maxCols: cols, maxBatch: batch, threads: pool.threads)
                    let group = MatvecGroup(capacity: 4)
                    let xp = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                    xp.initialize(from: x, count: x.count)
                    let ya = UnsafeMutablePointer<Float>.allocate(capacity: 40 * batch)
                    let yb = UnsafeMutablePointer<Float>.allocate(capacity: 24 * batch)
                    group.add(wa, x: xp, xStride: cols, batch: batch, y: ya, yStride: 40, scratch: scratch, kernels: kernels)
                    group.add(wb, x: xp, xStride: cols, batch: batch, y: yb, yStride: 24, scratch: scratch, kernels: kernels)
                    group.run(pool: pool)
                    for c in 0..<batch {
                        let xc = Array(x[(c * cols)..<((c + 1) * cols)])
                        let wantA = try runMatvec(wa, xc, pool: pool, kernels: kernels)
                        let wantB = try runMatvec(wb, xc, pool: pool, kernels: kernels)
                        #expect(bitsEqual(Array(UnsafeBufferPointer(start: ya + c * 40, count: 40)), wantA),
                                "\(kernels.path) \(type) threads \(threads): first product, row \(c)")
                        #expect(bitsEqual(Array(UnsafeBufferPointer(start: yb + c * 24, count: 24)), wantB),
                                "\(kernels.path) \(type) threads \(threads): second product, row \(c)")
                    }
                    xp.deallocate()
                    ya.deallocate()
                    yb.deallocate()
                }
            }
        }
    }
}
