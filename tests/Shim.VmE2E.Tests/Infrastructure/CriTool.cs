using System.Diagnostics;

namespace Shim.VmE2E.Tests;

/// <summary>
/// rcs-cri (CriTool/), the guests' CRI client, published with NativeAOT once per run when its
/// sources are newer than the binary: a JIT start-up of gRPC costs minutes under TCG.
/// </summary>
internal static class CriTool
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static string ProjectDir => Path.Combine(VmPrereqs.RepoRoot, "tests", "Shim.VmE2E.Tests", "CriTool");

    /// <summary>Where checks.sh looks for it (RCS_VM_CRI overrides).</summary>
    public static string Binary => Path.Combine(ProjectDir, "bin", "publish", "rcs-cri");

    public static async Task<string?> EnsurePublishedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            var newest = Directory.EnumerateFiles(ProjectDir, "*.cs*").Select(File.GetLastWriteTimeUtc).Max();
            if (File.Exists(Binary) && File.GetLastWriteTimeUtc(Binary) > newest) { return null; }
            var psi = new ProcessStartInfo("dotnet", ["publish", ProjectDir, "-c", "Release", "-o", Path.GetDirectoryName(Binary)!, "-nologo", "-v", "q"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet publish");
            var output = p.StandardOutput.ReadToEndAsync();
            var errors = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            return p.ExitCode == 0 ? null : $"dotnet publish {ProjectDir} exited {p.ExitCode}: {await output}{await errors}";
        }
        finally
        {
            Gate.Release();
        }
    }
}
