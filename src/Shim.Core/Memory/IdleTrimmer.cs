namespace Shim.Core.Memory;

/// <summary>
/// Runs a trim (a compacting GC that decommits, then malloc_trim) once the shim has been quiet
/// for a while after doing work. A burst of calls (execs, a container start) leaves committed GC
/// regions and malloc pages behind that neither gives back by itself; an idle shim is the state
/// that counts when hundreds of them run on a node, and a trim costs a millisecond or two on a
/// heap this small. No activity, no timer: an idle shim never wakes for this.
/// </summary>
public sealed class IdleTrimmer : IDisposable
{
    private readonly TimeSpan _quiet;
    private readonly Action _trim;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private long _last;  // Volatile: timestamp of the latest Touch
    private int _armed;  // Interlocked: 1 while the timer is pending or its callback is deciding
    private long _trims; // Interlocked

    /// <summary>Creates a trimmer that runs <paramref name="trim"/> once <paramref name="quiet"/> has passed without activity.</summary>
    public IdleTrimmer(TimeSpan quiet, Action trim, TimeProvider time)
    {
        _quiet = quiet;
        _trim = trim;
        _time = time;
        _timer = time.CreateTimer(static s => ((IdleTrimmer)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Trims done so far.</summary>
    public long Trims => Interlocked.Read(ref _trims);

    /// <summary>The standard trim: a blocking, compacting, decommitting full GC, then malloc_trim(0).</summary>
    public static void TrimProcess()
    {
        // Aggressive also decommits the free regions and the unused ends of the live ones, which a
        // plain full GC keeps committed for the next allocations
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Shim.Os.Malloc.Trim();
    }

    /// <summary>Records activity (a call dispatched or answered); cheap: a clock read, and a timer arm once per burst.</summary>
    public void Touch()
    {
        Volatile.Write(ref _last, _time.GetTimestamp());
        if (Interlocked.Exchange(ref _armed, 1) == 0)
        {
            _timer.Change(_quiet, Timeout.InfiniteTimeSpan);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _timer.Dispose();

    private void OnTimer()
    {
        long last = Volatile.Read(ref _last);
        var quietFor = _time.GetElapsedTime(last);
        if (quietFor < _quiet)
        {
            // calls came after the timer was armed: look again a full quiet period after the latest
            _timer.Change(_quiet - quietFor, Timeout.InfiniteTimeSpan);
            return;
        }
        Volatile.Write(ref _armed, 0);
        // a Touch between the read of _last and here has armed the timer again: leave the trim to it
        if (Volatile.Read(ref _last) == last)
        {
            Trim();
        }
    }

    private void Trim()
    {
        try
        {
            _trim();
            Interlocked.Increment(ref _trims);
        }
        catch (Exception ex)
        {
            Logging.ShimLog.Warn("memory trim failed", Logging.ShimLog.Field("error", ex.Message));
        }
    }
}
