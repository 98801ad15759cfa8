using K8s.Cri.V1;
using Shim.Core.Processes;
using Shim.Os;

namespace Shim.Core.Sandbox;

/// <summary>Where a pod is: created (files written), ready (its holder runs), stopped (the holder is gone), shut down (files removed).</summary>
public enum PodState
{
    /// <summary>CreateSandbox was answered; no holder yet.</summary>
    Created,
    /// <summary>The holder runs: containers can join its namespaces.</summary>
    Ready,
    /// <summary>The holder exited or was stopped.</summary>
    Stopped,
    /// <summary>ShutdownSandbox removed the pod's files; only the shim's exit is left.</summary>
    ShutDown,
}

/// <summary>
/// One pod served through containerd's sandbox API: its configuration, its files and the process
/// that holds its namespaces. The holder's exit arrives from the exit loop (<see cref="OnExit"/>).
/// </summary>
public sealed class PodSandbox : IExitTarget
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ChildExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private PodState _state = PodState.Created;   // guarded by _gate

    internal PodSandbox(string id, string bundle, string? networkNamespace, PodSandboxConfig config, PodFiles files)
    {
        Id = id;
        Bundle = bundle;
        NetworkNamespace = networkNamespace;
        Config = config;
        Files = files;
    }

    /// <summary>The pod's (sandbox) id.</summary>
    public string Id { get; }

    /// <summary>The bundle containerd made for the pod (no config.json).</summary>
    public string Bundle { get; }

    /// <summary>The pod's netns, or null for host network.</summary>
    public string? NetworkNamespace { get; }

    /// <summary>The pod's configuration as CRI gave it.</summary>
    public PodSandboxConfig Config { get; }

    /// <summary>The files CRI mounts into the pod's containers.</summary>
    public PodFiles Files { get; }

    /// <summary>The holder's pid once started, else 0.</summary>
    public int Pid { get; private set; }

    /// <summary>When the holder started.</summary>
    public DateTimeOffset CreatedAt { get; private set; }

    /// <summary>When the holder exited, once it has.</summary>
    public DateTimeOffset? ExitedAt { get; private set; }

    /// <summary>Completes with the holder's exit.</summary>
    public Task<ChildExit> Exited => _exited.Task;

    /// <summary>The current state.</summary>
    public PodState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>The namespaces the pod has of its own, from its namespace options (CRI's NamespaceMode: POD is the pod's, NODE the node's).</summary>
    public Os.Namespaces.NewNamespaces OwnNamespaces
    {
        get
        {
            var options = Config.Linux?.SecurityContext?.NamespaceOptions ?? new NamespaceOption();
            var own = Os.Namespaces.NewNamespaces.None;
            // with host network the UTS namespace is the node's too (CRI drops both for such pods)
            if (options.Network != NamespaceMode.Node)
            {
                own |= Os.Namespaces.NewNamespaces.Uts;
            }
            if (options.Ipc != NamespaceMode.Node)
            {
                own |= Os.Namespaces.NewNamespaces.Ipc;
            }
            // as the pause container, which CRI gives a pid namespace unless the pod asks for the node's
            // (podsandbox/sandbox_run_linux.go): a container whose own options say POD joins the pod's
            // pid namespace (WithPodNamespaces), and must not find the node's there
            if (options.Pid != NamespaceMode.Node)
            {
                own |= Os.Namespaces.NewNamespaces.Pid;
            }
            return own;
        }
    }

    /// <summary>Moves from <paramref name="from"/> to <paramref name="to"/>; false (and no move) when the pod is elsewhere.</summary>
    internal bool Move(PodState from, PodState to)
    {
        lock (_gate)
        {
            if (_state != from)
            {
                return false;
            }
            _state = to;
            return true;
        }
    }

    /// <summary>The holder started with <paramref name="pid"/>: kept, and written into the bundle for the delete action.</summary>
    internal void Started(int pid, DateTimeOffset at)
    {
        Pid = pid;
        CreatedAt = at;
        File.WriteAllText(Path.Combine(Bundle, BundleFiles.HolderPid), pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The holder's exit: the pod is no longer ready.</summary>
    public void OnExit(ChildExit reaped)
    {
        lock (_gate)
        {
            if (_state == PodState.Ready)
            {
                _state = PodState.Stopped;
            }
            ExitedAt = reaped.ExitedAt;
        }
        _exited.TrySetResult(reaped);
    }
}
