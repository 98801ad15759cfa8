namespace Shim.VmE2E.Tests;

/// <summary>What the VM suite needs on the host, and where the pieces are.</summary>
internal static class VmPrereqs
{
    /// <summary>The runtime name our shim answers to.</summary>
    public const string OurRuntime = "io.containerd.runcsharp.v2";

    /// <summary>Runtime under test: ours unless RCS_E2E_RUNTIME names another one (io.containerd.runc.v2).</summary>
    public static string Runtime { get; } =
        Environment.GetEnvironmentVariable("RCS_E2E_RUNTIME") is { Length: > 0 } r ? r : OurRuntime;

    /// <summary>Under CI a missing prerequisite is a failure, so a green run always means the tests ran.</summary>
    public static bool IsCi { get; } =
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        || Environment.GetEnvironmentVariable("CI") == "1";

    /// <summary>The folder holding runcsharp.slnx, found by walking up from the test binary.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ImageDir { get; } =
        Environment.GetEnvironmentVariable("RCS_VM_DIR") is { Length: > 0 } d ? d : "/var/cache/runcsharp-vm";

    public static string VersionsEnv =>
        Path.Combine(Environment.GetEnvironmentVariable("RCS_VERSIONS_DIR") is { Length: > 0 } v ? v : "/var/cache/runcsharp-versions", "versions.env");

    /// <summary>Everything that is missing, in words a newcomer can act on; empty when all is there.</summary>
    public static IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        if (!OperatingSystem.IsLinux()) { missing.Add("Linux"); return missing; }
        if (Environment.UserName != "root") { missing.Add("root"); }
        if (!File.Exists("/usr/bin/qemu-system-x86_64")) { missing.Add("qemu-system-x86_64 (scripts/setup.sh installs it)"); }
        foreach (var f in new[] { "vmlinux", "initramfs.cpio.gz" })
        {
            if (!File.Exists(Path.Combine(ImageDir, f))) { missing.Add($"{ImageDir}/{f} (run scripts/vm/image.sh)"); }
        }
        if (!File.Exists(VersionsEnv) || !File.ReadAllText(VersionsEnv).Contains("RCS_CONTAINERD_2_1_BIN=", StringComparison.Ordinal))
        {
            missing.Add($"containerd 2.1 in {VersionsEnv} (run scripts/fetch-versions.sh)");
        }
        if (Runtime == OurRuntime && !File.Exists(Path.Combine(RepoRoot, "dist", "containerd-shim-runcsharp-v2")))
        {
            missing.Add("dist/containerd-shim-runcsharp-v2 (run scripts/build.sh)");
        }
        return missing;
    }

    /// <summary>Skips the current test when something is missing; under CI=true fails it instead.</summary>
    public static void RequireOrSkip()
    {
        var missing = Missing();
        if (missing.Count == 0) { return; }
        var text = "VM suite prerequisites missing: " + string.Join("; ", missing);
        if (IsCi) { throw new InvalidOperationException(text + " (CI=true: a missing prerequisite fails the run)"); }
        Assert.Skip(text);
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
