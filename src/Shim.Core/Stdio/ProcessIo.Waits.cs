using System.Diagnostics.CodeAnalysis;
using Shim.Core.Logging;
using Shim.Os;
using Shim.Os.Io;

namespace Shim.Core.Stdio;

/// <summary>
/// The two waits for output: Delete's (until every copy reached EOF, while bytes move) and the
/// exit's (until the client read what the FIFOs hold, bounded). Neither polls at a fixed rate:
/// they wake on the copies' progress or end, and re-check on a timer only for what produces no
/// event here (the client reading its FIFO).
/// </summary>
public abstract partial class ProcessIo
{
    /// <summary>First and longest re-check interval of <see cref="WaitOutputReadAsync"/>; it doubles from one to the other while nothing moves.</summary>
    internal static readonly TimeSpan FirstRecheck = TimeSpan.FromMilliseconds(1);

    /// <inheritdoc cref="FirstRecheck"/>
    internal static readonly TimeSpan LastRecheck = TimeSpan.FromMilliseconds(32);

    /// <summary>Copy progress ends a wait of <see cref="WaitOutputReadAsync"/> no sooner than this after it began: output that keeps moving wakes it no more often than the old fixed poll did.</summary>
    internal static readonly TimeSpan ProgressSpacing = TimeSpan.FromMilliseconds(2);

    private readonly List<PumpHandle> _outputs = new(2);
    private readonly Action _onProgress;
    private int _outputsRunning;                // output copies started and not ended
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "borrowed: the waiter is owned and disposed by the running WaitOutputReadAsync")]
    private volatile ProgressWaiter? _readWait; // poked on copy progress while WaitOutputReadAsync runs
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "borrowed: the waiter is owned and disposed by the running WaitOutputAsync")]
    private volatile ProgressWaiter? _endWait;  // poked when an output copy ends while WaitOutputAsync runs

    /// <summary>
    /// Waits until every output stream reached EOF (all writers gone). Gives up only after
    /// <paramref name="idleTimeout"/> in which no byte moved: a slow reader still gets everything
    /// (the process is gone, so the end is near), a reader that went away does not hold Delete.
    /// </summary>
    public async Task<bool> WaitOutputAsync(TimeSpan idleTimeout)
    {
        if (Volatile.Read(ref _outputsRunning) == 0)
        {
            return true;
        }
        var time = Context.Time;
        using var waiter = new ProgressWaiter(time);
        _endWait = waiter;
        try
        {
            long copied = OutputCopied();
            long since = time.GetTimestamp();
            while (Volatile.Read(ref _outputsRunning) > 0)
            {
                var left = idleTimeout - time.GetElapsedTime(since);
                if (left > TimeSpan.Zero)
                {
                    await waiter.WaitAsync(left, TimeSpan.Zero).ConfigureAwait(false);
                    continue;
                }
                long now = OutputCopied();
                if (now == copied)
                {
                    Context.Log.Warn("stdio copy made no progress: nobody reads it", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("idle", idleTimeout));
                    return false;
                }
                copied = now;
                since = time.GetTimestamp();
            }
            return true;
        }
        finally
        {
            _endWait = null;
        }
    }

    /// <summary>
    /// True while output sits unread in the pipes from the process or in the client's FIFOs (pipe
    /// mode). Once the process has exited, that is output the client may never read: ctr
    /// closes its FIFOs right after the exit event (1.6: io.Close in task.Delete; 1.7+: cio.Cancel)
    /// and loses what it had not read yet, with containerd's own shim too.
    /// </summary>
    public bool HoldsUnreadOutput() => UnreadOutput() > 0;

    /// <summary>
    /// Waits until the client has read all output held in the pipes and FIFOs; gives up after
    /// <paramref name="idleLimit"/> in which nothing moved (nobody reads, e.g. `ctr run -d`), and
    /// after <paramref name="overallLimit"/> in any case (something outside keeps writing).
    /// </summary>
    /// <remarks>
    /// Wakes when a copy moved bytes (at most every <see cref="ProgressSpacing"/>), and otherwise
    /// re-checks after 1, 2, 4 ... 32 ms: the client reading its FIFO produces no event on our
    /// side. Any change starts the back-off over.
    /// </remarks>
    public async Task WaitOutputReadAsync(TimeSpan idleLimit, TimeSpan overallLimit)
    {
        long unread = UnreadOutput();
        if (unread == 0)
        {
            return;
        }
        var time = Context.Time;
        using var waiter = new ProgressWaiter(time);
        _readWait = waiter;
        try
        {
            long copied = OutputCopied();
            long start = time.GetTimestamp();
            long lastProgress = start;
            var recheck = FirstRecheck;
            while (true)
            {
                var overallLeft = overallLimit - time.GetElapsedTime(start);
                if (overallLeft <= TimeSpan.Zero)
                {
                    Context.Log.Warn("exit reported with output still moving", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("limit", overallLimit));
                    return;
                }
                var idleLeft = idleLimit - time.GetElapsedTime(lastProgress);
                await waiter.WaitAsync(Min(recheck, Min(overallLeft, idleLeft)), ProgressSpacing).ConfigureAwait(false);
                long nowUnread = UnreadOutput();
                if (nowUnread == 0)
                {
                    return;
                }
                long nowCopied = OutputCopied();
                if (nowUnread != unread || nowCopied != copied)
                {
                    lastProgress = time.GetTimestamp();
                    recheck = FirstRecheck;
                }
                else if (time.GetElapsedTime(lastProgress) >= idleLimit)
                {
                    if (Context.Log.DebugEnabled)
                    {
                        Context.Log.Debug("exit reported with output unread: nobody reads it", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("unread", nowUnread));
                    }
                    return;
                }
                else
                {
                    recheck = Min(recheck * 2, LastRecheck);
                }
                unread = nowUnread;
                copied = nowCopied;
            }
        }
        finally
        {
            _readWait = null;
        }
    }

    /// <summary>Bytes the process wrote that its client has not read yet (FIFO mode; others cannot tell and say 0).</summary>
    private protected virtual long UnreadOutput() => 0;

    private void TrackOutput(PumpHandle pump)
    {
        _outputs.Add(pump);
        Interlocked.Increment(ref _outputsRunning);
    }

    private void OutputEnded()
    {
        Interlocked.Decrement(ref _outputsRunning);
        _endWait?.Poke();
    }

    /// <summary>On the loop thread, after a turn of an output copy that moved bytes.</summary>
    private void OnProgress() => _readWait?.Poke();

    private long OutputCopied()
    {
        long total = 0;
        foreach (var output in _outputs)
        {
            total += output.BytesCopied;
        }
        return total;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
