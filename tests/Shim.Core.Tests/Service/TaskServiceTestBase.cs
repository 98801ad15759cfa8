using System.Collections.Concurrent;
using Containerd.Task.V2;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Os;
using Shim.Protos;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Service;

/// <summary>
/// A task service over a fake runc whose "containers" are real `sleep` children of the test process,
/// reaped by the one reaper and routed by an exit loop that tells the test when it has routed an exit;
/// everything is killed and removed after each test.
/// </summary>
public abstract class TaskServiceTestBase : IAsyncLifetime
{
    private readonly CancellationTokenSource _stop = new();
    private ExitSubscription? _exits;
    private Task? _loop;
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _routed = new();

    internal FakeRunner Runc { get; } = new();

    internal RecordingPublisher Events { get; } = new();

    internal ExitRouter Router { get; } = new();

    internal string Bundle { get; } = Directory.CreateTempSubdirectory("rcs-unit-").FullName;

    internal TaskService Service { get; private set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Reaper.Instance.Start();
        _exits = Reaper.Instance.Subscribe();
        _loop = RouteAsync(_exits, _stop.Token);
        await File.WriteAllTextAsync(Path.Combine(Bundle, "config.json"), """{"linux":{"namespaces":[{"type":"pid"}]}}""", Ct);
        Service = new TaskService(new ShimSettings { Namespace = "unit", Id = "c1" }, Events, Runc, Router, Stdio.TestStdio.Context);
    }

    /// <summary>Creates and starts container c1 over the fake runc.</summary>
    internal async Task RunningContainerAsync()
    {
        await Service.CreateAsync(new CreateTaskRequest
        {
            Id = "c1",
            Bundle = Bundle,
            Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }),
        }, Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
    }

    /// <summary>An Exec request for <paramref name="execId"/> in c1 running `sleep 1000`.</summary>
    internal static ExecProcessRequest ExecRequest(string execId, string stdin = "", bool terminal = false) => new()
    {
        Id = "c1",
        ExecId = execId,
        Stdin = stdin,
        Terminal = terminal,
        Spec = new Google.Protobuf.WellKnownTypes.Any
        {
            TypeUrl = TypeUrls.OciProcess,
            Value = Google.Protobuf.ByteString.CopyFromUtf8("""{"args":["sleep","1000"],"cwd":"/"}"""),
        },
    };

    /// <summary>Completes once the exit of <paramref name="pid"/> was handed to the router and it returned.</summary>
    internal Task Routed(int pid) => RoutedSource(pid).Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);

    private TaskCompletionSource RoutedSource(int pid) =>
        _routed.GetOrAdd(pid, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task RouteAsync(ExitSubscription exits, CancellationToken ct)
    {
        try
        {
            while (await exits.Reader.WaitToReadAsync(ct))
            {
                while (exits.Reader.TryRead(out var exit))
                {
                    Router.Dispatch(exit);
                    RoutedSource(exit.Pid).TrySetResult();
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>What a derived class started beside the service, ended first (xunit calls only DisposeAsync).</summary>
    protected virtual void CleanUpFirst()
    {
    }

    public async ValueTask DisposeAsync()
    {
        CleanUpFirst();
        foreach (int pid in Runc.Pids.Values.Concat(Runc.ExecPids))
        {
            Signals.Kill(pid, Signals.SIGKILL);
        }
        // every init still in the service reports its exit (and records it in the bundle) before
        // the exit loop stops and the bundle is removed
        foreach (var id in Runc.Pids.Keys)
        {
            Container container;
            try
            {
                container = Service.ContainerFor(id);
            }
            catch (Errors.ShimException)
            {
                continue; // deleted: nobody reports its exit
            }
            await container.Init.Exited.WaitAsync(TimeSpan.FromSeconds(10));
        }
        await _stop.CancelAsync();
        await _loop!;
        _exits!.Dispose();
        _stop.Dispose();
        Directory.Delete(Bundle, recursive: true);
        GC.SuppressFinalize(this);
    }
}
