import DoodleEngine
import Foundation

/// Single-thread throughput of the doodle engine at several batch sizes, printed as one JSON line per row.
///
///     doodle-engine-bench MODEL IMAGES.u8 [--isa NAME] [--batches 1,8,64,256] [--seconds 2]
///
/// IMAGES.u8 is N x 784 bytes (e.g. the golden images). `bench/engine/run` drives this beside onnxruntime.
@main
struct EngineBench {
    nonisolated static func main() throws {
        var args = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String) -> String? {
            guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
            defer { args.removeSubrange(i...(i + 1)) }
            return args[i + 1]
        }
        let isaName = option("--isa")
        let batches = (option("--batches") ?? "1,8,64,256").split(separator: ",").compactMap { Int($0) }
        let seconds = Double(option("--seconds") ?? "2") ?? 2
        let profileBatch = option("--profile").flatMap { Int($0) }
        guard args.count == 2 else {
            FileHandle.standardError.write(Data("usage: doodle-engine-bench MODEL IMAGES.u8 [--isa NAME] [--batches 1,8] [--seconds S]\n".utf8))
            exit(2)
        }
        let isa = isaName.flatMap(KernelISA.init(name:)) ?? .best
        let engine = try InferenceEngine(contentsOf: URL(fileURLWithPath: args[0]), isa: isa)
        let images = try [UInt8](Data(contentsOf: URL(fileURLWithPath: args[1])))
        let count = images.count / engine.inputBytes
        // The share-of-peak denominator: the path's own multiply-accumulate instructions measured on this core now
        // (vpdpbusd for AVX-512 VNNI, vpmaddubsw + vpmaddwd + vpaddd for AVX2, sdot for NEON dotprod, usmmla for
        // i8mm), not a nominal clock.
        let peakMacs = isa.measuredPeak()
        if let batch = profileBatch {
            // A convolution run by Winograd does fewer multiplies than the model's MACs, in int16: its share is of
            // its own instructions' peak (vpmaddwd + vpaddd), over the multiply-adds it performs.
            let winogradPeak = isa.measuredWinogradPeak()
            // Per-layer throughput: each step timed alone over the batch.
            let scratch = engine.makeScratch(maxBatch: batch)
            let steps = try images.withUnsafeBytes { px in
                try engine.profileSteps(images: px, count: batch, scratch: scratch, repeats: max(1, 4096 / batch))
            }
            for s in steps {
                var row: [String: Any] = ["engine": "doodled-\(isa)", "batch": batch, "step": s.step,
                                          "us_per_image": s.secondsPerImage * 1e6, "cpu": KernelISA.cpuModel]
                if s.winogradMaddsPerImage > 0 {
                    let madds = Double(s.winogradMaddsPerImage) / s.secondsPerImage
                    row["macs_per_s"] = Double(s.macsPerImage) / s.secondsPerImage
                    row["winograd_madds_per_s"] = madds
                    if winogradPeak > 0 {
                        row["share_of_peak"] = madds / winogradPeak
                        row["peak_winograd_madds_per_s"] = winogradPeak
                    }
                } else if s.macsPerImage > 0 {
                    let macs = Double(s.macsPerImage) / s.secondsPerImage
                    row["macs_per_s"] = macs
                    if peakMacs > 0 { row["share_of_peak"] = macs / peakMacs; row["peak_macs_per_s"] = peakMacs }
                }
                let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            }
            return
        }
        for batch in batches {
            let (done, elapsed) = try measure(engine: engine, images: images, count: count, batch: batch, seconds: seconds)
            let perSecond = Double(done) / elapsed
            let macs = perSecond * Double(engine.macsPerImage)
            var row: [String: Any] = ["engine": "doodled-\(isa)", "batch": batch, "images_per_s": perSecond.rounded(),
                                      "macs_per_s": macs, "macs_per_image": engine.macsPerImage,
                                      "cpu": KernelISA.cpuModel]
            if peakMacs > 0 { row["share_of_peak"] = macs / peakMacs; row["peak_macs_per_s"] = peakMacs }
            let data = try JSONSerialization.data(withJSONObject: row, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// Runs batches back to back for `seconds` after a warm-up; returns images done and seconds taken.
    static func measure(engine: InferenceEngine, images: [UInt8], count: Int, batch: Int,
                        seconds: Double) throws -> (Int, Double) {
        let scratch = engine.makeScratch(maxBatch: batch)
        var scores = [Float](repeating: 0, count: batch * engine.classCount)
        var done = 0
        var offset = 0
        var warm = max(3, 2000 / batch)
        let start = DispatchTime.now().uptimeNanoseconds
        var measureFrom = start
        var elapsed = 0.0
        while elapsed < seconds {
            if offset + batch > count { offset = 0 }
            try images.withUnsafeBytes { px in
                try scores.withUnsafeMutableBufferPointer { s in
                    try engine.run(images: UnsafeRawBufferPointer(rebasing: px[(offset * engine.inputBytes)...]),
                                   count: batch, scratch: scratch, scores: s)
                }
            }
            offset += batch
            if warm > 0 {
                warm -= 1
                if warm == 0 { measureFrom = DispatchTime.now().uptimeNanoseconds }
                continue
            }
            done += batch
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - measureFrom) / 1e9
        }
        return (done, elapsed)
    }
}
