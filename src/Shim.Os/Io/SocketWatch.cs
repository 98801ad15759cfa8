using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>
/// The loop-side half of a <see cref="LoopSocket"/> or <see cref="LoopListener"/>: holds a reference
/// on the fd while it is registered (so its number cannot be reused under epoll) and turns edges into
/// <see cref="Readiness"/> signals. The loop thread never reads or writes the socket itself.
/// </summary>
internal sealed class SocketWatch : IoHandler
{
    private const uint ReadEvents = Libc.EPOLLIN | Libc.EPOLLHUP | Libc.EPOLLERR | Libc.EPOLLRDHUP;
    private const uint WriteEvents = Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR;

    private readonly IoLoop _loop;
    private readonly SafeFileHandle _handle;
    private bool _registered;   // loop thread only
    private bool _released;     // loop thread only
    private int _stopped;       // Interlocked

    internal SocketWatch(IoLoop loop, SafeFileHandle handle)
    {
        _loop = loop;
        _handle = handle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        Fd = (int)handle.DangerousGetHandle();
        loop.Add(this);
    }

    internal int Fd { get; }

    internal Readiness Read { get; } = new();

    internal Readiness Write { get; } = new();

    internal override void Start()
    {
        if (Volatile.Read(ref _stopped) != 0)
        {
            Release();
            return;
        }
        try
        {
            _registered = _loop.Register(Fd, this);
        }
        catch (ErrnoException)
        {
            Stop();
            Release();
            throw;
        }
        if (!_registered)
        {
            // Not a pollable fd: never wait, just retry the syscall.
            Read.Close();
            Write.Close();
        }
    }

    internal override void OnEvents(uint events)
    {
        if ((events & ReadEvents) != 0)
        {
            Read.Signal();
        }
        if ((events & WriteEvents) != 0)
        {
            Write.Signal();
        }
    }

    internal override void Abort(Exception? error)
    {
        Read.Close();
        Write.Close();
        Release();
    }

    /// <summary>Any thread: fails pending waits and drops the registration (on the loop thread).</summary>
    internal void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        Read.Close();
        Write.Close();
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
            _loop.Unregister(Fd, this);
            _registered = false;
        }
        _loop.Retire(this);
        _handle.DangerousRelease();
    }
}
