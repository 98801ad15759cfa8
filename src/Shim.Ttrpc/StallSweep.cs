using System.Diagnostics.CodeAnalysis;

namespace Shim.Ttrpc;

/// <summary>
/// Drops connections whose peer stopped inside a frame: each connection that is waiting mid-frame
/// is listed with the time its wait began, and one timer, armed only while the list is not empty
/// and always for its earliest deadline, closes those past <see cref="TtrpcServerOptions.FrameTimeout"/>.
/// A frame must be complete within the timeout of its first wait, so a peer trickling a byte now
/// and then is dropped too. An idle connection (between frames) is never listed: no timer per
/// connection, and nothing wakes while no frame is half-read. A connection over the server's
/// bound is listed from its accept, so one that never sends its first request goes the same way.
/// The timer is the runtime's shared timer thread (the shim has timers already): no thread of its own.
/// </summary>
internal sealed class StallSweep : IDisposable
{
    private readonly TtrpcServer _server;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<ServerConnection, long> _waiting = [];   // guarded by _gate: timestamp of the first wait in the frame
    private ITimer? _timer;                                              // guarded by _gate: made on first use
    private bool _armed;                                                 // guarded by _gate
    private bool _disposed;                                              // guarded by _gate

    public StallSweep(TtrpcServer server, TimeSpan timeout, TimeProvider time)
    {
        _server = server;
        _timeout = timeout;
        _time = time;
    }

    /// <summary>Lists <paramref name="connection"/> as waiting inside a frame since now (a no-op when already listed or without a timeout).</summary>
    public void Enter(ServerConnection connection)
    {
        if (_timeout == Timeout.InfiniteTimeSpan)
        {
            return;
        }

        lock (_gate)
        {
            if (_disposed || !_waiting.TryAdd(connection, _time.GetTimestamp()) || _armed)
            {
                return;
            }

            // entries are listed in time order, so a fresh arm is for this one's deadline
            _timer ??= _time.CreateTimer(static s => ((StallSweep)s!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(_timeout, Timeout.InfiniteTimeSpan);
            _armed = true;
        }
    }

    /// <summary>Takes <paramref name="connection"/> off the list (its frame ended, or it closed).</summary>
    public void Leave(ServerConnection connection)
    {
        lock (_gate)
        {
            if (!_waiting.Remove(connection) || _waiting.Count > 0 || !_armed)
            {
                return;
            }

            // nobody left mid-frame: no wake-up at all until the next one
            _timer!.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _armed = false;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _waiting.Clear();
            _timer?.Dispose();
            _armed = false;
        }
    }

    private void Sweep()
    {
        List<ServerConnection>? stalled = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var next = Timeout.InfiniteTimeSpan;
            foreach (var (connection, since) in _waiting)
            {
                var left = _timeout - _time.GetElapsedTime(since);
                if (left <= TimeSpan.Zero)
                {
                    (stalled ??= []).Add(connection);
                }
                else if (next == Timeout.InfiniteTimeSpan || left < next)
                {
                    next = left;
                }
            }

            foreach (var connection in stalled ?? [])
            {
                _waiting.Remove(connection);
            }

            _armed = next != Timeout.InfiniteTimeSpan;
            _timer!.Change(next, Timeout.InfiniteTimeSpan);
        }

        if (stalled is null)
        {
            return;
        }

        // reported first: the peer's credentials are read from the socket
        Report(stalled);
        foreach (var connection in stalled)
        {
            Drop(connection);
        }
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "runs on a timer thread: a handler's cancellation callback that throws must not take the process down, nor keep the other stalled connections open")]
    private void Drop(ServerConnection connection)
    {
        try
        {
            connection.Close();
        }
        catch (Exception ex)
        {
            _server.LogMessage($"ttrpc: closing a stalled connection failed: {ex}");
        }
    }

    /// <summary>One line per sweep, however many went (a client stalling hundreds of connections at once gets one); refusals are the bursts' to report.</summary>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "runs on a timer thread: a throwing log sink must not take the process down")]
    private void Report(List<ServerConnection> stalled)
    {
        var served = stalled.FindAll(c => !c.IsRefusal);
        if (served.Count == 0)
        {
            return;
        }

        try
        {
            string? peer = _server.DescribePeer(served[0].Connection);
            string seconds = $"{_timeout.TotalSeconds:0.###} s";
            _server.LogWarning(served.Count == 1
                ? $"ttrpc: dropped a connection stalled inside a frame for {seconds}{(peer is null ? "" : $" (peer {peer})")}"
                : $"ttrpc: dropped {served.Count} connections stalled inside a frame for {seconds}{(peer is null ? "" : $" (the first from {peer})")}");
        }
        catch (Exception ex)
        {
            _server.LogMessage($"ttrpc: reporting stalled connections failed: {ex.Message}");
        }
    }
}
