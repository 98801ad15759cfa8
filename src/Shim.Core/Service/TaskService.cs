using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Runc;

namespace Shim.Core.Service;

/// <summary>
/// containerd's task API for the containers of this shim. Handlers are split by topic into partial
/// files; every failure leaves as a ShimException (or RuncException) and is mapped to a status once,
/// in <see cref="StatusMapping"/>.
/// </summary>
public sealed partial class TaskService
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Container?> _containers = new(StringComparer.Ordinal); // guarded by _gate; null = being created
    private readonly ShimSettings _settings;
    private readonly TaskEvents _events;
    private readonly IRuncRunner _runner;
    private readonly ExitRouter _router;
    private readonly StdioContext _stdio;
    private readonly TaskCompletionSource _shutdown = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly Cgroups.OomWatcher? _oom;

    /// <summary>Creates the service; exits must be fed to <paramref name="router"/> by the caller's exit loop; processes' stdio runs on <paramref name="stdio"/>.</summary>
    public TaskService(ShimSettings settings, IEventPublisher events, IRuncRunner runner, ExitRouter router, StdioContext stdio, Cgroups.OomWatcher? oom = null)
    {
        _settings = settings;
        _events = new TaskEvents(events);
        _runner = runner;
        _router = router;
        _stdio = stdio;
        _oom = oom;
    }

    /// <summary>Completes when Shutdown was called with no container left.</summary>
    public Task ShutdownRequested => _shutdown.Task;

    /// <summary>Number of containers (created or being created).</summary>
    public int ContainerCount
    {
        get
        {
            lock (_gate)
            {
                return _containers.Count;
            }
        }
    }

    /// <summary>The container with that id (for tests); NotFound otherwise.</summary>
    internal Container ContainerFor(string id) => Get(id);

    private Container Get(string id)
    {
        if (string.IsNullOrEmpty(id))
        {
            throw new ShimException(ErrorKind.InvalidArgument, "container id must not be empty");
        }
        lock (_gate)
        {
            if (_containers.TryGetValue(id, out var container) && container is not null)
            {
                return container;
            }
        }
        throw new ShimException(ErrorKind.NotFound, $"container {id}: not created");
    }
}
