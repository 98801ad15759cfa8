using System.Threading.Tasks.Sources;

namespace Shim.Core.Stdio;

/// <summary>
/// One reusable wait that ends after a delay, or earlier when <see cref="Poke"/> is called (but not
/// before the wait's minimum, so a stream of pokes cannot make it spin). Waiting again allocates
/// nothing: the same timer is re-armed and the same value-task source reused. Only the timer
/// callback completes a wait (a poke makes the timer due sooner), so the continuation never runs
/// on the thread that poked (the I/O loop). A poke while no wait is pending ends the next one at
/// its minimum: a wake-up is never lost between two waits.
/// </summary>
internal sealed class ProgressWaiter : IValueTaskSource, IDisposable
{
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private ManualResetValueTaskSourceCore<bool> _core; // continuations run inline on the timer callback
    private int _armed;                                 // 1 while a wait is pending
    private int _pokes;                                 // Poke calls so far
    private int _seen;                                  // _pokes when the last wait ended or began
    private long _armedAt;                              // timestamp of the pending wait's start
    private TimeSpan _minimum;                          // of the pending wait

    public ProgressWaiter(TimeProvider time)
    {
        _time = time;
        _timer = time.CreateTimer(static state => ((ProgressWaiter)state!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Waits <paramref name="delay"/>, or less when poked, but at least <paramref name="minimum"/>; one wait at a time.</summary>
    public ValueTask WaitAsync(TimeSpan delay, TimeSpan minimum)
    {
        // whole milliseconds, as timers fire: a wait for the last 0.3 ms of a limit would otherwise end
        // at once, again and again, until the clock passed the limit
        delay = TimeSpan.FromMilliseconds(Math.Ceiling(Math.Max(0, delay.TotalMilliseconds)));
        _core.Reset();
        _armedAt = _time.GetTimestamp();
        _minimum = minimum < delay ? minimum : delay;
        Interlocked.Exchange(ref _armed, 1);
        _timer.Change(delay, Timeout.InfiniteTimeSpan);
        Interlocked.MemoryBarrier();   // a Poke counted after this read sees _armed and moves the timer itself
        int pokes = Volatile.Read(ref _pokes);
        if (pokes != _seen)
        {
            _seen = pokes;
            _timer.Change(_minimum, Timeout.InfiniteTimeSpan);
        }
        return new ValueTask(this, _core.Version);
    }

    /// <summary>Any thread: ends the pending wait as soon as its minimum allows, or the next one if none is pending.</summary>
    public void Poke()
    {
        Interlocked.Increment(ref _pokes);
        if (Volatile.Read(ref _armed) == 1)
        {
            // read without a lock: a stale value only moves this waiter's timer, and its owner re-checks anyway
            var left = _minimum - _time.GetElapsedTime(Volatile.Read(ref _armedAt));
            _timer.Change(left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose() => _timer.Dispose();

    private void Fire()
    {
        // a late callback of an earlier arming may end a newer wait early: the caller only looks again sooner
        if (Interlocked.CompareExchange(ref _armed, 0, 1) == 1)
        {
            _seen = Volatile.Read(ref _pokes);   // pokes so far are answered by this wake-up
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
