import ArgumentParser
import Foundation

@main
struct Roost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roost",
        abstract: "The command-line client of roostd, the Roost inference daemon.",
        discussion: """
            roost talks to roostd over its Unix socket: --socket, else $ROOST_SOCKET, else \
            $XDG_RUNTIME_DIR/roost/roost.sock (non-root users), else /run/roost/roost.sock.
            Every command takes --json for scripts. Exit codes: 0 success, 1 error, 2 usage error.
            """,
        version: RoostVersion.string,
        subcommands: [Chat.self, Run.self, Models.self, PS.self, Sessions.self, Stats.self]
    )

    /// ArgumentParser's own main, except that usage errors exit 2 (not 64) and the client's
    /// errors print one message and exit 1.
    static func main() {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ClientError {
            Console.err(error.description + "\n")
            Glibc.exit(error.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                Console.err(fullMessage(for: error) + "\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Options every command takes.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The daemon's socket.", valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    var daemon: Daemon { Daemon(socket: SocketLocation.resolve(flag: socket)) }
}
