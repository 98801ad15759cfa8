using System.Text;

namespace Shim.E2E.Tests;

/// <summary>
/// A runtime name of a test's own whose shim binary is a small script in the daemon's
/// <see cref="PrivateContainerd.ShimDir"/>: it sets environment variables and execs the shim of
/// the runtime under test (ours from dist/, or the stock one), so that shim runs as it always does
/// except for what the variables change. containerd (every line) looks the binary up on its PATH as
/// containerd-shim-&lt;name&gt;-v2 and runs it for start and delete alike; the shim's re-exec of
/// itself as the serving process inherits the environment.
/// </summary>
internal static class WrappedShim
{
    /// <summary>
    /// Writes the script for <paramref name="runtime"/> (e.g. io.containerd.rcsproxy.v2) into the
    /// shim folder of <paramref name="ctrd"/> and returns the runtime name for <c>ctr run --runtime</c>.
    /// </summary>
    /// <param name="ctrd">The daemon whose shim folder gets the script.</param>
    /// <param name="runtime">The runtime name the script answers to.</param>
    /// <param name="environment">Variables exported before the shim runs.</param>
    /// <param name="launcher">A program (and its arguments) the shim is run through, e.g. one that installs a seccomp filter and execs the rest of its command line.</param>
    public static string Install(PrivateContainerd ctrd, string runtime, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string>? launcher = null)
    {
        var real = ShimOfRuntimeUnderTest(ctrd.Line);
        var script = new StringBuilder("#!/bin/sh\n");
        script.Append($"# {runtime}: {Prereqs.Runtime}'s shim with the environment a test chose\n");
        foreach (var (name, value) in environment)
        {
            script.Append($"export {name}={Quote(value)}\n");
        }
        script.Append("exec ");
        foreach (var word in launcher ?? [])
        {
            script.Append(Quote(word)).Append(' ');
        }
        script.Append($"{Quote(real)} \"$@\"\n");
        var path = Path.Combine(ctrd.ShimDir, Prereqs.ShimBinaryName(runtime));
        File.WriteAllText(path, script.ToString());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return runtime;
    }

    /// <summary>The binary the daemon would run for the runtime under test (same PATH order: dist/, then the line's folder).</summary>
    private static string ShimOfRuntimeUnderTest(ContainerdLine line)
    {
        var name = Prereqs.ShimBinaryName(Prereqs.Runtime);
        foreach (var dir in new[] { Prereqs.DistDir, line.BinDir })
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) { return candidate; }
        }
        return Prereqs.Which(name) ?? throw new InvalidOperationException($"no {name} in {Prereqs.DistDir}, {line.BinDir} or on PATH");
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
