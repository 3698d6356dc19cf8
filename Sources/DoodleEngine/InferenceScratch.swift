/// Per-thread working memory for `InferenceEngine.run`: every activation buffer sized for `maxBatch` images.
///
/// Make one per worker thread with `InferenceEngine.makeScratch(maxBatch:)`; a scratch must not be shared by
/// two threads at once. Nothing is allocated after it is made.
public final class InferenceScratch {
    /// The largest batch this scratch holds.
    public let maxBatch: Int
    let buffers: [UnsafeMutableRawPointer]
    let im2col: UnsafeMutableRawPointer
    let logits: UnsafeMutablePointer<Float>

    init(plan: ExecutionPlan, maxBatch: Int) {
        self.maxBatch = max(1, maxBatch)
        self.buffers = plan.layouts.map { layout in
            // 64 bytes of slack: the AVX-512 kernels move whole 64-byte blocks and may run past the last image.
            let bytes = layout.stride * (layout.singleSlot ? 1 : max(1, maxBatch)) + 64
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            // A bordered buffer's border holds its consumer's zero point for good; interiors are overwritten.
            p.initializeMemory(as: UInt8.self, repeating: layout.pad > 0 ? layout.padValue : 0, count: bytes)
            return p
        }
        let im2colBytes = max(64, plan.im2colBytes + 64)
        self.im2col = UnsafeMutableRawPointer.allocate(byteCount: im2colBytes, alignment: 64)
        self.im2col.initializeMemory(as: UInt8.self, repeating: 0, count: im2colBytes)
        self.logits = UnsafeMutablePointer<Float>.allocate(capacity: plan.classCount)
    }

    deinit {
        for b in self.buffers { b.deallocate() }
        self.im2col.deallocate()
        self.logits.deallocate()
    }
}
