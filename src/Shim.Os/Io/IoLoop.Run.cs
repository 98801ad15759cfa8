using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>The loop thread itself: wait, dispatch, run commands, run scheduled turns.</summary>
public sealed partial class IoLoop
{
    private unsafe void Run()
    {
        int stride = Libc.EpollEventSize;
        byte* events = (byte*)NativeMemory.AllocZeroed((nuint)(MaxEvents * stride));
        try
        {
            while (!_disposed)
            {
                int n = Libc.epoll_wait(_epollFd, events, MaxEvents, _ready.Count > 0 ? 0 : -1);
                if (n < 0)
                {
                    if (Errno.Last != Errno.EINTR)
                    {
                        Thread.Sleep(10);   // unexpected; never spin
                    }
                    continue;
                }
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
            }
        }
        finally
        {
            NativeMemory.Free(events);
            Shutdown();
        }
    }

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
