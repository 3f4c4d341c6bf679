import APITypes
import ArgumentParser
import Foundation

struct Sessions: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Saved conversations on the daemon (/v1/sessions).",
        subcommands: [List.self, Show.self, Remove.self, Export.self, Import.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Your sessions, newest first.", aliases: ["ls"])

        @OptionGroup var options: ClientOptions

        func run() throws {
            let list = try options.daemon.get("/v1/sessions", as: SessionList.self)
            if options.json {
                Console.out(try Format.json(list))
                return
            }
            if list.data.isEmpty {
                Console.out("No sessions. `roost chat` and /save make one.\n")
                return
            }
            let rows = list.data.map { s in
                [s.id, s.model, String(s.turns), String(s.tokens), Format.bytes(s.stateBytes), Format.time(s.updated)]
            }
            Console.out(Format.table(["ID", "MODEL", "TURNS", "TOKENS", "STATE", "UPDATED"], rows))
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One session's details.")

        @OptionGroup var options: ClientOptions
        @Argument(help: "The session's id.") var id: String

        func run() throws {
            let s = try options.daemon.get(Daemon.sessionPath(id), as: SessionObject.self)
            if options.json {
                Console.out(try Format.json(s))
                return
            }
            Console.out("""
                id:       \(s.id)
                model:    \(s.model)
                created:  \(Format.time(s.created))
                updated:  \(Format.time(s.updated))
                turns:    \(s.turns)
                tokens:   \(s.tokens)
                state:    \(Format.bytes(s.stateBytes))

                """)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a session.", aliases: ["delete"])

        @OptionGroup var options: ClientOptions
        @Argument(help: "The session's id.") var id: String

        func run() throws {
            let deleted = try options.daemon.delete(Daemon.sessionPath(id), as: SessionDeleted.self)
            Console.out(options.json ? try Format.json(deleted) : "deleted \(deleted.id)\n")
        }
    }

    /// What `export --json` prints.
    struct Exported: Codable {
        var id: String
        var path: String
        var bytes: Int
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a session's file (state and header) for `roost sessions import`.")

        @OptionGroup var options: ClientOptions
        @Argument(help: "The session's id.") var id: String
        @Option(name: [.short, .long], help: ArgumentHelp("Where to write it; - for stdout (default: ID.session).", valueName: "file"))
        var output: String?

        func validate() throws {
            if output == "-" && options.json { throw ValidationError("--json and -o - both want stdout; choose one") }
        }

        func run() throws {
            let response = try options.daemon.send("GET", Daemon.sessionPath(id, "/export"))
            let path = output ?? "\(id).session"
            if path == "-" {
                Console.write(1, response.body)
                return
            }
            let url = URL(fileURLWithPath: path)
            do { try Data(response.body).write(to: url, options: .atomic) } catch {
                throw ClientError.other("cannot write \(path): \(error.localizedDescription)")
            }
            chmod(path, 0o600)
            if options.json {
                Console.out(try Format.json(Exported(id: id, path: path, bytes: response.body.count)))
            } else {
                Console.out("exported \(id) to \(path) (\(Format.bytes(response.body.count)))\n")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a session file made by `roost sessions export`; prints its (possibly new) id.")

        @OptionGroup var options: ClientOptions
        @Argument(help: ArgumentHelp("The file; - for stdin.", valueName: "file")) var file: String

        func run() throws {
            let bytes: [UInt8]
            if file == "-" {
                bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw ClientError.other("cannot read \(file): \(errnoText())")
                }
                bytes = Array(data)
            }
            let response = try options.daemon.send("POST", "/v1/sessions/import", body: bytes,
                                                    contentType: "application/octet-stream")
            let s = try options.daemon.decode(SessionObject.self, from: response.body, path: "/v1/sessions/import")
            Console.out(options.json ? try Format.json(s) : "imported as \(s.id) (model \(s.model), \(s.turns) turns)\n")
        }
    }
}
