namespace Shim.E2E.Tests;

/// <summary>What an end-to-end test needs on the machine, and where the pieces are.</summary>
internal static class Prereqs
{
    /// <summary>The runtime name our shim answers to.</summary>
    public const string OurRuntime = "io.containerd.runcsharp.v2";

    /// <summary>The stock Go shim that ships with containerd (used to validate the tests themselves).</summary>
    public const string StockRuntime = "io.containerd.runc.v2";

    /// <summary>Runtime under test: ours unless RCS_E2E_RUNTIME names another one.</summary>
    public static string Runtime { get; } =
        Environment.GetEnvironmentVariable("RCS_E2E_RUNTIME") is { Length: > 0 } r ? r : OurRuntime;

    /// <summary>True when the runtime under test is containerd's own Go shim.</summary>
    public static bool IsStockRuntime => Runtime == StockRuntime;

    /// <summary>Under CI a missing prerequisite is a failure, so a green run always means the tests ran.</summary>
    public static bool IsCi { get; } =
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        || Environment.GetEnvironmentVariable("CI") == "1";

    /// <summary>The folder holding runcsharp.slnx, found by walking up from the test binary.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Where scripts/build.sh puts the published shim.</summary>
    public static string DistDir => Path.Combine(RepoRoot, "dist");

    /// <summary>Binary name containerd derives from a runtime name: io.containerd.X.v2 → containerd-shim-X-v2.</summary>
    public static string ShimBinaryName(string runtime)
    {
        var parts = runtime.Split('.');
        return parts.Length >= 2
            ? $"containerd-shim-{parts[^2]}-{parts[^1]}"
            : throw new ArgumentException($"not a runtime name: {runtime}", nameof(runtime));
    }

