using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Shim.Os;
using Shim.Os.Namespaces;
using Shim.Runc;

namespace Shim.Core.Tests.Sandbox;

/// <summary>
/// Stands in for the namespace holder's first step: a real `sleep` child of the test process
/// (reaped by the one reaper, as the holder is the shim's) whose pid it prints, or the failure asked for.
/// </summary>
internal sealed class FakeHolderRunner : IRuncRunner
{
    public ConcurrentQueue<HolderSpec> Specs { get; } = new();
    public ConcurrentQueue<int> Pids { get; } = new();
    public string? FailWith { get; set; }

    public Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
    {
        Assert.Equal(NamespaceHolder.Command, args[1]);
        Specs.Enqueue(NamespaceHolder.Parse([.. args.Skip(1)]));
        if (FailWith is { } message)
        {
            return Task.FromResult(new RuncResult(1, [], message));
        }
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        Pids.Enqueue(child.Pid);
        return Task.FromResult(new RuncResult(0, Encoding.ASCII.GetBytes(child.Pid.ToString(CultureInfo.InvariantCulture)), ""));
    }
}
