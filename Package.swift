// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "greylag",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "greylag", targets: ["greylag"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(name: "GreylagCore"),
        .target(name: "PolicyProtocol", dependencies: [
            "GreylagCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "QmailGate"),
        .target(name: "GreylagImport", dependencies: ["GreylagCore"]),
        .target(name: "GreylagPostgres", dependencies: [
            "GreylagCore", "GreylagStore",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Milter", dependencies: [
            "GreylagCore",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "GreylagStore", dependencies: [
            "GreylagCore",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        .target(name: "GreylagServer", dependencies: [
            "GreylagCore", "PolicyProtocol", "Milter", "GreylagStore", "GreylagPostgres",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ], resources: [.embedInCode("Resources/builtin-whitelist-clients")]),
        .target(name: "GreylagBench", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .executableTarget(name: "greylag", dependencies: [
            "GreylagCore", "GreylagServer", "GreylagBench", "GreylagStore", "GreylagPostgres", "QmailGate",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "GreylagCoreTests", dependencies: ["GreylagCore"]),
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
        .testTarget(name: "GreylagStoreTests", dependencies: ["GreylagStore"]),
        .testTarget(name: "QmailGateTests", dependencies: ["QmailGate"]),
        .testTarget(name: "GreylagImportTests", dependencies: ["GreylagImport", "GreylagCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "StoreConformanceTests", dependencies: [
            "GreylagStore", "GreylagPostgres",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "GreylagServerTests", dependencies: [
            "GreylagServer", "GreylagBench", "GreylagStore", "GreylagPostgres",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
