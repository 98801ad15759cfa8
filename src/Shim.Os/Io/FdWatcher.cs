using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>A <see cref="IoLoop.Watch"/> registration: calls back on readability until disposed.</summary>
internal sealed class FdWatcher : FdRegistration, IDisposable
{
    private const uint ReadableEvents = Libc.EPOLLIN | Libc.EPOLLHUP | Libc.EPOLLERR | Libc.EPOLLRDHUP;

    private readonly Action _onReadable;
    private int _disposed;

    internal FdWatcher(IoLoop loop, SafeHandle handle, Action onReadable)
        : base(loop, handle)
    {
        ArgumentNullException.ThrowIfNull(onReadable);
        _onReadable = onReadable;
    }

    internal override void Start()
    {
        try
        {
            Fds.SetNonBlocking(Handle, true);
            if (!Register())
            {
                throw new ErrnoException(Errno.EPERM, $"epoll_ctl add {Fd}: not pollable");
            }
        }
        catch
        {
            Release();
            throw;
        }
        // Already readable when registered: the ADD itself reports the edge, nothing to do.
    }

    internal override void OnEvents(uint events)
    {
        if (Volatile.Read(ref _disposed) == 0 && (events & ReadableEvents) != 0)
        {
            _onReadable();
        }
    }

    internal override void Abort(Exception? error)
    {
        // A throwing callback is reported by the loop; the watch stays registered.
        if (error is null)
        {
            Release();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        ReleaseOnLoop();
    }
}
