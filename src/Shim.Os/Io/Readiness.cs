using System.Threading.Tasks.Sources;

namespace Shim.Os.Io;

/// <summary>
/// One direction (read or write) of a socket registered on the loop: the loop thread bumps a
/// sequence number on every edge; one waiter at a time awaits a bump past what it saw before its
/// last EAGAIN, so an edge between the syscall and the wait is never lost. No allocation per wait.
/// </summary>
internal sealed class Readiness : IValueTaskSource<bool>
{
    private readonly Lock _gate = new();
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _sequence;   // written under _gate, read with Volatile
    private bool _waiting;   // guarded by _gate
    private bool _closed;    // guarded by _gate

    /// <summary>Snapshot to take before the syscall whose EAGAIN leads to <see cref="WaitAsync"/>.</summary>
    public int Sequence => Volatile.Read(ref _sequence);

    /// <summary>Cancellation callback for <see cref="CancellationToken.UnsafeRegister(Action{object?}, object?)"/>.</summary>
    public static readonly Action<object?> CancelCallback = static state => ((Readiness)state!).Wake(closing: false);

    /// <summary>
    /// True once readiness was reported after <paramref name="seen"/>; false when closed or
    /// <paramref name="ct"/> is cancelled (the caller tells which, and registers the cancellation itself).
    /// </summary>
    public ValueTask<bool> WaitAsync(int seen, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_closed)
            {
                return new ValueTask<bool>(false);
            }
            if (_sequence != seen)
            {
                return new ValueTask<bool>(true);
            }
            if (ct.IsCancellationRequested)
            {
                return new ValueTask<bool>(false);
            }
            _core.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _core.Version);
        }
    }

    /// <summary>Loop thread: the fd reported readiness in this direction.</summary>
    public void Signal()
    {
        lock (_gate)
        {
            _sequence++;
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
        }
        _core.SetResult(true);
    }

    /// <summary>Fails the pending wait and every later one.</summary>
    public void Close() => Wake(closing: true);

    private void Wake(bool closing)
    {
        lock (_gate)
        {
            _closed |= closing;
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
        }
        _core.SetResult(false);
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
