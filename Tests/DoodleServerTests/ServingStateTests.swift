import DoodleServer
import Testing

@Suite("serving state (health)")
struct ServingStateTests {
    @Test("a watch hears the current status, every change, and ends at close")
    func watchSeesChangesAndEnds() async {
        let state = ServingState(.notServing)
        var watch = state.watch().makeAsyncIterator()
        // Each change is made once the watcher has heard the one before (a watch keeps only the newest), so
        // nothing here depends on timing.
        #expect(await watch.next() == .notServing)
        state.set(.serving)
        #expect(await watch.next() == .serving)
        state.set(.notServing)
        #expect(await watch.next() == .notServing)
        state.set(.notServing)  // no change, no event: the next thing the watch hears is its end
        state.close()
        #expect(await watch.next() == nil)
        // After close, a new watch gets the status once and ends (it can't hold up a shutdown).
        #expect(await state.watch().reduce(into: [ServingState.Status]()) { $0.append($1) } == [.notServing])
    }
}
