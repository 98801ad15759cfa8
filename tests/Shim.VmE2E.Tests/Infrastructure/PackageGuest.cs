using System.Diagnostics;

namespace Shim.VmE2E.Tests;

/// <summary>
/// The systemd guest running guest/package.sh (RCS_VM_SUITE=package): the previous release's .deb
/// installed with apt, containers started by it, this checkout's .deb installed over them, then
/// removed. Both packages are made on the host before the boot with scripts/package.sh into
/// dist/vm-package/ (the guest sees the checkout, not the host's /tmp); the previous release's
/// binary comes from scripts/build-release.sh, built once per commit and kept in /var/cache.
/// </summary>
public sealed class SystemdPackageGuest : GuestRun
{
    /// <summary>
    /// The release the upgrade starts from: the last commit before packaging existed (issue 23), whose
    /// shim wrote the bundle files (exit-status, options.json, address) this release still reads.
    /// Move it to the previous release's tag once releases are tagged; RCS_VM_UPGRADE_FROM overrides it.
    /// </summary>
    public const string PreviousRelease = "ac1b0e2e5e9afec2d1c3928e4f39f369d35f6f72";

    protected override string Mode => "systemd";

    protected override string Suite => "package";

    protected override string Script => "package.sh";

    // boot, three apt runs (each with man-db's trigger) and two containerd restarts under TCG
    protected override TimeSpan Timeout => TimeSpan.FromMinutes(15);

    protected override async Task<IReadOnlyList<string>> ScriptArgumentsAsync()
    {
        var repo = VmPrereqs.RepoRoot;
        var from = Environment.GetEnvironmentVariable("RCS_VM_UPGRADE_FROM") is { Length: > 0 } f ? f : PreviousRelease;
        var dir = Path.Combine(repo, "dist", "vm-package");
        if (Directory.Exists(dir)) { Directory.Delete(dir, recursive: true); }
        Directory.CreateDirectory(dir);
        var version = (await File.ReadAllTextAsync(Path.Combine(repo, "VERSION"))).Trim();

        // a NativeAOT build of the old commit: minutes, once per commit per machine
        var built = await RunAsync(TimeSpan.FromMinutes(40), "bash", Path.Combine(repo, "scripts", "build-release.sh"), from);
        var oldBinary = built.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();
        var oldVersion = $"{version}~git.{from[..Math.Min(7, from.Length)]}";
        await RunAsync(TimeSpan.FromMinutes(5), "bash", Path.Combine(repo, "scripts", "package.sh"),
            "--binary", oldBinary, "--version", oldVersion, "--out", dir, "--no-lintian");
        // lintian is PackageTests' (Shim.E2E.Tests) to run
        await RunAsync(TimeSpan.FromMinutes(5), "bash", Path.Combine(repo, "scripts", "package.sh"),
            "--binary", Path.Combine(repo, "dist", "containerd-shim-runcsharp-v2"), "--out", dir, "--no-lintian");
        return [Path.Combine(dir, $"runcsharp_{oldVersion}_amd64.deb"), Path.Combine(dir, $"runcsharp_{version}_amd64.deb")];
    }

    /// <summary>Runs a command to its end; its stdout, or InvalidOperationException with its output.</summary>
    private static async Task<string> RunAsync(TimeSpan timeout, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = VmPrereqs.RepoRoot };
        foreach (var a in args) { psi.ArgumentList.Add(a); }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); await p.WaitForExitAsync(CancellationToken.None); }
        var text = $"{file} {string.Join(' ', args)}";
        if (p.ExitCode != 0)
        {
            var err = await stderr;
            throw new InvalidOperationException($"`{text}` exited {p.ExitCode}: {err[Math.Max(0, err.Length - 2000)..]}");
        }
        return await stdout;
    }
}