    /// <summary>Absolute path of a program on PATH, or null.</summary>
    public static string? Which(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':'))
        {
            if (dir.Length == 0) { continue; }
            var p = Path.Combine(dir, name);
            if (File.Exists(p) && (File.GetUnixFileMode(p) & UnixFileMode.UserExecute) != 0) { return p; }
        }
        // root's PATH in some test hosts lacks the sbin dirs where Debian puts runc
        foreach (var dir in new[] { "/usr/local/sbin", "/usr/sbin", "/sbin" })
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) { return p; }
        }
        return null;
    }

    /// <summary>Everything that is missing, in words a newcomer can act on; empty when all is there.</summary>
    public static IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        if (!OperatingSystem.IsLinux()) { missing.Add("Linux"); return missing; }
        if (!IsRootUid()) { missing.Add("root (run as uid 0)"); }
        if (ContainerdLines.Find(ContainerdLines.Selected, out var line) is null) { missing.Add($"RCS_CONTAINERD={ContainerdLines.Selected}: {line}"); }
        foreach (var tool in new[] { "ctr", "runc" })
        {
            if (Which(tool) is null) { missing.Add($"{tool} on PATH (scripts/setup.sh installs it)"); }
        }
        if (!Directory.EnumerateFiles("/usr/lib/python3/dist-packages", "seccomp.*.so").Any()) { missing.Add("python3-seccomp (scripts/setup.sh installs it)"); }
        if (!File.Exists("/bin/busybox")) { missing.Add("/bin/busybox (apt-get install busybox-static)"); }
        else if (!IsStaticElf("/bin/busybox")) { missing.Add("a static /bin/busybox (apt-get install busybox-static)"); }
        if (Runtime == OurRuntime)
        {
            var shim = Path.Combine(DistDir, ShimBinaryName(OurRuntime));
            if (!File.Exists(shim)) { missing.Add($"{shim} (run scripts/build.sh)"); }
        }
        else if (Which(ShimBinaryName(Runtime)) is null && !File.Exists(Path.Combine(DistDir, ShimBinaryName(Runtime))))
        {
            missing.Add($"{ShimBinaryName(Runtime)} on PATH for RCS_E2E_RUNTIME={Runtime}");
        }
        return missing;
    }

    /// <summary>
    /// The folder holding a criu that works on this kernel (scripts/get-criu.sh; bookworm's own
    /// criu fails `criu check`), from RCS_CRIU_BIN_DIR or the script's env file; null if none.
    /// </summary>
    public static string? CriuDir { get; } = FindCriuDir();

    /// <summary>Skips a checkpoint/restore test when there is no usable criu; under CI=true fails it instead.</summary>
    public static void RequireCriuOrSkip()
    {
        if (CriuDir is not null) { return; }
        const string text = "no usable criu: run scripts/get-criu.sh (as root; scripts/setup.sh runs it)";
        if (IsCi) { throw new InvalidOperationException(text + " (CI=true: a missing prerequisite fails the run)"); }
        Assert.Skip(text);
    }

    /// <summary>
    /// Skips a Docker test when scripts/fetch-versions.sh has not fetched sid's dockerd and docker
    /// (bookworm's docker.io 20.10 cannot name a shim v2 runtime); under CI=true fails it instead.
    /// </summary>
    public static string RequireDockerOrSkip()
    {
        if (ContainerdLines.DockerBin is { } bin) { return bin; }
        var text = $"no dockerd/docker: run scripts/fetch-versions.sh (as root; scripts/setup.sh runs it; looked for RCS_DOCKER_BIN in {ContainerdLines.EnvFile})";
        if (IsCi) { throw new InvalidOperationException(text + " (CI=true: a missing prerequisite fails the run)"); }
        Assert.Skip(text);
        return "";
    }

    /// <summary>crun, for the tests of a runtime binary other than runc (scripts/setup.sh installs it); skips without it, fails under CI=true.</summary>
    public static string RequireCrunOrSkip()
    {
        if (Which("crun") is { } crun) { return crun; }
        const string text = "no crun on PATH: apt-get install crun (scripts/setup.sh installs it)";
        if (IsCi) { throw new InvalidOperationException(text + " (CI=true: a missing prerequisite fails the run)"); }
        Assert.Skip(text);
        return "";
    }

    private static string? FindCriuDir()
    {
        var dir = Environment.GetEnvironmentVariable("RCS_CRIU_BIN_DIR");
        if (string.IsNullOrEmpty(dir))
        {
            var cache = Environment.GetEnvironmentVariable("RCS_CRIU_DIR") is { Length: > 0 } c ? c : "/var/cache/runcsharp-criu";
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(cache, "criu.env")))
                {
                    if (line.StartsWith("RCS_CRIU_BIN_DIR=", StringComparison.Ordinal))
                    {
                        dir = line["RCS_CRIU_BIN_DIR=".Length..].Trim('\'', '"');
                    }
                }
            }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
        }
        return dir is { Length: > 0 } && File.Exists(Path.Combine(dir, "criu")) ? dir : null;
    }

    /// <summary>Skips the current test when something is missing; under CI=true fails it instead.</summary>
    public static void RequireOrSkip()
    {
        var missing = Missing();
        if (missing.Count == 0) { return; }
        var text = "end-to-end prerequisites missing: " + string.Join("; ", missing);
        if (IsCi) { throw new InvalidOperationException(text + " (CI=true: a missing prerequisite fails the run)"); }
        Assert.Skip(text);
    }

    private static bool IsRootUid()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                {
                    return line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0";
                }
            }
        }
        catch (IOException) { }
        return false;
    }

    // A dynamic ELF has a PT_INTERP program header (the loader path); a static one has none.
    private static bool IsStaticElf(string path)
    {
        try
        {
            var b = File.ReadAllBytes(path);
            if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[4] != 2) { return false; }
            long phoff = BitConverter.ToInt64(b, 0x20);
            int phentsize = BitConverter.ToUInt16(b, 0x36), phnum = BitConverter.ToUInt16(b, 0x38);
            for (int i = 0; i < phnum; i++)
            {
                if (BitConverter.ToUInt32(b, (int)(phoff + (i * phentsize))) == 3) { return false; } // PT_INTERP
            }
            return true;
        }
        catch (IOException) { return false; }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "runcsharp.slnx"))) { return dir.FullName; }
        }
        throw new InvalidOperationException($"no runcsharp.slnx above {AppContext.BaseDirectory}");
    }
}
