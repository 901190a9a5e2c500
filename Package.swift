// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "greylag",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "greylag", targets: ["greylag"]),
        // The qmail helpers alone (greylag-qmail qmail-spp, ...): the Swift runtime and QmailGate,
        // no Foundation, so that qmail's call per recipient starts in a millisecond or two.
        .executable(name: "greylag-qmail", targets: ["greylag-qmail"]),
        // libFuzzer targets when built by scripts/fuzz.sh; a replayer of kept inputs otherwise.
        .executable(name: "greylag-fuzz", targets: ["greylag-fuzz"]),
    ],
    traits: [
        // The MySQL/MariaDB store backend wraps the MariaDB Connector/C, a C
        // library the default build must not need: `swift build --traits MariaDB`
        // (Debian: apt-get install libmariadb-dev).
        .trait(name: "MariaDB", description: "The MySQL/MariaDB store backend (needs libmariadb-dev)"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // Already needed by Hummingbird; named for the typed HTTP parts the HTTP connection guard reads.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        .target(name: "GreylagCore"),
        // DNS for the daemon: the record types and results every check shares,
        // and a non-blocking client on SwiftNIO.
        .target(name: "GreylagDNS", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // SPF (RFC 7208): check_host on any DNSResolving.
        .target(name: "GreylagSPF", dependencies: ["GreylagDNS", "GreylagCore"]),
        .target(name: "PolicyProtocol", dependencies: [
            "GreylagCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "QmailGate"),
        .target(name: "GreylistdProtocol", dependencies: ["GreylagCore"]),
        // The OpenSMTPD filter protocol (greylag smtpd-filter), asking the daemon through QmailGate's client.
        .target(name: "SmtpdFilter", dependencies: ["QmailGate"]),
        .target(name: "GreylagImport", dependencies: ["GreylagCore", "GreylistdProtocol"]),
        // greylag migrate: the configurations of the tools greylag replaces, read into a greylag.toml.
        .target(name: "GreylagMigrate", dependencies: ["GreylagCore"]),
        .target(name: "GreylagPostgres", dependencies: [
            "GreylagCore", "GreylagStore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .target(name: "GreylagMariaDB", dependencies: [
            "GreylagCore", "GreylagStore",
            .target(name: "CMariaDB", condition: .when(traits: ["MariaDB"])),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Milter", dependencies: [
            "GreylagCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // A wrapper of SQLite's page cache whose end-of-transaction truncate skips a
        // whole-cache scan (Sources/CSQLitePageCache/PageCache.c says why).
        .target(name: "CSQLitePageCache", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(name: "GreylagStore", dependencies: [
            "GreylagCore", "CSQLitePageCache",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        .target(name: "GreylagServer", dependencies: [
            "GreylagCore", "GreylagDNS", "GreylagSPF", "PolicyProtocol", "Milter", "GreylistdProtocol", "GreylagStore",
            "GreylagPostgres", "GreylagMariaDB",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
        ], resources: [.embedInCode("Resources/builtin-whitelist-clients"), .embedInCode("Resources/dynamic-names")]),
        // greylag replay: traces fed through the engine on a manual clock, and the synthetic trace generator.
        .target(name: "GreylagReplay", dependencies: ["GreylagCore"]),
        .target(name: "GreylagBench", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .executableTarget(name: "greylag", dependencies: [
            "GreylagCore", "GreylagServer", "GreylagBench", "GreylagStore", "GreylagPostgres", "QmailGate", "SmtpdFilter",
            "GreylagImport", "GreylagMigrate", "GreylagReplay",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // qmail runs it once per recipient or connection, so it must start as fast as a C program:
        // no Foundation (QmailEndToEndTests checks), and on Linux linked statically, Swift runtime and
        // C library included, so that no dynamic loader resolves thousands of symbols at each start.
        // Not position-independent: glibc's static-pie start asserts that there is no rpath, and
        // SwiftPM always adds one; stack, heap and mappings are still randomised.
        .executableTarget(name: "greylag-qmail", dependencies: ["QmailGate"], linkerSettings: [
            .unsafeFlags(["-static-executable"], .when(platforms: [.linux])),
        ]),
        .target(name: "GreylagFuzz", dependencies: [
            "GreylagCore", "GreylagDNS", "PolicyProtocol", "Milter", "GreylagServer", "GreylagStore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "greylag-fuzz", dependencies: ["GreylagFuzz", "CFuzzDriver"]),
        .testTarget(name: "GreylagDNSTests", dependencies: [
            "GreylagDNS", "GreylagTestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOTestUtils", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "GreylagFuzzTests", dependencies: ["GreylagFuzz"]),
        .testTarget(name: "GreylagCoreTests", dependencies: ["GreylagCore", "GreylagTestSupport"]),
        .testTarget(name: "PolicyProtocolTests", dependencies: [
            "PolicyProtocol",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOTestUtils", package: "swift-nio"),
        ]),
        .testTarget(name: "MilterTests", dependencies: [
            "Milter",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOTestUtils", package: "swift-nio"),
        ]),
        .testTarget(name: "GreylagStoreTests", dependencies: [
            "GreylagStore", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "GreylagSPFTests", dependencies: ["GreylagSPF", "GreylagDNS", "GreylagCore", "GreylagTestSupport"]),
        .testTarget(name: "GreylagReplayTests", dependencies: ["GreylagReplay", "GreylagCore"]),
        .testTarget(name: "QmailGateTests", dependencies: ["QmailGate"]),
        .testTarget(name: "GreylistdProtocolTests", dependencies: ["GreylistdProtocol", "GreylagCore"]),
        .testTarget(name: "SmtpdFilterTests", dependencies: ["SmtpdFilter"]),
        .testTarget(name: "GreylagImportTests", dependencies: ["GreylagImport", "GreylagCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "GreylagMigrateTests", dependencies: [
            "GreylagMigrate", "GreylagCore", "GreylagServer", "GreylagTestSupport", .product(name: "TOMLKit", package: "TOMLKit"),
        ],
                    resources: [.copy("Fixtures")]),
        // What the suites with database-server cases share: when a missing
        // server setting is a skip and when it is a failure.
        .target(name: "GreylagTestSupport", dependencies: ["GreylagCore", "GreylagMariaDB"], path: "Tests/GreylagTestSupport"),
        .testTarget(name: "StoreConformanceTests", dependencies: [
            "GreylagTestSupport", "GreylagStore", "GreylagPostgres", "GreylagMariaDB", "GreylagImport",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "GreylagServerTests", dependencies: [
            "GreylagTestSupport", "GreylagServer", "GreylagBench", "GreylagStore", "GreylagPostgres", "GreylagMariaDB",
            "GreylagDNS", "GreylagSPF", "PolicyProtocol", "Milter",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
