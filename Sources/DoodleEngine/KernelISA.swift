import CDoodleKernels

/// The instruction-set path the kernels run on. Every path gives bit-identical results.
public enum KernelISA: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Portable C, any CPU.
    case reference = 0
    /// AVX2 `vpmaddubsw` on activations shifted to int8, exact (x86-64 from Haswell and Zen 1 on).
    case avx2 = 1
    /// AVX-512 VNNI `vpdpbusd` (Ice Lake, Sapphire Rapids, Zen 4 and later).
    case avx512vnni = 2
    /// ARMv8.2 dot product `sdot` on activations shifted to int8 (Graviton 2, Ampere Altra, Apple M1 and later).
    case neonDotprod = 3
    /// ARMv8.6 int8 matrix multiply `usmmla` (2 x 8 by 8 x 2 blocks) on activations as they are (Graviton 3 and 4,
    /// Neoverse V1/V2/N2, Apple M2 and later).
    case neonI8mm = 4

    /// The fastest path this CPU supports: AVX-512 VNNI > AVX2 on x86-64, i8mm > dotprod on ARM64, else reference.
    public static var best: KernelISA { KernelISA(rawValue: Int(CDoodleKernels_best_isa().rawValue)) ?? .reference }

    /// Whether this CPU can run the path.
    public var isSupported: Bool { CDoodleKernels_isa_supported(self.c) != 0 }

    /// The paths this CPU can run.
    public static var supported: [KernelISA] { Self.allCases.filter(\.isSupported) }

    public var description: String {
        switch self {
        case .reference: "reference"
        case .avx2: "avx2"
        case .avx512vnni: "avx512vnni"
        case .neonDotprod: "neon-dotprod"
        case .neonI8mm: "neon-i8mm"
        }
    }

    /// Parses the names printed by `description`.
    public init?(name: String) {
        guard let isa = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = isa
    }

    /// The names of every path, for help texts and error messages ("reference, avx2, ...").
    public static var allNames: String { Self.allCases.map(\.description).joined(separator: ", ") }

    /// Measured peak multiply-accumulates per second of the instructions this path is built on, on the calling
    /// thread's core (0 for the reference path or where the CPU lacks them): vpdpbusd for AVX-512 VNNI,
    /// vpmaddubsw + vpmaddwd + vpaddd for AVX2, sdot for NEON dotprod, usmmla for i8mm.
    public func measuredPeak(seconds: Double = 0.3) -> Double {
        CDoodleKernels_peak_macs_per_second(self.c, seconds)
    }

    /// Measured peak int16 multiply-adds per second of the instructions this path's Winograd convolutions run on
    /// (vpmaddwd + vpaddd for AVX2); 0 where the path runs none.
    public func measuredWinogradPeak(seconds: Double = 0.3) -> Double {
        CDoodleKernels_peak_winograd_madds_per_second(self.c, seconds)
    }

    /// The CPU's model name as the operating system reports it.
    public static var cpuModel: String { String(cString: CDoodleKernels_cpu_model()) }

    var c: CDoodleKernels_ISA { CDoodleKernels_ISA(rawValue: UInt32(self.rawValue)) }
}
