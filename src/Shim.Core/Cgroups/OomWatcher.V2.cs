using System.Diagnostics.CodeAnalysis;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Os.Notify;

namespace Shim.Core.Cgroups;

/// <summary>v2: one inotify instance on the loop for every container.</summary>
public sealed partial class OomWatcher
{
    private const uint WatchMask = Inotify.IN_MODIFY | Inotify.IN_DELETE_SELF;
    private const uint GoneMask = Inotify.IN_IGNORED | Inotify.IN_DELETE_SELF | Inotify.IN_UNMOUNT;

    // _lock: watch descriptor → the watches using it (two containers may name the same cgroup).
    private readonly Dictionary<int, List<V2Watch>> _byWd = [];
    private Inotify? _inotify;
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "released through _loop.Unwatch in DisposeInotify, which must run on the loop")]
    private IDisposable? _inotifyRegistration;

    // Loop thread only (the inotify callback).
    private readonly List<InotifyEvent> _events = [];
    private readonly List<V2Watch> _touched = [];
    private readonly HashSet<V2Watch> _lost = [];

    private long _inotifyBatches;

    /// <summary>Inotify reads handled so far (tests wait on it).</summary>
    internal long InotifyBatches => Interlocked.Read(ref _inotifyBatches);

    /// <summary>Runs before each v2 cgroup file is read, with its path (tests: what happens between two reads).</summary>
    internal Action<string>? BeforeRead { get; set; }

    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the inotify instance belongs to the watcher (_inotify) and is disposed in DisposeInotify")]
    private void AddV2(string containerId, CgroupV2 cgroup, Action<string> onOom)
    {
        var watch = new V2Watch(this, containerId, onOom, cgroup.Directory);
        Reserve(watch);
        try
        {
            var inotify = EnsureInotify();
            watch.Start(inotify);
        }
        catch (ErrnoException ex)
        {
            Forget(watch);
            watch.Close();
            throw new ShimException(ex.Errno == ENOENT ? ErrorKind.NotFound : ErrorKind.Unknown,
                ex.Errno == ENOENT ? $"watch OOM of {containerId}: cgroup does not exist: {cgroup.Directory}" : $"watch OOM of {containerId}: {ex.Message}", ex);
        }
        catch
        {
            Forget(watch);
            watch.Close();
            throw;
        }
        watch.Check(lost: false);   // an OOM between the baseline read and the watches
    }

    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the new instance becomes _inotify or is disposed on every other path")]
    private Inotify EnsureInotify()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_inotify is not null)
            {
                return _inotify;
            }
        }
        // Registered outside _lock: IoLoop.Watch waits for the loop thread, whose callbacks take _lock.
        var created = new Inotify();
        IDisposable registration;
        try
        {
            registration = _loop.Watch(created.Handle, () => OnInotifyReadable(created));
        }
        catch
        {
            created.Dispose();
            throw;
        }
        lock (_lock)
        {
            if (_inotify is null && !_disposed)
            {
                _inotify = created;
                _inotifyRegistration = registration;
                return created;
            }
        }
        _loop.Unwatch(registration);   // lost a race with another Add, or disposed meanwhile
        created.Dispose();
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _inotify!;
        }
    }

    private void DisposeInotify()
    {
        Inotify? inotify;
        IDisposable? registration;
        lock (_lock)
        {
            inotify = _inotify;
            registration = _inotifyRegistration;
            _inotify = null;
            _inotifyRegistration = null;
            _byWd.Clear();
        }
        if (registration is not null)
        {
            _loop.Unwatch(registration);
        }
        inotify?.Dispose();
    }

    /// <summary>Loop thread: reads the queued events and checks each container they concern once.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "one container's failing OOM callback must not stop the checks of the others; every failure is rethrown together at the end")]
    private void OnInotifyReadable(Inotify inotify)
    {
        _events.Clear();
        _touched.Clear();
        _lost.Clear();
        try
        {
            inotify.ReadEvents(_events);
        }
        catch (ObjectDisposedException)
        {
            return;   // disposed while the event was pending
        }
        lock (_lock)
        {
            if (!ReferenceEquals(inotify, _inotify))
            {
                return;
            }
            bool overflow = false;
            foreach (var e in _events)
            {
                if ((e.Mask & Inotify.IN_Q_OVERFLOW) != 0)
                {
                    overflow = true;
                }
                else if (_byWd.TryGetValue(e.Wd, out var watches))
                {
                    foreach (var watch in watches)
                    {
                        Touch(watch);
                        if ((e.Mask & GoneMask) != 0)
                        {
                            _lost.Add(watch);
                        }
                    }
                }
            }
            if (overflow)
            {
                // Events were dropped: look at every container.
                foreach (var watches in _byWd.Values)
                {
                    watches.ForEach(Touch);
                }
            }
        }
        List<Exception>? failures = null;
        foreach (var watch in _touched)
        {
            try
            {
                watch.Check(_lost.Contains(watch));
            }
            catch (Exception ex)
            {
                (failures ??= []).Add(ex);
            }
        }
        Interlocked.Increment(ref _inotifyBatches);
        if (failures is not null)
        {
            throw new AggregateException("OOM callback failed", failures);   // reported by the loop
        }
    }

    private void Touch(V2Watch watch)
    {
        if (!_touched.Contains(watch))
        {
            _touched.Add(watch);
        }
    }

    /// <summary>_lock taken: records a watch descriptor of a container.</summary>
    private void MapWd(int wd, V2Watch watch)
    {
        if (!_byWd.TryGetValue(wd, out var watches))
        {
            _byWd[wd] = watches = [];
        }
        watches.Add(watch);
    }

    /// <summary>Drops a container's watch descriptors; the last user of one removes it from inotify.</summary>
    private void UnmapWds(V2Watch watch, ReadOnlySpan<int> wds)
    {
        lock (_lock)
        {
            foreach (int wd in wds)
            {
                if (wd < 0 || !_byWd.TryGetValue(wd, out var watches) || !watches.Remove(watch) || watches.Count > 0)
                {
                    continue;
                }
                _byWd.Remove(wd);
                try
                {
                    _inotify?.RemoveWatch(wd);   // false (EINVAL) when the kernel already dropped it
                }
                catch (ErrnoException)
                {
                    // the inotify fd is going away anyway
                }
            }
        }
    }
}
