import DoodleCore
import DoodleServer
import Testing

@Suite("serving state (health)")
struct ServingStateTests {
    @Test("a watch hears the current status, every change, and ends at close")
    func watchSeesChangesAndEnds() async {
        let state = ServingState(.notServing)
        let watch = state.watch()
        let seen = Locked<[ServingState.Status]>([])
        let consumer = Task { for await status in watch { seen.withLock { $0.append(status) } } }
        // Each change is made once the watcher has heard the one before (a watch keeps only the newest).
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0 } == [.notServing] })
        state.set(.serving)
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0 } == [.notServing, .serving] })
        state.set(.serving)  // no change, no event
        state.set(.notServing)
        #expect(await eventually(timeout: .seconds(10)) { seen.withLock { $0 }.count >= 3 })
        state.close()
        await consumer.value  // the watch ends at close
        #expect(seen.withLock { $0 } == [.notServing, .serving, .notServing])
        // After close, a new watch gets the status once and ends (it can't hold up a shutdown).
        #expect(await state.watch().reduce(into: [ServingState.Status]()) { $0.append($1) } == [.notServing])
    }
}
