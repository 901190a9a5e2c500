import NIOCore
import Synchronization

/// Hands work from other threads to one event loop with one wake-up per
/// burst: the store commits decisions in groups, and answering a group with
/// one `execute` instead of one per decision saves a wake-up (a syscall and
/// a context switch) for every decision but the first.
final class EventLoopMailbox: Sendable {
    private struct State: ~Copyable {
        var tasks: [@Sendable () -> Void] = []
        var scheduled = false
        var closed = false
    }

    let loop: any EventLoop
    private let state = Mutex(State())

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Runs `task` on the loop: at once when called there, else with the
    /// next batch. After `close` the task is dropped.
    func post(_ task: @escaping @Sendable () -> Void) {
        if loop.inEventLoop {
            task()
            return
        }
        // The wake-up is scheduled under the lock, so it cannot slip in
        // between `close` and the loop's shutdown. Only the first task of a
        // batch pays for it.
        state.withLock { state in
            guard !state.closed else { return }
            state.tasks.append(task)
            if state.scheduled { return }
            state.scheduled = true
            loop.execute { self.runPending() }
        }
    }

    /// No task is taken after this; call it before the loop shuts down. A
    /// decision the store finishes after its connection was answered (by
    /// the timeout) or closed has nobody left to tell, and scheduling it on
    /// a loop that has shut down is an error in SwiftNIO.
    func close() {
        state.withLock { $0.closed = true }
    }

    private func runPending() {
        let tasks = state.withLock { state -> [@Sendable () -> Void] in
            state.scheduled = false
            defer { state.tasks.removeAll(keepingCapacity: true) }
            return state.tasks
        }
        for task in tasks { task() }
    }
}

/// One mailbox per loop of a group, made up front so lookups need no lock.
struct EventLoopMailboxes: Sendable {
    private let boxes: [ObjectIdentifier: EventLoopMailbox]

    init(group: any EventLoopGroup) {
        var boxes: [ObjectIdentifier: EventLoopMailbox] = [:]
        for loop in group.makeIterator() {
            boxes[ObjectIdentifier(loop)] = EventLoopMailbox(loop: loop)
        }
        self.boxes = boxes
    }

    func mailbox(for loop: any EventLoop) -> EventLoopMailbox {
        boxes[ObjectIdentifier(loop)] ?? EventLoopMailbox(loop: loop)
    }

    /// Closes every mailbox (see `EventLoopMailbox.close`).
    func close() {
        for box in boxes.values { box.close() }
    }
}
