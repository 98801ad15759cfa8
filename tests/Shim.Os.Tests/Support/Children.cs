using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Shim.Os.Tests.Support;

/// <summary>Starts shell snippets through the reaper and collects their output.</summary>
internal static class Children
{
    internal static ChildProcess Sh(string script, IReadOnlyDictionary<int, SafeHandle>? fds = null,
        IReadOnlyList<string>? environment = null, string? workingDirectory = null) =>
        Reaper.Instance.Spawn(new SpawnOptions
        {
            Path = "/bin/sh",
            Args = ["sh", "-c", script],
            Fds = fds,
            Environment = environment,
            WorkingDirectory = workingDirectory,
        });

    /// <summary>Runs the script with stdout on a pipe; returns its output and exit.</summary>
    internal static async Task<(string Output, ChildExit Exit)> RunAsync(string script,
        IReadOnlyList<string>? environment = null, string? workingDirectory = null, string shell = "/bin/sh")
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            ChildProcess child;
            using (write)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = shell,
                    Args = [Path.GetFileName(shell), "-c", script],
                    Fds = new Dictionary<int, SafeHandle> { [1] = write },
                    Environment = environment,
                    WorkingDirectory = workingDirectory,
                });
            }
            string output = await TestIo.ReadAllTextAsync(read);
            var exit = await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
            return (output, exit);
        }
    }

}
