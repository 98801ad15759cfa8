using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Os;

namespace Shim.Core.Tests.Service;

/// <summary>
/// A task service over a fake runc whose "containers" are real `sleep` children of the test process,
/// reaped by the one reaper and routed by a real exit loop; everything is killed and removed after each test.
/// </summary>
public abstract class TaskServiceTestBase : IAsyncLifetime
{
    private readonly CancellationTokenSource _stop = new();
    private ExitSubscription? _exits;
    private Task? _loop;

    internal FakeRunner Runc { get; } = new();

    internal RecordingPublisher Events { get; } = new();

    internal ExitRouter Router { get; } = new();

    internal string Bundle { get; } = Directory.CreateTempSubdirectory("rcs-unit-").FullName;

    internal TaskService Service { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        Reaper.Instance.Start();
        _exits = Reaper.Instance.Subscribe();
        _loop = Router.RunAsync(_exits, _stop.Token);
        File.WriteAllText(Path.Combine(Bundle, "config.json"), """{"linux":{"namespaces":[{"type":"pid"}]}}""");
        Service = new TaskService(new ShimSettings { Namespace = "unit", Id = "c1" }, Events, Runc, Router);
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (int pid in Runc.Pids.Values.Concat(Runc.ExecPids))
        {
            Signals.Kill(pid, Signals.SIGKILL);
        }
        await _stop.CancelAsync();
        await _loop!;
        _exits!.Dispose();
        Directory.Delete(Bundle, recursive: true);
        GC.SuppressFinalize(this);
    }
}
