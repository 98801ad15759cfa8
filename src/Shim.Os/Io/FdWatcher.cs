using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>A <see cref="IoLoop.Watch"/> registration: calls back on readability until disposed.</summary>
internal sealed class FdWatcher : IoHandler, IDisposable
{
    private const uint ReadableEvents = Libc.EPOLLIN | Libc.EPOLLHUP | Libc.EPOLLERR | Libc.EPOLLRDHUP;

    private readonly IoLoop _loop;
    private readonly SafeHandle _handle;
    private readonly Action _onReadable;
    private readonly int _fd;
    private int _disposed;
    private bool _registered;
    private bool _released;

    internal FdWatcher(IoLoop loop, SafeHandle handle, Action onReadable)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentNullException.ThrowIfNull(onReadable);
        _loop = loop;
        _handle = handle;
        _onReadable = onReadable;
        bool added = false;
        handle.DangerousAddRef(ref added);
        _fd = (int)handle.DangerousGetHandle();
    }

    internal override void Start()
    {
        try
        {
            Fds.SetNonBlocking(_handle, true);
            if (!_loop.Register(_fd, this))
            {
                throw new ErrnoException(Errno.EPERM, $"epoll_ctl add {_fd}: not pollable");
            }
            _registered = true;
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
        if (_loop.OnLoopThread)
        {
            Release();
        }
        else
        {
            _loop.Post(Release);
        }
    }

    // Loop thread only.
    private void Release()
    {
        if (_released)
        {
            return;
        }
        _released = true;
        if (_registered)
        {
            _loop.Unregister(_fd, this);
            _registered = false;
        }
        _loop.Retire(this);
        _handle.DangerousRelease();
    }
}
