import Foundation

/// Runs the filter's state machine against smtpd: lines in from `feed`,
/// questions to the daemon on worker threads (so a slow answer for one
/// session holds no other), every output line written whole under one
/// lock, in the order the state machine produced it.
public final class FilterRunner: @unchecked Sendable {
    /// Asks the daemon within `milliseconds`; returns its `action=` value.
    public typealias Ask = @Sendable (_ attributes: [(String, String)], _ milliseconds: Int32) throws -> String

    private let lock = NSLock()
    private var machine: FilterStateMachine
    private var splitter = FilterLineSplitter()
    private let ask: Ask
    private let timeoutMilliseconds: Int32
    private let output: @Sendable ([UInt8]) -> Void
    private let log: FilterLog

    private let work = NSCondition()
    private var jobs: [(FilterStateMachine.Question, deadline: UInt64)] = []
    private var workers = 0
    private var idleWorkers = 0
    private let maxWorkers: Int

    /// `output` gets each line with its LF; it is called under the runner's
    /// lock, one line at a time. `logLine` gets each stderr line with its LF.
    public init(settings: FilterStateMachine.Settings, timeoutMilliseconds: Int32, maxWorkers: Int = 64,
                logInterval: UInt64 = 10_000_000_000, ask: @escaping Ask,
                output: @escaping @Sendable ([UInt8]) -> Void, logLine: @escaping @Sendable (String) -> Void) {
        machine = FilterStateMachine(settings: settings)
        self.ask = ask
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxWorkers = max(1, maxWorkers)
        self.output = output
        log = FilterLog(interval: logInterval, write: logLine)
    }

    /// Bytes from smtpd, cut anywhere.
    public func feed<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        lock.lock()
        defer { lock.unlock() }
        let before = splitter.discarded
        let lines = splitter.lines(in: bytes)
        if splitter.discarded > before {
            log.say(.input, "ignored a line longer than \(FilterProtocol.maxLineLength) bytes")
        }
        for line in lines { perform(machine.lineReceived(line)) }
    }

    /// Sessions remembered now.
    public var sessionCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return machine.sessionCount
    }

    /// Called with the lock held.
    private func perform(_ actions: [FilterStateMachine.Action]) {
        for action in actions {
            switch action {
            case .write(var line):
                line.append(10)
                output(line)
            case .log(let kind, let text):
                log.say(kind, text)
            case .ask(let question):
                enqueue(question)
            }
        }
    }

    private func enqueue(_ question: FilterStateMachine.Question) {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMilliseconds) * 1_000_000
        work.lock()
        jobs.append((question, deadline))
        // A new thread when the idle ones are fewer than the jobs, so no job
        // waits behind a slow question while the pool may grow.
        if jobs.count > idleWorkers && workers < maxWorkers {
            workers += 1
            let thread = Thread { [self] in workerLoop() }
            thread.stackSize = 512 * 1024
            thread.start()
        }
        work.signal()
        work.unlock()
    }

    private func workerLoop() {
        while true {
            work.lock()
            while jobs.isEmpty {
                idleWorkers += 1
                work.wait()
                idleWorkers -= 1
            }
            let (question, deadline) = jobs.removeFirst()
            work.unlock()
            let now = DispatchTime.now().uptimeNanoseconds
            var action: String? = nil
            var failure: String? = nil
            if now >= deadline {
                failure = "no answer within \(timeoutMilliseconds) ms"
            } else {
                let left = Int32(clamping: max(1, (deadline - now) / 1_000_000))
                do {
                    action = try ask(question.attributes.map { ($0.name, $0.value) }, left)
                } catch {
                    failure = "\(error)"
                }
            }
            lock.lock()
            perform(machine.answerReceived(ticket: question.ticket, action: action, failure: failure))
            lock.unlock()
        }
    }
}

/// Standard error lines, `greylag smtpd-filter: ...`; the daemon and input
/// kinds at most one line per interval each, with a count of the lines
/// left out, so a daemon that is down or a stream of bad lines cannot
/// flood smtpd's log.
final class FilterLog: @unchecked Sendable {
    private let interval: UInt64
    private let write: @Sendable (String) -> Void
    private var last: [FilterStateMachine.LogKind: UInt64] = [:]
    private var suppressed: [FilterStateMachine.LogKind: Int] = [:]

    init(interval: UInt64, write: @escaping @Sendable (String) -> Void) {
        self.interval = interval
        self.write = write
    }

    /// Called with the runner's lock held.
    func say(_ kind: FilterStateMachine.LogKind, _ text: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        if kind != .notice {
            if let t = last[kind], now &- t < interval {
                suppressed[kind, default: 0] += 1
                return
            }
            last[kind] = now
        }
        let n = suppressed.removeValue(forKey: kind) ?? 0
        write("greylag smtpd-filter: \(text)" + (n > 0 ? " (and \(n) more such since the last message)" : "") + "\n")
    }
}
