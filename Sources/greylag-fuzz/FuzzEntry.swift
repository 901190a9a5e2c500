import Foundation
import GreylagFuzz

#if FUZZING
import CFuzzDriver

/// The target picked by GREYLAG_FUZZ_TARGET on the first input.
nonisolated(unsafe) var selected: (@Sendable (UnsafeRawBufferPointer) -> Void)? = nil

/// libFuzzer's entry point: one input through the chosen target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if selected == nil {
        let name = ProcessInfo.processInfo.environment["GREYLAG_FUZZ_TARGET"] ?? ""
        guard let target = Fuzz.targets[name] else {
            fatalError("set GREYLAG_FUZZ_TARGET to one of: \(Fuzz.targets.keys.sorted().joined(separator: ", "))")
        }
        selected = target
    }
    selected!(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// The executable's entry point (SwiftPM links `main` to it): libFuzzer's driver.
@_cdecl("greylag_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzTestOneInput(data, size) }
}
#else
/// Without the fuzzer: `greylag-fuzz TARGET FILE...` runs each file
/// through TARGET once (a crash found by the fuzzer, to debug it).
@main
enum Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = Fuzz.targets[name], args.count > 1 else {
            FileHandle.standardError.write(Data("usage: greylag-fuzz \(Fuzz.targets.keys.sorted().joined(separator: "|")) FILE...\n".utf8))
            exit(64)
        }
        for path in args.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(66)
            }
            data.withUnsafeBytes { target($0) }
            print("\(name): \(path): ok")
        }
    }
}
#endif
