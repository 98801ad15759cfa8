using Shim.Core.Errors;
using Shim.Os;
using Shim.Os.Io;
using Shim.Os.Notify;

namespace Shim.Core.Cgroups;

/// <summary>OOM notifications for every container of the shim, on the shared <see cref="IoLoop"/> (no thread of its own).</summary>
/// <remarks>
/// <para>v1: an eventfd registered on memory.oom_control through cgroup.event_control; every read
/// of a non-zero counter is one OOM report (containerd <c>pkg/oom/v1</c>). The kernel also signals
/// the eventfd when the cgroup is removed; a signal with the cgroup gone removes the watch silently.</para>
/// <para>v2: one inotify instance for all containers, IN_MODIFY on memory.events and cgroup.events
/// (containerd 2.3 <c>internal/oom</c>). Each change re-reads memory.events and reports once when
/// <c>oom_kill</c> rose above the last value seen (<c>oom</c> alone is not reported, CD #6323). A
/// counter that jumps by several between two reads is one report: the kernel coalesces the
/// inotify events too, so counting them would not be exact either. The baseline is read at Add.
/// The watch removes itself when memory.events disappears or cgroup.events says "populated 0"
/// (read before that last memory.events read), as containerd's cgroup2 event loop does. A cgroup removed before its
/// last read (systemd removes a scope within milliseconds of its emptying) is answered from the
/// parent's hierarchical oom_kill at the init's exit (see V2Watch).</para>
/// <para>Reports run on the loop thread, or on the caller of <see cref="Drain"/>, under a
/// per-container lock, so once Drain returns every OOM visible in the cgroup has been reported.
/// The callback must be quick and must not call back into the watcher.</para>
/// </remarks>
public sealed partial class OomWatcher : IDisposable
{
    private const int ENOENT = 2;

    private readonly IoLoop _loop;

    // Guards _watches, _byWd, _inotify, _inotifyRegistration, _disposed. Lock order: a watch's
    // Gate may be held while taking _lock, never the reverse; neither is held across IoLoop.Watch
    // or Unwatch (they wait for the loop thread, whose callbacks take both).
    private readonly object _lock = new();
    private readonly Dictionary<string, Watch> _watches = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>A watcher on <paramref name="loop"/>.</summary>
    public OomWatcher(IoLoop loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        _loop = loop;
    }

    /// <summary>Number of containers watched (tests).</summary>
    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>Starts reporting OOMs of <paramref name="cgroup"/> as <paramref name="onOom"/>(containerId).</summary>
    /// <exception cref="ShimException">AlreadyExists for a watched id; NotFound when the cgroup (or its memory controller) does not exist.</exception>
    public void Add(string containerId, ICgroup cgroup, Action<string> onOom)
    {
        ArgumentNullException.ThrowIfNull(containerId);
        ArgumentNullException.ThrowIfNull(cgroup);
        ArgumentNullException.ThrowIfNull(onOom);
        switch (cgroup)
        {
            case CgroupV1 v1:
                AddV1(containerId, v1, onOom);
                break;
            case CgroupV2 v2:
                AddV2(containerId, v2, onOom);
                break;
            default:
                throw new ArgumentException($"unsupported cgroup type {cgroup.GetType().Name}", nameof(cgroup));
        }
    }

    /// <summary>Stops watching the container and closes its fds before returning; unknown ids are ignored.</summary>
    public void Remove(string containerId)
    {
        Watch? watch;
        lock (_lock)
        {
            _watches.Remove(containerId, out watch);
        }
        watch?.Close();
    }

    /// <summary>Looks at the container's cgroup now and reports an OOM that is not reported yet, waiting for a report in progress on the loop.</summary>
    public void Drain(string containerId)
    {
        Watch? watch;
        lock (_lock)
        {
            _watches.TryGetValue(containerId, out watch);
        }
        watch?.Check(lost: false);
    }

    /// <summary>
    /// The shim is about to send the init <paramref name="signal"/>: <see cref="Drain(string)"/>, and
    /// on v2 a SIGKILL makes the init's 137 exit the client's, never attributed from the parent.
    /// </summary>
    public void BeforeSignal(string containerId, uint signal)
    {
        Watch? watch;
        lock (_lock)
        {
            _watches.TryGetValue(containerId, out watch);
        }
        watch?.BeforeSignal(signal);
    }

    /// <summary>
    /// <see cref="Drain(string)"/> for the init's exit with <paramref name="exitStatus"/>; call before
    /// publishing it. On v2, a cgroup removed before its last kill was read (systemd's scopes) counts
    /// as OOM-killed when the init exited 137 (not SIGKILLed through <see cref="BeforeSignal"/>), no
    /// OOM of it was reported yet, and the parent's oom_kill rose since the last read.
    /// </summary>
    /// <returns>True when an OOM was reported from the parent's count.</returns>
    public bool Drain(string containerId, int exitStatus)
    {
        Watch? watch;
        lock (_lock)
        {
            _watches.TryGetValue(containerId, out watch);
        }
        if (watch is null)
        {
            return false;
        }
        bool fromParent;
        try
        {
            watch.Check(lost: false);
        }
        finally
        {
            fromParent = watch.InitExited(exitStatus);
        }
        return fromParent;
    }

    /// <summary>Removes every watch and closes every fd.</summary>
    public void Dispose()
    {
        Watch[] all;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            all = [.. _watches.Values];
            _watches.Clear();
        }
        foreach (var watch in all)
        {
            watch.Close();
        }
        DisposeInotify();
    }

    private void AddV1(string containerId, CgroupV1 cgroup, Action<string> onOom)
    {
        string directory = cgroup.MemoryDirectory
            ?? throw new ShimException(ErrorKind.NotFound, $"watch OOM of {containerId}: the process has no memory cgroup");
        var watch = new V1Watch(this, containerId, onOom, directory);
        Reserve(watch);
        try
        {
            Microsoft.Win32.SafeHandles.SafeFileHandle eventFd;
            try
            {
                eventFd = CgroupEventControl.RegisterOomEventFd(directory);
            }
            catch (ErrnoException ex)
            {
                throw new ShimException(ex.Errno == ENOENT ? ErrorKind.NotFound : ErrorKind.Unknown,
                    ex.Errno == ENOENT ? $"watch OOM of {containerId}: cgroup does not exist: {directory}" : $"watch OOM of {containerId}: {ex.Message}", ex);
            }
            watch.Arm(eventFd);   // owns the fd from here, even when it throws
        }
        catch
        {
            Forget(watch);
            watch.Close();
            throw;
        }
        watch.Check(lost: false);   // an OOM between registration and arming
    }

    /// <summary>Claims the id for a watch being set up.</summary>
    private void Reserve(Watch watch)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_watches.TryAdd(watch.Id, watch))
            {
                throw new ShimException(ErrorKind.AlreadyExists, $"watch OOM of {watch.Id}: already watched");
            }
        }
    }

    /// <summary>Drops the id if it still names this watch (a watch that removed itself).</summary>
    private void Forget(Watch watch)
    {
        lock (_lock)
        {
            if (_watches.TryGetValue(watch.Id, out var current) && ReferenceEquals(current, watch))
            {
                _watches.Remove(watch.Id);
            }
        }
    }
}
