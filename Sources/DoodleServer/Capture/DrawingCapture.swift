import DoodleCapture
import DoodleCore
import DoodleWire
import Foundation
import Logging
import SwiftProtobuf

/// Opt-in capture of labelled drawings for retraining (`capture-dir`): a successful prediction whose request
/// carried a `capture_label` is stored with the label, the answer's guesses, the model, the time and a random id
/// (nothing about the client), durably, before the answer goes out. The record is encoded on the worker that
/// ran the request; the `CaptureStore`'s writer thread groups concurrent records into one synced write and
/// sends the answers on. A request without a label never touches any of it.
public final class DrawingCapture: Sendable {
    /// What a request asked to have captured: its label and its input as sent.
    public struct Intent: Sendable {
        public var label: String
        public var input: Doodle_V1_PredictRequest.OneOf_Input?

        public init(label: String, input: Doodle_V1_PredictRequest.OneOf_Input?) {
            self.label = label
            self.input = input
        }
    }

    public let store: CaptureStore

    /// Opens (and recovers) the store in `configuration.directory`, logging what recovery found.
    public init(configuration: CaptureLog.Configuration, logger: Logger) throws(CaptureLogError) {
        self.store = try CaptureStore(configuration: configuration) { error in
            logger.error("capture write failed; the answers say capture FAILED", metadata: ["error": "\(error)"])
        }
        let recovery = self.store.recovery
        var metadata: Logger.Metadata = [
            "dir": "\(configuration.directory)", "records": "\(recovery.records)", "bytes": "\(recovery.bytes)",
            "max_bytes": "\(configuration.maxBytes)",
        ]
        if recovery.droppedTailBytes > 0 { metadata["dropped_torn_tail_bytes"] = "\(recovery.droppedTailBytes)" }
        if recovery.unreadableBytes > 0 {
            metadata["unreadable_bytes"] = "\(recovery.unreadableBytes)"
            logger.warning("capture log has damaged records in closed segments; they are skipped", metadata: metadata)
        }
        logger.info("capturing labelled drawings", metadata: metadata)
    }

    /// Stores `intent` with the answer `classes` of `predictor`; `completion` hears the outcome once it is durable
    /// or refused (on the store's writer thread), or at once for a bitmap (not captured).
    func capture(_ intent: Intent, classes: [ScoredClass], predictor: Predictor,
                 completion: @escaping @Sendable (CaptureOutcome) -> Void) {
        var record = Doodle_Capture_V1_CapturedDrawing()
        switch intent.input {
        case .strokes(let drawing): record.strokes = drawing
        case .image(let image): record.image = image
        case .bitmap, nil:
            completion(CaptureOutcome(.unsupportedInput))
            return
        }
        let id = Self.makeID()
        record.id = id
        record.label = intent.label
        record.timestampMs = Int64((Date().timeIntervalSince1970 * 1000).rounded())
        record.modelName = predictor.name
        record.modelVersion = predictor.version
        record.guesses = Doodle_V1_Prediction.list(classes, predictor: predictor)
        guard let payload: [UInt8] = try? record.serializedBytes() else {
            completion(CaptureOutcome(.failed))
            return
        }
        self.store.append(payload) { result in
            switch result {
            case .captured: completion(CaptureOutcome(.captured, id: id))
            case .full: completion(CaptureOutcome(.full))
            case .failed: completion(CaptureOutcome(.failed))
            }
        }
    }

    /// 16 random lowercase hex digits.
    static func makeID() -> String {
        let value = UInt64.random(in: .min ... .max)
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Writes what is pending and closes the store.
    public func shutdown() { self.store.shutdown() }
}
