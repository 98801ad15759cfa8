using System.Diagnostics.CodeAnalysis;

namespace Shim.Core.Events;

/// <summary>
/// A bounded FIFO of events waiting for containerd. When full, it sheds the oldest event that is
/// not critical (TaskExit, TaskOOM, TaskDelete are critical: losing them leaves containers
/// "running" forever); only a queue full of critical events sheds its oldest critical one.
/// </summary>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "its SemaphoreSlim holds no OS resource unless AvailableWaitHandle is read, which nothing does")]
internal sealed class EventBacklog<T>(int capacity, Func<T, bool> isCritical)
{
    private readonly Lock _gate = new();
    private readonly LinkedList<T> _items = new(); // guarded by _gate
    private readonly SemaphoreSlim _available = new(0);
    private long _dropped;

    /// <summary>Events shed so far.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Events waiting.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Adds an event; returns the event that had to be shed to make room, if any.</summary>
    public (bool Shed, T? Item) Enqueue(T item)
    {
        (bool, T?) shed = (false, default);
        lock (_gate)
        {
            if (_items.Count >= capacity)
            {
                var victim = _items.First;
                for (var node = _items.First; node is not null; node = node.Next)
                {
                    if (!isCritical(node.Value))
                    {
                        victim = node;
                        break;
                    }
                }
                shed = (true, victim!.Value);
                _items.Remove(victim);
                Interlocked.Increment(ref _dropped);
            }
            _items.AddLast(item);
        }
        if (!shed.Item1)
        {
            _available.Release();
        }
        return shed;
    }

    /// <summary>Waits for the oldest event without removing it (it stays until delivered).</summary>
    public async Task<T> PeekAsync(CancellationToken ct)
    {
        while (true)
        {
            lock (_gate)
            {
                if (_items.First is { } first)
                {
                    return first.Value;
                }
            }
            await _available.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Removes <paramref name="item"/> after delivery (unless it was shed meanwhile).</summary>
    public void Remove(T item)
    {
        lock (_gate)
        {
            if (_items.First is { } first && ReferenceEquals(first.Value, item))
            {
                _items.RemoveFirst();
            }
            else
            {
                _items.Remove(item);
            }
        }
    }
}
