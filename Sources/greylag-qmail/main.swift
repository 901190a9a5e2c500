#if canImport(Glibc)
import Glibc
#endif
import QmailGate

// greylag-qmail: the qmail helpers of greylag in a program that links the
// Swift runtime and QmailGate only, so that a call, made once per recipient
// or connection, costs little more than its one question to the daemon.
// `greylag-qmail HELPER ARGS...` runs `greylag HELPER ARGS...`; so does a
// link to it named HELPER or greylag-HELPER (`greylag-qmail-spp`).

let usage = """
    usage: greylag-qmail qmail-spp|qmail-envelope-scanner|qmail-wrap [OPTIONS] [ARGS...]
    The qmail helpers of greylag (the same as `greylag qmail-spp` and so on), in a small program
    that starts fast. Also runs as a link named after a helper (qmail-spp or greylag-qmail-spp, ...).
    `greylag-qmail HELPER --help` describes each.
    """

let arguments = CommandLine.arguments
let invoked = arguments.first.map { path in String(path.split(separator: "/", omittingEmptySubsequences: false).last ?? "") } ?? ""
let linked = invoked.hasPrefix("greylag-") ? String(invoked.dropFirst("greylag-".count)) : invoked

if QmailEntry.helpers.contains(linked),
   let status = QmailEntry.run(helper: linked, Array(arguments.dropFirst()), usageName: invoked) {
    exit(status)
}
if let status = QmailEntry.run(arguments, command: "greylag-qmail") { exit(status) }
if arguments.count == 2, arguments[1] == "-h" || arguments[1] == "--help" {
    QmailEntry.write(1, usage + "\n")
    exit(0)
}
QmailEntry.write(2, (arguments.count > 1 ? "greylag-qmail: unknown helper \(arguments[1])\n" : "") + usage + "\n")
exit(64)  // EX_USAGE: no helper named, so no helper's convention applies
