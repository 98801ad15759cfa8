using System.Text.Json;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Os.Mounting;

namespace Shim.Core.Processes;

/// <summary>One container of this shim: its bundle, rootfs mounts and init process.</summary>
internal sealed class Container
{
    /// <summary>A container of this shim with <paramref name="init"/> as its init process (bound to it here).</summary>
    public Container(string id, string bundle, bool rootfsMounted, bool sharesPidNamespace, InitProcess init)
    {
        ArgumentNullException.ThrowIfNull(init);
        Id = id;
        Bundle = bundle;
        RootfsMounted = rootfsMounted;
        SharesPidNamespace = sharesPidNamespace;
        Init = init;
        init.BindTo(this);
    }

    /// <summary>The container id.</summary>
    public string Id { get; }

    /// <summary>The bundle directory containerd prepared.</summary>
    public string Bundle { get; }

    /// <summary>True when the shim mounted the rootfs and must unmount it at delete.</summary>
    public bool RootfsMounted { get; }

    /// <summary>True when the spec has no private pid namespace: init's exit must then kill the rest.</summary>
    public bool SharesPidNamespace { get; }

    /// <summary>The init process.</summary>
    public InitProcess Init { get; }

    /// <summary>The container's cgroup, found from init's /proc entry after create; null if unknown.</summary>
    public Cgroups.ICgroup? Cgroup { get; private set; }

    /// <summary>Records the cgroup found for init's pid (create, restore).</summary>
    internal void UseCgroup(Cgroups.ICgroup cgroup) => Cgroup = cgroup;

    /// <summary>The containerd namespace (given to logging binaries).</summary>
    public string Namespace { get; init; } = "";

    /// <summary>What the stdio of the container's processes runs on.</summary>
    public required Stdio.StdioContext Stdio { get; init; }

    /// <summary>The runtime options the container was created with.</summary>
    public Options.RuntimeOptions Options { get; init; } = new();

    private readonly Lock _gate = new();
    private readonly Dictionary<string, ExecProcess?> _execs = new(StringComparer.Ordinal); // guarded by _gate; null = reserved

    /// <summary>Reserves an exec id; AlreadyExists if taken.</summary>
    public void ReserveExec(string execId)
    {
        lock (_gate)
        {
            if (!_execs.TryAdd(execId, null))
            {
                throw new ShimException(ErrorKind.AlreadyExists, $"exec {execId} of container {Id}: id already in use");
            }
        }
    }

    /// <summary>Fills a reservation (or drops it when <paramref name="exec"/> is null).</summary>
    public void CompleteExec(string execId, ExecProcess? exec)
    {
        lock (_gate)
        {
            if (exec is null)
            {
                _execs.Remove(execId);
            }
            else
            {
                _execs[execId] = exec;
            }
        }
    }

    /// <summary>The exec with that id; NotFound otherwise.</summary>
    public ExecProcess GetExec(string execId)
    {
        lock (_gate)
        {
            if (_execs.TryGetValue(execId, out var exec) && exec is not null)
            {
                return exec;
            }
        }
        throw new ShimException(ErrorKind.NotFound, $"exec {execId} of container {Id}: process does not exist");
    }

    /// <summary>Forgets a deleted exec.</summary>
    public void RemoveExec(string execId)
    {
        lock (_gate)
        {
            _execs.Remove(execId);
        }
    }

    /// <summary>Snapshot of the execs, for Pids.</summary>
    public IReadOnlyList<ExecProcess> Execs
    {
        get
        {
            lock (_gate)
            {
                return [.. _execs.Values.OfType<ExecProcess>()];
            }
        }
    }

    /// <summary>Called once init's exit was reported: keeps it in the bundle for the delete action.</summary>
    internal void OnInitExited(InitProcess init)
    {
        try
        {
            ExitRecord.Write(Bundle, init.ExitStatus, init.ExitedAt);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Stdio.Log.Warn("could not record the exit status in the bundle", Logging.ShimLog.Field("id", Id) + " " + Logging.ShimLog.Field("error", ex.Message));
        }
    }

    /// <summary>Unmounts what the shim mounted under the bundle's rootfs.</summary>
    public void UnmountRootfs()
    {
        if (RootfsMounted)
        {
            Mounts.UnmountRecursive(Path.Combine(Bundle, BundleFiles.Rootfs));
        }
    }

    /// <summary>
    /// Reads config.json: does the container get a pid namespace of its own? True unless the spec
    /// lists a "pid" namespace with a path (joining another) or none at all. An unreadable spec
    /// counts as shared, as in the Go shim, so orphans are still killed.
    /// </summary>
    public static bool SpecSharesPidNamespace(string bundle)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, BundleFiles.Config)));
            if (!doc.RootElement.TryGetProperty("linux", out var linux) || !linux.TryGetProperty("namespaces", out var namespaces))
            {
                return true;
            }
            foreach (var ns in namespaces.EnumerateArray())
            {
                if (ns.TryGetProperty("type", out var type) && type.GetString() == "pid")
                {
                    return ns.TryGetProperty("path", out var path) && !string.IsNullOrEmpty(path.GetString());
                }
            }
            return true;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or InvalidOperationException)
        {
            return true;
        }
    }
}
