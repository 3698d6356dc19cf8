import DoodleServer
import Testing

@Suite("serving state (health)")
struct ServingStateTests {
    @Test("a watch hears the current status, every change, and ends at close")
    func watchSeesChangesAndEnds() async {
        let state = ServingState(.notServing)
        let watch = state.watch()
        let seen = Task { await watch.reduce(into: [ServingState.Status]()) { $0.append($1) } }
        await Task.yield()
        state.set(.serving)
        try? await Task.sleep(for: .milliseconds(20))
        state.set(.serving)  // no change, no event
        state.set(.notServing)
        try? await Task.sleep(for: .milliseconds(20))
        state.close()
        #expect(await seen.value == [.notServing, .serving, .notServing])
        // After close, a new watch gets the status once and ends (it can't hold up a shutdown).
        #expect(await state.watch().reduce(into: [ServingState.Status]()) { $0.append($1) } == [.notServing])
    }
}
