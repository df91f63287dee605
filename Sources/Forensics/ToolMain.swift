import ArgumentParser
import Foundation

extension ParsableCommand {
    /// Runs the command with grep-like exit codes: 0 ok or found, 1 none or differs
    /// (thrown by the command as `ExitCode(1)`), 2 for errors, including bad arguments
    /// (ArgumentParser's own default would be 64).
    public static func mainWithGrepExitCodes(arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let status = exitCode(for: error)
            if status == .success {
                exit(withError: error)  // --help, --version: prints and exits 0
            }
            printError(fullMessage(for: error))
            Foundation.exit(2)
        }
    }
}

extension AsyncParsableCommand {
    /// `mainWithGrepExitCodes` for commands with async subcommands.
    /// `arguments`: instead of the process's (without the program name), e.g. after rewriting optional values.
    public static func asyncMainWithGrepExitCodes(arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            printError(fullMessage(for: error))
            Foundation.exit(2)
        }
    }
}
