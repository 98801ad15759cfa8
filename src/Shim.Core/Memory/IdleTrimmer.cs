using System.Diagnostics.CodeAnalysis;

namespace Shim.Core.Memory;

/// <summary>
/// Runs a trim (a compacting GC that decommits, then malloc_trim) once the shim has been quiet
/// for a while after doing work. A burst of calls (execs, a container start) leaves committed GC
/// regions and malloc pages behind that neither gives back by itself; an idle shim is the state
/// that counts when hundreds of them run on a node, and a trim costs a millisecond or two on a
/// heap this small. A second, late trim follows once the thread pool has retired the workers the
/// burst added (their exit frees thread caches). No activity, no timer: an idle shim never wakes
/// for this. Calls that allocated little since the last trim arm nothing either: a shim probed
/// every few seconds (a Kubernetes exec probe) would otherwise pay a full compacting GC, a
/// malloc_trim and the timer and pool wake-ups around them on every probe, for a few KiB.
/// </summary>
public sealed class IdleTrimmer : IDisposable
{
    private readonly Logging.ShimLogger _log;
    private const int Idle = 0, WaitingQuiet = 1, WaitingLate = 2;

    private readonly TimeSpan _quiet;
    private readonly TimeSpan _late;
    private readonly Action _trim;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly Func<long> _allocated;
    private readonly long _minAllocated;
    private readonly Lock _gate = new();
    private long _allocatedAtTrim = long.MinValue; // Volatile: _allocated() when the latest trim began; MinValue before the first
    private long _last;  // Interlocked: timestamp of the latest Touch
    private int _stage;  // what the timer is armed for; written under _gate, read by Touch without it
    private long _trimmedAfter; // under _gate: _last when the quiet trim that armed the late one ran
    private long _trims; // Interlocked

    /// <summary>
    /// Creates a trimmer that runs <paramref name="trim"/> once <paramref name="quiet"/> has passed
    /// without activity, and again once <paramref name="late"/> has (if it is longer). With
    /// <paramref name="allocated"/> (bytes allocated so far, a monotonic counter), activity arms a
    /// trim only once <paramref name="minAllocated"/> bytes were allocated since the last trim
    /// began; the first burst always does.
    /// </summary>
    public IdleTrimmer(TimeSpan quiet, TimeSpan late, Action trim, TimeProvider time, Func<long>? allocated = null, long minAllocated = 0, Logging.ShimLogger? log = null)
    {
        _log = log ?? Logging.ShimLogger.Discard;
        ArgumentNullException.ThrowIfNull(time);
        _quiet = quiet;
        _late = late;
        _trim = trim;
        _time = time;
        _allocated = allocated ?? (static () => 0);
        _minAllocated = minAllocated;
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

    /// <summary>Records activity (a call dispatched or answered); cheap: a clock read, and a timer arm once per burst that is worth a trim.</summary>
    public void Touch()
    {
        // a full fence between this write and the read of _stage; OnTimer fences the other way
        Interlocked.Exchange(ref _last, _time.GetTimestamp());
        if (Volatile.Read(ref _stage) == WaitingQuiet)
        {
            return; // the pending timer looks at _last when it fires
        }
        if (!WorthTrimming())
        {
            // too little to give back: no timer, no trim (a pending late trim sees this call and drops itself)
            return;
        }
        lock (_gate)
        {
            if (_stage != WaitingQuiet)
            {
                _stage = WaitingQuiet;
                _timer.Change(_quiet, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _timer.Dispose();

    private void OnTimer()
    {
        lock (_gate)
        {
            long last = Interlocked.Read(ref _last);
            if (_stage == WaitingLate && last != _trimmedAfter)
            {
                // calls came after the quiet trim, each too small to arm a trim of its own: their
                // pool workers are busy again, so the late trim would only repeat the quiet one
                Interlocked.Exchange(ref _stage, Idle);
                return;
            }
            var quietFor = _time.GetElapsedTime(last);
            if (quietFor < _quiet)
            {
                // calls came after the timer was armed: look again a full quiet period after the latest
                _stage = WaitingQuiet;
                _timer.Change(_quiet - quietFor, Timeout.InfiniteTimeSpan);
                return;
            }
            bool lateAhead = _stage == WaitingQuiet && _late > quietFor;
            Interlocked.Exchange(ref _stage, lateAhead ? WaitingLate : Idle);
            if (Interlocked.Read(ref _last) != last)
            {
                // a Touch saw WaitingQuiet and left the timer to us: its burst gets its own quiet trim
                _stage = WaitingQuiet;
                _timer.Change(_quiet, Timeout.InfiniteTimeSpan);
                return;
            }
            if (lateAhead)
            {
                _trimmedAfter = last;
                _timer.Change(_late - quietFor, Timeout.InfiniteTimeSpan);
            }
        }
        Trim();
    }

    private bool WorthTrimming()
    {
        long since = Volatile.Read(ref _allocatedAtTrim);
        return since == long.MinValue || _allocated() - since >= _minAllocated;
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a failing trim is logged and costs only memory; it runs on a timer thread, where throwing would end the process")]
    private void Trim()
    {
        Volatile.Write(ref _allocatedAtTrim, _allocated());
        try
        {
            _trim();
            Interlocked.Increment(ref _trims);
        }
        catch (Exception ex)
        {
            _log.Warn("memory trim failed", Logging.ShimLog.Field("error", ex.Message));
        }
    }
}
