using System.Diagnostics;

namespace Shim.E2E.Tests;

/// <summary>Stopping a daemon a test started (containerd, dockerd), by its own pid.</summary>
internal static class Daemons
{
    /// <summary>SIGTERM, then SIGKILL when it is still there after <paramref name="grace"/>; what happened goes into <paramref name="notes"/>.</summary>
    public static async Task StopAsync(Process daemon, string name, TimeSpan grace, List<string> notes)
    {
        if (daemon.HasExited)
        {
            return;
        }
        var term = await Command.RunAsync("/bin/kill", ["-TERM", daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(10));
        if (term.ExitCode != 0)
        {
            notes.Add($"kill -TERM {name} {daemon.Id}: {term.Describe()}");
        }
        using var wait = new CancellationTokenSource(grace);
        try
        {
            await daemon.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            notes.Add($"{name} {daemon.Id} ignored SIGTERM for {grace.TotalSeconds:0} s: SIGKILL");
            try { daemon.Kill(); } catch (InvalidOperationException) { }
            await daemon.WaitForExitAsync(CancellationToken.None);
        }
    }
}
