import Foundation

/// Where a setting's value came from.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    case `default`
    case file(path: String, line: Int)
    case environment(name: String)
    case flag

    public var description: String {
        switch self {
        case .default: "default"
        case .file(let path, let line): "\(path):\(line)"
        case .environment(let name): "environment \(name)"
        case .flag: "flag"
        }
    }
}

/// A setting that could not be used; the message names the setting and where its value came from.
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { self.message }
}

/// Settings with the source of each value.
public struct ResolvedSettings: Sendable {
    public var settings: DaemonSettings
    /// Source of every setting, by name.
    public var sources: [String: SettingSource]
    /// The config file read, if any.
    public var configFile: String?

    /// The settings as a config file that reproduces them, each line commented with its source.
    public var rendered: String {
        var lines = ["# doodled settings (flags > environment > config file > defaults)"]
        if let file = self.configFile { lines.append("# config file: \(file)") }
        for spec in DaemonSettings.specs {
            let value = spec.render(self.settings)
            let source = self.sources[spec.name] ?? .default
            lines.append("\(spec.name) = \(value)".padding(toLength: 44, withPad: " ", startingAt: 0) + " # \(source)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Reads settings from flags, then the environment, then a config file, then defaults.
///
/// The config file is `--config PATH` (or `DOODLED_CONFIG`): one `name = value` per line, `#` starts a comment,
/// names as the long flags without `--`. Unknown names in the file or `DOODLED_*` variables that name no setting
/// are errors, so a typo never silently falls back to a default.
public enum SettingsResolver {
    /// The environment variable naming the config file.
    public static let configEnvironmentName = "DOODLED_CONFIG"

    public static func resolve(flags: [String: String], configPath flagConfigPath: String? = nil,
                               environment: [String: String]) throws(SettingsError) -> ResolvedSettings {
        var settings = DaemonSettings()
        var sources: [String: SettingSource] = [:]
        let configPath = flagConfigPath ?? environment[Self.configEnvironmentName]
        let file = try configPath.map { path throws(SettingsError) in try Self.readConfigFile(path) } ?? [:]
        let known = Set(DaemonSettings.specs.map(\.environmentName) + [Self.configEnvironmentName])
        if let stray = environment.keys.filter({ $0.hasPrefix("DOODLED_") && !known.contains($0) }).sorted().first {
            throw SettingsError(message: "environment variable \(stray) names no setting (known: "
                                + DaemonSettings.specs.map(\.environmentName).joined(separator: ", ") + ")")
        }
        for name in flags.keys where DaemonSettings.spec(name) == nil {
            throw SettingsError(message: "unknown setting '\(name)'")
        }
        for spec in DaemonSettings.specs {
            let chosen: (String, SettingSource)? =
                if let value = flags[spec.name] { (value, .flag) }
                else if let value = environment[spec.environmentName] { (value, .environment(name: spec.environmentName)) }
                else if let (value, line) = file[spec.name] { (value, .file(path: configPath!, line: line)) }
                else { nil }
            guard let (value, source) = chosen else { continue }
            do {
                try spec.parse(value, &settings)
            } catch {
                throw SettingsError(message: "invalid \(spec.name) '\(value)' (from \(source)): expected \(error.expected)")
            }
            sources[spec.name] = source
        }
        return ResolvedSettings(settings: settings, sources: sources, configFile: configPath)
    }

    /// `name -> (value, line number)` from a config file.
    static func readConfigFile(_ path: String) throws(SettingsError) -> [String: (String, Int)] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SettingsError(message: "cannot read config file \(path): \(error.localizedDescription)")
        }
        var values: [String: (String, Int)] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw SettingsError(message: "\(path):\(lineNumber): expected 'name = value', got '\(line)'")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard DaemonSettings.spec(name) != nil else {
                throw SettingsError(message: "\(path):\(lineNumber): unknown setting '\(name)'")
            }
            guard values[name] == nil else {
                throw SettingsError(message: "\(path):\(lineNumber): \(name) is set twice (first on line \(values[name]!.1))")
            }
            values[name] = (value, lineNumber)
        }
        return values
    }
}
