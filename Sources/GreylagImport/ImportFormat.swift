import Foundation
import GreylagCore

/// The state files greylag can import.
public enum ImportFormat: String, CaseIterable, Sendable {
    /// The `relaytofrom` MySQL table of relaydelay and the qmail setups derived
    /// from it, as a `mysqldump` file or `mysql --batch` output.
    case relaytofrom
    /// The `greylisting_data` and `greylisting_lists` MySQL tables of the
    /// qmail-spp greylisting plugin (Manuel Mausz), dump or batch output.
    case qmailSpp = "qmail-spp"
    /// `db_dump` or `db_dump -p` output of postgrey's `postgrey.db` or
    /// `postgrey_clients.db`.
    case postgrey
    /// milter-greylist's dump file (`greylist.db`).
    case milterGreylist = "milter-greylist"
    /// greylag's own JSON Lines export (see `GreylagExport`).
    case greylag
    /// greylistd's `states` file, with its `triplets` file for the words
    /// (see `Importer.parseGreylistd`).
    case greylistd
}

/// How imported rows become greylag records.
public struct ImportOptions: Sendable {
    /// How client addresses become networks; use the keying the daemon runs with.
    public var keying: NetworkKeying
    /// Normalise senders as the daemon does (`GreylistPolicy.normalizeSender`).
    public var normalizeSender: Bool
    /// The source's greylisting delay, for sources that store no block expiry
    /// (postgrey, milter-greylist).
    public var delay: Int64
    /// How long an unpassed triplet is kept, for sources that store no record
    /// expiry. For milter-greylist it stands for the `timeout` setting.
    public var retryWindow: Int64
    /// How long a passed triplet is kept after its last use, for sources that
    /// store no record expiry. For milter-greylist it stands for `autowhite`,
    /// for postgrey for `--max-age`.
    public var passTTL: Int64
    /// The zone of the MySQL server, in which `DATETIME` values written with
    /// `NOW()` and `TIMESTAMP` values shown by `mysql --batch` are expressed.
    /// `TIMESTAMP` columns of a `mysqldump` that set `TIME_ZONE='+00:00'` are
    /// read as UTC whatever this says.
    public var timeZone: TimeZone
    /// The moment of the import (Unix seconds): rows that expired before it
    /// are left out, and it decides whether a manual entry is a blacklist
    /// entry (block still running) or a whitelist entry.
    public var now: Int64

    public init(now: Int64, keying: NetworkKeying = NetworkKeying(), normalizeSender: Bool = true,
                delay: Int64 = 300, retryWindow: Int64 = 2 * 86_400, passTTL: Int64 = 36 * 86_400,
                timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!) {
        self.now = now
        self.keying = keying
        self.normalizeSender = normalizeSender
        self.delay = delay
        self.retryWindow = retryWindow
        self.passTTL = passTTL
        self.timeZone = timeZone
    }
}

/// A row that could not be imported: where it is and why.
public struct ImportProblem: Sendable, Hashable, CustomStringConvertible {
    /// 1-based line of the input where the row starts.
    public var line: Int
    public var reason: String
    /// The file the line is in, when not the one being imported (greylistd's triplets file).
    public var file: String? = nil

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "line \(line): \(reason)" }
}

/// The input is not in the format at all (or not in any encoding of it).
public struct ImportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line where reading failed.
    public var line: Int
    public var message: String

    public init(line: Int, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

/// What an import produced, ready to be written to a store.
public struct ImportResult: Sendable, Hashable {
    /// Triplets, duplicates merged, in the order first met.
    public var records: [GreylistRecord]
    /// Client networks' auto-whitelist state: from the source's client table
    /// when it has one, otherwise derived from the passed records.
    public var clients: [ClientRecord]
    /// Manual white- and blacklist entries; `id` is 0 (the store assigns it).
    public var manualEntries: [ManualEntry]
    /// Rows that could not be read, with their line and the reason.
    public var skipped: [ImportProblem]
    /// Rows read but left out because they had expired before `ImportOptions.now`.
    public var expired: Int
    /// Entries known only by a hash, without the words it stands for
    /// (greylistd without its triplets file); also in `skipped`.
    public var unmapped = 0

    public init(records: [GreylistRecord] = [], clients: [ClientRecord] = [], manualEntries: [ManualEntry] = [],
                skipped: [ImportProblem] = [], expired: Int = 0) {
        self.records = records
        self.clients = clients
        self.manualEntries = manualEntries
        self.skipped = skipped
        self.expired = expired
    }
}

/// Reads the state of other greylisting systems into greylag's records.
public enum Importer {
    /// Parses `text` in `format`. Throws when the text is not that format;
    /// single unreadable rows are reported in `ImportResult.skipped`.
    public static func parse(_ text: String, format: ImportFormat,
                             options: ImportOptions) throws(ImportError) -> ImportResult {
        try parse(bytes: Array(text.utf8), format: format, options: options)
    }

    /// Parses raw file bytes. Prefer this for MySQL dumps with binary columns
    /// (qmail-spp's `relay_ip` dumped without `--hex-blob`), whose bytes do
    /// not survive decoding to a `String`.
    public static func parse(bytes: [UInt8], format: ImportFormat,
                             options: ImportOptions) throws(ImportError) -> ImportResult {
        var collector = ImportCollector(options: options)
        switch format {
        case .relaytofrom:
            let tables = try MySQLInput.read(bytes, expecting: RelaytofromImport.schema)
            RelaytofromImport.run(tables, into: &collector)
        case .qmailSpp:
            let tables = try MySQLInput.read(bytes, expecting: QmailSppImport.schemas)
            QmailSppImport.run(tables, into: &collector)
        case .postgrey:
            let entries = try DBDump.read(bytes)
            PostgreyImport.run(entries, into: &collector)
        case .milterGreylist:
            try MilterGreylistImport.run(bytes, into: &collector)
        case .greylag:
            try GreylagExport.decode(bytes, into: &collector)
        case .greylistd:
            return try parseGreylistd(states: bytes, triplets: nil, options: options)
        }
        return collector.result()
    }

    /// greylistd's `states` file with its `triplets` file (nil when it was
    /// not kept: then no entry can be mapped, and each is reported).
    /// `tripletsName` names that file in the problems found in it.
    public static func parseGreylistd(states: [UInt8], triplets: [UInt8]?, tripletsName: String? = nil,
                                      options: ImportOptions) throws(ImportError) -> ImportResult {
        var collector = ImportCollector(options: options)
        let unmapped = try GreylistdImport.run(states: states, triplets: triplets, tripletsName: tripletsName,
                                               into: &collector)
        var result = collector.result()
        result.unmapped = unmapped
        return result
    }
}
