using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// One containerd line the suite can run against: where its binaries are, which runc and CNI
/// plugins go with it. 1.6 is the system's (/usr/bin, Debian bookworm); the others come from
/// scripts/fetch-versions.sh (its versions.env in $RCS_VERSIONS_DIR, default
/// /var/cache/runcsharp-versions).
/// </summary>
internal sealed record ContainerdLine(string Name, string BinDir, string Version, string? RuncPath, string? CniBinDir)
{
    /// <summary>Major version: 1 writes config version 2, 2 writes config version 3.</summary>
    public int Major => int.Parse(Name.Split('.')[0], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>1.6 ignores a CRI handler's runtime_path and only takes runtime names in ctr --runtime.</summary>
    public bool HonoursRuntimePath => Name != "1.6";

    public string Containerd => Path.Combine(BinDir, "containerd");

    public string Ctr => Path.Combine(BinDir, "ctr");

    /// <summary>containerd's stock Go shim of this line.</summary>
    public string StockShim => Path.Combine(BinDir, "containerd-shim-runc-v2");

    public override string ToString() => $"containerd {Name} ({Version})";
}

/// <summary>Which containerd line the run targets (RCS_CONTAINERD=1.6|1.7|2.1, default 1.6).</summary>
internal static partial class ContainerdLines
{
    public const string System = "1.6";

    /// <summary>The line named by RCS_CONTAINERD (default 1.6).</summary>
    public static string Selected { get; } =
        Environment.GetEnvironmentVariable("RCS_CONTAINERD") is { Length: > 0 } v ? v.Trim() : System;

    public static string VersionsDir { get; } =
        Environment.GetEnvironmentVariable("RCS_VERSIONS_DIR") is { Length: > 0 } d ? d : "/var/cache/runcsharp-versions";

    public static string EnvFile => Path.Combine(VersionsDir, "versions.env");

    private static readonly Lazy<IReadOnlyDictionary<string, string>> Env = new(ReadEnv);

    /// <summary>The CNI plugins fetched from sid (they have the tap plugin), or null.</summary>
    public static string? FetchedCniBin =>
        Env.Value.TryGetValue("RCS_CNI_BIN", out var c) && File.Exists(Path.Combine(c, "tap")) ? c : null;

    /// <summary>The folder with sid's dockerd and docker (RCS_DOCKER_BIN), or null.</summary>
    public static string? DockerBin =>
        Env.Value.TryGetValue("RCS_DOCKER_BIN", out var d) && File.Exists(Path.Combine(d, "dockerd")) && File.Exists(Path.Combine(d, "docker")) ? d : null;

    /// <summary>The Debian version of that Docker (RCS_DOCKER_VERSION).</summary>
    public static string DockerVersion => Env.Value.GetValueOrDefault("RCS_DOCKER_VERSION", "?");

    /// <summary>The line by name, or null with the reason it is not there.</summary>
    public static ContainerdLine? Find(string name, out string? missing)
    {
        missing = null;
        if (name == System)
        {
            var containerd = Prereqs.Which("containerd");
            if (containerd is null) { missing = "containerd on PATH (scripts/setup.sh installs it)"; return null; }
            return new ContainerdLine(System, Path.GetDirectoryName(containerd)!, "system", null, FetchedCniBin);
        }
        var key = "RCS_CONTAINERD_" + name.Replace('.', '_');
        if (!Env.Value.TryGetValue(key + "_BIN", out var bin) || !File.Exists(Path.Combine(bin, "containerd")))
        {
            missing = $"containerd {name} (run scripts/fetch-versions.sh; looked in {EnvFile})";
            return null;
        }
        Env.Value.TryGetValue("RCS_RUNC", out var runc);
        if (runc is null || !File.Exists(runc)) { missing = $"the patched runc for containerd {name} ({EnvFile} has no valid RCS_RUNC)"; return null; }
        return new ContainerdLine(name, bin, Env.Value.GetValueOrDefault(key + "_VERSION", "?"), runc, FetchedCniBin);
    }

    /// <summary>The selected line; throws when it is not available (Prereqs reports that first).</summary>
    public static ContainerdLine Current =>
        Find(Selected, out var missing) ?? throw new InvalidOperationException("RCS_CONTAINERD=" + Selected + ": missing " + missing);

    [GeneratedRegex("^(?<k>[A-Z0-9_]+)='(?<v>[^']*)'")]
    private static partial Regex Assignment();

    private static Dictionary<string, string> ReadEnv()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var line in File.ReadLines(EnvFile))
            {
                var m = Assignment().Match(line);
                if (m.Success) { result[m.Groups["k"].Value] = m.Groups["v"].Value; }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return result;
    }
}
