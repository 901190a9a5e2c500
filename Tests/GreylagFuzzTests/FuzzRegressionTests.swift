import Foundation
import GreylagFuzz
import Testing

/// Every kept fuzz input, the seed corpus and the regressions (inputs that
/// once crashed a target, fixed since), runs through its target again.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func inputs(_ target: String) -> [URL] {
        ["corpus", "regressions"].flatMap { kind -> [URL] in
            let dir = root.appendingPathComponent(kind).appendingPathComponent(target)
            return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
                .filter { !$0.lastPathComponent.hasPrefix(".") }
        }.sorted { $0.path < $1.path }
    }

    @Test(arguments: ["policy", "milter", "config", "admin", "numbers", "dns"])
    func keptInputsRunWithoutCrashing(target: String) throws {
        let run = try #require(Fuzz.targets[target])
        let files = Self.inputs(target)
        #expect(files.count >= 3, "the seed corpus of \(target) is missing")
        for file in files {
            let data = try Data(contentsOf: file)
            data.withUnsafeBytes { run($0) }
        }
    }
}
