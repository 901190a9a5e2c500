import Foundation
@testable import GreylagServer
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite struct EventLoopMailboxTests {
    /// Posts tasks 0..<count from a thread that is not the loop's and waits
    /// until the loop has run whatever it was given.
    func postFromAnotherThread(_ mailbox: EventLoopMailbox, count: Int,
                               _ task: @escaping @Sendable (Int) -> Void) throws {
        let posted = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for i in 0..<count { mailbox.post { task(i) } }
            posted.signal()
        }
        posted.wait()
        // The loop runs its tasks in order: this one comes after the batch.
        try mailbox.loop.submit {}.wait()
    }

    @Test func tasksFromOtherThreadsRunOnTheLoopInOrder() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let mailbox = EventLoopMailbox(loop: group.next())
        let order = Mutex<[Int]>([])
        let onLoop = SharedCounter()
        try postFromAnotherThread(mailbox, count: 100) { i in
            if mailbox.loop.inEventLoop { onLoop.add() }
            order.withLock { $0.append(i) }
        }
        #expect(order.withLock { $0 } == Array(0..<100))
        #expect(onLoop.count == 100)
    }

    @Test func aClosedMailboxDropsWhatIsPostedLater() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let mailboxes = EventLoopMailboxes(group: group)
        let loops = Array(group.makeIterator())
        let ran = SharedCounter()
        try postFromAnotherThread(mailboxes.mailbox(for: loops[0]), count: 3) { _ in ran.add() }
        #expect(ran.count == 3)

        // The daemon closes its mailboxes before the loops shut down; the
        // loops here are still running, so a task not dropped would run.
        mailboxes.close()
        for loop in loops {
            try postFromAnotherThread(mailboxes.mailbox(for: loop), count: 5) { _ in ran.add() }
        }
        #expect(ran.count == 3)
    }
}
