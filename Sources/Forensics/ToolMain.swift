import ArgumentParser
import Foundation

extension ParsableCommand {
    /// Runs the command with grep-like exit codes: 0 ok or found, 1 none or differs
    /// (thrown by the command as `ExitCode(1)`), 2 for errors, including bad arguments
    /// (ArgumentParser's own default would be 64).
    public static func mainWithGrepExitCodes() -> Never {
        do {
            var command = try parseAsRoot()
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
    public static func asyncMainWithGrepExitCodes() async -> Never {
        do {
            var command = try parseAsRoot()
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
