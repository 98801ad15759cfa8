using System.Diagnostics.CodeAnalysis;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>The loop thread itself: wait, dispatch, run commands, run scheduled turns.</summary>
public sealed partial class IoLoop
{
    private unsafe void Run()
    {
        int stride = Libc.EpollEventSize;
        byte* events = (byte*)NativeMemory.AllocZeroed((nuint)(MaxEvents * stride));
        try
        {
            bool gather = false;
            while (!_disposed)
            {
                int timeout = _ready.Count > 0 ? 0 : -1;
                if (gather && timeout < 0)
                {
                    Libc.usleep(GatherMicros);
                }
                long waitStart = Stopwatch.GetTimestamp();
                int n = Libc.epoll_wait(_epollFd, events, MaxEvents, timeout);
                long waited = Stopwatch.GetTimestamp() - waitStart;
                if (n < 0)
                {
                    if (Errno.Last != Errno.EINTR)
                    {
                        Thread.Sleep(10);   // unexpected; never spin
                    }
                    continue;
                }
                _movedThisPass = 0;
                for (int i = 0; i < n; i++)
                {
                    byte* ev = events + (i * stride);
                    uint mask = *(uint*)ev;
                    int fd = (int)*(ulong*)(ev + Libc.EpollEventDataOffset);
                    if (fd == _wakeFd)
                    {
                        DrainWake();
                    }
                    else
                    {
                        Dispatch(fd, mask);
                    }
                }
                RunCommands();
                RunReady();
                gather = ShouldGather(timeout, n, waited);
            }
        }
        finally
        {
            NativeMemory.Free(events);
            Shutdown();
        }
    }

    /// <summary>
    /// Wake-up moderation. A writer doing small writes (busybox `head` writes 4 KiB) wakes this
    /// thread once per write, and each wake-up costs more CPU than the splice it leads to. When
    /// the last wait ended soon and the pass that followed moved only a little, the next wait
    /// starts <see cref="GatherMicros"/> later, so the writes that come meanwhile are moved by one
    /// splice. A full pipe (a fast writer) or a quiet one (an RPC, a line of output now and then)
    /// is never delayed.
    /// </summary>
    private bool ShouldGather(int timeout, int events, long waited) =>
        timeout < 0 && events > 0
        && _movedThisPass > 0 && _movedThisPass < GatherBelowBytes
        && waited < GatherWithinTicks;

    /// <summary>Pumps report what a pass moved (loop thread only): small passes in quick succession mean a stream of small writes.</summary>
    internal void NoteMoved(long bytes) => _movedThisPass += bytes;

    private void Dispatch(int fd, uint mask)
    {
        if (!_fds.TryGetValue(fd, out var handlers))
        {
            return;
        }
        // Handlers may unregister themselves (or others) while running; iterate a copy.
        _scratch.Clear();
        _scratch.AddRange(handlers);
        foreach (var handler in _scratch)
        {
            Invoke(handler, mask);
        }
        _scratch.Clear();
    }

    private void RunReady()
    {
        // Only the turns queued before this pass; handlers that reschedule run next pass,
        // after epoll has had a chance to report other fds.
        for (int count = _ready.Count; count > 0; count--)
        {
            var handler = _ready.Dequeue();
            handler.Queued = false;
            Invoke(handler, 0);
        }
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "the loop serves every fd of the shim: a throwing command is reported (CallbackFailed) and must not end the loop")]
    private void RunCommands()
    {
        while (_commands.TryDequeue(out var command))
        {
            try
            {
                command();
            }
            catch (Exception ex)
            {
                ReportFailure(ex);
            }
        }
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "the loop serves every fd of the shim: a throwing handler is reported and aborted, and must not end the loop")]
    private void Invoke(IoHandler handler, uint mask)
    {
        try
        {
            handler.OnEvents(mask);
        }
        catch (Exception ex)
        {
            ReportFailure(ex);
            try
            {
                handler.Abort(ex);
            }
            catch (Exception abortError)
            {
                ReportFailure(abortError);
            }
        }
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "a failing failure handler must not take the loop down")]
    private void ReportFailure(Exception ex)
    {
        try
        {
            CallbackFailed?.Invoke(ex);
        }
        catch (Exception)
        {
            // a failing failure handler must not take the loop down
        }
    }

    private unsafe void DrainWake()
    {
        ulong value;
        _ = Libc.read(_wakeFd, (byte*)&value, sizeof(ulong));
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "every handler gets its Abort even when an earlier one throws; failures are reported")]
    private void Shutdown()
    {
        RunCommands();   // late registrations see _disposed and abort
        foreach (var handler in _active.ToArray())
        {
            try
            {
                handler.Abort(null);
            }
            catch (Exception ex)
            {
                ReportFailure(ex);
            }
        }
        _active.Clear();
        _fds.Clear();
        _ready.Clear();
    }
}
