import CDoodleKernels

/// The instruction-set path the kernels run on. Every path gives bit-identical results.
public enum KernelISA: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Portable C, any CPU.
    case reference = 0
    /// AVX2 with 16-bit widening (x86-64 from Haswell on).
    case avx2 = 1
    /// AVX-512 VNNI `vpdpbusd` (Ice Lake, Sapphire Rapids, Zen 4 and later).
    case avx512vnni = 2

    /// The fastest path this CPU supports (cpuid).
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
        }
    }

    /// Parses the names printed by `description`.
    public init?(name: String) {
        guard let isa = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = isa
    }

    /// Measured peak of AVX-512 VNNI multiply-accumulates per second on the calling thread's core (0 without it).
    public static func measuredVNNIPeak(seconds: Double = 0.3) -> Double {
        KernelISA.avx512vnni.isSupported ? CDoodleKernels_vnni_peak_macs_per_second(seconds) : 0
    }

    var c: CDoodleKernels_ISA { CDoodleKernels_ISA(rawValue: UInt32(self.rawValue)) }
}
